"""
One switch for ``torch.compile`` in the training hot paths (env step, PPO minibatch loss).

The env step and the PPO loss are long chains of small elementwise torch ops: at 4096 envs
each op is a kernel of a few microseconds, and the launches, not the arithmetic, set the pace.
``torch.compile`` fuses them into a few generated kernels.  A setting is one of:

- ``'auto'``: the ``inductor`` backend on CUDA (eager, with a warning, where triton or a C
  compiler is missing), no compilation on the CPU (where the tiny tests run);
- ``'off'``: never compile;
- a ``torch.compile`` backend name (``'inductor'``, ``'aot_eager'``, ...): compile with it on
  any device (the tests use ``aot_eager`` on the CPU to run the traced code path), without
  the CUDA-graph replay that ``'auto'`` adds where a caller asks for it.
"""

import importlib.util
import shutil
from typing import Callable, Optional, TypeVar, Union
import warnings

import torch

F = TypeVar('F', bound=Callable)

COMPILE_SETTINGS_HELP = "'auto' (inductor on CUDA, off on CPU), 'off', or a torch.compile backend"


def inductor_toolchain_missing() -> Optional[str]:
    """Return what inductor on CUDA needs and this machine lacks (triton, a C compiler)."""
    if importlib.util.find_spec('triton') is None:
        return 'the triton package is not installed'
    if not any(shutil.which(cc) for cc in ('cc', 'gcc', 'clang')):
        return 'no C compiler (cc, gcc or clang) on PATH'
    return None


def compile_backend(setting: str, device: Union[str, torch.device]) -> Optional[str]:
    """
    Return the ``torch.compile`` backend that ``setting`` selects on ``device``, or None.

    Raises ValueError naming the setting when it is neither ``auto``, ``off`` nor a backend
    that this torch knows.
    """
    setting = str(setting)
    if setting == 'off':
        return None
    if setting == 'auto':
        if torch.device(device).type != 'cuda':
            return None
        missing = inductor_toolchain_missing()
        if missing is not None:
            warnings.warn(f'torch.compile is off ({missing}); the training code runs eagerly')
            return None
        return 'inductor'
    known = set(torch._dynamo.list_backends(exclude_tags=())) | {'inductor'}
    if setting not in known:
        raise ValueError(f'unknown compile setting {setting!r}: use {COMPILE_SETTINGS_HELP} '
                         f'(backends here: {", ".join(sorted(known))})')
    return setting


def maybe_compile(fn: F, setting: str, device: Union[str, torch.device],
                  cuda_graphs: bool = False) -> F:
    """
    Return ``fn`` compiled as ``setting`` selects on ``device`` (module doc), else ``fn``.

    ``cuda_graphs``: with ``'auto'`` on CUDA, also replay the compiled code as CUDA graphs
    (inductor's ``reduce-overhead`` mode), for functions whose inputs keep their addresses
    and whose outputs are consumed before the next call; callers mark each call with
    ``torch.compiler.cudagraph_mark_step_begin()``.
    """
    backend = compile_backend(setting, device)
    if backend is None:
        return fn
    if cuda_graphs and setting == 'auto':
        return torch.compile(fn, backend=backend, dynamic=False, mode='reduce-overhead')
    return torch.compile(fn, backend=backend, dynamic=False)
