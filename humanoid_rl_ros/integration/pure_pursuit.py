"""
A small holonomic waypoint follower (pure pursuit), as a stand-in for Nav2's controller server.

Waypoints are poses ``(x, y, yaw)`` in the odometry frame. For the active waypoint the follower
steers toward a *lookahead point*: the robot's position projected onto the segment from the
previous waypoint, moved ``lookahead_m`` further along it and capped at the waypoint. The
velocity points at that lookahead point (world frame), at ``cruise_speed_m_s`` far from the
waypoint and slower within ``slow_radius_m`` of it, and is rotated into the body frame: the robot
walks sideways or backwards when the heading asks for it (a legged robot is holonomic). The yaw
rate turns toward the waypoint's heading (proportional, ``yaw_gain_per_s``). The command is then
fitted into the trained command ranges (scaled as a whole, so its direction is kept) and limited
in rate by the same acceleration limits Nav2's velocity smoother gets
(:func:`humanoid_rl_ros.integration.nav2_params.command_limits`).

A waypoint is reached when the robot is within ``xy_tolerance_m`` of it and within
``yaw_tolerance_rad`` of its heading; then the next one becomes active. Pure logic: no ROS.
"""

from dataclasses import dataclass
import math
from typing import List, Optional, Sequence, Tuple

from humanoid_rl_ros.integration.nav2_params import CommandLimits

__all__ = [
    'Command',
    'fit_into_ranges',
    'lookahead_point',
    'PurePursuit',
    'PursuitConfig',
    'rate_limit',
    'Waypoint',
    'world_to_body',
    'wrap_angle',
]

Command = Tuple[float, float, float]
"""A body-frame velocity command ``(vx [m/s], vy [m/s], wz [rad/s])``."""


@dataclass(frozen=True)
class Waypoint:
    """A pose to reach, in the odometry frame."""

    x_m: float
    """Position x [m]."""
    y_m: float
    """Position y [m]."""
    yaw_rad: float
    """Heading, counter-clockwise from +x [rad]."""


