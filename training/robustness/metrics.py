"""
Metrics of an episode trace, shared by the evaluator and the robustness suite.

Pure functions on arrays (no simulator), each tested on hand-made traces:

* tracking (:func:`tracking_errors`): mean absolute errors of the base velocity against the
  command after a rise time, on the velocity averaged over one gait period (walking speed is a
  per-stride quantity: the pelvis speeds up and slows down within a stride), and on the raw
  samples (``*_instant_*``); ``planar_drift_m_s`` is the base's planar displacement over that
  window divided by its duration;
* :func:`rise_time_s`: time from the command's start until the gait-averaged speed along the
  command reaches a share of it;
* :func:`torque_limit_share`: share of samples with a joint's effort at its limit, per joint group
  (:func:`joint_groups`: legs, ankles, torso, arms, from the joint names);
* :func:`action_rate_rad_s`: mean absolute rate of change of the policy's joint targets;
* :func:`count_liftoffs`: foot lift-offs (a foot in contact that leaves the ground for at least
  ``min_air_samples`` samples);
* :func:`cost_of_transport`: mechanical energy per weight and distance;
* :func:`aggregate`: means (maxima for peak values) over runs.
"""

import math
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ['action_rate_rad_s', 'aggregate', 'cost_of_transport', 'count_liftoffs',
           'episode_metrics', 'GRAVITY_M_S2', 'joint_groups', 'moving_average', 'rise_time_s',
           'TORQUE_LIMIT_FRACTION', 'torque_limit_share', 'tracking_errors']

GRAVITY_M_S2 = 9.81
"""Gravity for the cost of transport [m/s^2]."""
TORQUE_LIMIT_FRACTION = 0.99
"""An effort at or above this share of its limit counts as at the limit."""
MIN_AIR_S = 0.04
"""A foot must be off the ground this long for a lift-off to count [s] (contact chatter of a
resting foot lasts a tick or two)."""
MIN_COT_SPEED_M_S = 0.1
"""Below this mean planar speed the cost of transport is not defined (NaN)."""
MIN_COT_COMMAND_M_S = 0.2
"""Only commands at least this fast (planar) get a cost of transport [m/s] (not standing or
turning in place)."""
RISE_SHARE = 0.5
""":func:`rise_time_s` measures the time to this share of the commanded speed."""
MIN_RISE_COMMAND_M_S = 0.2
"""Commands slower than this get no rise time (NaN) [m/s]."""
JOINT_GROUP_KEYS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ('ankles', ('ankle',)),
    ('legs', ('hip', 'knee', 'leg')),
    ('torso', ('torso', 'waist', 'spine', 'trunk')),
    ('arms', ('shoulder', 'elbow', 'wrist', 'arm')),
)
"""Joint groups and the words of joint names that put a joint in them (first match wins:
ankle joints are their own group, not legs); other joints go to ``other``."""
MAX_KEYS = frozenset({'effort_share_max', 'peak_joint_speed_ratio', 'rise_time_s'})
"""Metrics that :func:`aggregate` takes the maximum of (all others: the mean)."""


