"""
The walking demo's scripted velocity commands and its metrics (pure: no ROS imports).

A scenario is a list of :class:`Segment` (name, duration, body-frame command), played back
as Nav2's controller would send ``cmd_vel``: forward, turn, sideways, stop. Time ``t_s`` is
measured from the scenario start (the demo maps sim time onto it).

The metrics are computed from logged arrays (one sample per received odometry message):

* distance: the xy path length and the straight-line displacement [m];
* per segment: the mean absolute tracking error of body-frame vx, vy [m/s] and yaw rate
  [rad/s] against the command, over the samples after ``rise_time_s`` into the segment
  (the robot needs time to reach a new command; the first samples are not an error);
* falls: the number of times the base drops below a height or tilts past an angle.

:func:`plot_demo` draws commanded vs measured velocity and the top-down trajectory with
matplotlib's Agg backend (no display needed).
"""

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from humanoid_rl_ros.core.policy_math import projected_gravity
import numpy as np


@dataclass(frozen=True)
class Segment:
    """One constant velocity command held for a duration (REP-103 body frame)."""

    name: str
    """Label shown in the summary and the plot."""
    duration_s: float
    """How long the command is held [s]."""
    vx_m_s: float = 0.0
    """Forward velocity command [m/s]."""
    vy_m_s: float = 0.0
    """Leftward velocity command [m/s]."""
    wz_rad_s: float = 0.0
    """Yaw rate command, counter-clockwise positive [rad/s]."""

    def command(self) -> Tuple[float, float, float]:
        """Return the command as ``(vx [m/s], vy [m/s], wz [rad/s])``."""
        return (self.vx_m_s, self.vy_m_s, self.wz_rad_s)


DEFAULT_SCENARIO: Tuple[Segment, ...] = (
    Segment('stand', 2.0),
    Segment('forward', 4.0, vx_m_s=0.5),
    Segment('turn', 4.0, wz_rad_s=0.5),
    Segment('sideways', 4.0, vy_m_s=0.3),
    Segment('stop', 4.0),
)
"""Forward, turn in place, sideways, stop (long enough for the idle stand to start); 18 s of
sim time. Values lie inside the usual
trained ranges (vx, vy within +-0.5 m/s and yaw within +-0.5 rad/s, as in mjlab's G1 flat task)."""


def validate_segments(segments: Sequence[Segment]) -> None:
    """Raise ``ValueError`` naming the first bad segment (empty, non-finite or non-positive)."""
    if len(segments) == 0:
        raise ValueError('scenario: needs at least one segment')
    for i, seg in enumerate(segments):
        if not seg.name:
            raise ValueError(f'scenario segment {i}: empty name')
        if not (math.isfinite(seg.duration_s) and seg.duration_s > 0.0):
            raise ValueError(f'scenario segment {i} ({seg.name}): duration_s must be finite '
                             f'and > 0, got {seg.duration_s}')
        for field_name, value in zip(('vx_m_s', 'vy_m_s', 'wz_rad_s'), seg.command()):
            if not math.isfinite(value):
                raise ValueError(f'scenario segment {i} ({seg.name}): {field_name} is {value}')


def scenario_duration_s(segments: Sequence[Segment]) -> float:
    """Return the total duration of a scenario [s]."""
    return float(sum(seg.duration_s for seg in segments))


def segment_bounds_s(segments: Sequence[Segment]) -> Tuple[Tuple[float, float], ...]:
    """Return each segment's ``(start_s, end_s)`` on the scenario clock."""
    bounds = []
    start = 0.0
    for seg in segments:
        bounds.append((start, start + seg.duration_s))
        start += seg.duration_s
    return tuple(bounds)


def segment_index_at(segments: Sequence[Segment], t_s: float) -> Optional[int]:
    """
    Return the index of the segment active at ``t_s``, or None before 0 or after the end.

    A segment covers ``[start, end)``; the boundary instant belongs to the next segment.
    """
    if t_s < 0.0:
        return None
    for i, (_, end) in enumerate(segment_bounds_s(segments)):
        if t_s < end:
            return i
    return None


def command_at(segments: Sequence[Segment], t_s: float) -> Tuple[float, float, float]:
    """Return the ``(vx, vy, wz)`` command at ``t_s``; zero before the start and after the end."""
    index = segment_index_at(segments, t_s)
    if index is None:
        return (0.0, 0.0, 0.0)
    return segments[index].command()


def commands_at(segments: Sequence[Segment], t_s: np.ndarray) -> np.ndarray:
    """Return the commands at every time in ``t_s`` as an array [N, 3] (vx, vy, wz)."""
    return np.array([command_at(segments, float(t)) for t in np.asarray(t_s).ravel()],
                    dtype=float).reshape(-1, 3)


