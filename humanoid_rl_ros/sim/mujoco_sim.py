"""
CPU MuJoCo simulation of one robot, driven by joint efforts in policy order.

:class:`MujocoRobotSim` wraps the model of
:func:`humanoid_rl_ros.robot.mujoco_model.build_mujoco_model` (plus an IMU site) and is shared by
the ROS sim node, the sim-to-sim evaluator and the stand
test. It has no ROS imports.

Conventions: joint arrays are in policy order; quaternions are wxyz; "world" vectors are in
the world frame; "body" vectors are in the base link's frame. After :meth:`step`,
:meth:`reset` and :meth:`push` every quantity (positions, velocities, contacts, the IMU) is
consistent with the current state (``mj_forward`` is run).
"""

from dataclasses import dataclass
import math
from typing import Optional, Sequence

from humanoid_rl_ros.robot.description import RobotConfig
from humanoid_rl_ros.robot.mujoco_model import (base_qpos_adr, body_ids, build_mujoco_model,
                                                default_qpos, IMU_ACC_SENSOR, IMU_GYRO_SENSOR,
                                                joint_dof_adr, joint_qpos_adr, Terrain)
import mujoco
import numpy as np


__all__ = ['MujocoRobotSim', 'SimState']

DEFAULT_MAX_TILT_RAD = math.radians(70.0)
"""Tilt (angle between base z axis and world z) beyond which the robot counts as fallen."""


@dataclass(frozen=True)
class SimState:
    """A snapshot of the simulated robot (arrays are copies)."""

    time_s: float
    """Simulation time [s]."""
    joint_pos_rad: np.ndarray
    """Joint positions [rad], policy order."""
    joint_vel_rad_s: np.ndarray
    """Joint velocities [rad/s], policy order."""
    joint_effort_nm: np.ndarray
    """Efforts applied in the last step (after clamping) [N*m], policy order."""
    base_pos_m: np.ndarray
    """Base link position in the world [m]."""
    base_quat_wxyz: np.ndarray
    """Base link orientation (world from body), unit quaternion wxyz."""
    base_lin_vel_world_m_s: np.ndarray
    """Base link origin linear velocity, world frame [m/s]."""
    base_lin_vel_body_m_s: np.ndarray
    """Base link origin linear velocity, body frame [m/s]."""
    base_ang_vel_body_rad_s: np.ndarray
    """Base angular velocity, body frame [rad/s] (what a gyro measures)."""
    imu_lin_acc_m_s2: np.ndarray
    """Accelerometer reading at the base origin, body frame [m/s^2] (+9.81 z when still)."""
    foot_pos_world_m: np.ndarray
    """Foot link origins in the world [m], shape [F, 3]."""
    foot_in_contact: np.ndarray
    """Whether each foot touches the ground, shape [F]."""


