"""
What every CPU robot simulator shares, whatever its engine: input checks, push, tilt and fall.

:class:`RobotSimBase` is the base of :class:`humanoid_rl_ros.sim.mujoco_sim.MujocoRobotSim`
and of the PyBullet simulator in ``training.sim2sim``; a subclass supplies the engine's part
through two hooks (:meth:`RobotSimBase._add_base_lin_vel_world` and
:meth:`RobotSimBase._base_z_axis_world_z`) and a ``base_pos_m`` property. Quaternions are wxyz.
No ROS and no engine imports.
"""

from abc import ABC, abstractmethod
import math
from typing import Optional, Sequence, Tuple

from humanoid_rl_ros.robot.description import RobotConfig
import numpy as np

__all__ = ['DEFAULT_MAX_TILT_RAD', 'quat_wxyz_conjugate', 'quat_wxyz_multiply',
           'RobotSimBase']

DEFAULT_MAX_TILT_RAD = math.radians(70.0)
"""Tilt (angle between base z axis and world z) beyond which the robot counts as fallen."""


def quat_wxyz_multiply(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Return the Hamilton product ``a * b`` of two wxyz quaternions."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw])


def quat_wxyz_conjugate(q: Sequence[float]) -> np.ndarray:
    """Return the conjugate of a wxyz quaternion (its inverse if it is a unit one)."""
    return np.array([q[0], -q[1], -q[2], -q[3]], dtype=np.float64)


class RobotSimBase(ABC):
    """Engine-independent checks and readouts of a one-robot simulator (policy order)."""

    robot: RobotConfig

    # ---------------------------------------------------------------- engine hooks
    @abstractmethod
    def _add_base_lin_vel_world(self, delta_m_s: np.ndarray) -> None:
        """Add the checked ``delta_m_s`` [m/s, world frame] to the base's linear velocity."""

    @abstractmethod
    def _base_z_axis_world_z(self) -> float:
        """Return the world z component of the base's z axis (R[2, 2], world from body)."""

    # ---------------------------------------------------------------- checks
    def _check_joint_vector(self, values: Sequence[float], what: str) -> np.ndarray:
        """Return ``values`` as float64 [num_joints]; raise ValueError naming bad joints."""
        arr = np.asarray(values, dtype=np.float64)
        n = self.robot.num_joints
        if arr.shape != (n,):
            raise ValueError(f'{what} must have shape ({n},) in policy order, got {arr.shape}')
        bad = ~np.isfinite(arr)
        if np.any(bad):
            names = [self.robot.joint_names[i] for i in np.flatnonzero(bad)]
            raise ValueError(f'{what} is not finite for joints {names}')
        return arr

    def _reset_base_pose(self, base_xy_m: Sequence[float], yaw_rad: float,
                         base_height_m: Optional[float]) -> Tuple[np.ndarray, np.ndarray]:
        """
        Check the base arguments of ``reset``; return the base position [m] and quat wxyz.

        The base stands upright at ``yaw_rad`` about z, at ``base_height_m`` (default: the
        robot's nominal base height).
        """
        xy = np.asarray(base_xy_m, dtype=np.float64)
        if xy.shape != (2,) or not np.all(np.isfinite(xy)):
            raise ValueError(f'base_xy_m must be 2 finite numbers, got {base_xy_m!r}')
        if not math.isfinite(float(yaw_rad)):
            raise ValueError(f'yaw_rad must be finite, got {yaw_rad!r}')
        height = self.robot.nominal_base_height_m if base_height_m is None else base_height_m
        if not math.isfinite(float(height)):
            raise ValueError(f'base_height_m must be finite, got {base_height_m!r}')
        half = 0.5 * float(yaw_rad)
        return (np.array([xy[0], xy[1], float(height)]),
                np.array([math.cos(half), 0.0, 0.0, math.sin(half)]))

    # ---------------------------------------------------------------- push
    def push(self, delta_vel_world_m_s: Sequence[float]) -> None:
        """Add ``delta_vel_world_m_s`` [m/s, world frame] to the base's linear velocity."""
        delta = np.asarray(delta_vel_world_m_s, dtype=np.float64)
        if delta.shape != (3,) or not np.all(np.isfinite(delta)):
            raise ValueError(
                f'delta_vel_world_m_s must be 3 finite numbers, got {delta_vel_world_m_s!r}')
        self._add_base_lin_vel_world(delta)

    def add_base_velocity(self, delta_vel_world_m_s: Sequence[float]) -> None:
        """Add to the base's linear velocity [m/s, world frame] (alias of :meth:`push`)."""
        self.push(delta_vel_world_m_s)

    # ---------------------------------------------------------------- tilt and fall
    def tilt_rad(self) -> float:
        """Return the angle between the base's z axis and the world's z axis [rad]."""
        zz = float(self._base_z_axis_world_z())
        return math.acos(max(-1.0, min(1.0, zz)))

    def fallen(self, min_height_m: Optional[float] = None,
               max_tilt_rad: float = DEFAULT_MAX_TILT_RAD) -> bool:
        """
        Return True if the base is below ``min_height_m`` or tilted beyond ``max_tilt_rad``.

        ``min_height_m`` defaults to half the nominal base height.
        """
        if min_height_m is None:
            min_height_m = 0.5 * self.robot.nominal_base_height_m
        return bool(self.base_pos_m[2] < min_height_m or self.tilt_rad() > max_tilt_rad)
