"""
Idle stand: hold the default pose on PD alone while the robot is told to stand still.

A policy that steps in place at a zero velocity command drifts, heats its motors and drains the
battery at every goal a navigation stack reaches. With ``idle_stand_after_s`` > 0 the
controller (:mod:`humanoid_rl_ros.core.controller`), while walking:

* **starts** the idle stand once the command has been zero (:func:`is_zero_command`) and the
  base calm by the *enter* limits (those of a robot stepping in place, not recovering from a
  push) for ``idle_stand_after_s``, at a policy step near a touchdown of the gait clock
  (:func:`near_touchdown`: both feet down) where the policy has one. The policy stops; PD ramps
  the joint targets from the measured pose to the default pose over ``idle_stand_ramp_s``;
* **ends** it, restarting the policy as at the start of a walk but with the gait clock at
  ``idle_restart_phase`` (a foot in mid-swing), on a non-zero command or when the base leaves
  the *exit* limits (a push). The policy then takes the steps a PD stand cannot. Tighter exit limits hand over sooner but also end the stand on its own sway, and each
  restart from a moving robot is a risk (``docs/SAFETY.md`` gives the measured trade-off).

This module holds the decisions, pure functions of the base's motion and the settings; the
controller applies them. The base's motion: the norm of the body angular velocity (gyro)
[rad/s], the tilt from upright [rad] (None without a fresh orientation) and the planar base
speed [m/s] where fresh odometry gives it (None otherwise: a robot without a velocity estimate
is judged by its gyro and tilt alone).
"""

from dataclasses import dataclass
import math
from typing import Optional, Sequence


@dataclass(frozen=True)
class BaseMotion:
    """How the base moves now (see the module docstring for the units and the None cases)."""

    ang_vel_rad_s: float
    tilt_rad: Optional[float]
    planar_speed_m_s: Optional[float]


@dataclass(frozen=True)
class MotionLimits:
    """Largest base motion [rad/s, rad, m/s] that counts as calm (see :func:`within`)."""

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


def within(motion: BaseMotion, limits: MotionLimits) -> str:
    """
    Return why ``motion`` exceeds ``limits`` ('' if every known part is within them).

    An unknown orientation or a non-finite angular velocity exceeds any limit (the policy is
    never stopped, and never left stopped, blind); an unknown planar speed is not judged.
    """
    if motion.tilt_rad is None or not math.isfinite(motion.ang_vel_rad_s):
        return 'base orientation or angular velocity unknown'
    if motion.ang_vel_rad_s > limits.ang_vel_rad_s:
        return f'base angular velocity {motion.ang_vel_rad_s:.2f} rad/s > {limits.ang_vel_rad_s:g}'
    if motion.tilt_rad > limits.tilt_rad:
        return f'base tilt {motion.tilt_rad:.3f} rad > {limits.tilt_rad:g}'
    speed = motion.planar_speed_m_s
    if speed is not None and speed > limits.speed_m_s:
        return f'base speed {speed:.2f} m/s > {limits.speed_m_s:g}'
    return ''


def near_touchdown(phase: float, touchdown_phases: Sequence[float], window: float) -> bool:
    """
    Return whether gait ``phase`` [0, 1) is at most ``window`` before one of the touchdowns.

    Both feet are on the ground around a touchdown of the gait clock, the moment to stop a
    stepping policy. The training environment's clock lands one foot at phase 0 and the other
    at 0.5 (feet half a period apart; a foot swings in the second half of its own phase).
    """
    return any(0.0 <= (t - phase) % 1.0 <= window for t in touchdown_phases)
