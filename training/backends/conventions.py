"""
Simulator state conventions and the pure conversions between them, shared by the backends.

The training env sees one convention (:class:`training.backends.base.SimBackend`): base
quaternion ``wxyz``, base linear velocity in the WORLD frame, base angular velocity in the
BODY frame (MuJoCo's free-joint ``qvel``), joints in POLICY order (``robot.joint_names``),
positions relative to the world's own origin.

Isaac Gym's tensor API differs on every point:

- actor root state ``[num_actors, 13]``: position [m] in the SIM frame (the env's grid origin
  added), quaternion ``xyzw``, linear velocity [m/s] and angular velocity [rad/s], both in
  the WORLD frame (see :data:`ROOT_POS` ... :data:`ROOT_ANG_VEL_WORLD`); rigid body states
  use the same 13-wide layout;
- DOF state ``[num_dofs_total, 2]``: (position, velocity) per DOF, the DOFs of one actor in
  the asset's order (depth-first over the kinematic tree), not the policy's;
- one actor per env here, so an env's index is its actor's index in the ``*_indexed`` calls
  (int32 index tensors).

Everything here is a pure function of its arguments (torch tensors unless noted; a few are
plain Python), tested with hand-computed numbers without any simulator.  Facts that the policy
node shares (quaternion order of ROS messages, world/body rotation) come from
:mod:`humanoid_rl_ros.core.policy_math` and are re-exported, not re-implemented.
"""

import math
from typing import List, NamedTuple, Sequence, Tuple

from humanoid_rl_ros.core.policy_math import (quat_normalize, quat_rotate, quat_xyzw_to_wxyz,
                                              world_to_body)
import torch

__all__ = ['BaseState', 'DOF_POS', 'DOF_STATE_WIDTH', 'DOF_VEL', 'ROOT_ANG_VEL_WORLD',
           'ROOT_LIN_VEL_WORLD', 'ROOT_POS', 'ROOT_QUAT_XYZW', 'ROOT_STATE_WIDTH',
           'base_mass_kg', 'base_state_from_root', 'body_to_world', 'check_mask',
           'dof_state_views', 'mask_to_actor_indices', 'masked_column_write_', 'masked_copy_',
           'masked_updates', 'name_order', 'quat_wxyz_to_xyzw', 'quat_xyzw_to_wxyz',
           'root_from_base_state', 'world_to_body']

ROOT_STATE_WIDTH = 13
"""Width of an Isaac Gym actor root (or rigid body) state row."""
ROOT_POS = slice(0, 3)
"""Position [m], sim frame (env origin included)."""
ROOT_QUAT_XYZW = slice(3, 7)
"""Orientation quaternion, ``xyzw``."""
ROOT_LIN_VEL_WORLD = slice(7, 10)
"""Linear velocity [m/s], world frame."""
ROOT_ANG_VEL_WORLD = slice(10, 13)
"""Angular velocity [rad/s], world frame."""

DOF_STATE_WIDTH = 2
"""Width of an Isaac Gym DOF state row: (position, velocity)."""
DOF_POS = 0
"""Column of the DOF position [rad] in a DOF state row."""
DOF_VEL = 1
"""Column of the DOF velocity [rad/s] in a DOF state row."""


class BaseState(NamedTuple):
    """The floating base in the training env's convention (each field [N, ...])."""

    pos: torch.Tensor
    """[N, 3] position relative to the env's origin [m]."""
    quat_wxyz: torch.Tensor
    """[N, 4] orientation, ``wxyz``."""
    lin_vel_world: torch.Tensor
    """[N, 3] linear velocity, world frame [m/s]."""
    ang_vel_body: torch.Tensor
    """[N, 3] angular velocity, body frame [rad/s]."""


# ---- quaternions and frames ----

def quat_wxyz_to_xyzw(q_wxyz: torch.Tensor) -> torch.Tensor:
    """Reorder ``(w, x, y, z)`` quaternions [..., 4] into ``(x, y, z, w)``."""
    return torch.cat([q_wxyz[..., 1:4], q_wxyz[..., 0:1]], dim=-1)


def body_to_world(q_wxyz: torch.Tensor, v_body: torch.Tensor) -> torch.Tensor:
    """Express body-frame vectors [..., 3] (e.g. an angular velocity) in the world frame."""
    return quat_rotate(q_wxyz, v_body)


# ---- Isaac Gym root state <-> base state ----

def base_state_from_root(root: torch.Tensor, origins: torch.Tensor) -> BaseState:
    """
    Convert Isaac Gym root states ``[N, 13]`` into the env's base state.

    ``origins`` [N, 3] are the envs' origins in the sim frame [m] (``gym.get_env_origin``);
    they are subtracted from the positions.  The angular velocity is rotated into the body
    frame by the (normalized) root quaternion; the linear velocity stays in the world frame.
    """
    _check_width('root', root, ROOT_STATE_WIDTH)
    quat = quat_xyzw_to_wxyz(root[:, ROOT_QUAT_XYZW])
    return BaseState(pos=root[:, ROOT_POS] - origins, quat_wxyz=quat,
                     lin_vel_world=root[:, ROOT_LIN_VEL_WORLD].clone(),
                     ang_vel_body=world_to_body(quat, root[:, ROOT_ANG_VEL_WORLD]))


