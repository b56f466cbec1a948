"""
Observation and action math shared by training and deployment: one definition for both.

Every function here works on numpy arrays (the policy node, one robot) and on torch tensors
(training, thousands of robots on a GPU) alike, with any number of leading batch dimensions.
Nothing here imports ROS. Conventions:

* quaternions are ``(w, x, y, z)`` (MuJoCo order); ROS messages carry ``(x, y, z, w)`` and are
  converted with :func:`quat_xyzw_to_wxyz`;
* frames follow REP-103: x forward, y left, z up; body-frame quantities are expressed in the
  base link frame;
* units: m, s, rad, N*m.
"""

import math
import sys
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

torch = None
"""The torch module, bound by :func:`_is_torch` once a caller has imported torch.

This module never imports torch itself: the policy node runs on numpy alone and need not
have torch installed or pay for loading it; a torch tensor can only come from a caller that
imported torch."""

Array = Any
"""A numpy array or a torch tensor."""


def _is_torch(x: Array) -> bool:
    global torch
    if torch is None:
        torch = sys.modules.get('torch')
        if torch is None:
            return False
    return isinstance(x, torch.Tensor)


def _like(value: Any, ref: Array) -> Array:
    """Return ``value`` as an array of the same kind, dtype and device as ``ref``."""
    if _is_torch(ref):
        if _is_torch(value):
            return value.to(dtype=ref.dtype, device=ref.device)
        return torch.as_tensor(np.asarray(value), dtype=ref.dtype, device=ref.device)
    dtype = getattr(ref, 'dtype', None)
    if dtype is not None and getattr(value, 'dtype', None) is dtype and dtype.kind == 'f':
        return value  # already a float array of ref's dtype (the policy node's every call)
    return np.asarray(value, dtype=np.result_type(ref, np.float32))


def _stack(parts: Sequence[Array]) -> Array:
    if _is_torch(parts[0]):
        return torch.stack(list(parts), dim=-1)
    return np.stack(parts, axis=-1)


def all_finite(x: Array) -> bool:
    """Return whether every value of ``x`` is finite (numpy: one reduction in the usual case)."""
    if _is_torch(x):
        return bool(torch.isfinite(x).all())
    # A finite sum proves every value finite; only a sum that overflows needs the full check.
    return math.isfinite(np.add.reduce(x, axis=None)) or bool(np.isfinite(x).all())


def _concat(parts: Sequence[Array]) -> Array:
    if _is_torch(parts[0]):
        return torch.cat(list(parts), dim=-1)
    return np.concatenate(parts, axis=-1)


def clamp(x: Array, low: Any, high: Any) -> Array:
    """
    Return ``x`` limited to ``[low, high]`` elementwise (NaN stays NaN, as with ``np.clip``).

    numpy: ``minimum(maximum(x, low), high)``, two ufunc calls (``np.clip`` costs twice that
    for the policy node's 23-joint vectors: 2.3 against 1.0 us on the dev box).
    """
    if _is_torch(x):
        return torch.clamp(x, _like(low, x), _like(high, x))
    return np.minimum(np.maximum(x, low), high)


def _sqrt(x: Array) -> Array:
    return torch.sqrt(x) if _is_torch(x) else np.sqrt(x)


def _maximum(x: Array, floor: float) -> Array:
    return torch.clamp(x, min=floor) if _is_torch(x) else np.maximum(x, floor)


def _cross(a: Array, b: Array) -> Array:
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return _stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx])


def quat_normalize(q_wxyz: Array) -> Array:
    """Return the unit quaternion of ``q_wxyz`` (a zero quaternion maps to zero, not NaN)."""
    norm = _sqrt((q_wxyz * q_wxyz).sum(-1))
    return q_wxyz / _maximum(norm, 1e-9)[..., None]


def quat_xyzw_to_wxyz(q_xyzw: Array) -> Array:
    """Reorder a ROS ``(x, y, z, w)`` quaternion into ``(w, x, y, z)``."""
    return _stack([q_xyzw[..., 3], q_xyzw[..., 0], q_xyzw[..., 1], q_xyzw[..., 2]])


