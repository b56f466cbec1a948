"""
The MuJoCo model of a robot: floating base, ground plane, one motor per joint in policy order.

:func:`build_mujoco_model` turns any robot of :mod:`humanoid_rl_ros.robot.description` into a
MuJoCo model with a free-floating base, a ground plane at z = 0 and one motor actuator per joint
in policy order, so that ``data.ctrl`` holds joint efforts [N*m] in policy order. The address
helpers map policy-order joints and named bodies to ``qpos``/``qvel`` indices. An optional
:class:`Terrain` tilts the ground plane (a slope) or lays a random heightfield over it (rough
ground).
"""

from dataclasses import dataclass
import math
from typing import Optional, Sequence

from humanoid_rl_ros.robot.description import (_finite, _load_spec, RobotConfig, RobotConfigError,
                                               validate_against_model)
import mujoco
import numpy as np

__all__ = [
    'base_qpos_adr',
    'body_ids',
    'build_mujoco_model',
    'default_qpos',
    'FLOOR_COLLISION_BITS',
    'FLOOR_FRICTION',
    'FLOOR_GEOM_NAME',
    'HFIELD_GEOM_NAME',
    'IMU_ACC_SENSOR',
    'IMU_GYRO_SENSOR',
    'IMU_SITE_NAME',
    'joint_dof_adr',
    'joint_qpos_adr',
    'ROBOT_COLLISION_BITS',
    'Terrain',
]

# Collision filtering: a pair collides when (contype_a & conaffinity_b) or
# (contype_b & conaffinity_a) is non-zero. Robot geoms get contype 2 / conaffinity 1 and
# the floor gets contype 1 / conaffinity 2, so robot-floor pairs collide and robot-robot
# pairs (self collision) never do.
ROBOT_COLLISION_BITS = (2, 1)
FLOOR_COLLISION_BITS = (1, 2)
FLOOR_GEOM_NAME = 'floor'
FLOOR_FRICTION = (1.0, 0.005, 0.0001)  # sliding, torsional, rolling
IMU_SITE_NAME = 'imu'
IMU_ACC_SENSOR = 'imu_acc'
IMU_GYRO_SENSOR = 'imu_gyro'
HFIELD_GEOM_NAME = 'rough_ground'


