"""
PyBullet simulation of one robot, driven by joint efforts in policy order.

:class:`PyBulletRobotSim` is the PyBullet counterpart of
:class:`humanoid_rl_ros.sim.mujoco_sim.MujocoRobotSim`: the same constructor arguments, the
same conventions and the state readouts the evaluator uses, so
:func:`training.evaluate.run_case` runs on either engine. Bullet's contact model differs from
MuJoCo's: rigid contacts resolved by a sequential-impulse (projected Gauss-Seidel) solver with
error reduction, instead of MuJoCo's soft convex contacts, with Bullet's collision detection
(contact manifolds with margins) instead of MuJoCo's.

The model, built from the robot's URDF:

* floating base (PyBullet's base is the URDF's root link, which must be ``robot.base_link``);
  inertias from the URDF (``URDF_USE_INERTIA_FROM_FILE``; by default PyBullet would compute
  them from the collision shapes); no self collision; PyBullet's default link damping
  (0.04 linear and angular) removed; gravity -9.81 m/s^2 along z;
* a ground plane at z = 0; friction as MuJoCo's model: sliding, torsional (Bullet's spinning)
  and rolling coefficients of
  :data:`humanoid_rl_ros.robot.mujoco_model.FLOOR_FRICTION` on every robot link, combined
  with a ground of lateral friction 1 (Bullet multiplies the sliding coefficients and weighs
  each side's spinning/rolling coefficient by the other side's sliding one);
* torque control at the contract's physics step: PyBullet's default velocity motors (which
  would hold every joint still) are switched off, and each step applies the clamped efforts
  with ``TORQUE_CONTROL``, held over ``config.substeps`` Bullet steps;
* rotor inertia (``armature_kg_m2``), which Bullet's multibodies lack and without which the
  explicit PD loop at the contract's physics step is unstable: with ``armature='rotor'`` (the
  default) each actuated joint gets a rotor link geared to it; how, and how closely that
  matches MuJoCo's armature, is in :mod:`training.sim2sim.pybullet_rotors` (gear ratio
  ``rotor_gear_ratio``, 20 by default; the gear constraints hold only as well as the solver
  converges, ``solver_iterations``). ``armature='link_inertia'`` instead adds J to the child link's
  inertia about the joint axis (no constraints, but J then also loads every parallel joint
  above and the base, and the inertia tensors stop being physical); ``'none'`` leaves it out.

Conventions (as MujocoRobotSim): joint arrays are in policy order; quaternions are wxyz
(PyBullet's xyzw is converted); "world" vectors are in the world frame; "body" vectors in the
base link's frame (PyBullet reports base velocities in the world frame, at the centre of mass).
"""

from dataclasses import dataclass
import math
from pathlib import Path
import tempfile
from typing import Dict, Literal, Optional, Sequence, Tuple

from humanoid_rl_ros.core.policy_math import quat_xyzw_to_wxyz, world_to_body
from humanoid_rl_ros.robot.description import RobotConfig
from humanoid_rl_ros.robot.mujoco_model import FLOOR_FRICTION
from humanoid_rl_ros.sim.robot_sim import quat_wxyz_conjugate, quat_wxyz_multiply, RobotSimBase
import numpy as np
import pybullet
from pybullet_utils import bullet_client
from training.sim2sim.pybullet_rotors import gear_rotors, urdf_with_rotors

__all__ = ['GRAVITY_M_S2', 'PyBulletConfig', 'PyBulletRobotSim', 'rotation_matrix_wxyz',
           'urdf_with_rotors']

GRAVITY_M_S2 = 9.81
"""Gravity [m/s^2] along -z, as MuJoCo's default."""
MAX_JOINT_SPEED_RAD_S = 1e4
"""Bullet's joint speed clamp, raised from its 100 rad/s default so it never acts [rad/s]."""
_AXIS_ALIGNED_TOL = 1e-6