def _rotate(q_wxyz: Array, v: Array, inverse: bool) -> Array:
    q = quat_normalize(q_wxyz)
    w = q[..., 0:1]
    u = q[..., 1:4]
    v = _like(v, q)
    uv = _cross(u, v)
    if inverse:
        uv = -uv
    # v' = v + 2 w (u x v) + 2 u x (u x v); the inverse rotation flips u.
    uuv = _cross(-u if inverse else u, uv)
    return v + 2.0 * (w * uv + uuv)


def quat_rotate(q_wxyz: Array, v: Array) -> Array:
    """Rotate vectors ``v`` [..., 3] from the body frame into the world frame."""
    return _rotate(q_wxyz, v, inverse=False)


def quat_rotate_inverse(q_wxyz: Array, v: Array) -> Array:
    """Rotate vectors ``v`` [..., 3] from the world frame into the body frame."""
    return _rotate(q_wxyz, v, inverse=True)


def world_to_body(q_wxyz: Array, v_world: Array) -> Array:
    """Express a world-frame velocity (linear [m/s] or angular [rad/s]) in the body frame."""
    return quat_rotate_inverse(q_wxyz, v_world)


def projected_gravity(q_wxyz: Array) -> Array:
    """
    Return the gravity direction in the body frame (upright robot: ``[0, 0, -1]``).

    ``quat_rotate_inverse(q, [0, 0, -1])`` in closed form: minus the third row of the
    rotation matrix of the normalized ``q`` (a tenth of the numpy operations for one robot,
    and no constant to move to the device).  A zero quaternion gives zeros, not NaN.
    """
    q = quat_normalize(q_wxyz)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return _stack([2.0 * (w * y - x * z), -2.0 * (y * z + w * x),
                   (x * x + y * y) - (w * w + z * z)])


def yaw_from_quat(q_wxyz: Array) -> Array:
    """Return the heading (rotation about world z) of a quaternion [rad]."""
    q = quat_normalize(q_wxyz)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    num = 2.0 * (w * z + x * y)
    den = 1.0 - 2.0 * (y * y + z * z)
    return torch.atan2(num, den) if _is_torch(q) else np.arctan2(num, den)


def gait_phase_features(phase: Array) -> Array:
    """Return ``[sin(2*pi*phase), cos(2*pi*phase)]`` for a gait phase given in cycles."""
    angle = 2.0 * math.pi * phase
    if _is_torch(angle):
        return _stack([torch.sin(angle), torch.cos(angle)])
    return _stack([np.sin(angle), np.cos(angle)])


def observation_inputs(
    *,
    base_quat_wxyz: Array,
    base_lin_vel_body_m_s: Array,
    base_ang_vel_body_rad_s: Array,
    command: Array,
    joint_pos_rad: Array,
    default_joint_pos_rad: Array,
    joint_vel_rad_s: Array,
    last_action: Array,
    gait_phase: Optional[Array] = None,
) -> Dict[str, Array]:
    """
    Return the raw (unscaled) value of every observation term from the robot's state.

    This is the single definition of what each term means:

    * ``base_lin_vel`` [3]: base linear velocity in the body frame [m/s];
    * ``base_ang_vel`` [3]: base angular velocity in the body frame [rad/s];
    * ``projected_gravity`` [3]: gravity direction in the body frame (unit vector);
    * ``velocity_command`` [3]: commanded (vx [m/s], vy [m/s], yaw rate [rad/s]);
    * ``joint_pos`` [n]: joint positions relative to the default pose [rad];
    * ``joint_vel`` [n]: joint velocities [rad/s];
    * ``last_action`` [n]: the previous raw policy output;
    * ``gait_phase`` [2]: sin and cos of the gait clock, when a phase (in cycles) is given.
    """
    inputs = {
        'base_lin_vel': base_lin_vel_body_m_s,
        'base_ang_vel': base_ang_vel_body_rad_s,
        'projected_gravity': projected_gravity(base_quat_wxyz),
        'velocity_command': command,
        'joint_pos': joint_pos_rad - _like(default_joint_pos_rad, joint_pos_rad),
        'joint_vel': joint_vel_rad_s,
        'last_action': last_action,
    }
    if gait_phase is not None:
        inputs['gait_phase'] = gait_phase_features(gait_phase)
    return inputs


def observation_scale(terms: Sequence[Any]) -> np.ndarray:
    """Return the per-entry scale vector for a sequence of ``ObsTermSpec``."""
    return np.concatenate([np.asarray(t.scale, dtype=np.float64).reshape(t.size)
                           for t in terms])


