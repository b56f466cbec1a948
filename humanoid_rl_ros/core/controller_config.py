"""
The controller's settings (:class:`ControllerConfig`) and its error type (no ROS imports).

The policy node maps its parameters onto :class:`ControllerConfig`; ``docs/SAFETY.md`` lists
what each safety setting does. Import these names from :mod:`humanoid_rl_ros.core.controller`,
which re-exports them.
"""

from dataclasses import dataclass
import math

ORIENTATION_SOURCES = ('odom', 'imu')
"""Accepted values of :attr:`ControllerConfig.orientation_source`."""


class ControllerError(ValueError):
    """A controller input or configuration is unusable; the message names the problem."""


@dataclass(frozen=True)
class ControllerConfig:
    """Tunable controller settings (the node maps its parameters onto these)."""

    stand_ramp_s: float = 2.0
    """Time to ramp from the measured pose to the default pose when standing [s]."""
    joint_state_timeout_s: float = 0.1
    """A joint state older than this is unusable (held, then damping) [s]."""
    odom_timeout_s: float = 0.1
    """Odometry older than this is unusable while walking (held, then stand) [s]."""
    imu_timeout_s: float = 0.1
    """IMU data older than this is unusable while walking (``orientation_source='imu'``) [s]."""
    cmd_vel_timeout_s: float = 0.5
    """A velocity command older than this counts as zero [s]."""
    damping_kd_scale: float = 1.0
    """Damping gain in the damping state, as a multiple of the contract's kd [-]."""
    orientation_source: str = 'odom'
    """Where base orientation and angular velocity come from: ``'odom'`` or ``'imu'``."""
    fault_hold_s: float = 0.25
    """How long an unusable input is held before the fault counts as sustained [s] (0: not at
    all, every fault is sustained at once)."""
    max_tilt_rad: float = math.radians(70.0)
    """Damping when the base tilts further from upright than this [rad] (training ends its
    episodes at 70 deg: the policy never acted beyond); pi turns the check off."""
    auto_resume_walk: bool = False
    """After a sustained odometry/IMU fault stood the robot up: walk again by itself once the
    inputs are healthy (after the stand ramp) instead of waiting for a walk request."""
    use_header_stamps: bool = True
    """Count a message as arrived only if its header stamp differs from the previous one's."""

    def validate(self) -> None:
        """Raise :class:`ControllerError` naming the first invalid field."""
        for name in ('stand_ramp_s', 'damping_kd_scale', 'fault_hold_s'):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0:
                raise ControllerError(f'{name} must be finite and >= 0, got {value}')
        for name in ('joint_state_timeout_s', 'odom_timeout_s', 'imu_timeout_s',
                     'cmd_vel_timeout_s'):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0.0:
                raise ControllerError(f'{name} must be finite and > 0, got {value}')
        if not (math.isfinite(self.max_tilt_rad) and 0.0 < self.max_tilt_rad <= math.pi):
            raise ControllerError(f'max_tilt_rad must be in (0, pi], got {self.max_tilt_rad}')
        if self.orientation_source not in ORIENTATION_SOURCES:
            raise ControllerError(f'orientation_source must be one of {ORIENTATION_SOURCES}, '
                                  f'got {self.orientation_source!r}')