@dataclass(frozen=True)
class PyBulletConfig:
    """Engine settings of :class:`PyBulletRobotSim` (the physics step comes from the caller)."""

    substeps: int = 1
    """Bullet steps per physics step (each ``timestep_s / substeps``); the effort is held."""
    solver_iterations: int = 50
    """Constraint solver iterations per Bullet step (PyBullet's default is 50)."""
    armature: Literal['rotor', 'link_inertia', 'none'] = 'rotor'
    """Rotor inertia: geared rotor links, the child link's inertia about the axis, or none."""
    rotor_gear_ratio: float = 20.0
    """Gear ratio N of the rotors (``armature='rotor'``); the error in the inertia is O(1/N)."""

    def __post_init__(self) -> None:
        """Check the counts; raise ValueError naming the field."""
        if int(self.substeps) != self.substeps or self.substeps < 1:
            raise ValueError(f'substeps must be an integer >= 1, got {self.substeps!r}')
        if int(self.solver_iterations) != self.solver_iterations or self.solver_iterations < 1:
            raise ValueError(
                f'solver_iterations must be an integer >= 1, got {self.solver_iterations!r}')
        if self.armature not in ('rotor', 'link_inertia', 'none'):
            raise ValueError(
                f"armature must be 'rotor', 'link_inertia' or 'none', got {self.armature!r}")
        if not math.isfinite(self.rotor_gear_ratio) or self.rotor_gear_ratio < 1.0:
            raise ValueError(f'rotor_gear_ratio must be >= 1, got {self.rotor_gear_ratio!r}')