def build_observation(
    terms: Sequence[Any],
    inputs: Mapping[str, Array],
    clip: float = 100.0,
    scale: Optional[Array] = None,
) -> Array:
    """
    Concatenate the raw term values in the contract's order, scale them and clip them.

    ``terms`` are ``ObsTermSpec`` (name, size, scale) from the policy contract; ``inputs`` maps
    each term name to its raw value [..., size] (see :func:`observation_inputs`). ``scale`` may
    pass a precomputed :func:`observation_scale` vector (already on the right device).
    """
    parts = []
    for term in terms:
        if term.name not in inputs:
            raise KeyError(f'observation term {term.name!r} has no input value')
        value = inputs[term.name]
        if value.shape[-1] != term.size:
            raise ValueError(f'observation term {term.name!r}: expected size {term.size}, '
                             f'got {value.shape[-1]}')
        parts.append(value)
    obs = _concat([_like(p, parts[0]) for p in parts])
    scale = observation_scale(terms) if scale is None else scale
    return clamp(obs * _like(scale, obs), -clip, clip)


def init_history(frame: Array, history_length: int) -> Array:
    """
    Return a history ``[..., history_length, F]`` whose every slot is ``frame`` ``[..., F]``.

    The start of the stacked observation (``observation.history_start: first_frame_repeated``):
    at the first policy step of an episode (training) or of a walk (the node) the history
    holds the first frame ``history_length`` times.
    """
    if history_length < 1:
        raise ValueError(f'history_length must be >= 1, got {history_length}')
    newest = frame[..., None, :]
    shape = tuple(frame.shape[:-1]) + (int(history_length), frame.shape[-1])
    if _is_torch(frame):
        return newest.expand(shape).clone()
    return np.array(np.broadcast_to(newest, shape))


def push_history(history: Array, frame: Array, restart: Optional[Array] = None) -> Array:
    """
    Return ``history`` ``[..., H, F]`` with ``frame`` ``[..., F]`` appended as the newest slot.

    The oldest slot is dropped (slots are oldest first). Where ``restart`` (bool ``[...]``) is
    true, every slot becomes ``frame`` instead (:func:`init_history`): a new episode or walk.
    Fixed shapes and no host reads, so a captured CUDA graph can run it.
    """
    frame = _like(frame, history)
    newest = frame[..., None, :]
    if _is_torch(history):
        shifted = torch.cat([history[..., 1:, :], newest], dim=-2)
        if restart is None:
            return shifted
        return torch.where(restart[..., None, None], newest.expand_as(history), shifted)
    shifted = np.concatenate([history[..., 1:, :], newest], axis=-2)
    if restart is None:
        return shifted
    return np.where(np.asarray(restart)[..., None, None], newest, shifted)


def flatten_history(history: Array) -> Array:
    """
    Return the policy input ``[..., H * F]`` of a history ``[..., H, F]``: frames oldest first.

    ``observation.history_layout`` ``frames_oldest_first`` (``current_only`` when H is 1):
    ``concat([frame(k - H + 1), ..., frame(k)])``, each frame the observation formula.
    """
    shape = tuple(history.shape[:-2]) + (history.shape[-2] * history.shape[-1],)
    return history.reshape(shape)


def action_to_joint_targets(
    action: Array,
    default_pos_rad: Array,
    action_scale_rad: Array,
    clip: float = 100.0,
) -> Array:
    """Map a raw policy action to joint position targets [rad]: default + scale * clip(action)."""
    action = clamp(action, -clip, clip)
    return _like(default_pos_rad, action) + _like(action_scale_rad, action) * action


def pd_effort(
    q_target_rad: Array,
    q_rad: Array,
    qd_rad_s: Array,
    kp_nm_per_rad: Array,
    kd_nms_per_rad: Array,
    effort_limit_nm: Array,
) -> Array:
    """Return the PD effort ``kp (q* - q) - kd qd`` clamped to +/- the effort limit [N*m]."""
    kp = _like(kp_nm_per_rad, q_rad)
    kd = _like(kd_nms_per_rad, q_rad)
    limit = _like(effort_limit_nm, q_rad)
    effort = kp * (q_target_rad - q_rad) - kd * qd_rad_s
    return clamp(effort, -limit, limit)
