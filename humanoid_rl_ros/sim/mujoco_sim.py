"""
CPU MuJoCo simulation of one robot, driven by joint efforts in policy order.

:class:`MujocoRobotSim` wraps the model of
:func:`humanoid_rl_ros.robot.mujoco_model.build_mujoco_model` (plus an IMU site) and is shared by
the ROS sim node, the sim-to-sim evaluator, the robustness suite and the stand check of
:mod:`training.robot_check`. It has no ROS imports.

Conventions: joint arrays are in policy order; quaternions are wxyz; "world" vectors are in
the world frame; "body" vectors are in the base link's frame. After :meth:`step`,
:meth:`reset` and :meth:`push` every quantity (positions, velocities, contacts, the IMU) is
consistent with the current state (``mj_forward`` is run).
"""

from dataclasses import dataclass
from typing import Optional, Sequence

from humanoid_rl_ros.core.policy_math import pd_effort
from humanoid_rl_ros.robot.description import RobotConfig
from humanoid_rl_ros.robot.mujoco_model import (base_qpos_adr, body_ids, build_mujoco_model,
                                                default_qpos, IMU_ACC_SENSOR, IMU_GYRO_SENSOR,
                                                joint_dof_adr, joint_qpos_adr, Terrain)
from humanoid_rl_ros.sim.robot_sim import DEFAULT_MAX_TILT_RAD, RobotSimBase
import mujoco
import numpy as np


__all__ = ['DEFAULT_MAX_TILT_RAD', 'EFFORT_LIMIT_TOLERANCE', 'MujocoRobotSim', 'SimState']

EFFORT_LIMIT_TOLERANCE = 1e-6
"""An effort within this fraction of its limit counts as at the limit (saturated)."""


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


class MujocoRobotSim(RobotSimBase):
    """One robot in MuJoCo on the CPU; efforts in, states out, all in policy order."""

    def __init__(self, robot: RobotConfig, timestep_s: float = 0.005,
                 terrain: Optional[Terrain] = None, sole_spheres: bool = False) -> None:
        """
        Build the model (with an IMU) for ``robot`` and reset to the default pose.

        ``terrain`` (default: flat ground) tilts the ground or makes it rough; see
        :class:`humanoid_rl_ros.robot.mujoco_model.Terrain`. ``sole_spheres``: the feet touch
        the ground through spheres on their soles (``build_mujoco_model``).
        """
        self.robot = robot
        self.terrain = terrain if terrain is not None else Terrain()
        self.model: mujoco.MjModel = build_mujoco_model(robot, timestep_s, add_imu=True,
                                                        terrain=terrain,
                                                        sole_spheres=sole_spheres)
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
        pos, quat = self._reset_base_pose(base_xy_m, yaw_rad, base_height_m)
        mujoco.mj_resetData(self.model, self.data)
        qpos = default_qpos(self.model, self.robot, base_pos_m=pos, base_quat_wxyz=quat)
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

    def pd_effort_nm(self, q_target_rad: Optional[Sequence[float]] = None) -> np.ndarray:
        """
        Return the robot's PD effort toward ``q_target_rad`` [N*m], policy order.

        ``kp (q* - q) - kd qd`` with the robot's gains, clamped to +/- its effort limits
        (:func:`humanoid_rl_ros.core.policy_math.pd_effort`, the node's law); the target
        defaults to the robot's default pose. Nothing is applied; an entry is non-finite
        when the state or the gains are, which :meth:`step` refuses.
        """
        robot = self.robot
        target = robot.default_pos_rad if q_target_rad is None else q_target_rad
        return np.asarray(pd_effort(np.asarray(target, dtype=np.float64), self.joint_pos_rad,
                                    self.joint_vel_rad_s, robot.kp_nm_per_rad,
                                    robot.kd_nms_per_rad, self._effort_limit))

    def effort_at_limit(self, effort_nm: Optional[Sequence[float]] = None) -> np.ndarray:
        """
        Return which joints' effort is at the effort limit (saturated), bool [num_joints].

        ``effort_nm`` defaults to the efforts applied in the last step; an effort within
        :data:`EFFORT_LIMIT_TOLERANCE` of its limit counts.
        """
        effort = self._applied if effort_nm is None else np.asarray(effort_nm)
        return np.abs(effort) >= self._effort_limit * (1.0 - EFFORT_LIMIT_TOLERANCE)

    def _add_base_lin_vel_world(self, delta_m_s: np.ndarray) -> None:
        """Add to the base's linear velocity [m/s, world frame]; see :meth:`push`."""
        self.data.qvel[self._base_d:self._base_d + 3] += delta_m_s
        mujoco.mj_forward(self.model, self.data)

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

    def _base_z_axis_world_z(self) -> float:
        """Return R[2, 2] of the base (world from body); see :meth:`tilt_rad`."""
        return float(self.data.xmat[self._base_body][8])

    def uprightness(self) -> float:
        """Return the cosine of the base's tilt: 1 upright, 0 on its side, -1 upside down."""
        return self._base_z_axis_world_z()

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
