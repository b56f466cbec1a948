"""
The MuJoCo model of a robot: floating base, ground plane, one motor per joint in policy order.

:func:`build_mujoco_model` turns any robot of :mod:`humanoid_rl_ros.robot.description` into a
MuJoCo model with a free-floating base, a ground plane at z = 0 and one motor actuator per joint
in policy order, so that ``data.ctrl`` holds joint efforts [N*m] in policy order. The address
helpers map policy-order joints and named bodies to ``qpos``/``qvel`` indices. An optional
:class:`Terrain` adds a ramp (a slope) or rough ground, as a heightfield.
"""

from dataclasses import dataclass, field
import math
from typing import List, Optional, Sequence, Tuple

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
    'sole_sphere_geoms',
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
HFIELD_GEOM_NAME = 'terrain'
SOLE_SPHERE_SUFFIX = '_sole_sphere_'
"""Sole spheres are named ``<foot link>_sole_sphere_<k>``."""
SOLE_SPHERE_RADIUS_M = 0.01
"""Radius of the spheres that stand in for a foot box's sole with ``sole_spheres`` [m]."""
SOLVER_ITERATIONS = 10
"""Constraint solver iterations per physics step of every model built here (mjlab: 10)."""
SOLVER_LS_ITERATIONS = 20
"""Line search iterations per solver iteration (mjlab: 20)."""