def joint_groups(joint_names: Sequence[str]) -> Dict[str, Tuple[int, ...]]:
    """Return the joint indices of each non-empty group of :data:`JOINT_GROUP_KEYS`."""
    groups: Dict[str, list] = {name: [] for name, _ in JOINT_GROUP_KEYS}
    groups['other'] = []
    for index, joint in enumerate(joint_names):
        lower = joint.lower()
        group = next((name for name, words in JOINT_GROUP_KEYS
                      if any(word in lower for word in words)), 'other')
        groups[group].append(index)
    return {name: tuple(idx) for name, idx in groups.items() if idx}


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Return the centred moving average of ``x`` over ``window`` samples (edges: raw values)."""
    if window <= 1 or len(x) < window:
        return x
    kernel = np.ones(window) / window
    out = np.convolve(x, kernel, mode='same')
    half = window // 2
    out[:half] = x[:half]
    out[-half:] = x[-half:]
    return out


def tracking_errors(trace: Mapping[str, np.ndarray], mask: np.ndarray,
                    window: int) -> Dict[str, float]:
    """
    Return the velocity tracking errors and the drift over the samples where ``mask`` is true.

    ``trace`` holds ``t`` [s], body-frame ``vx``, ``vy`` [m/s] and ``wz`` [rad/s], the command
    ``cvx``, ``cvy``, ``cwz`` and the base position ``x``, ``y`` [m]; ``window`` is one gait
    period in samples. Keys: ``vx_mae_m_s``, ``vy_mae_m_s``, ``yaw_rate_mae_rad_s`` (on the
    gait-averaged velocity), ``lin_vel_error_m_s`` (mean planar norm of the vx and vy errors),
    the ``*_instant_*`` versions on raw samples (``lin_vel_error_instant_m_s`` is the norm of the
    two instant errors) and ``planar_drift_m_s``. All NaN without samples.
    """
    keys = ('vx_mae_m_s', 'vy_mae_m_s', 'yaw_rate_mae_rad_s', 'lin_vel_error_m_s',
            'vx_mae_instant_m_s', 'vy_mae_instant_m_s', 'yaw_rate_mae_instant_rad_s',
            'lin_vel_error_instant_m_s', 'planar_drift_m_s')
    if not np.any(mask):
        return {k: float('nan') for k in keys}
    avg = {k: moving_average(np.asarray(trace[k]), window) for k in ('vx', 'vy', 'wz')}
    ex = np.abs(avg['vx'] - trace['cvx'])[mask]
    ey = np.abs(avg['vy'] - trace['cvy'])[mask]
    ew = np.abs(avg['wz'] - trace['cwz'])[mask]
    t = np.asarray(trace['t'])[mask]
    x, y = np.asarray(trace['x'])[mask], np.asarray(trace['y'])[mask]
    duration = t[-1] - t[0]
    ivx = float(np.abs(trace['vx'] - trace['cvx'])[mask].mean())
    ivy = float(np.abs(trace['vy'] - trace['cvy'])[mask].mean())
    return {
        'vx_mae_m_s': float(ex.mean()), 'vy_mae_m_s': float(ey.mean()),
        'yaw_rate_mae_rad_s': float(ew.mean()),
        'lin_vel_error_m_s': float(np.hypot(ex, ey).mean()),
        'vx_mae_instant_m_s': ivx, 'vy_mae_instant_m_s': ivy,
        'yaw_rate_mae_instant_rad_s': float(np.abs(trace['wz'] - trace['cwz'])[mask].mean()),
        'lin_vel_error_instant_m_s': math.hypot(ivx, ivy),
        'planar_drift_m_s': (math.hypot(x[-1] - x[0], y[-1] - y[0]) / duration
                             if duration > 0 else float('nan')),
    }


def rise_time_s(t: np.ndarray, vx_avg: np.ndarray, vy_avg: np.ndarray,
                command: Tuple[float, float], start_s: float,
                share: float = RISE_SHARE) -> float:
    """
    Return the time from ``start_s`` until the speed along the command reaches its ``share``.

    ``vx_avg``/``vy_avg`` are the gait-averaged body-frame velocities [m/s] at times ``t``;
    ``command`` is (vx, vy) [m/s]. NaN for a command slower than :data:`MIN_RISE_COMMAND_M_S`
    and inf if the speed never gets there.
    """
    speed = math.hypot(*command)
    if speed < MIN_RISE_COMMAND_M_S:
        return float('nan')
    along = (vx_avg * command[0] + vy_avg * command[1]) / speed
    reached = np.flatnonzero((t >= start_s) & (along >= share * speed))
    return float(t[reached[0]] - start_s) if len(reached) else float('inf')


def torque_limit_share(effort_ratio: np.ndarray, groups: Mapping[str, Sequence[int]],
                       fraction: float = TORQUE_LIMIT_FRACTION) -> Dict[str, float]:
    """
    Return, per joint group, the share of (sample, joint) pairs with the effort at its limit.

    ``effort_ratio`` [T, joints] is |effort| / limit; at the limit means >= ``fraction``.
    """
    ratio = np.asarray(effort_ratio)
    out = {}
    for name, idx in groups.items():
        part = ratio[:, list(idx)]
        out[name] = float(np.mean(part >= fraction)) if part.size else float('nan')
    return out


def action_rate_rad_s(q_target_rad: np.ndarray, dt_s: float) -> float:
    """Return the mean |change| of the joint targets [T, joints] between samples, per second."""
    q = np.asarray(q_target_rad)
    if len(q) < 2:
        return float('nan')
    return float(np.mean(np.abs(np.diff(q, axis=0))) / dt_s)


def count_liftoffs(contact: np.ndarray, min_air_samples: int) -> int:
    """
    Return how often a foot in contact left the ground for at least ``min_air_samples`` samples.

    ``contact`` [T, feet] is 1 in contact, 0 in the air. A foot that starts in the air counts
    only once it has touched down and lifted again.
    """
    count = 0
    for column in np.asarray(contact, dtype=bool).T:
        down, air = False, 0
        for in_contact in column:
            if in_contact:
                down, air = True, 0
            elif down:
                air += 1
                if air >= min_air_samples:
                    count += 1
                    down = False
    return count


def cost_of_transport(mean_power_w: float, mass_kg: float, speed_m_s: float,
                      gravity_m_s2: float = GRAVITY_M_S2) -> float:
    """
    Return the mechanical cost of transport P / (m g v) [-].

    NaN when the speed is below :data:`MIN_COT_SPEED_M_S` or the mass is unknown.
    """
    if not (speed_m_s >= MIN_COT_SPEED_M_S and mass_kg > 0.0):
        return float('nan')
    return float(mean_power_w / (mass_kg * gravity_m_s2 * speed_m_s))


def _finite_mean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float('nan')


def episode_metrics(trace: Mapping[str, np.ndarray], *, start_walk_s: float, rise_s: float,
                    command: Tuple[float, float, float], sample_dt_s: float,
                    gait_period_s: Optional[float], joint_names: Sequence[str],
                    total_mass_kg: float = float('nan'), fell: bool = False,
                    slope_rad: float = 0.0, slope_start_x_m: float = -math.inf
                    ) -> Dict[str, Any]:
    """
    Return every metric of one episode's trace (``Episode.trace`` of the episode loop).

    Tracking, drift, foot lift-offs and the cost of transport use the samples from
    ``start_walk_s + rise_s`` on; efforts, foot slip, joint speeds and the action rate the
    whole trace. A fallen episode has NaN tracking errors. Keys: those of
    :func:`tracking_errors`; ``effort_share_mean``/``_max`` (mean |effort| / limit over joints,
    its mean and largest sample); ``foot_slip_m_s`` (mean horizontal speed of feet in contact);
    ``torque_limit_share_<group>``; ``action_rate_rad_s``; ``peak_joint_speed_ratio`` (largest
    |joint speed| / URDF velocity limit) and ``peak_joint_speed_joint``; ``steps_per_10s`` (foot
    lift-offs); ``mean_power_w``; ``cost_of_transport`` (for planar commands of at least
    :data:`MIN_COT_COMMAND_M_S`; distance = the path through base positions one gait period
    apart); ``rise_time_s`` (:func:`rise_time_s`);
    with a slope ``along_slope_speed_m_s``: the world velocity along the ground in the +x
    direction (tilted by ``slope_rad`` where the base is at x >= ``slope_start_x_m``, flat
    before), mean over the measured samples: the progress up or down the slope.
    """
    t = np.asarray(trace['t'])
    window = max(1, int(round((gait_period_s or 0.8) / sample_dt_s)))
    mask = t >= start_walk_s + rise_s
    if fell:
        out: Dict[str, Any] = tracking_errors(trace, np.zeros_like(mask), window)
    else:
        out = tracking_errors(trace, mask, window)
    share = np.asarray(trace['effort_share'])
    out['effort_share_mean'] = float(share.mean()) if len(share) else float('nan')
    out['effort_share_max'] = float(share.max()) if len(share) else float('nan')
    out['foot_slip_m_s'] = _finite_mean(trace['slip'])
    groups = joint_groups(joint_names)
    for name, value in torque_limit_share(trace['effort_ratio'], groups).items():
        out[f'torque_limit_share_{name}'] = value
    out['action_rate_rad_s'] = action_rate_rad_s(trace['q_target'], sample_dt_s)
    speed = np.asarray(trace['speed_ratio'])
    if speed.size:
        joint = int(np.argmax(speed.max(axis=0)))
        out['peak_joint_speed_ratio'] = float(speed.max())
        out['peak_joint_speed_joint'] = str(joint_names[joint])
    else:
        out['peak_joint_speed_ratio'] = float('nan')
        out['peak_joint_speed_joint'] = ''
    nan = float('nan')
    out.update(steps_per_10s=nan, mean_power_w=nan, cost_of_transport=nan, rise_time_s=nan)
    if mask.any() and not fell:
        tw = t[mask]
        duration = tw[-1] - tw[0] + sample_dt_s
        min_air = max(1, int(math.ceil(MIN_AIR_S / sample_dt_s - 1e-9)))
        out['steps_per_10s'] = count_liftoffs(np.asarray(trace['contact'])[mask],
                                              min_air) * 10.0 / duration
        power = _finite_mean(np.asarray(trace['power_w'])[mask])
        out['mean_power_w'] = power
        if math.hypot(command[0], command[1]) >= MIN_COT_COMMAND_M_S:
            # distance: the path through the base positions one gait period apart (the
            # sway within a stride left out, a curved walk counted in full)
            x, y = np.asarray(trace['x'])[mask], np.asarray(trace['y'])[mask]
            idx = np.unique(np.append(np.arange(0, len(x), window), len(x) - 1))
            distance = float(np.hypot(np.diff(x[idx]), np.diff(y[idx])).sum())
            speed = distance / max(tw[-1] - tw[0], 1e-9)
            out['cost_of_transport'] = cost_of_transport(power, total_mass_kg, speed)
    if not fell:
        out['rise_time_s'] = rise_time_s(t, moving_average(np.asarray(trace['vx']), window),
                                         moving_average(np.asarray(trace['vy']), window),
                                         (command[0], command[1]), start_walk_s)
    if slope_rad != 0.0:
        vwx, vwz = np.asarray(trace['vwx']), np.asarray(trace['vwz'])
        on_slope = np.asarray(trace['x']) >= slope_start_x_m
        along = np.where(on_slope, vwx * math.cos(slope_rad) + vwz * math.sin(slope_rad), vwx)
        out['along_slope_speed_m_s'] = (float(along[mask].mean()) if mask.any() and not fell
                                        else nan)
    return out


def aggregate(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> Dict[str, float]:
    """
    Return, for each key, the mean of the rows' finite values (the maximum for :data:`MAX_KEYS`).

    For :data:`MAX_KEYS` an infinite value (e.g. a speed never reached) is kept as the worst.
    NaN for a key without a value (e.g. no rows).
    """
    out = {}
    for key in keys:
        values = np.asarray([row.get(key, math.nan) for row in rows], dtype=np.float64)
        if key in MAX_KEYS:
            values = values[~np.isnan(values)]  # inf (never reached) is the worst value
            out[key] = float(values.max()) if len(values) else float('nan')
        else:
            values = values[np.isfinite(values)]
            out[key] = float(values.mean()) if len(values) else float('nan')
    return out