def parse_time_ns(text: str) -> Optional[int]:
    """
    Return decimal seconds ``'12.345000000'`` as integer nanoseconds; None for ''.

    Exact (no float rounding): the policy node's ``state_since_s`` diagnostic is written this
    way, and the demo maps sim time onto scenario time with it. Raise ``ValueError`` naming
    the text when it is not a decimal number of seconds.
    """
    text = text.strip()
    if not text:
        return None
    sign = -1 if text.startswith('-') else 1
    body = text.lstrip('+-')
    sec, _, frac = body.partition('.')
    if not (sec.isdigit() and (frac == '' or frac.isdigit())) or len(frac) > 9:
        raise ValueError(f'not a time in decimal seconds (at most 9 decimals): {text!r}')
    return sign * (int(sec) * 1_000_000_000 + int(frac.ljust(9, '0')))


@dataclass
class DemoLog:
    """Logged ground truth, one row per sample (from ``/odom``)."""

    t_s: np.ndarray
    """Scenario time of each sample [s], shape [N]."""
    pos_m: np.ndarray
    """Base position in the odom frame [m], shape [N, 3]."""
    quat_wxyz: np.ndarray
    """Base orientation in the odom frame, shape [N, 4] (w, x, y, z)."""
    body_vel: np.ndarray
    """Measured body-frame (vx [m/s], vy [m/s], wz [rad/s]), shape [N, 3]."""

    def __post_init__(self) -> None:
        """Convert to float arrays and check the shapes agree."""
        self.t_s = np.asarray(self.t_s, dtype=float).reshape(-1)
        n = self.t_s.shape[0]
        self.pos_m = np.asarray(self.pos_m, dtype=float).reshape(n, 3)
        self.quat_wxyz = np.asarray(self.quat_wxyz, dtype=float).reshape(n, 4)
        self.body_vel = np.asarray(self.body_vel, dtype=float).reshape(n, 3)


@dataclass(frozen=True)
class SegmentMetrics:
    """Tracking of one segment's command."""

    name: str
    """Segment name."""
    command: Tuple[float, float, float]
    """Commanded (vx [m/s], vy [m/s], wz [rad/s])."""
    mean_measured: Tuple[float, float, float]
    """Mean measured body-frame (vx, vy, wz) over the scored samples."""
    mean_abs_error: Tuple[float, float, float]
    """Mean absolute error of (vx [m/s], vy [m/s], wz [rad/s]); NaN without scored samples."""
    num_samples: int
    """Samples scored (after the rise time, before the segment ends)."""


@dataclass(frozen=True)
class DemoMetrics:
    """Summary of a demo run."""

    path_length_m: float
    """Length of the xy path travelled [m]."""
    displacement_m: float
    """Straight-line xy distance from the first to the last sample [m]."""
    segments: Tuple[SegmentMetrics, ...]
    """Per-segment tracking, in scenario order."""
    falls: int
    """Number of times the robot went from upright to fallen."""
    first_fall_t_s: Optional[float]
    """Scenario time of the first fall [s], or None."""
    duration_s: float
    """Scenario time covered by the log [s]."""


def tilt_rad(quat_wxyz: np.ndarray) -> np.ndarray:
    """Return the angle between the base's z axis and world up [rad] for quats [..., 4]."""
    q = np.asarray(quat_wxyz, dtype=float)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    g_z = projected_gravity(q)[..., 2]
    return np.arccos(np.clip(-g_z, -1.0, 1.0))


def fallen_mask(pos_m: np.ndarray, quat_wxyz: np.ndarray, fall_height_m: float,
                fall_tilt_rad: float) -> np.ndarray:
    """Return, per sample, whether the base is below ``fall_height_m`` or tilted past the limit."""
    height = np.asarray(pos_m, dtype=float)[..., 2]
    return (height < fall_height_m) | (tilt_rad(quat_wxyz) > fall_tilt_rad)


def count_falls(fallen: np.ndarray) -> int:
    """Return the number of upright->fallen transitions (a run starting fallen counts one)."""
    f = np.asarray(fallen, dtype=bool).reshape(-1)
    if f.size == 0:
        return 0
    return int(f[0]) + int(np.count_nonzero(f[1:] & ~f[:-1]))