@dataclass(frozen=True)
class Terrain:
    """
    Shape of the ground: a ramp (slope) or a random heightfield (rough ground), both heightfields.

    Both keep a flat patch at z = 0 around the world origin, where the robot is reset, so a reset
    at the origin with the nominal base height needs no change. The ramp is flat for
    x < ``slope_start_m`` and then rises (``slope_rad`` > 0) or falls (< 0) along +x with
    constant slope over ``slope_length_m``; beyond its ends (and beyond ``slope_half_width_m``
    in y) there is no ground but the plane far below. Rough ground: heights uniform random in
    [0, ``rough_amplitude_m``] on a grid, flat within ``rough_flat_radius_m`` of the origin, the
    plane at z = 0 beyond the grid. A given grid (``grid_heights_m`` over ``grid_extent_m``, e.g.
    the training terrain's tiles) is used as it is; it is neither a slope nor rough ground.
    """

    slope_rad: float = 0.0
    """Ramp angle [rad]: > 0 rises along +x, < 0 falls; 0: no ramp."""
    slope_start_m: float = 0.5
    """x where the ramp starts [m] (flat before, so the robot starts on flat ground)."""
    slope_length_m: float = 15.0
    """Length of the ramp along x [m]."""
    slope_half_width_m: float = 6.0
    """Half width of the ramp along y [m]."""
    slope_cell_m: float = 0.1
    """Grid spacing of the ramp's heightfield along x [m]."""
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
    grid_heights_m: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    """A given heightfield [m], shape [rows along y, columns along x] (at least 2 x 2), or None."""
    grid_extent_m: Optional[Tuple[float, float, float, float]] = None
    """(x min, x max, y min, y max) of ``grid_heights_m`` [m]: its corner points lie there."""

    def __post_init__(self) -> None:
        """Check the values (finite, ranges) and that at most one of slope/rough/grid is set."""
        for name in ('slope_rad', 'slope_start_m', 'slope_length_m', 'slope_half_width_m',
                     'slope_cell_m', 'rough_amplitude_m', 'rough_cell_m', 'rough_size_m',
                     'rough_flat_radius_m'):
            _finite(getattr(self, name), name)
        if abs(self.slope_rad) >= math.radians(45.0):
            raise RobotConfigError(f'slope_rad must be within +/-45 deg, got {self.slope_rad}')
        if (self.slope_start_m < 0.0 or self.slope_length_m <= 0.0
                or self.slope_half_width_m <= 0.0 or self.slope_cell_m <= 0.0):
            raise RobotConfigError('slope_start_m must be >= 0; the ramp length, half width '
                                   'and cell must be > 0')
        if self.rough_amplitude_m < 0.0 or self.rough_flat_radius_m < 0.0:
            raise RobotConfigError('rough_amplitude_m and rough_flat_radius_m must be >= 0')
        if self.rough_cell_m <= 0.0 or self.rough_size_m < 2.0 * self.rough_cell_m:
            raise RobotConfigError('rough_cell_m must be > 0 and rough_size_m >= 2 cells')
        if self.slope_rad != 0.0 and self.rough_amplitude_m > 0.0:
            raise RobotConfigError('a Terrain is either a slope or rough ground, not both')
        if (self.grid_heights_m is None) != (self.grid_extent_m is None):
            raise RobotConfigError('grid_heights_m and grid_extent_m go together')
        if self.grid_heights_m is not None:
            self._check_grid()

    def _check_grid(self) -> None:
        """Check a given grid: 2-D, at least 2 x 2, finite, over a non-empty extent."""
        if self.slope_rad != 0.0 or self.rough_amplitude_m > 0.0:
            raise RobotConfigError('a Terrain with a given grid is neither a slope nor rough')
        heights = np.asarray(self.grid_heights_m, dtype=np.float64)
        if heights.ndim != 2 or min(heights.shape) < 2 or not np.isfinite(heights).all():
            raise RobotConfigError('grid_heights_m must be a finite 2-D array of at least 2 x 2')
        x0, x1, y0, y1 = (_finite(v, 'grid_extent_m') for v in self.grid_extent_m)
        if not (x1 > x0 and y1 > y0):
            raise RobotConfigError(f'grid_extent_m must be increasing, got {self.grid_extent_m}')

    @property
    def has_heightfield(self) -> bool:
        """Return whether the ground needs a heightfield (a ramp, rough ground or a grid)."""
        return (self.slope_rad != 0.0 or self.rough_amplitude_m > 0.0
                or self.grid_heights_m is not None)

    def _ramp_x_m(self) -> Tuple[float, float]:
        """Return the x extent of the ramp's heightfield [m] (a flat run-up, then the ramp)."""
        return (-self.slope_start_m - 2.0, self.slope_start_m + self.slope_length_m)

    def heightfield_m(self) -> np.ndarray:
        """
        Return the heightfield's grid heights [m], shape [rows along y, columns along x].

        Ramp: 0 up to ``slope_start_m``, then ``(x - slope_start_m) * tan(slope_rad)``. Rough:
        uniform random in [0, rough_amplitude_m], scaled so that the highest point is exactly
        ``rough_amplitude_m``, 0 within ``rough_flat_radius_m`` of the origin. Row 0 is at the
        lowest y, column 0 at the lowest x (see :meth:`heightfield_extent_m`). A given grid is
        returned as a float64 copy.
        """
        if self.grid_heights_m is not None:
            return np.array(self.grid_heights_m, dtype=np.float64)
        if self.slope_rad != 0.0:
            x0, x1 = self._ramp_x_m()
            n = int(round((x1 - x0) / self.slope_cell_m)) + 1
            x = np.linspace(x0, x1, n)
            heights = np.maximum(x - self.slope_start_m, 0.0) * math.tan(self.slope_rad)
            return np.tile(heights, (3, 1))
        n = int(round(self.rough_size_m / self.rough_cell_m)) + 1
        rng = np.random.default_rng(self.seed)
        heights = rng.uniform(0.0, 1.0, (n, n))
        axis = np.linspace(-0.5 * self.rough_size_m, 0.5 * self.rough_size_m, n)
        xx, yy = np.meshgrid(axis, axis)  # [row = y, column = x]
        heights[np.hypot(xx, yy) < self.rough_flat_radius_m] = 0.0
        return heights / heights.max() * self.rough_amplitude_m

    def heightfield_extent_m(self) -> Tuple[float, float, float, float]:
        """Return the heightfield's (x min, x max, y min, y max) [m]."""
        if self.grid_extent_m is not None:
            return tuple(float(v) for v in self.grid_extent_m)
        if self.slope_rad != 0.0:
            x0, x1 = self._ramp_x_m()
            return (x0, x1, -self.slope_half_width_m, self.slope_half_width_m)
        half = 0.5 * self.rough_size_m
        return (-half, half, -half, half)

    def height_m(self, x_m: float, y_m: float) -> float:
        """
        Return the ground height [m] at a world point (x, y).

        Interpolated bilinearly between the heightfield's grid points (MuJoCo uses two flat
        triangles per cell: the same at the grid points and everywhere on the ramp, within a few
        millimetres between the points of rough ground). Outside the heightfield: the plane's
        height (0, or 1 m below the lowest point of a ramp down).
        """
        if not self.has_heightfield:
            return 0.0
        x0, x1, y0, y1 = self.heightfield_extent_m()
        heights = self._heights_cache()
        if not (x0 <= x_m <= x1 and y0 <= y_m <= y1):
            low = float(heights.min())
            return low - 1.0 if low < 0.0 else 0.0  # the plane (moved below a ramp down)
        rows, cols = heights.shape
        fx = (x_m - x0) / (x1 - x0) * (cols - 1)
        fy = (y_m - y0) / (y1 - y0) * (rows - 1)
        c0, r0 = min(int(fx), cols - 2), min(int(fy), rows - 2)
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