@dataclass(frozen=True)
class Terrain:
    """
    Shape of the ground: a plane tilted about the world y axis, or a random heightfield.

    Both keep the ground at z = 0 under the world origin, where the robot is reset, so a reset at
    the origin with the nominal base height needs no change.
    """

    slope_rad: float = 0.0
    """Ground pitch [rad]: the plane rises along +x for > 0 (its normal is tilted towards -x)."""
    rough_amplitude_m: float = 0.0
    """Peak-to-peak height of the heightfield [m]; 0: no heightfield."""
    rough_cell_m: float = 0.2
    """Spacing of the heightfield's grid points [m] (MuJoCo joins them by flat triangles)."""
    rough_size_m: float = 40.0
    """Side of the square heightfield, centred on the origin [m]; the plane lies beyond."""
    rough_flat_radius_m: float = 0.5
    """Grid points closer than this to the origin are at 0 (a flat pad to reset on) [m]."""
    seed: int = 0
    """Seed of the heightfield's random heights."""

    def __post_init__(self) -> None:
        """Check the values (finite, ranges) and that at most one of slope/rough is set."""
        for name in ('slope_rad', 'rough_amplitude_m', 'rough_cell_m', 'rough_size_m',
                     'rough_flat_radius_m'):
            _finite(getattr(self, name), name)
        if abs(self.slope_rad) >= math.radians(45.0):
            raise RobotConfigError(f'slope_rad must be within +/-45 deg, got {self.slope_rad}')
        if self.rough_amplitude_m < 0.0 or self.rough_flat_radius_m < 0.0:
            raise RobotConfigError('rough_amplitude_m and rough_flat_radius_m must be >= 0')
        if self.rough_cell_m <= 0.0 or self.rough_size_m < 2.0 * self.rough_cell_m:
            raise RobotConfigError('rough_cell_m must be > 0 and rough_size_m >= 2 cells')
        if self.slope_rad != 0.0 and self.rough_amplitude_m > 0.0:
            raise RobotConfigError('a Terrain is either a slope or rough ground, not both')

    @property
    def floor_quat_wxyz(self) -> np.ndarray:
        """Return the ground plane's orientation (a rotation about y by -slope_rad)."""
        half = -0.5 * self.slope_rad
        return np.array([math.cos(half), 0.0, math.sin(half), 0.0])

    def heightfield_m(self) -> np.ndarray:
        """
        Return the heightfield's grid heights [m], shape [rows along y, columns along x].

        Heights are uniform random in [0, rough_amplitude_m], scaled so that the highest point
        is exactly ``rough_amplitude_m``; points within ``rough_flat_radius_m`` of the origin
        are 0. Row 0 is at y = -rough_size_m / 2, column 0 at x = -rough_size_m / 2.
        """
        n = int(round(self.rough_size_m / self.rough_cell_m)) + 1
        rng = np.random.default_rng(self.seed)
        heights = rng.uniform(0.0, 1.0, (n, n))
        axis = np.linspace(-0.5 * self.rough_size_m, 0.5 * self.rough_size_m, n)
        xx, yy = np.meshgrid(axis, axis)  # [row = y, column = x]
        heights[np.hypot(xx, yy) < self.rough_flat_radius_m] = 0.0
        return heights / heights.max() * self.rough_amplitude_m

    def height_m(self, x_m: float, y_m: float) -> float:
        """
        Return the ground height [m] at a world point (x, y).

        The slope is exact; the heightfield is interpolated bilinearly between its grid points
        (MuJoCo uses two flat triangles per cell: the same at the grid points, within a few
        millimetres between them for these amplitudes).
        """
        if self.rough_amplitude_m <= 0.0:
            return float(x_m * math.tan(self.slope_rad))
        half = 0.5 * self.rough_size_m
        if not (-half <= x_m <= half and -half <= y_m <= half):
            return 0.0
        heights = self._heights_cache()
        n = heights.shape[0]
        fx = (x_m + half) / self.rough_cell_m
        fy = (y_m + half) / self.rough_cell_m
        c0, r0 = min(int(fx), n - 2), min(int(fy), n - 2)
        tx, ty = fx - c0, fy - r0
        top = heights[r0, c0] * (1 - tx) + heights[r0, c0 + 1] * tx
        bottom = heights[r0 + 1, c0] * (1 - tx) + heights[r0 + 1, c0 + 1] * tx
        return float(top * (1 - ty) + bottom * ty)

    def _heights_cache(self) -> np.ndarray:
        cache = self.__dict__.get('_heights')
        if cache is None:
            cache = self.heightfield_m()
            object.__setattr__(self, '_heights', cache)
        return cache


def _subtree_bodies(body: 'mujoco.MjsBody') -> list:
    """Return ``body`` and all its descendants."""
    out = [body]
    for child in body.bodies:
        out.extend(_subtree_bodies(child))
    return out


