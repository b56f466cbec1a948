"""
Physics backends for training: one :class:`SimBackend` interface, several simulators.

``make_backend('mjwarp', robot, num_envs, device)`` (MuJoCo Warp, the default) or
``make_backend('isaacgym', ...)`` (Isaac Gym's tensor API, where ``isaacgym`` imports).
Simulator packages are imported only when their backend is made.
"""

from typing import Any

from training.backends.base import (BackendUnavailableError, raise_if_overflow, SimBackend,
                                    SimOverflowError)

BACKENDS = ('mjwarp', 'isaacgym')
"""Valid backend names; the first is the default."""

DEFAULT_BACKEND = BACKENDS[0]

__all__ = ['BACKENDS', 'DEFAULT_BACKEND', 'BackendUnavailableError', 'SimBackend',
           'SimOverflowError', 'make_backend', 'raise_if_overflow']


def make_backend(name: str, robot: Any, num_envs: int, device: Any, **kw: Any) -> SimBackend:
    """
    Create the backend ``name`` for ``num_envs`` worlds of ``robot`` on ``device``.

    Extra keyword arguments go to the backend's constructor (e.g. ``physics_dt_s``,
    ``nconmax``, ``njmax`` for mjwarp).  Raises ValueError for an unknown name (listing the
    valid ones) and :class:`BackendUnavailableError` when the simulator is not installed.
    """
    key = str(name).strip().lower()
    if key == 'mjwarp':
        try:
            from training.backends.mjwarp import MjWarpBackend
        except ImportError as exc:
            raise BackendUnavailableError(
                f'backend "mjwarp" needs mujoco and mujoco-warp installed: {exc}') from exc
        return MjWarpBackend(robot, num_envs, device=device, **kw)
    if key == 'isaacgym':
        from training.backends.isaacgym import IsaacGymBackend
        return IsaacGymBackend(robot, num_envs, device=device, **kw)
    raise ValueError(f'unknown backend {name!r}; valid backends: {", ".join(BACKENDS)}')
