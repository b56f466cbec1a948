"""
The controller's settings (:class:`ControllerConfig`) and its error type (no ROS imports).

The policy node maps its parameters onto :class:`ControllerConfig`; ``docs/SAFETY.md`` lists
what each safety setting does. Import these names from :mod:`humanoid_rl_ros.core.controller`,
which re-exports them.
"""

from dataclasses import dataclass
import math
from typing import Tuple

from humanoid_rl_ros.core.idle_stand import MotionLimits

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
    idle_stand_after_s: float = 0.0
    """While walking, after a zero command and a calm base for this long, hold the default pose
    on PD instead of running the policy, until commanded or disturbed
    (:mod:`humanoid_rl_ros.core.idle_stand`) [s]; 0 turns the idle stand off."""
    idle_stand_ramp_s: float = 0.1
    """Ramp from the measured pose to the default pose when the idle stand starts [s] (short:
    the stance of the moment of a touchdown is kept only briefly; in exploratory runs of the
    idle_stand suite 0.5 s swayed the base at up to 0.05 m/s, 1 s made it step again)."""
    idle_command_threshold: float = 0.05
    """A command whose norm |(vx, vy, wz)| is at most this is a standing command (training's
    ``moving_command_threshold``)."""
    idle_touchdown_phases: Tuple[float, ...] = (0.0, 0.5)
    """Gait phases at which a foot lands (the training clock's: 0 and 0.5); the idle stand
    starts only within ``idle_phase_window`` before one (policies with a gait clock)."""
    idle_phase_window: float = 0.05
    """Width of the entry window before a touchdown [gait periods]."""
    idle_restart_phase: float = 0.25
    """Gait phase at which the policy restarts when the idle stand ends: a foot in mid-swing,
    so that a pushed robot steps at once (restarting at a touchdown, phase 0, fell after about
    12 % of 1.5 m/s pushes in exploratory runs of the idle_stand suite, mid-swing after 2 %)."""
    idle_filter_s: float = 0.1
    """Time constant of the low-pass filter on the base motion the idle stand judges [s]."""
    idle_exit_filter_s: float = 0.02
    """Time constant of the filter on the motion the exit limits judge [s] (0: as measured):
    short, so that a push hands over at once, yet sensor noise alone does not."""
    idle_enter_ang_vel_rad_s: float = 1.0
    """Enter limit: base angular velocity norm [rad/s] (stepping in place stays below)."""
    idle_enter_tilt_rad: float = 0.1
    """Enter limit: base tilt [rad]."""
    idle_enter_speed_m_s: float = 0.15
    """Enter limit: planar base speed, where fresh odometry gives it [m/s]."""
    idle_exit_ang_vel_rad_s: float = 1.0
    """Exit limit: base angular velocity norm [rad/s]."""
    idle_exit_tilt_rad: float = 0.15
    """Exit limit: base tilt [rad]."""
    idle_exit_speed_m_s: float = 0.3
    """Exit limit: planar base speed, where fresh odometry gives it [m/s] (in the idle_stand
    suite, 0.25 let the sensor noise of ``sensor_noise`` end the stand right after it began,
    so the robot stepped again; 0.3 holds it, and 1.5 m/s pushes fell as often)."""

    def idle_enter_limits(self) -> MotionLimits:
        """Return the idle stand's enter limits."""
        return MotionLimits(self.idle_enter_ang_vel_rad_s, self.idle_enter_tilt_rad,
                            self.idle_enter_speed_m_s)

    def idle_exit_limits(self) -> MotionLimits:
        """Return the idle stand's exit limits."""
        return MotionLimits(self.idle_exit_ang_vel_rad_s, self.idle_exit_tilt_rad,
                            self.idle_exit_speed_m_s)

    def validate(self) -> None:
        """Raise :class:`ControllerError` naming the first invalid field."""
        for name in ('stand_ramp_s', 'damping_kd_scale', 'fault_hold_s', 'idle_stand_after_s',
                     'idle_stand_ramp_s', 'idle_filter_s', 'idle_exit_filter_s',
                     'idle_command_threshold'):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0:
                raise ControllerError(f'{name} must be finite and >= 0, got {value}')
        for name in ('joint_state_timeout_s', 'odom_timeout_s', 'imu_timeout_s',
                     'cmd_vel_timeout_s'):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0.0:
                raise ControllerError(f'{name} must be finite and > 0, got {value}')
        for name in ('idle_enter_ang_vel_rad_s', 'idle_enter_tilt_rad', 'idle_enter_speed_m_s',
                     'idle_exit_ang_vel_rad_s', 'idle_exit_tilt_rad', 'idle_exit_speed_m_s'):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0.0:
                raise ControllerError(f'{name} must be finite and > 0, got {value}')
        for enter, leave in (('idle_enter_ang_vel_rad_s', 'idle_exit_ang_vel_rad_s'),
                             ('idle_enter_tilt_rad', 'idle_exit_tilt_rad'),
                             ('idle_enter_speed_m_s', 'idle_exit_speed_m_s')):
            if getattr(self, leave) < getattr(self, enter):
                raise ControllerError(
                    f'{leave} ({getattr(self, leave)}) must be >= {enter} '
                    f'({getattr(self, enter)}): below it a calm base would enter and leave the '
                    'idle stand over and over')
        if not (0.0 <= self.idle_restart_phase < 1.0):
            raise ControllerError(f'idle_restart_phase must be in [0, 1), got '
                                  f'{self.idle_restart_phase}')
        if not (0.0 <= self.idle_phase_window < 1.0) or not all(
                math.isfinite(p) and 0.0 <= p < 1.0 for p in self.idle_touchdown_phases):
            raise ControllerError('idle_phase_window and idle_touchdown_phases must be in [0, 1), '
                                  f'got {self.idle_phase_window} and '
                                  f'{list(self.idle_touchdown_phases)}')
        if not (math.isfinite(self.max_tilt_rad) and 0.0 < self.max_tilt_rad <= math.pi):
            raise ControllerError(f'max_tilt_rad must be in (0, pi], got {self.max_tilt_rad}')
        if self.orientation_source not in ORIENTATION_SOURCES:
            raise ControllerError(f'orientation_source must be one of {ORIENTATION_SOURCES}, '
                                  f'got {self.orientation_source!r}')