def build_mujoco_model(robot: RobotConfig, timestep_s: float = 0.005, *,
                       add_imu: bool = False,
                       terrain: Optional[Terrain] = None) -> 'mujoco.MjModel':
    """
    Compile a robot into a MuJoCo model ready for simulation.

    The model has: a free joint on the base link (qpos = [base xyz, base quat wxyz,
    joints...], qvel = [lin vel world, ang vel body, joint vels]); a ground plane named
    ``floor`` at z = 0 with friction 1.0 (existing planes of an MJCF world are replaced);
    self collisions disabled (only robot-vs-world contacts); the config's armature on each
    joint; one motor actuator per joint in policy order (named after its joint, gear 1,
    ctrlrange = +/- effort limit), replacing any actuators of an MJCF description; keyframe
    ``default`` with the base at the nominal height and the joints at the default pose.
    With ``add_imu`` an ``imu`` site on the base carries an accelerometer (``imu_acc``, with
    the gravity reaction a real accelerometer measures) and a gyro (``imu_gyro``). A
    ``terrain`` tilts the plane (:attr:`Terrain.slope_rad`) or adds a heightfield geom
    ``rough_ground`` on top of it (:attr:`Terrain.rough_amplitude_m`), with the floor's friction
    and collision bits.

    Joint qpos/qvel addresses follow the description's tree order, which need not be the
    policy order: use :func:`joint_qpos_adr` and :func:`joint_dof_adr`.
    """
    timestep_s = _finite(timestep_s, 'timestep_s')
    if timestep_s <= 0.0:
        raise RobotConfigError(f'timestep_s must be > 0, got {timestep_s}')
    spec = _load_spec(robot)

    for actuator in list(spec.actuators):
        spec.delete(actuator)
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    for key in list(spec.keys):
        spec.delete(key)

    base = spec.body(robot.base_link)
    if base is None:
        raise RobotConfigError(
            f'base_link {robot.base_link!r} is not a body of {robot.description_path.name}')
    if base.parent.name != spec.worldbody.name:
        raise RobotConfigError(
            f'base_link {robot.base_link!r} must be a direct child of the world (a root link)')
    base_joints = list(base.joints)
    if not any(j.type == mujoco.mjtJoint.mjJNT_FREE for j in base_joints):
        if base_joints:
            raise RobotConfigError(
                f'base_link {robot.base_link!r} already has non-free joints; cannot float it')
        base.add_freejoint()

    # Ground: one plane at z = 0 that collides with the robot only.
    for geom in list(spec.worldbody.geoms):
        if geom.type == mujoco.mjtGeom.mjGEOM_PLANE:
            spec.delete(geom)
    floor = spec.worldbody.add_geom()
    floor.name = FLOOR_GEOM_NAME
    floor.type = mujoco.mjtGeom.mjGEOM_PLANE
    floor.size = [0.0, 0.0, 0.05]
    floor.friction = list(FLOOR_FRICTION)
    floor.rgba = [0.6, 0.65, 0.7, 1.0]
    ground = [floor]
    if terrain is not None and terrain.slope_rad != 0.0:
        floor.quat = list(terrain.floor_quat_wxyz)
    if terrain is not None and terrain.rough_amplitude_m > 0.0:
        heights = terrain.heightfield_m()
        hfield = spec.add_hfield()
        hfield.name = HFIELD_GEOM_NAME
        hfield.nrow, hfield.ncol = heights.shape
        half = 0.5 * terrain.rough_size_m
        # size: x and y half-extents, top elevation, depth of the solid base below z = 0
        hfield.size = [half, half, terrain.rough_amplitude_m, 0.1]
        hfield.userdata = list((heights / terrain.rough_amplitude_m).reshape(-1))
        rough = spec.worldbody.add_geom()
        rough.name = HFIELD_GEOM_NAME
        rough.type = mujoco.mjtGeom.mjGEOM_HFIELD
        rough.hfieldname = HFIELD_GEOM_NAME
        rough.friction = list(FLOOR_FRICTION)
        rough.rgba = [0.55, 0.6, 0.55, 1.0]
        ground.append(rough)
    # Classify bodies by walking the tree (MjSpec hands out fresh Python wrappers, so
    # id() comparisons are meaningless); the base is a direct child of the world.
    tree = [(spec.worldbody, False)]
    tree += [(b, child.name == robot.base_link)
             for child in spec.worldbody.bodies for b in _subtree_bodies(child)]
    for body, is_robot in tree:
        for geom in body.geoms:
            if geom.contype == 0 and geom.conaffinity == 0:
                continue  # visual-only geom
            geom.contype, geom.conaffinity = (
                ROBOT_COLLISION_BITS if is_robot else FLOOR_COLLISION_BITS)
    for geom in ground:
        geom.contype, geom.conaffinity = FLOOR_COLLISION_BITS

    for joint in robot.joints:
        mjs_joint = spec.joint(joint.name)
        if mjs_joint is None:
            raise RobotConfigError(
                f'joint {joint.name!r} from robot.yaml is missing from '
                f'{robot.description_path.name}')
        mjs_joint.armature = joint.armature_kg_m2
        mjs_joint.actfrclimited = mujoco.mjtLimited.mjLIMITED_TRUE
        mjs_joint.actfrcrange = [-joint.effort_limit_nm, joint.effort_limit_nm]
        actuator = spec.add_actuator()
        actuator.name = joint.name
        actuator.target = joint.name
        actuator.trntype = mujoco.mjtTrn.mjTRN_JOINT
        actuator.gear = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.ctrlrange = [-joint.effort_limit_nm, joint.effort_limit_nm]

    if add_imu:
        site = base.add_site()
        site.name = IMU_SITE_NAME
        acc = spec.add_sensor()
        acc.name = IMU_ACC_SENSOR
        acc.type = mujoco.mjtSensor.mjSENS_ACCELEROMETER
        acc.objtype = mujoco.mjtObj.mjOBJ_SITE
        acc.objname = IMU_SITE_NAME
        gyro = spec.add_sensor()
        gyro.name = IMU_GYRO_SENSOR
        gyro.type = mujoco.mjtSensor.mjSENS_GYRO
        gyro.objtype = mujoco.mjtObj.mjOBJ_SITE
        gyro.objname = IMU_SITE_NAME

    spec.option.timestep = timestep_s
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.iterations = 10
    spec.option.ls_iterations = 20
    spec.add_key().name = 'default'

    try:
        model = spec.compile()
    except Exception as exc:
        raise RobotConfigError(
            f'{robot.description_path.name}: MuJoCo cannot compile the robot: {exc}') from exc
    validate_against_model(robot, model)
    model.key_qpos[0] = default_qpos(model, robot)
    return model