@dataclass(frozen=True)
class PursuitConfig:
    """Tuning of the follower."""

    lookahead_m: float = 0.4
    """Distance of the pursued point ahead of the robot's projection on the segment [m]."""
    cruise_speed_m_s: float = 0.5
    """Translational speed far from the waypoint [m/s]."""
    slow_radius_m: float = 0.4
    """Within this distance of the waypoint the speed falls linearly to zero [m]."""
    yaw_gain_per_s: float = 1.5
    """Yaw rate per radian of heading error [1/s]."""
    xy_tolerance_m: float = 0.15
    """A waypoint is reached within this distance [m] ..."""
    yaw_tolerance_rad: float = 0.2
    """... and within this heading error [rad]."""

    def __post_init__(self) -> None:
        """Check every value is finite and > 0; raise ``ValueError`` naming the field."""
        for name in ('lookahead_m', 'cruise_speed_m_s', 'slow_radius_m', 'yaw_gain_per_s',
                     'xy_tolerance_m', 'yaw_tolerance_rad'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be finite and > 0, got {value}')


def wrap_angle(angle_rad: float) -> float:
    """Return ``angle_rad`` wrapped into [-pi, pi)."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


def lookahead_point(start: Tuple[float, float], goal: Tuple[float, float],
                    position: Tuple[float, float], lookahead_m: float) -> Tuple[float, float]:
    """
    Return the pursued point on the segment ``start -> goal``.

    ``position`` is projected onto the segment (clamped to it), moved ``lookahead_m`` toward
    ``goal`` and capped at ``goal``. A zero-length segment (a turn in place) gives ``goal``.
    """
    dx, dy = goal[0] - start[0], goal[1] - start[1]
    length = math.hypot(dx, dy)
    if length < 1e-9:
        return goal
    ux, uy = dx / length, dy / length
    along = (position[0] - start[0]) * ux + (position[1] - start[1]) * uy
    s = min(max(along, 0.0) + lookahead_m, length)
    return (start[0] + s * ux, start[1] + s * uy)


def world_to_body(vx_world: float, vy_world: float, yaw_rad: float) -> Tuple[float, float]:
    """Return a world-frame planar velocity in the body frame of a robot heading ``yaw_rad``."""
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    return (c * vx_world + s * vy_world, -s * vx_world + c * vy_world)


def fit_into_ranges(command: Command, limits: CommandLimits) -> Command:
    """
    Return ``command`` inside the trained ranges.

    The translation ``(vx, vy)`` is scaled as a whole by the largest factor <= 1 that puts both
    components in their ranges (so the walking direction is kept); ``wz`` is clamped.
    """
    vx, vy, wz = command
    scale = 1.0
    for value, (low, high) in ((vx, limits.vx_m_s), (vy, limits.vy_m_s)):
        if value > high:
            scale = min(scale, high / value)
        elif value < low:
            scale = min(scale, low / value)
    return (vx * scale, vy * scale, min(max(wz, limits.wz_rad_s[0]), limits.wz_rad_s[1]))


def rate_limit(previous: Command, wanted: Command, limits: CommandLimits,
               dt_s: float) -> Command:
    """Return ``wanted`` with each axis' change since ``previous`` limited to accel * ``dt_s``."""
    steps = (limits.ax_m_s2 * dt_s, limits.ay_m_s2 * dt_s, limits.az_rad_s2 * dt_s)
    return tuple(p + min(max(w - p, -step), step)
                 for p, w, step in zip(previous, wanted, steps))  # type: ignore[return-value]


class PurePursuit:
    """Follows waypoints one after the other; :meth:`update` returns the next command."""

    def __init__(self, waypoints: Sequence[Waypoint], limits: CommandLimits,
                 config: Optional[PursuitConfig] = None,
                 start: Optional[Tuple[float, float]] = None) -> None:
        """Follow ``waypoints`` from ``start`` (default: the first ``update``'s position)."""
        if not waypoints:
            raise ValueError('need at least one waypoint')
        self.waypoints: List[Waypoint] = list(waypoints)
        self.limits = limits
        self.config = config or PursuitConfig()
        self.index = 0
        """Index of the active waypoint (``len(waypoints)`` when done)."""
        self._segment_start = start
        self._command: Command = (0.0, 0.0, 0.0)

    @property
    def done(self) -> bool:
        """Return whether every waypoint was reached."""
        return self.index >= len(self.waypoints)

    def errors(self, x_m: float, y_m: float, yaw_rad: float) -> Tuple[float, float]:
        """Return (distance [m], |heading error| [rad]) to the active waypoint."""
        goal = self.waypoints[min(self.index, len(self.waypoints) - 1)]
        return (math.hypot(goal.x_m - x_m, goal.y_m - y_m),
                abs(wrap_angle(goal.yaw_rad - yaw_rad)))

    def update(self, x_m: float, y_m: float, yaw_rad: float, dt_s: float) -> Command:
        """
        Return the body-frame command for the robot at pose ``(x, y, yaw)``.

        ``dt_s`` [s] is the time since the previous command (for the rate limit). Reached
        waypoints are skipped first; once all are reached the command ramps down to zero.
        """
        if self._segment_start is None:
            self._segment_start = (x_m, y_m)
        cfg = self.config
        while not self.done:
            distance, heading_error = self.errors(x_m, y_m, yaw_rad)
            if distance > cfg.xy_tolerance_m or heading_error > cfg.yaw_tolerance_rad:
                break
            goal = self.waypoints[self.index]
            self._segment_start = (goal.x_m, goal.y_m)
            self.index += 1
        if self.done:
            wanted: Command = (0.0, 0.0, 0.0)
        else:
            goal = self.waypoints[self.index]
            target = lookahead_point(self._segment_start, (goal.x_m, goal.y_m), (x_m, y_m),
                                     cfg.lookahead_m)
            tx, ty = target[0] - x_m, target[1] - y_m
            norm = math.hypot(tx, ty)
            distance = math.hypot(goal.x_m - x_m, goal.y_m - y_m)
            speed = cfg.cruise_speed_m_s * min(1.0, distance / cfg.slow_radius_m)
            vx_w, vy_w = ((speed * tx / norm, speed * ty / norm) if norm > 1e-9 else (0.0, 0.0))
            vx, vy = world_to_body(vx_w, vy_w, yaw_rad)
            wz = cfg.yaw_gain_per_s * wrap_angle(goal.yaw_rad - yaw_rad)
            wanted = fit_into_ranges((vx, vy, wz), self.limits)
        self._command = rate_limit(self._command, wanted, self.limits, dt_s)
        return self._command