def set_solver_iterations(model: 'mujoco.MjModel', iterations: Optional[int] = None,
                          ls_iterations: Optional[int] = None) -> None:
    """
    Set the constraint solver's iteration limits of ``model`` in place (None: keep).

    ``iterations``: solver iterations per physics step; ``ls_iterations``: line search
    iterations per solver iteration.  Raises RobotConfigError for a value that is not a
    positive integer (and then changes nothing).
    """
    given = {name: value for name, value in (('iterations', iterations),
                                             ('ls_iterations', ls_iterations))
             if value is not None}
    for name, value in given.items():
        if not _is_positive_int(value):
            raise RobotConfigError(f'solver {name} must be a positive integer, got {value!r}')
    for name, value in given.items():
        setattr(model.opt, name, int(value))


def _is_positive_int(value: object) -> bool:
    """Return whether ``value`` is a whole number >= 1 (a bool is not)."""
    return not isinstance(value, bool) and int(value) == value and value >= 1


def _check_collision_accuracy(ccd_iterations: Optional[int],
                              ccd_tolerance: Optional[float]) -> None:
    """Raise RobotConfigError unless each given limit is valid (see set_collision_accuracy)."""
    if ccd_iterations is not None and not _is_positive_int(ccd_iterations):
        raise RobotConfigError(
            f'ccd_iterations must be a positive integer, got {ccd_iterations!r}')
    if ccd_tolerance is not None and not (math.isfinite(ccd_tolerance) and ccd_tolerance > 0):
        raise RobotConfigError(
            f'ccd_tolerance must be a positive number of metres, got {ccd_tolerance!r}')


def set_collision_accuracy(model: 'mujoco.MjModel', ccd_iterations: Optional[int] = None,
                           ccd_tolerance: Optional[float] = None) -> None:
    """
    Set the convex collision test's iteration limit and tolerance of ``model`` in place.

    ``ccd_iterations``: GJK and EPA iterations per geom pair (MuJoCo: 35); ``ccd_tolerance``:
    their convergence tolerance [m] (MuJoCo: 1e-6).  None keeps the model's.  MuJoCo Warp
    tests a geom against a heightfield prism by prism with these, so they set much of the
    cost of terrain.  Raises RobotConfigError for an iteration count that is not a positive
    integer or a tolerance that is not a positive finite number (and then changes nothing).
    """
    _check_collision_accuracy(ccd_iterations, ccd_tolerance)
    if ccd_iterations is not None:
        model.opt.ccd_iterations = int(ccd_iterations)
    if ccd_tolerance is not None:
        model.opt.ccd_tolerance = float(ccd_tolerance)


