"""
Idle stand: hold the default pose on PD alone while the robot is told to stand still.

A policy that steps in place at a zero velocity command drifts, heats its motors and drains the
battery at every goal a navigation stack reaches. With ``idle_stand_after_s`` > 0 the
controller (:mod:`humanoid_rl_ros.core.controller`), while walking:

* **starts** the idle stand once the command has been zero (:func:`is_zero_command`) and the
  base calm by the *enter* limits (those of a robot stepping in place, not recovering from a
  push) for ``idle_stand_after_s``, with no input fault being ridden out, at a policy step just
  before a touchdown of the gait clock (:func:`near_touchdown`: the swinging foot about to
  land); a policy without a gait clock is paused at any policy step. The policy stops; PD ramps
  the joint targets from the measured pose to the default pose over ``idle_stand_ramp_s``;
* **ends** it, restarting the policy as at the start of a walk but with the gait clock at
  ``idle_restart_phase`` (a foot in mid-swing), on a non-zero command or when the base leaves
  the *exit* limits (a push; an input lost while holding does not end it, see
  :func:`beyond`). The policy then takes the steps a PD stand cannot. Tighter
  exit limits hand over sooner but also end the stand on its own sway, and each restart from a
  moving robot is a risk (``docs/SAFETY.md`` gives the measured trade-off).

This module holds the decisions, pure functions of the base's motion and the settings; the
controller applies them. The base's motion: the norm of the body angular velocity (gyro)
[rad/s], the tilt from upright [rad] (None without a fresh orientation) and the planar base
speed [m/s] where fresh odometry gives it (None otherwise: a robot without a velocity estimate
is judged by its gyro and tilt alone). Both are low-pass filtered (:class:`MotionFilter`): for
the enter limits over ``idle_filter_s`` (0.1 s), so that sensor noise does not keep the policy
running; for the exit limits over ``idle_exit_filter_s`` (0.02 s), so that a push hands over
at once (filtering it over 0.1 s made 1.5 m/s pushes fall several times as often).
"""

from dataclasses import dataclass
import math
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class BaseMotion:
    """How the base moves now (see the module docstring for the units and the None cases)."""

    ang_vel_rad_s: float
    tilt_rad: Optional[float]
    planar_speed_m_s: Optional[float]


@dataclass(frozen=True)
class MotionLimits:
    """Largest calm base motion [rad/s, rad, m/s] (see :func:`calm` and :func:`beyond`)."""

    ang_vel_rad_s: float
    tilt_rad: float
    speed_m_s: float


def is_zero_command(command: Sequence[float], threshold: float) -> bool:
    """
    Return whether ``(vx [m/s], vy [m/s], wz [rad/s])`` asks the robot to stand still.

    A command whose norm is at most ``threshold`` is a standing command (training samples its
    standing commands the same way; see ``moving_command_threshold`` in the training config).
    """
    return math.sqrt(sum(float(c) * float(c) for c in command)) <= threshold


def beyond(motion: BaseMotion, limits: MotionLimits) -> str:
    """
    Return why ``motion`` exceeds ``limits`` ('' if no known part does).

    Unknown parts (no fresh orientation, a non-finite angular velocity, no odometry) are not
    judged: a holding idle stand is not ended by a lost input (the controller's graded response
    to the input stands the robot if it stays unusable), only by motion it can see.
    """
    if math.isfinite(motion.ang_vel_rad_s) and motion.ang_vel_rad_s > limits.ang_vel_rad_s:
        return f'base angular velocity {motion.ang_vel_rad_s:.2f} rad/s > {limits.ang_vel_rad_s:g}'
    if motion.tilt_rad is not None and motion.tilt_rad > limits.tilt_rad:
        return f'base tilt {motion.tilt_rad:.3f} rad > {limits.tilt_rad:g}'
    speed = motion.planar_speed_m_s
    if speed is not None and speed > limits.speed_m_s:
        return f'base speed {speed:.2f} m/s > {limits.speed_m_s:g}'
    return ''


def calm(motion: BaseMotion, limits: MotionLimits) -> bool:
    """
    Return whether ``motion`` is within ``limits`` with its orientation and gyro known.

    The policy is never paused blind; an unknown planar speed (no velocity estimate) is not
    judged.
    """
    known = motion.tilt_rad is not None and math.isfinite(motion.ang_vel_rad_s)
    return known and not beyond(motion, limits)


def near_touchdown(phase: float, touchdown_phases: Sequence[float], window: float) -> bool:
    """
    Return whether gait ``phase`` [0, 1) is at most ``window`` before one of the touchdowns.

    Just before a touchdown of the gait clock the swinging foot is about to land (its clock
    target is under 16 % of the swing height in the last 0.05 of a period), the moment to stop
    a stepping policy. The training environment's clock lands one foot at phase 0 and the other
    at 0.5 (feet half a period apart; a foot swings in the second half of its own phase).
    """
    return any(0.0 <= (t - phase) % 1.0 <= window for t in touchdown_phases)


class MotionFilter:
    """
    First-order low-pass filter of the base's motion, sample by sample.

    The angular and planar velocity vectors are filtered before their norms are taken (noise
    would bias the norm of each sample upwards). A missing or non-finite part restarts its
    filter at the next sample it has.
    """

    def __init__(self, time_constant_s: float) -> None:
        """Create an empty filter with ``time_constant_s`` [s] (0: no filtering)."""
        self.time_constant_s = float(time_constant_s)
        self.reset()

    def reset(self) -> None:
        """Forget every sample."""
        self._ang: Optional[np.ndarray] = None
        self._tilt: Optional[float] = None
        self._vel: Optional[np.ndarray] = None

    def _blend(self, old, new, alpha: float):
        return new if old is None else old + alpha * (new - old)

    def update(self, ang_vel_rad_s: Sequence[float], tilt_rad: Optional[float],
               planar_vel_m_s: Optional[Sequence[float]], dt_s: float) -> BaseMotion:
        """Add one sample taken ``dt_s`` [s] after the previous one; return the filtered motion."""
        tau = self.time_constant_s
        alpha = 1.0 if tau <= 0.0 else min(1.0, max(0.0, dt_s / tau))
        ang = np.asarray(ang_vel_rad_s, dtype=np.float64)
        if np.all(np.isfinite(ang)):
            self._ang = self._blend(self._ang, ang, alpha)
            ang_norm = float(np.linalg.norm(self._ang))
        else:
            self._ang, ang_norm = None, math.nan
        if tilt_rad is None or not math.isfinite(tilt_rad):
            self._tilt = None
        else:
            self._tilt = float(self._blend(self._tilt, float(tilt_rad), alpha))
        speed = None
        vel = None if planar_vel_m_s is None else np.asarray(planar_vel_m_s, dtype=np.float64)
        if vel is None or not np.all(np.isfinite(vel)):
            self._vel = None
        else:
            self._vel = self._blend(self._vel, vel, alpha)
            speed = float(np.linalg.norm(self._vel))
        return BaseMotion(ang_vel_rad_s=ang_norm, tilt_rad=self._tilt, planar_speed_m_s=speed)