def _ids(model: 'mujoco.MjModel', obj: 'mujoco.mjtObj', names: Sequence[str]) -> np.ndarray:
    ids = np.array([mujoco.mj_name2id(model, obj, n) for n in names], dtype=np.int64)
    missing = [n for n, i in zip(names, ids) if i < 0]
    if missing:
        raise RobotConfigError(f'not in the MuJoCo model: {missing}')
    return ids


def joint_qpos_adr(model: 'mujoco.MjModel', robot: RobotConfig) -> np.ndarray:
    """Return qpos addresses of the robot's joints, in policy order."""
    return model.jnt_qposadr[_ids(model, mujoco.mjtObj.mjOBJ_JOINT, robot.joint_names)].copy()


def joint_dof_adr(model: 'mujoco.MjModel', robot: RobotConfig) -> np.ndarray:
    """Return qvel (dof) addresses of the robot's joints, in policy order."""
    return model.jnt_dofadr[_ids(model, mujoco.mjtObj.mjOBJ_JOINT, robot.joint_names)].copy()


def body_ids(model: 'mujoco.MjModel', names: Sequence[str]) -> np.ndarray:
    """Return body ids of the named bodies (e.g. ``robot.foot_links``)."""
    return _ids(model, mujoco.mjtObj.mjOBJ_BODY, names)


def base_qpos_adr(model: 'mujoco.MjModel', robot: RobotConfig) -> int:
    """Return the qpos address of the base free joint (xyz then quat wxyz follow)."""
    base = int(body_ids(model, [robot.base_link])[0])
    jnt = int(model.body_jntadr[base])
    if jnt < 0 or model.jnt_type[jnt] != mujoco.mjtJoint.mjJNT_FREE:
        raise RobotConfigError(f'base_link {robot.base_link!r} has no free joint in the model')
    return int(model.jnt_qposadr[jnt])


def default_qpos(model: 'mujoco.MjModel', robot: RobotConfig,
                 base_pos_m: 'Sequence[float] | None' = None,
                 base_quat_wxyz: 'Sequence[float] | None' = None) -> np.ndarray:
    """Return a qpos: base at ``base_pos_m`` (default: nominal height), joints at default."""
    qpos = model.qpos0.copy()
    adr = base_qpos_adr(model, robot)
    pos = (0.0, 0.0, robot.nominal_base_height_m) if base_pos_m is None else base_pos_m
    quat = (1.0, 0.0, 0.0, 0.0) if base_quat_wxyz is None else base_quat_wxyz
    qpos[adr:adr + 3] = np.asarray(pos, dtype=np.float64)
    qpos[adr + 3:adr + 7] = np.asarray(quat, dtype=np.float64)
    qpos[joint_qpos_adr(model, robot)] = robot.default_pos_rad
    return qpos
