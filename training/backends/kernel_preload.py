"""
Compile the Warp kernels of a simulator step in parallel, before the step first runs.

Warp compiles a kernel's module the first time it is launched, one module after the other.
MuJoCo Warp builds most of its kernels at call time (specialized to the model), so on a fresh
machine the first physics step of a training run compiles some forty modules in series: about
90 s of NVRTC for the real-world config (measured on a 2-core VM; the three heightfield
collision modules alone take 50 s), inside the first training iteration.

:func:`preload_kernels` runs the step once with every Warp launch replaced by a recorder (no
kernel runs: only the Python of the step executes, creating its kernels), then
compiles the recorded modules with ``warp.force_load(max_workers=...)``, many at a time (each
for the block size its launches ask for), and
puts the simulator state back as it was (the step's clears and copies are not launches).  The
real first step then finds them compiled (and a warm kernel cache makes both passes cheap).
Warp offers no way to list the kernels a function will launch without launching them, hence
the recorder.  Control flow that depends on device data is replaced during the recording:
``wp.capture_while`` runs its body once and ``wp.capture_if`` runs both branches, so the
kernels of every branch get compiled.
"""

from concurrent.futures import ThreadPoolExecutor
import contextlib
import dataclasses
import math
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import warp as wp

__all__ = ['default_workers', 'preload_kernels', 'recorded_modules']

CUDA_DEFAULT_BLOCK_DIM = 256
"""Threads per block of a CUDA launch that names none (Warp's default)."""


@contextlib.contextmanager
def recorded_modules() -> Iterator[List[Tuple[Any, Optional[int]]]]:
    """
    Within the block, record the module of every Warp launch instead of launching it.

    Yields the list the launches' (module, block_dim) pairs are appended to, in launch order
    without repeats (``block_dim`` as the launch asked for it, None for the default: Warp
    compiles a module once per block size).  Launches of zero threads are left out (Warp
    never loads their module).  Device arrays are never read or written by the recorded
    launches, so the block must not depend on results of its own kernels (MuJoCo Warp's step
    does not, outside the control flow that this replaces).
    """
    modules: List[Tuple[Any, Optional[int]]] = []
    seen = set()
    saved: Dict[str, Any] = {name: getattr(wp, name)
                             for name in ('launch', 'launch_tiled', 'capture_while',
                                          'capture_if')}

    def record(*args: Any, **kwargs: Any) -> None:
        kernel = args[0] if args else kwargs.get('kernel')
        module = getattr(kernel, 'module', None)
        dim = args[1] if len(args) > 1 else kwargs.get('dim', 1)
        dims = tuple(dim) if isinstance(dim, (list, tuple)) else (dim,)
        if module is None or math.prod(int(d) for d in dims) == 0:
            return
        block_dim = kwargs.get('block_dim')
        block_dim = int(block_dim) if block_dim is not None and block_dim > 0 else None
        if (id(module), block_dim) not in seen:
            seen.add((id(module), block_dim))
            modules.append((module, block_dim))

    def while_once(condition: Any, while_body: Callable[..., None], stream: Any = None,
                   **kwargs: Any) -> None:
        while_body(**kwargs)

    def if_both(condition: Any, on_true: Optional[Callable[..., None]] = None,
                on_false: Optional[Callable[..., None]] = None, stream: Any = None,
                **kwargs: Any) -> None:
        for branch in (on_true, on_false):
            if callable(branch):
                branch(**kwargs)

    wp.launch, wp.launch_tiled = record, record
    wp.capture_while, wp.capture_if = while_once, if_both
    try:
        yield modules
    finally:
        for name, value in saved.items():
            setattr(wp, name, value)


def _arrays(state: Any) -> List[Tuple[Any, str, Any]]:
    """Return (holder, field name, array) of every Warp array in the dataclass tree ``state``."""
    found = []
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if isinstance(value, wp.array):
            found.append((state, f.name, value))
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            found.extend(_arrays(value))
    return found


@contextlib.contextmanager
def _restored(state: Any) -> Iterator[None]:
    """Within the block ``state``'s arrays may change; afterwards they are as before."""
    saved = [(holder, name, array, wp.clone(array)) for holder, name, array in _arrays(state)]
    try:
        yield
    finally:
        for holder, name, array, copy in saved:
            setattr(holder, name, array)
            wp.copy(array, copy)
        del saved


def default_workers() -> int:
    """Return the compile threads of this process: its CPUs over the processes of its host."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    local_processes = int(os.environ.get('LOCAL_WORLD_SIZE', '1') or 1)  # torchrun's
    return max(1, cpus // max(1, local_processes))


def preload_kernels(step: Callable[[], None], device: Any, state: Any = None,
                    max_workers: Optional[int] = None) -> int:
    """
    Compile (or load from the kernel cache) the Warp modules that ``step()`` launches.

    ``step`` runs once with its launches recorded, not executed (see
    :func:`recorded_modules`); each module is then loaded on ``device`` for each block size
    it is launched with, by up to ``max_workers`` threads (default: :func:`default_workers`).
    The step's other array operations (clears, copies) do run: pass the dataclass it works on
    (e.g. MuJoCo Warp's ``Data``) as ``state`` to have every array of it restored afterwards
    (a copy of it is held meanwhile).  Returns the number of (module, block size) pairs.  On
    a failure the modules' failed builds are forgotten (Warp would re-raise them at every
    launch) before the error propagates.  Must not run during a CUDA graph capture.
    """
    with (_restored(state) if state is not None else contextlib.nullcontext()):
        with recorded_modules() as recorded:
            step()
    device = wp.get_device(device)
    # a launch without block_dim uses Warp's default on CUDA: the same build as naming it
    default = CUDA_DEFAULT_BLOCK_DIM if device.is_cuda else None
    pairs = list(dict.fromkeys((module, default if block_dim is None else block_dim)
                               for module, block_dim in recorded))
    workers = max(1, int(max_workers if max_workers is not None else default_workers()))
    try:
        # one module and block size per task, at most ``workers`` compiling at once
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(pairs)))) as pool:
            futures = [pool.submit(wp.force_load, device=device, modules=[module],
                                   block_dim=block_dim, max_workers=0)
                       for module, block_dim in pairs]
            for future in futures:
                future.result()
    except BaseException:
        # Warp remembers a failed build and re-raises it at every launch: forget it, so
        # that the first launch compiles afresh (the failure may have been the parallelism)
        for module, _ in pairs:
            getattr(module, 'failed_builds', {}).clear()
        raise
    return len(pairs)