class MujocoRobotSim:
    """One robot in MuJoCo on the CPU; efforts in, states out, all in policy order."""

    def __init__(self, robot: RobotConfig, timestep_s: float = 0.005,
                 terrain: Optional[Terrain] = None) -> None:
        """
        Build the model (with an IMU) for ``robot`` and reset to the default pose.

        ``terrain`` (default: flat ground) tilts the ground or makes it rough; see
        :class:`humanoid_rl_ros.robot.mujoco_model.Terrain`.
        """
        self.robot = robot
        self.terrain = terrain if terrain is not None else Terrain()
        self.model: mujoco.MjModel = build_mujoco_model(robot, timestep_s, add_imu=True,
                                                        terrain=terrain)
        self.data: mujoco.MjData = mujoco.MjData(self.model)
        self._qadr = joint_qpos_adr(self.model, robot)
        self._dadr = joint_dof_adr(self.model, robot)
        self._base_q = base_qpos_adr(self.model, robot)
        self._base_body = int(body_ids(self.model, [robot.base_link])[0])
        self._base_d = int(self.model.jnt_dofadr[self.model.body_jntadr[self._base_body]])
        self._feet = body_ids(self.model, robot.foot_links)
        self._effort_limit = robot.effort_limit_nm
        self._acc_adr = int(self.model.sensor_adr[self.model.sensor(IMU_ACC_SENSOR).id])
        self._gyro_adr = int(self.model.sensor_adr[self.model.sensor(IMU_GYRO_SENSOR).id])
        # Robot bodies (the base's subtree): contacts between a foot and any non-robot
        # geom count as foot contact.
        root = self.model.body_rootid
        self._robot_body = root == root[self._base_body]
        self._applied = np.zeros(robot.num_joints)
        self._renderer = None
        self.reset()

    # ---------------------------------------------------------------- control
    def reset(self, base_xy_m: Sequence[float] = (0.0, 0.0), yaw_rad: float = 0.0,
              joint_pos_rad: Optional[Sequence[float]] = None,
              base_height_m: Optional[float] = None) -> None:
        """
        Reset to rest: default pose (or ``joint_pos_rad``), base upright at ``yaw_rad``.

        The base is placed at ``base_xy_m`` and ``base_height_m`` (default: the robot's
        nominal base height), with zero velocity; time restarts at 0.
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
        quat = (math.cos(half), 0.0, 0.0, math.sin(half))
        mujoco.mj_resetData(self.model, self.data)
        qpos = default_qpos(self.model, self.robot, base_pos_m=(xy[0], xy[1], float(height)),
                            base_quat_wxyz=quat)
        if joint_pos_rad is not None:
            qpos[self._qadr] = self._check_joint_vector(joint_pos_rad, 'joint_pos_rad')
        self.data.qpos[:] = qpos
        self._applied = np.zeros(self.robot.num_joints)
        mujoco.mj_forward(self.model, self.data)

    def step(self, effort_nm: Sequence[float]) -> None:
        """
        Apply joint efforts [N*m] (policy order) for one physics step.

        Raises ValueError for a wrong length or a non-finite entry; efforts are clamped to
        +/- the effort limits before they are applied.
        """
        effort = self._check_joint_vector(effort_nm, 'effort_nm')
        self._applied = np.clip(effort, -self._effort_limit, self._effort_limit)
        self.data.ctrl[:] = self._applied
        mujoco.mj_step(self.model, self.data)
        mujoco.mj_forward(self.model, self.data)

    def push(self, delta_vel_world_m_s: Sequence[float]) -> None:
        """Add ``delta_vel_world_m_s`` [m/s, world frame] to the base's linear velocity."""
        delta = np.asarray(delta_vel_world_m_s, dtype=np.float64)
        if delta.shape != (3,) or not np.all(np.isfinite(delta)):
            raise ValueError(
                f'delta_vel_world_m_s must be 3 finite numbers, got {delta_vel_world_m_s!r}')
        self.data.qvel[self._base_d:self._base_d + 3] += delta
        mujoco.mj_forward(self.model, self.data)

    def add_base_velocity(self, delta_vel_world_m_s: Sequence[float]) -> None:
        """Add to the base's linear velocity [m/s, world frame] (alias of :meth:`push`)."""
        self.push(delta_vel_world_m_s)

    def _check_joint_vector(self, values: Sequence[float], what: str) -> np.ndarray:
        arr = np.asarray(values, dtype=np.float64)
        n = self.robot.num_joints
        if arr.shape != (n,):
            raise ValueError(f'{what} must have shape ({n},) in policy order, got {arr.shape}')
        bad = ~np.isfinite(arr)
        if np.any(bad):
            names = [self.robot.joint_names[i] for i in np.flatnonzero(bad)]
            raise ValueError(f'{what} is not finite for joints {names}')
        return arr

    # ---------------------------------------------------------------- state
    @property
    def time_s(self) -> float:
        """Return the simulation time [s]."""
        return float(self.data.time)

    @property
    def timestep_s(self) -> float:
        """Return the physics step [s]."""
        return float(self.model.opt.timestep)

    @property
    def joint_pos_rad(self) -> np.ndarray:
        """Return joint positions [rad], policy order."""
        return self.data.qpos[self._qadr].copy()

    @property
    def joint_vel_rad_s(self) -> np.ndarray:
        """Return joint velocities [rad/s], policy order."""
        return self.data.qvel[self._dadr].copy()

    @property
    def joint_effort_nm(self) -> np.ndarray:
        """Return the efforts applied in the last step (after clamping) [N*m], policy order."""
        return self._applied.copy()

    @property
    def base_pos_m(self) -> np.ndarray:
        """Return the base position in the world [m]."""
        return self.data.qpos[self._base_q:self._base_q + 3].copy()

    @property
    def base_quat_wxyz(self) -> np.ndarray:
        """Return the base orientation (world from body) as a unit quaternion wxyz."""
        quat = self.data.qpos[self._base_q + 3:self._base_q + 7].copy()
        return quat / np.linalg.norm(quat)

    @property
    def base_lin_vel_world_m_s(self) -> np.ndarray:
        """Return the base origin's linear velocity in the world frame [m/s]."""
        return self.data.qvel[self._base_d:self._base_d + 3].copy()

    @property
    def base_lin_vel_body_m_s(self) -> np.ndarray:
        """Return the base origin's linear velocity in the base frame [m/s]."""
        rot = self.data.xmat[self._base_body].reshape(3, 3)  # world from body
        return rot.T @ self.base_lin_vel_world_m_s

    @property
    def base_ang_vel_body_rad_s(self) -> np.ndarray:
        """Return the base angular velocity in the base frame [rad/s]."""
        return self.data.qvel[self._base_d + 3:self._base_d + 6].copy()

    @property
    def base_lin_acc_body_m_s2(self) -> np.ndarray:
        """
        Return the accelerometer reading at the base, body frame [m/s^2].

        Like a real accelerometer it measures specific force: standing still upright it
        reads about (0, 0, +9.81).
        """
        return self.data.sensordata[self._acc_adr:self._acc_adr + 3].copy()

    @property
    def base_gyro_body_rad_s(self) -> np.ndarray:
        """Return the gyro reading at the base, body frame [rad/s]."""
        return self.data.sensordata[self._gyro_adr:self._gyro_adr + 3].copy()

    @property
    def foot_pos_world_m(self) -> np.ndarray:
        """Return the foot links' origins in the world [m], shape [F, 3]."""
        return self.data.xpos[self._feet].copy()

    @property
    def foot_lin_vel_world_m_s(self) -> np.ndarray:
        """Return the foot links' origin linear velocities, world frame [m/s], shape [F, 3]."""
        out = np.zeros((len(self._feet), 3))
        vel = np.zeros(6)
        for i, body in enumerate(self._feet):
            mujoco.mj_objectVelocity(self.model, self.data, mujoco.mjtObj.mjOBJ_BODY,
                                     int(body), vel, 0)
            out[i] = vel[3:6]
        return out

    @property
    def foot_in_contact(self) -> np.ndarray:
        """Return whether each foot link touches a non-robot geom (the ground), shape [F]."""
        out = np.zeros(len(self._feet), dtype=bool)
        ncon = self.data.ncon
        if ncon == 0:
            return out
        bodies = self.model.geom_bodyid
        for contact in self.data.contact[:ncon]:
            if contact.dist > 0.0:
                continue
            b1, b2 = bodies[contact.geom1], bodies[contact.geom2]
            for i, foot in enumerate(self._feet):
                if (b1 == foot and not self._robot_body[b2]) or (
                        b2 == foot and not self._robot_body[b1]):
                    out[i] = True
        return out

    @property
    def total_mass_kg(self) -> float:
        """Return the robot's total mass [kg] (every body of the model but the world)."""
        return float(np.sum(self.model.body_mass[self._robot_body]))

    def ground_height_m(self, x_m: float, y_m: float) -> float:
        """Return the ground's height [m] at world point (x, y) (0 on flat ground)."""
        return self.terrain.height_m(x_m, y_m)

    def tilt_rad(self) -> float:
        """Return the angle between the base's z axis and the world's z axis [rad]."""
        zz = float(self.data.xmat[self._base_body][8])
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

    def state(self) -> SimState:
        """Return a snapshot of the current state."""
        return SimState(
            time_s=self.time_s,
            joint_pos_rad=self.joint_pos_rad,
            joint_vel_rad_s=self.joint_vel_rad_s,
            joint_effort_nm=self.joint_effort_nm,
            base_pos_m=self.base_pos_m,
            base_quat_wxyz=self.base_quat_wxyz,
            base_lin_vel_world_m_s=self.base_lin_vel_world_m_s,
            base_lin_vel_body_m_s=self.base_lin_vel_body_m_s,
            base_ang_vel_body_rad_s=self.base_ang_vel_body_rad_s,
            imu_lin_acc_m_s2=self.base_lin_acc_body_m_s2,
            foot_pos_world_m=self.foot_pos_world_m,
            foot_in_contact=self.foot_in_contact,
        )

    # ---------------------------------------------------------------- video
    def render_rgb(self, width: int = 640, height: int = 480) -> np.ndarray:
        """
        Render an RGB frame [height, width, 3] uint8 with a camera following the base.

        Needs an OpenGL context (e.g. ``MUJOCO_GL=egl`` or ``osmesa`` when headless); the
        tests never call it.
        """
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (
                width, height):
            if self._renderer is not None:
                self._renderer.close()
            self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, width)
            self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, height)
            self.model.vis.headlight.ambient[:] = 0.4  # visual only; no effect on physics
            self.model.vis.headlight.diffuse[:] = 0.6
            self._renderer = mujoco.Renderer(self.model, height=height, width=width)
            self._camera = mujoco.MjvCamera()
            self._camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            self._camera.trackbodyid = self._base_body
            self._camera.distance = 3.0
            self._camera.azimuth = 135.0
            self._camera.elevation = -15.0
        self._renderer.update_scene(self.data, camera=self._camera)
        return self._renderer.render()

    def close(self) -> None:
        """Release the renderer, if one was created."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