def parse_collision_accuracy(setting: str) -> Tuple[int, float]:
    """
    Return (ccd_iterations, ccd_tolerance [m]) of an ``ITERATIONS:TOLERANCE_M`` string.

    The command-line form of :func:`set_collision_accuracy`'s two limits (``12:1e-4``).
    Raises RobotConfigError naming the setting if it is not one.
    """
    try:
        iterations, tolerance = setting.split(':')
        out = int(iterations), float(tolerance)
    except ValueError:
        raise RobotConfigError(f'collision accuracy {setting!r} is not ITERATIONS:TOLERANCE_M '
                               '(e.g. 12:1e-4)') from None
    try:
        _check_collision_accuracy(*out)
    except RobotConfigError as exc:
        raise RobotConfigError(f'collision accuracy {setting!r}: {exc}') from None
    return out


def robot_collision_geoms(model: 'mujoco.MjModel') -> List[int]:
    """Return the ids of the geoms that can collide and belong to a body (not the world)."""
    return [g for g in range(model.ngeom) if model.geom_bodyid[g] != 0
            and (model.geom_contype[g] or model.geom_conaffinity[g])]


def keep_ground_contacts(model: 'mujoco.MjModel', bodies: Sequence[str]) -> int:
    """
    Make only the geoms of ``bodies`` collide (in place); return how many geoms stop colliding.

    Every other geom of the robot gets no collision bits, so it passes through the ground (a
    training shortcut: mujoco_playground's feet-only rough-terrain scenes, mjlab's
    ``FEET_ONLY_COLLISION``).  Raises RobotConfigError for a body the model does not have.
    """
    keep = set()
    for name in bodies:
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
        if body < 0:
            raise RobotConfigError(f'body {name!r} is not in the model')
        keep.add(body)
    dropped = [g for g in robot_collision_geoms(model) if int(model.geom_bodyid[g]) not in keep]
    model.geom_contype[dropped] = 0
    model.geom_conaffinity[dropped] = 0
    return len(dropped)


def sole_sphere_geoms(model: 'mujoco.MjModel', foot: str) -> List[int]:
    """Return the ids of the sole spheres of body ``foot`` (none without ``sole_spheres``)."""
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, foot)
    prefix = f'{foot}{SOLE_SPHERE_SUFFIX}'
    return [g for g in range(model.ngeom) if int(model.geom_bodyid[g]) == body
            and (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or '').startswith(prefix)]


def _add_sole_spheres(spec: 'mujoco.MjSpec', model: 'mujoco.MjModel',
                      robot: RobotConfig) -> int:
    """
    Replace the collision of each foot link's boxes by six spheres on the box's sole.

    The sole is the face that points down with the robot at its default pose (``model``,
    compiled from ``spec``, at keyframe 0). The spheres sit at its four corners and the middle
    of its two long edges, inset by their radius, so their lowest points lie on the sole and the
    foot stands at the same height; they take the box's contact parameters and no mass. The box
    keeps its inertia and its looks but no longer collides. Return the number of boxes replaced.
    """
    data = mujoco.MjData(model)
    data.qpos[:] = model.key_qpos[0]
    mujoco.mj_kinematics(model, data)
    replaced = 0
    for foot in robot.foot_links:
        count = 0
        body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, foot)
        geom_ids = [g for g in range(model.ngeom) if model.geom_bodyid[g] == body_id]
        geoms = list(spec.body(foot).geoms)
        if len(geoms) != len(geom_ids):  # pragma: no cover - the compiler keeps every geom
            raise RobotConfigError(f'foot {foot!r}: spec and model disagree on its geoms')
        for geom, g in zip(geoms, geom_ids):
            if (int(model.geom_type[g]) != mujoco.mjtGeom.mjGEOM_BOX
                    or (geom.contype == 0 and geom.conaffinity == 0)):
                continue
            half = np.asarray(model.geom_size[g], dtype=float)
            xmat = np.asarray(data.geom_xmat[g], dtype=float).reshape(3, 3)
            down = int(np.argmax(np.abs(xmat[2])))  # the box axis closest to vertical
            sign = -np.sign(xmat[2, down])  # along it, the way that points down
            long_axis, short_axis = sorted((a for a in range(3) if a != down),
                                           key=lambda a: -half[a])
            radius = min(SOLE_SPHERE_RADIUS_M, 0.5 * float(half.min()))
            rot = np.zeros(9)
            mujoco.mju_quat2Mat(rot, model.geom_quat[g])
            rot = rot.reshape(3, 3)
            for u in (-1.0, 0.0, 1.0):
                for v in (-1.0, 1.0):
                    corner = np.zeros(3)
                    corner[down] = sign * (half[down] - radius)
                    corner[long_axis] = u * (half[long_axis] - radius)
                    corner[short_axis] = v * (half[short_axis] - radius)
                    sphere = spec.body(foot).add_geom()
                    sphere.name = f'{foot}{SOLE_SPHERE_SUFFIX}{count}'
                    count += 1
                    sphere.type = mujoco.mjtGeom.mjGEOM_SPHERE
                    sphere.size = [radius, 0.0, 0.0]
                    sphere.pos = list(np.asarray(model.geom_pos[g]) + rot @ corner)
                    sphere.contype, sphere.conaffinity = geom.contype, geom.conaffinity
                    sphere.condim, sphere.priority = geom.condim, geom.priority
                    sphere.friction = list(geom.friction)
                    sphere.solref, sphere.solimp = list(geom.solref), list(geom.solimp)
                    sphere.margin, sphere.gap = geom.margin, geom.gap
                    sphere.density = 0.0
                    sphere.group = 3
                    sphere.rgba = [0.8, 0.3, 0.3, 0.0]
            geom.contype, geom.conaffinity = 0, 0
            replaced += 1
    return replaced