def rotation_matrix_wxyz(q_wxyz: Sequence[float]) -> np.ndarray:
    """Return the 3x3 rotation matrix (world from body) of a wxyz quaternion (normalized)."""
    w, x, y, z = np.asarray(q_wxyz, dtype=np.float64) / np.linalg.norm(q_wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


class PyBulletRobotSim(RobotSimBase):
    """One robot in PyBullet on the CPU; efforts in, states out, all in policy order."""

    def __init__(self, robot: RobotConfig, timestep_s: float = 0.005,
                 config: PyBulletConfig = PyBulletConfig()) -> None:
        """Connect a headless PyBullet, build the robot on a ground plane and reset it."""
        if robot.description_path.suffix.lower() != '.urdf':
            raise ValueError(f'PyBulletRobotSim loads URDF descriptions only, robot '
                             f'{robot.name!r} has {robot.description_path.name}')
        if not math.isfinite(float(timestep_s)) or timestep_s <= 0.0:
            raise ValueError(f'timestep_s must be > 0, got {timestep_s!r}')
        self.robot = robot
        self.config = config
        self._dt_s = float(timestep_s)
        self._effort_limit = robot.effort_limit_nm
        self._time_s = 0.0
        self._applied = np.zeros(robot.num_joints)
        self._cache: Dict[str, np.ndarray] = {}
        self._rotors: Dict[str, str] = {}
        self._urdf_dir: Optional[tempfile.TemporaryDirectory] = None
        urdf = robot.description_path
        if config.armature == 'rotor':
            text, self._rotors = urdf_with_rotors(
                urdf, {j.name: j.armature_kg_m2 for j in robot.joints}, config.rotor_gear_ratio)
            self._urdf_dir = tempfile.TemporaryDirectory(prefix='sim2sim_urdf_')
            urdf = Path(self._urdf_dir.name) / urdf.name
            urdf.write_text(text)
        self._urdf_path = urdf
        self._client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self._build()
        self.reset()

    # ---------------------------------------------------------------- model
    def _build(self) -> None:
        """(Re)create the world: ground, robot, rotors, dynamics settings."""
        bc = self._client
        bc.resetSimulation()
        bc.setGravity(0.0, 0.0, -GRAVITY_M_S2)
        bc.setPhysicsEngineParameter(
            fixedTimeStep=self._dt_s / self.config.substeps, numSubSteps=0,
            numSolverIterations=int(self.config.solver_iterations),
            deterministicOverlappingPairs=1)
        self._ground = bc.createMultiBody(
            baseMass=0.0, baseCollisionShapeIndex=bc.createCollisionShape(pybullet.GEOM_PLANE))
        bc.changeDynamics(self._ground, -1, lateralFriction=1.0, spinningFriction=0.0,
                          rollingFriction=0.0, restitution=0.0)
        self._body = bc.loadURDF(str(self._urdf_path),
                                 [0.0, 0.0, self.robot.nominal_base_height_m],
                                 flags=pybullet.URDF_USE_INERTIA_FROM_FILE)
        base_name = bc.getBodyInfo(self._body)[0].decode()
        if base_name != self.robot.base_link:
            raise ValueError(f'the root link of {self.robot.description_path.name} is '
                             f'{base_name!r}, robot.yaml names base_link '
                             f'{self.robot.base_link!r}')
        joints, links = {}, {}
        num = bc.getNumJoints(self._body)
        for index in range(num):
            info = bc.getJointInfo(self._body, index)
            joints[info[1].decode()] = (index, info[2], np.asarray(info[13], dtype=np.float64))
            links[info[12].decode()] = index
        missing = [n for n in self.robot.joint_names if n not in joints]
        if missing:
            raise ValueError(f'joints {missing} from robot.yaml are not in '
                             f'{self.robot.description_path.name} as loaded by PyBullet')
        not_revolute = [n for n in self.robot.joint_names
                        if joints[n][1] != pybullet.JOINT_REVOLUTE]
        if not_revolute:
            raise ValueError(f'joints {not_revolute} are not revolute in PyBullet')
        missing = [f for f in self.robot.foot_links if f not in links]
        if missing:
            raise ValueError(f'foot links {missing} are not links of '
                             f'{self.robot.description_path.name}')
        self._joints = [joints[n][0] for n in self.robot.joint_names]
        self._feet = [links[f] for f in self.robot.foot_links]
        self._movable = [i for i in range(num)
                         if bc.getJointInfo(self._body, i)[2] != pybullet.JOINT_FIXED]
        # Every movable joint (rotors too): switch off PyBullet's default velocity motor (max
        # force 0), so only the applied torques act; joints outside robot.yaml stay passive.
        bc.setJointMotorControlArray(self._body, self._movable, pybullet.VELOCITY_CONTROL,
                                     forces=[0.0] * len(self._movable))
        sliding, torsional, rolling = FLOOR_FRICTION
        for link in range(-1, num):
            # maxJointVelocity: Bullet clamps every joint speed to 100 rad/s by default (the
            # rotors turn N times faster than their joints); MuJoCo has no such clamp.
            bc.changeDynamics(self._body, link, lateralFriction=sliding,
                              spinningFriction=torsional, rollingFriction=rolling,
                              restitution=0.0, linearDamping=0.0, angularDamping=0.0,
                              jointDamping=0.0, maxJointVelocity=MAX_JOINT_SPEED_RAD_S)
        self._rotor_index = gear_rotors(bc, self._body, {n: v[0] for n, v in joints.items()},
                                        self._rotors, self.config.rotor_gear_ratio)
        # rotor inertia added to each joint's child link [kg*m^2] ('link_inertia' only)
        self.armature_added_kg_m2: Dict[str, float] = {}
        if self.config.armature == 'link_inertia':
            for spec in self.robot.joints:
                if spec.armature_kg_m2 > 0.0:
                    self._add_link_inertia(spec.name, joints[spec.name][0],
                                           joints[spec.name][2], spec.armature_kg_m2)
        base_info = bc.getDynamicsInfo(self._body, -1)
        # base link frame -> base inertial (centre of mass) frame: PyBullet's base pose
        self._base_com_pos_local = np.asarray(base_info[3], dtype=np.float64)
        self._base_com_quat_local = quat_xyzw_to_wxyz(np.asarray(base_info[4], np.float64))

    def _add_link_inertia(self, name: str, link: int, axis_link: np.ndarray,
                          armature_kg_m2: float) -> None:
        """Add ``armature_kg_m2`` to link ``link``'s principal inertia about the joint axis."""
        bc = self._client
        info = bc.getDynamicsInfo(self._body, link)
        inertia = np.asarray(info[2], dtype=np.float64)
        # the joint axis (in the link frame) expressed in the link's inertial (principal) frame
        rot = rotation_matrix_wxyz(quat_xyzw_to_wxyz(np.asarray(info[4], dtype=np.float64)))
        axis = rot.T @ (axis_link / np.linalg.norm(axis_link))
        principal = int(np.argmax(np.abs(axis)))
        if abs(abs(axis[principal]) - 1.0) > _AXIS_ALIGNED_TOL:
            raise ValueError(
                f'joint {name!r}: its axis {axis.round(4).tolist()} is not along a principal '
                "axis of its child link's inertia, so its armature cannot be added as link "
                "inertia; use armature='rotor'")
        inertia[principal] += armature_kg_m2
        bc.changeDynamics(self._body, link, localInertiaDiagonal=inertia.tolist())
        self.armature_added_kg_m2[name] = float(armature_kg_m2)

    def joint_inertia_kg_m2(self) -> np.ndarray:
        """
        Return the joint-space inertia of the actuated joints [kg*m^2], policy order, [n, n].

        The joint block of the mass matrix at the current pose, with each rotor's speed tied
        to its joint by the gear ratio, as the gear constraints hold it: comparable with
        the same block of MuJoCo's mass matrix (rigid bodies plus armature on the diagonal).
        Not available with ``armature='link_inertia'`` (Bullet's inverse dynamics refuses
        the unphysical inertia tensors it makes).
        """
        bc = self._client
        positions = [bc.getJointState(self._body, i)[0] for i in self._movable]
        full = np.asarray(bc.calculateMassMatrix(self._body, positions), dtype=np.float64)
        base = full.shape[0] - len(self._movable)  # 6 base dofs come first when floating
        column = {index: base + k for k, index in enumerate(self._movable)}
        tie = np.zeros((full.shape[0], self.robot.num_joints))
        for k, (name, index) in enumerate(zip(self.robot.joint_names, self._joints)):
            tie[column[index], k] = 1.0
            if name in self._rotor_index:
                tie[column[self._rotor_index[name]], k] = self.config.rotor_gear_ratio
        return tie.T @ full @ tie

    @property
    def rotor_joints(self) -> Tuple[str, ...]:
        """Return the joints that carry a geared rotor (``armature='rotor'``), policy order."""
        return tuple(n for n in self.robot.joint_names if n in self._rotor_index)

    def gear_slip_rad_s(self) -> float:
        """Return max over the rotors of |rotor speed / N - joint speed| now [rad/s] (0: none)."""
        if not self._rotor_index:
            return 0.0
        names = self.rotor_joints
        rotor = np.array([s[1] for s in self._client.getJointStates(
            self._body, [self._rotor_index[n] for n in names])])
        joint = self._state()['qd'][[self.robot.joint_names.index(n) for n in names]]
        return float(np.max(np.abs(rotor / self.config.rotor_gear_ratio - joint)))

    def engine_parameters(self) -> Dict[str, float]:
        """Return PyBullet's physics engine parameters in force (for reports)."""
        params = self._client.getPhysicsEngineParameters()
        return {str(k): (float(v) if isinstance(v, (int, float)) else v)
                for k, v in params.items()}

    # ---------------------------------------------------------------- control
    def reset(self, base_xy_m: Sequence[float] = (0.0, 0.0), yaw_rad: float = 0.0,
              joint_pos_rad: Optional[Sequence[float]] = None,
              base_height_m: Optional[float] = None) -> None:
        """
        Reset to rest: default pose (or ``joint_pos_rad``), base upright at ``yaw_rad``.

        The base is placed at ``base_xy_m`` and ``base_height_m`` (default: the robot's
        nominal base height), with zero velocity; time restarts at 0. The world is rebuilt,
        so no contact or solver state carries over from the previous run.
        """
        pos, quat = self._reset_base_pose(base_xy_m, yaw_rad, base_height_m)
        joints = (self.robot.default_pos_rad if joint_pos_rad is None
                  else self._check_joint_vector(joint_pos_rad, 'joint_pos_rad'))
        self._build()
        self._set_base_pose(pos, quat)
        for index, q in zip(self._joints, joints):
            self._client.resetJointState(self._body, index, float(q), 0.0)
        self._time_s = 0.0
        self._applied = np.zeros(self.robot.num_joints)
        self._cache = {}
        self.max_gear_slip_rad_s = 0.0
        """Largest :meth:`gear_slip_rad_s` after any step since the reset [rad/s]."""

    def _set_base_pose(self, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> None:
        """Place the base link frame at ``pos_m``/``quat_wxyz`` (PyBullet poses the COM)."""
        com_quat = quat_wxyz_multiply(quat_wxyz, self._base_com_quat_local)
        com_pos = pos_m + rotation_matrix_wxyz(quat_wxyz) @ self._base_com_pos_local
        xyzw = [com_quat[1], com_quat[2], com_quat[3], com_quat[0]]
        self._client.resetBasePositionAndOrientation(self._body, com_pos.tolist(), xyzw)
        self._client.resetBaseVelocity(self._body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def step(self, effort_nm: Sequence[float]) -> None:
        """
        Apply joint efforts [N*m] (policy order) for one physics step.

        Raises ValueError for a wrong length or a non-finite entry; efforts are clamped to
        +/- the effort limits before they are applied and held over the substeps.
        """
        effort = self._check_joint_vector(effort_nm, 'effort_nm')
        self._applied = np.clip(effort, -self._effort_limit, self._effort_limit)
        forces = self._applied.tolist()
        for _ in range(self.config.substeps):
            # PyBullet clears applied torques after every Bullet step: apply them each time
            self._client.setJointMotorControlArray(self._body, self._joints,
                                                   pybullet.TORQUE_CONTROL, forces=forces)
            self._client.stepSimulation()
        self._time_s += self._dt_s
        self._cache = {}
        if self._rotor_index:
            self.max_gear_slip_rad_s = max(self.max_gear_slip_rad_s, self.gear_slip_rad_s())

    def _add_base_lin_vel_world(self, delta_m_s: np.ndarray) -> None:
        """Add to the base's linear velocity [m/s, world frame]; see :meth:`push`."""
        lin, ang = self._client.getBaseVelocity(self._body)
        self._client.resetBaseVelocity(self._body, (np.asarray(lin) + delta_m_s).tolist(), ang)
        self._cache = {}

    # ---------------------------------------------------------------- state
    @property
    def client(self) -> bullet_client.BulletClient:
        """
        Return the PyBullet client, for raw access (its base pose is the COM's, quat xyzw).

        Readouts are cached until the next step, reset or push: call :meth:`refresh` after
        changing the state through the client.
        """
        return self._client

    def refresh(self) -> None:
        """Drop the cached readouts (after the state was changed through :attr:`client`)."""
        self._cache = {}

    @property
    def body_id(self) -> int:
        """Return the robot's PyBullet body id."""
        return self._body

    def _state(self) -> Dict[str, np.ndarray]:
        """Read (once per state) joints and base from PyBullet; base in the link frame."""
        if self._cache:
            return self._cache
        bc = self._client
        states = bc.getJointStates(self._body, self._joints)
        com_pos, com_xyzw = bc.getBasePositionAndOrientation(self._body)
        com_lin, ang = bc.getBaseVelocity(self._body)
        com_quat = quat_xyzw_to_wxyz(np.asarray(com_xyzw, dtype=np.float64))
        quat = quat_wxyz_multiply(com_quat, quat_wxyz_conjugate(self._base_com_quat_local))
        quat = quat / np.linalg.norm(quat)
        rot = rotation_matrix_wxyz(quat)
        offset = rot @ self._base_com_pos_local  # link origin -> COM, world frame
        ang = np.asarray(ang, dtype=np.float64)
        self._cache = {
            'q': np.array([s[0] for s in states]),
            'qd': np.array([s[1] for s in states]),
            'pos': np.asarray(com_pos, dtype=np.float64) - offset,
            'quat': quat,
            'rot': rot,
            # velocity of the link origin: v_origin = v_com + w x (p_origin - p_com)
            'lin': np.asarray(com_lin, dtype=np.float64) + np.cross(ang, -offset),
            'ang': ang,
        }
        return self._cache

    @property
    def time_s(self) -> float:
        """Return the simulation time [s]."""
        return self._time_s

    @property
    def timestep_s(self) -> float:
        """Return the physics step [s] (each split into ``config.substeps`` Bullet steps)."""
        return self._dt_s

    @property
    def joint_pos_rad(self) -> np.ndarray:
        """Return joint positions [rad], policy order."""
        return self._state()['q'].copy()

    @property
    def joint_vel_rad_s(self) -> np.ndarray:
        """Return joint velocities [rad/s], policy order."""
        return self._state()['qd'].copy()

    @property
    def joint_effort_nm(self) -> np.ndarray:
        """Return the efforts applied in the last step (after clamping) [N*m], policy order."""
        return self._applied.copy()

    @property
    def base_pos_m(self) -> np.ndarray:
        """Return the base link origin in the world [m]."""
        return self._state()['pos'].copy()

    @property
    def base_quat_wxyz(self) -> np.ndarray:
        """Return the base link orientation (world from body) as a unit quaternion wxyz."""
        return self._state()['quat'].copy()

    @property
    def base_lin_vel_world_m_s(self) -> np.ndarray:
        """Return the base link origin's linear velocity in the world frame [m/s]."""
        return self._state()['lin'].copy()

    @property
    def base_lin_vel_body_m_s(self) -> np.ndarray:
        """Return the base link origin's linear velocity in the base frame [m/s]."""
        state = self._state()
        return np.asarray(world_to_body(state['quat'], state['lin']), dtype=np.float64)

    @property
    def base_ang_vel_world_rad_s(self) -> np.ndarray:
        """Return the base angular velocity in the world frame [rad/s]."""
        return self._state()['ang'].copy()

    @property
    def base_ang_vel_body_rad_s(self) -> np.ndarray:
        """Return the base angular velocity in the base frame [rad/s] (what a gyro measures)."""
        state = self._state()
        return np.asarray(world_to_body(state['quat'], state['ang']), dtype=np.float64)

    @property
    def foot_pos_world_m(self) -> np.ndarray:
        """Return the foot links' origins in the world [m], shape [F, 3]."""
        links = self._client.getLinkStates(self._body, self._feet, computeForwardKinematics=1)
        return np.array([s[4] for s in links], dtype=np.float64)

    @property
    def foot_lin_vel_world_m_s(self) -> np.ndarray:
        """Return the foot links' centre-of-mass velocities, world frame [m/s], shape [F, 3]."""
        links = self._client.getLinkStates(self._body, self._feet, computeLinkVelocity=1,
                                           computeForwardKinematics=1)
        return np.array([s[6] for s in links], dtype=np.float64)

    @property
    def foot_in_contact(self) -> np.ndarray:
        """Return whether each foot link touches the ground, shape [F]."""
        out = np.zeros(len(self._feet), dtype=bool)
        for i, link in enumerate(self._feet):
            points = self._client.getContactPoints(bodyA=self._body, bodyB=self._ground,
                                                   linkIndexA=link)
            out[i] = any(point[8] <= 0.0 for point in points)  # contact distance [m]
        return out

    def _base_z_axis_world_z(self) -> float:
        """Return R[2, 2] of the base link (world from body); see :meth:`tilt_rad`."""
        return float(self._state()['rot'][2, 2])

    def close(self) -> None:
        """Disconnect from PyBullet and remove the generated URDF (the sim is unusable after)."""
        if self._client is not None:
            self._client.disconnect()
            self._client = None
        if self._urdf_dir is not None:
            self._urdf_dir.cleanup()
            self._urdf_dir = None
