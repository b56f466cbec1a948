"""
Compile the Warp kernels of a simulator step in parallel, before the step first runs.

Warp compiles a kernel's module the first time it is launched, one module after the other.
MuJoCo Warp builds most of its kernels at call time (specialized to the model), so on a fresh
machine the first physics step of a training run compiles some forty modules in series: about
90 s of NVRTC for the real-world config (measured on a 2-core VM; the three heightfield
collision modules alone take 50 s), inside the first training iteration.

:func:`preload_kernels` runs the step once with every Warp launch replaced by a recorder (no
kernel runs: only the Python of the step executes, creating its kernels), then
compiles the recorded modules with ``warp.force_load(max_workers=...)``, many at a time, and
puts the simulator state back as it was (the step's clears and copies are not launches).  The
real first step then finds them compiled (and a warm kernel cache makes both passes cheap).
Warp offers no way to list the kernels a function will launch without launching them, hence
the recorder.  Control flow that depends on device data is replaced during the recording:
``wp.capture_while`` runs its body once and ``wp.capture_if`` runs both branches, so the
kernels of every branch get compiled.
"""

import contextlib
import dataclasses
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import warp as wp

__all__ = ['preload_kernels', 'recorded_modules']


@contextlib.contextmanager
def recorded_modules() -> Iterator[List[Any]]:
    """
    Within the block, record the module of every Warp launch instead of launching it.

    Yields the list the modules are appended to (in launch order, without repeats).  Device
    arrays are never read or written by the recorded launches, so the block must not depend
    on results of its own kernels (MuJoCo Warp's step does not, outside the control flow that
    this replaces).
    """
    modules: List[Any] = []
    seen = set()
    saved: Dict[str, Any] = {name: getattr(wp, name)
                             for name in ('launch', 'launch_tiled', 'capture_while',
                                          'capture_if')}

    def record(*args: Any, **kwargs: Any) -> None:
        kernel = args[0] if args else kwargs.get('kernel')
        module = getattr(kernel, 'module', None)
        if module is not None and id(module) not in seen:
            seen.add(id(module))
            modules.append(module)

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
    """Return (owner, field name, array) of every Warp array in the dataclass tree ``state``."""
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
    saved = [(owner, name, array, wp.clone(array)) for owner, name, array in _arrays(state)]
    try:
        yield
    finally:
        for owner, name, array, copy in saved:
            setattr(owner, name, array)
            wp.copy(array, copy)
        del saved


def preload_kernels(step: Callable[[], None], device: Any, state: Any = None,
                    max_workers: Optional[int] = None) -> int:
    """
    Compile (or load from the kernel cache) the Warp modules that ``step()`` launches.

    ``step`` runs once with its launches recorded, not executed (see
    :func:`recorded_modules`); its modules are then loaded on ``device`` by up to
    ``max_workers`` threads (default: the CPU count).  The step's other array operations
    (clears, copies) do run: pass the dataclass it works on (e.g. MuJoCo Warp's ``Data``) as
    ``state`` to have every array of it restored afterwards (a copy of it is held meanwhile).
    Returns the number of modules.  Must not run during a CUDA graph capture.
    """
    with (_restored(state) if state is not None else contextlib.nullcontext()):
        with recorded_modules() as modules:
            step()
    if modules:
        workers = max_workers if max_workers is not None else (os.cpu_count() or 1)
        wp.force_load(device=device, modules=modules, max_workers=max(1, int(workers)))
    return len(modules)