def build_mujoco_model(robot: RobotConfig, timestep_s: float = 0.005, *,
                       add_imu: bool = False,
                       terrain: Optional[Terrain] = None,
                       sole_spheres: bool = False) -> 'mujoco.MjModel':
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
    ``terrain`` adds a heightfield geom ``terrain`` (a ramp or rough ground, see
    :class:`Terrain`) with the floor's friction and collision bits. With ``sole_spheres`` each
    foot link's collision boxes touch the ground through six small spheres on their soles
    (:func:`_add_sole_spheres`): a box against a heightfield is MuJoCo Warp's costliest
    collision test, a sphere one of its cheapest.

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
    if terrain is not None and terrain.has_heightfield:
        heights = terrain.heightfield_m()
        low, high = float(heights.min()), float(heights.max())
        x0, x1, y0, y1 = terrain.heightfield_extent_m()
        hfield = spec.add_hfield()
        hfield.name = HFIELD_GEOM_NAME
        hfield.nrow, hfield.ncol = heights.shape
        # size: x and y half-extents, elevation range, depth of the solid base below it
        span = max(high - low, 1e-6)  # a flat grid: any positive elevation range
        hfield.size = [0.5 * (x1 - x0), 0.5 * (y1 - y0), span, 0.1]
        hfield.userdata = list(((heights - low) / span).reshape(-1))
        geom = spec.worldbody.add_geom()
        geom.name = HFIELD_GEOM_NAME
        geom.type = mujoco.mjtGeom.mjGEOM_HFIELD
        geom.hfieldname = HFIELD_GEOM_NAME
        geom.pos = [0.5 * (x0 + x1), 0.5 * (y0 + y1), low]
        geom.friction = list(FLOOR_FRICTION)
        geom.rgba = [0.55, 0.6, 0.55, 1.0]
        ground.append(geom)
        if low < 0.0:  # a ramp down: the plane goes below its lowest point
            floor.pos = [0.0, 0.0, low - 1.0]
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
    spec.option.iterations = SOLVER_ITERATIONS
    spec.option.ls_iterations = SOLVER_LS_ITERATIONS
    spec.add_key().name = 'default'

    try:
        model = spec.compile()
    except Exception as exc:
        raise RobotConfigError(
            f'{robot.description_path.name}: MuJoCo cannot compile the robot: {exc}') from exc
    validate_against_model(robot, model)
    model.key_qpos[0] = default_qpos(model, robot)
    if sole_spheres:
        if not _add_sole_spheres(spec, model, robot):
            raise RobotConfigError(f'sole_spheres: no foot link of {robot.name!r} '
                                   f'({list(robot.foot_links)}) has a collision box')
        model = spec.compile()
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