def root_from_base_state(pos: torch.Tensor, quat_wxyz: torch.Tensor,
                         lin_vel_world: torch.Tensor, ang_vel_body: torch.Tensor,
                         origins: torch.Tensor) -> torch.Tensor:
    """
    Return Isaac Gym root states ``[N, 13]`` for a base state in the env's convention.

    The inverse of :func:`base_state_from_root`: the env origins [N, 3] are added to ``pos``,
    ``quat_wxyz`` is normalized (a zero quaternion stays zero) and reordered to ``xyzw``,
    and ``ang_vel_body`` is rotated into the world frame.
    """
    quat = quat_normalize(quat_wxyz)
    return torch.cat([pos + origins, quat_wxyz_to_xyzw(quat), lin_vel_world,
                      body_to_world(quat, ang_vel_body)], dim=-1)


# ---- DOF order and DOF state ----

def name_order(available: Sequence[str], wanted: Sequence[str], what: str) -> List[int]:
    """
    Return the index in ``available`` of each name of ``wanted`` (plain Python).

    E.g. the asset's DOF index of each policy joint: ``values_policy = values_dof[:, idx]``
    and ``values_dof[:, idx] = values_policy``.  Raise ValueError naming every missing name
    (``what`` says what they are, e.g. ``'joints'``) and the available ones; raise it too for
    a name listed twice in ``wanted`` or present twice in ``available``.
    """
    available, wanted = list(available), list(wanted)
    missing = [name for name in wanted if name not in available]
    if missing:
        raise ValueError(f'{what} not found: {missing}; the simulator has {available}')
    repeated = sorted({name for name in wanted if wanted.count(name) > 1})
    repeated += sorted({name for name in wanted if available.count(name) > 1})
    if repeated:
        raise ValueError(f'{what} named more than once: {repeated}')
    return [available.index(name) for name in wanted]


def dof_state_views(dof_state: torch.Tensor, num_envs: int
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Return ``(pos, vel)`` views [N, D] of an Isaac Gym DOF state tensor [N * D, 2].

    The views share memory with ``dof_state`` (writes go through), in the asset's DOF order.
    """
    _check_width('dof_state', dof_state, DOF_STATE_WIDTH)
    if dof_state.shape[0] % num_envs:
        raise ValueError(f'dof_state has {dof_state.shape[0]} rows, not a multiple of '
                         f'{num_envs} envs')
    per_env = dof_state.view(num_envs, -1, DOF_STATE_WIDTH)
    return per_env[..., DOF_POS], per_env[..., DOF_VEL]


# ---- masked writes and index bookkeeping ----

def check_mask(mask: torch.Tensor, num_envs: int, device: torch.device) -> torch.Tensor:
    """Return ``mask`` as a bool [num_envs] tensor on ``device`` or raise ValueError."""
    m = torch.as_tensor(mask, device=device)
    if m.dtype != torch.bool or m.shape != (num_envs,):
        raise ValueError(f'mask must be a bool tensor of shape ({num_envs},), got {m.dtype} '
                         f'{tuple(m.shape)}')
    return m


def masked_copy_(dst: torch.Tensor, mask: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """
    Copy the rows of ``src`` where ``mask`` (bool [N]) is True into ``dst`` [N, ...], in place.

    Other rows of ``dst`` keep their values exactly.  Fixed shapes, no host sync.  Returns
    ``dst``.
    """
    m = mask.view((mask.shape[0],) + (1,) * (dst.dim() - 1))
    return dst.copy_(torch.where(m, src, dst))


def masked_column_write_(dst: torch.Tensor, columns: torch.Tensor, mask: torch.Tensor,
                         values: torch.Tensor) -> torch.Tensor:
    """
    Write ``values`` [N, J] into columns ``columns`` (int64 [J]) of ``dst`` [N, D], masked rows.

    ``dst[i, columns[j]] = values[i, j]`` where ``mask[i]``; every other entry is unchanged
    (e.g. policy-order joint positions into the asset's DOF order).  ``dst`` may be a
    strided view (writes go through).  Returns ``dst``.
    """
    old = dst.index_select(1, columns)
    dst.index_copy_(1, columns, torch.where(mask[:, None], values, old))
    return dst


def mask_to_actor_indices(mask: torch.Tensor) -> torch.Tensor:
    """
    Return the actor indices (int32 [K], ascending) of the envs where ``mask`` is True.

    With one actor per env, created in env order, env ``i``'s actor has global index ``i``:
    the index tensor of ``set_actor_root_state_tensor_indexed`` and
    ``set_dof_state_tensor_indexed``.  One host sync (the count K).
    """
    return mask.nonzero(as_tuple=False).flatten().to(torch.int32)


def masked_updates(mask: torch.Tensor, values: torch.Tensor) -> List[Tuple[int, float]]:
    """
    Return ``[(env index, value), ...]`` for the envs where ``mask`` [N] is True (host lists).

    The per-env work list of a randomization that the simulator only takes through a host
    loop over envs (Isaac Gym's rigid shape and body properties).  ``values`` is [N].
    """
    if values.shape != mask.shape:
        raise ValueError(f'values must have the mask shape {tuple(mask.shape)}, got '
                         f'{tuple(values.shape)}')
    ids = mask.nonzero(as_tuple=False).flatten()
    return list(zip(ids.tolist(), values[ids].tolist()))


def base_mass_kg(nominal_kg: float, delta_kg: float) -> float:
    """Return the randomized base mass ``nominal + delta`` [kg]; ValueError unless finite > 0."""
    mass = float(nominal_kg) + float(delta_kg)
    if not (math.isfinite(mass) and mass > 0.0):
        raise ValueError(f'base mass {nominal_kg} + {delta_kg} kg must be finite and > 0')
    return mass


def _check_width(name: str, t: torch.Tensor, width: int) -> None:
    if t.dim() != 2 or t.shape[1] != width:
        raise ValueError(f'{name} must have shape [rows, {width}], got {tuple(t.shape)}')
