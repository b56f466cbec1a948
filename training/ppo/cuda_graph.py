"""
Replay a fixed piece of training work as a CUDA graph, with a loud eager fallback.

:class:`GraphedCall` wraps a function ``fn()`` that reads and writes only persistent tensors
(static inputs copied in by the caller, static outputs read back by the caller) and never
reads a value back to the host.  On CUDA its first ``warmup`` calls run eagerly on a side
stream (lazy library initialisation, optimizer state); right after the last of them ``fn`` is
recorded into a ``torch.cuda.CUDAGraph`` (recording runs nothing, so no work is repeated or
lost), and every later call is one graph launch.  Torch RNG inside ``fn`` (e.g.
``torch.normal`` for action sampling) is handled by ``torch.cuda.graph``: every replay draws
fresh numbers.  Elsewhere (CPU), when disabled, or after a failed capture
(with a warning) it simply calls ``fn()``, so results never depend on whether a graph was used.
"""

from typing import Callable, Optional
import warnings

import torch


class GraphedCall:
    """Call ``fn`` eagerly or as a captured CUDA graph (see the module docstring)."""

    def __init__(self, fn: Callable[[], None], name: str, device: torch.device,
                 enabled: bool = True, warmup: int = 3,
                 pool: Optional[tuple] = None) -> None:
        """
        Wrap ``fn`` for ``device``; graphs are used only when ``enabled`` and on CUDA.

        ``pool``: a memory pool handle shared with other graphs (``torch.cuda.graph_pool_handle``).
        """
        self.fn = fn
        self.name = name
        self.device = torch.device(device)
        self.enabled = bool(enabled) and self.device.type == 'cuda'
        self.warmup = max(1, int(warmup))
        self.pool = pool
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self._calls = 0
        self._stream: Optional[torch.cuda.Stream] = None

    @property
    def captured(self) -> bool:
        """Return True when calls replay a captured graph."""
        return self.graph is not None

    def reset(self) -> None:
        """Drop the captured graph (tensors it reads were replaced); capture again later."""
        self.graph = None
        self._calls = 0

    def disable(self, reason: str) -> None:
        """Stop using graphs for this call, with a warning naming ``reason``."""
        if self.enabled:
            warnings.warn(f'{self.name}: CUDA graph disabled ({reason}); running eagerly',
                          RuntimeWarning, stacklevel=2)
        self.enabled = False
        self.graph = None

    def __call__(self) -> None:
        """Run ``fn`` once: eagerly (warm-up, then capture for later calls) or as a replay."""
        if not self.enabled:
            self.fn()
            return
        if self.graph is not None:
            self.graph.replay()
            return
        if self._stream is None:
            self._stream = _side_stream(self.device)
        current = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(current)
        with torch.cuda.stream(self._stream):
            self.fn()
        current.wait_stream(self._stream)
        self._calls += 1
        if self._calls >= self.warmup:
            self._capture()

    def _capture(self) -> None:
        """Record ``fn`` (not run: this call's work is done) for replay by the next calls."""
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, pool=self.pool, stream=self._stream):
                self.fn()  # recorded, not executed
        except Exception as exc:  # keep training: later calls run eagerly
            self.disable(f'capture failed: {exc!r}')
            torch.cuda.synchronize(self.device)
            return
        self.graph = graph
        print(f'[runner] {self.name}: captured into a CUDA graph', flush=True)


_SIDE_STREAMS = {}


def _side_stream(device: torch.device) -> 'torch.cuda.Stream':
    """Return the one side stream per device used for warm-up and capture."""
    key = torch.device(device)
    if key not in _SIDE_STREAMS:
        _SIDE_STREAMS[key] = torch.cuda.Stream(key)
    return _SIDE_STREAMS[key]