def compute_metrics(log: DemoLog, segments: Sequence[Segment], *, rise_time_s: float = 1.0,
                    fall_height_m: float = 0.4,
                    fall_tilt_rad: float = math.radians(60.0)) -> DemoMetrics:
    """
    Compute distance, per-segment tracking error and falls from a demo log.

    ``rise_time_s`` [s]: samples in the first part of each segment are not scored.
    ``fall_height_m`` [m] and ``fall_tilt_rad`` [rad]: the fall thresholds.
    """
    validate_segments(segments)
    if rise_time_s < 0.0 or not math.isfinite(rise_time_s):
        raise ValueError(f'rise_time_s must be finite and >= 0, got {rise_time_s}')
    xy = log.pos_m[:, :2]
    steps = np.linalg.norm(np.diff(xy, axis=0), axis=1) if len(xy) > 1 else np.zeros(0)
    path_length = float(np.sum(steps))
    displacement = float(np.linalg.norm(xy[-1] - xy[0])) if len(xy) > 1 else 0.0

    per_segment = []
    for seg, (start, end) in zip(segments, segment_bounds_s(segments)):
        mask = (log.t_s >= start + rise_time_s) & (log.t_s < end)
        count = int(np.count_nonzero(mask))
        cmd = np.array(seg.command(), dtype=float)
        if count:
            measured = log.body_vel[mask]
            mean_meas = tuple(float(v) for v in measured.mean(axis=0))
            mae = tuple(float(v) for v in np.abs(measured - cmd).mean(axis=0))
        else:
            mean_meas = (math.nan,) * 3
            mae = (math.nan,) * 3
        per_segment.append(SegmentMetrics(seg.name, seg.command(), mean_meas, mae, count))

    fallen = fallen_mask(log.pos_m, log.quat_wxyz, fall_height_m, fall_tilt_rad)
    falls = count_falls(fallen)
    first_fall = float(log.t_s[np.argmax(fallen)]) if falls else None
    duration = float(log.t_s[-1] - log.t_s[0]) if log.t_s.size > 1 else 0.0
    return DemoMetrics(path_length, displacement, tuple(per_segment), falls, first_fall,
                       duration)


def format_summary(metrics: DemoMetrics, title: str = 'Walking demo') -> str:
    """Return a plain-text summary table of the metrics."""
    lines = [
        f'{title}: {metrics.duration_s:.1f} s of sim time',
        f'  distance: path {metrics.path_length_m:.2f} m, '
        f'displacement {metrics.displacement_m:.2f} m',
        f'  falls: {metrics.falls}' + (
            f' (first at t={metrics.first_fall_t_s:.2f} s)'
            if metrics.first_fall_t_s is not None else ''),
        '  per-segment tracking (mean |measured - command| after the rise time):',
        f'    {"segment":<10} {"cmd vx,vy,wz":>20} {"meas vx,vy,wz":>20} '
        f'{"err vx":>7} {"err vy":>7} {"err wz":>7} {"n":>5}',
    ]
    for s in metrics.segments:
        cmd = ','.join(f'{v:+.2f}' for v in s.command)
        meas = ','.join(f'{v:+.2f}' for v in s.mean_measured)
        err = ' '.join(f'{v:7.3f}' for v in s.mean_abs_error)
        lines.append(f'    {s.name:<10} {cmd:>20} {meas:>20} {err} {s.num_samples:>5}')
    return '\n'.join(lines)


def plot_demo(log: DemoLog, segments: Sequence[Segment], path: Union[str, Path],
              title: str = 'Walking demo') -> Path:
    """Save commanded vs measured velocity and the top-down trajectory to ``path`` (PNG)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = commands_at(segments, log.t_s)
    fig = plt.figure(figsize=(12, 8))
    grid = fig.add_gridspec(3, 2)
    labels = (('vx [m/s]', 0), ('vy [m/s]', 1), ('yaw rate [rad/s]', 2))
    for label, col in labels:
        ax = fig.add_subplot(grid[col, 0])
        ax.plot(log.t_s, cmd[:, col], 'k--', label='commanded')
        ax.plot(log.t_s, log.body_vel[:, col], 'C0', label='measured (body frame)')
        for start, _ in segment_bounds_s(segments)[1:]:
            ax.axvline(start, color='0.8', linewidth=0.8)
        ax.set_ylabel(label)
        if col == 0:
            ax.legend(loc='upper right', fontsize=8)
            for seg, (start, _) in zip(segments, segment_bounds_s(segments)):
                ax.annotate(seg.name, (start, 1.0), xycoords=('data', 'axes fraction'),
                            fontsize=7, va='bottom')
    ax.set_xlabel('scenario time [s]')
    ax = fig.add_subplot(grid[:, 1])
    ax.plot(log.pos_m[:, 0], log.pos_m[:, 1], 'C0')
    if len(log.pos_m):
        ax.plot(log.pos_m[0, 0], log.pos_m[0, 1], 'go', label='start')
        ax.plot(log.pos_m[-1, 0], log.pos_m[-1, 1], 'rs', label='end')
        ax.legend(loc='best', fontsize=8)
    ax.set_aspect('equal', adjustable='datalim')
    ax.set_xlabel('x [m] (odom)')
    ax.set_ylabel('y [m] (odom)')
    ax.set_title('top-down trajectory')
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
