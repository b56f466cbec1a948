"""
Robot description: the typed robot config and its loader, checked against the description.

A robot lives in ``models/robots/<name>/`` as a description (URDF or MJCF) plus a
``robot.yaml`` that names the base link, the foot links and, in policy order, every
actuated joint with its default pose, PD gains, limits and reflected rotor inertia.

:func:`load_robot` parses the config and checks it against the description, compiled by
MuJoCo's compiler (which reads URDF and MJCF alike). The simulation model itself is built by
:mod:`humanoid_rl_ros.robot.mujoco_model`.
"""

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Any, Mapping
import xml.etree.ElementTree as ElementTree

import mujoco
import numpy as np
import yaml

__all__ = [
    'JointSpec',
    'RobotConfig',
    'RobotConfigError',
    'load_robot',
    'models_dir',
    'validate_against_model',
]

_JOINT_KEYS = {
    'name', 'default_pos_rad', 'kp_nm_per_rad', 'kd_nms_per_rad', 'effort_limit_nm',
    'velocity_limit_rad_s', 'armature_kg_m2',
}
_ROBOT_KEYS = {
    'name', 'description', 'description_file', 'base_link', 'foot_links',
    'nominal_base_height_m', 'joints',
}
_REQUIRED_ROBOT_KEYS = ('name', 'description_file', 'base_link', 'foot_links',
                        'nominal_base_height_m', 'joints')
_LIMIT_RTOL = 1e-6


class RobotConfigError(ValueError):
    """A robot config or description is malformed; the message names the problem."""


def _finite(value: Any, what: str) -> float:
    """Return ``value`` as a finite float or raise naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise RobotConfigError(f'{what} must be a number, got {value!r}')
    out = float(value)
    if not math.isfinite(out):
        raise RobotConfigError(f'{what} must be finite, got {value!r}')
    return out


@dataclass(frozen=True)
class JointSpec:
    """One actuated revolute joint of the robot, in policy order."""

    name: str
    """Joint name as in the description (URDF/MJCF)."""
    default_pos_rad: float
    """Default standing position [rad]; the zero of the policy's action and observation."""
    kp_nm_per_rad: float
    """PD stiffness [N*m/rad]."""
    kd_nms_per_rad: float
    """PD damping [N*m*s/rad]."""
    effort_limit_nm: float
    """Symmetric effort limit [N*m]; efforts are clamped to +/- this."""
    velocity_limit_rad_s: float
    """Velocity limit [rad/s] (informative for MuJoCo; used by controllers and rewards)."""
    armature_kg_m2: float = 0.0
    """Reflected rotor inertia [kg*m^2] added to the joint in MuJoCo."""

    def __post_init__(self) -> None:
        """Check types, finiteness and signs; raise RobotConfigError naming the field."""
        if not isinstance(self.name, str) or not self.name:
            raise RobotConfigError(f'joint name must be a non-empty string, got {self.name!r}')
        for field in ('default_pos_rad', 'kp_nm_per_rad', 'kd_nms_per_rad', 'effort_limit_nm',
                      'velocity_limit_rad_s', 'armature_kg_m2'):
            value = _finite(getattr(self, field), f'joint {self.name!r}: {field}')
            object.__setattr__(self, field, value)
        for field in ('kp_nm_per_rad', 'kd_nms_per_rad', 'armature_kg_m2'):
            if getattr(self, field) < 0.0:
                raise RobotConfigError(
                    f'joint {self.name!r}: {field} must be >= 0, got {getattr(self, field)}')
        for field in ('effort_limit_nm', 'velocity_limit_rad_s'):
            if getattr(self, field) <= 0.0:
                raise RobotConfigError(
                    f'joint {self.name!r}: {field} must be > 0, got {getattr(self, field)}')


@dataclass(frozen=True)
class RobotConfig:
    """A robot: its description file, base and foot links, and its joints in policy order."""

    name: str
    """Robot name (the folder name under models/robots/ by convention)."""
    description_path: Path
    """Absolute path of the URDF (``.urdf``) or MJCF (``.xml``) description."""
    base_link: str
    """Floating-base link/body name (gets the free joint)."""
    foot_links: tuple
    """Foot link/body names (tuple of str), e.g. ``('left_foot', 'right_foot')``."""
    nominal_base_height_m: float
    """Base-link height [m] in the default pose standing on flat ground at z = 0."""
    joints: tuple
    """Actuated joints (tuple of JointSpec) in policy order (= MuJoCo actuator order)."""

    def __post_init__(self) -> None:
        """Check the config's structure; raise RobotConfigError naming the field."""
        if not isinstance(self.name, str) or not self.name:
            raise RobotConfigError(f'robot name must be a non-empty string, got {self.name!r}')
        object.__setattr__(self, 'description_path', Path(self.description_path))
        for field in ('base_link',):
            if not isinstance(getattr(self, field), str) or not getattr(self, field):
                raise RobotConfigError(f'{field} must be a non-empty string')
        feet = tuple(self.foot_links) if isinstance(self.foot_links, (list, tuple)) else None
        if not feet or not all(isinstance(f, str) and f for f in feet):
            raise RobotConfigError(
                f'foot_links must be a non-empty list of link names, got {self.foot_links!r}')
        if len(set(feet)) != len(feet):
            raise RobotConfigError(f'foot_links has duplicates: {list(feet)}')
        object.__setattr__(self, 'foot_links', feet)
        height = _finite(self.nominal_base_height_m, 'nominal_base_height_m')
        if height <= 0.0:
            raise RobotConfigError(f'nominal_base_height_m must be > 0, got {height}')
        object.__setattr__(self, 'nominal_base_height_m', height)
        joints = tuple(self.joints) if isinstance(self.joints, (list, tuple)) else None
        if not joints:
            raise RobotConfigError('joints must be a non-empty list')
        for joint in joints:
            if not isinstance(joint, JointSpec):
                raise RobotConfigError(f'joints must hold JointSpec, got {type(joint).__name__}')
        names = [j.name for j in joints]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise RobotConfigError(f'joints listed more than once: {dupes}')
        object.__setattr__(self, 'joints', joints)

    @property
    def num_joints(self) -> int:
        """Return the number of actuated joints."""
        return len(self.joints)

    @property
    def joint_names(self) -> tuple:
        """Return the joint names in policy order."""
        return tuple(j.name for j in self.joints)

    def _array(self, field: str) -> np.ndarray:
        return np.array([getattr(j, field) for j in self.joints], dtype=np.float64)

    @property
    def default_pos_rad(self) -> np.ndarray:
        """Return default joint positions [rad], policy order."""
        return self._array('default_pos_rad')

    @property
    def kp_nm_per_rad(self) -> np.ndarray:
        """Return PD stiffness [N*m/rad], policy order."""
        return self._array('kp_nm_per_rad')

    @property
    def kd_nms_per_rad(self) -> np.ndarray:
        """Return PD damping [N*m*s/rad], policy order."""
        return self._array('kd_nms_per_rad')

    @property
    def effort_limit_nm(self) -> np.ndarray:
        """Return effort limits [N*m], policy order."""
        return self._array('effort_limit_nm')

    @property
    def velocity_limit_rad_s(self) -> np.ndarray:
        """Return velocity limits [rad/s], policy order."""
        return self._array('velocity_limit_rad_s')

    @property
    def armature_kg_m2(self) -> np.ndarray:
        """Return reflected rotor inertias [kg*m^2], policy order."""
        return self._array('armature_kg_m2')


def models_dir() -> Path:
    """Return the ``models/`` folder: the source checkout's, else the installed share dir."""
    source = Path(__file__).resolve().parents[2] / 'models'
    if source.is_dir():
        return source
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory('humanoid_rl_ros')) / 'models'


def _resolve_config_path(name_or_path: 'str | Path') -> Path:
    """Find robot.yaml from a robot name, a robot folder or a yaml path."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.resolve()
    if path.is_dir():
        candidate = path / 'robot.yaml'
        if candidate.is_file():
            return candidate.resolve()
        raise FileNotFoundError(f'robot folder {path} has no robot.yaml')
    if isinstance(name_or_path, str) and '/' not in name_or_path and not path.suffix:
        candidate = models_dir() / 'robots' / name_or_path / 'robot.yaml'
        if candidate.is_file():
            return candidate
        known = sorted(p.name for p in (models_dir() / 'robots').glob('*')
                       if (p / 'robot.yaml').is_file())
        raise FileNotFoundError(
            f'no robot named {name_or_path!r} under {models_dir() / "robots"} (known: {known})')
    raise FileNotFoundError(f'robot config not found: {name_or_path}')


def _joint_from_mapping(entry: Any, index: int) -> JointSpec:
    """Build one JointSpec from a yaml mapping, naming missing/unknown keys."""
    if not isinstance(entry, Mapping):
        raise RobotConfigError(f'joints[{index}] must be a mapping, got {entry!r}')
    label = f'joints[{index}] ({entry.get("name", "?")!r})'
    unknown = sorted(set(entry) - _JOINT_KEYS)
    if unknown:
        raise RobotConfigError(f'{label}: unknown keys {unknown}')
    required = sorted(_JOINT_KEYS - {'armature_kg_m2'} - set(entry))
    if required:
        raise RobotConfigError(f'{label}: missing keys {required}')
    return JointSpec(
        name=entry['name'],
        default_pos_rad=entry['default_pos_rad'],
        kp_nm_per_rad=entry['kp_nm_per_rad'],
        kd_nms_per_rad=entry['kd_nms_per_rad'],
        effort_limit_nm=entry['effort_limit_nm'],
        velocity_limit_rad_s=entry['velocity_limit_rad_s'],
        armature_kg_m2=entry.get('armature_kg_m2', 0.0),
    )


def load_robot(name_or_path: 'str | Path') -> RobotConfig:
    """
    Load and validate a robot: a name under models/robots/, a robot folder or a yaml path.

    The config is checked against its description: every joint must exist there as a
    revolute (hinge) joint, its default position must be within the joint's range, the
    effort limit (and for URDF the velocity limit) must equal the description's, and the
    base and foot links must exist. Errors are RobotConfigError (a ValueError) naming the
    offending field or joint; a missing file raises FileNotFoundError.
    """
    config_path = _resolve_config_path(name_or_path)
    try:
        raw = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as exc:
        raise RobotConfigError(f'{config_path}: not valid YAML: {exc}') from exc
    if not isinstance(raw, Mapping):
        raise RobotConfigError(f'{config_path}: top level must be a mapping')
    unknown = sorted(set(raw) - _ROBOT_KEYS)
    if unknown:
        raise RobotConfigError(f'{config_path}: unknown keys {unknown}')
    missing = [k for k in _REQUIRED_ROBOT_KEYS if k not in raw]
    if missing:
        raise RobotConfigError(f'{config_path}: missing keys {missing}')
    if not isinstance(raw['description_file'], str):
        raise RobotConfigError(f'{config_path}: description_file must be a path string')
    description = (config_path.parent / raw['description_file']).resolve()
    if description.suffix.lower() not in ('.urdf', '.xml'):
        raise RobotConfigError(
            f'description_file must end in .urdf or .xml (MJCF), got {description.name}')
    if not description.is_file():
        raise RobotConfigError(f'description_file not found: {description}')
    if not isinstance(raw['joints'], list):
        raise RobotConfigError(f'{config_path}: joints must be a list')
    joints = tuple(_joint_from_mapping(e, i) for i, e in enumerate(raw['joints']))
    robot = RobotConfig(
        name=raw['name'],
        description_path=description,
        base_link=raw['base_link'],
        foot_links=raw['foot_links'],
        nominal_base_height_m=raw['nominal_base_height_m'],
        joints=joints,
    )
    spec = _load_spec(robot)
    try:
        model = spec.compile()
    except Exception as exc:  # mujoco raises ValueError with the compiler's message
        raise RobotConfigError(f'{description.name}: MuJoCo cannot compile it: {exc}') from exc
    validate_against_model(robot, model)
    if description.suffix.lower() == '.urdf':
        _validate_urdf_velocity_limits(robot)
    return robot


def _load_spec(robot: RobotConfig) -> 'mujoco.MjSpec':
    """Parse the description (URDF or MJCF) into an MjSpec."""
    try:
        return mujoco.MjSpec.from_file(str(robot.description_path))
    except Exception as exc:
        raise RobotConfigError(
            f'{robot.description_path.name}: MuJoCo cannot parse it: {exc}') from exc


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _LIMIT_RTOL * max(1.0, abs(a), abs(b))


def validate_against_model(robot: RobotConfig, model: 'mujoco.MjModel') -> None:
    """Check the config against a compiled description; raise RobotConfigError on mismatch."""
    for link in (robot.base_link, *robot.foot_links):
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, link) < 0:
            raise RobotConfigError(
                f'link {link!r} named in robot.yaml is not in {robot.description_path.name}')
    for joint in robot.joints:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint.name)
        if jid < 0:
            raise RobotConfigError(
                f'joint {joint.name!r} from robot.yaml is missing from '
                f'{robot.description_path.name}')
        if model.jnt_type[jid] != mujoco.mjtJoint.mjJNT_HINGE:
            raise RobotConfigError(
                f'joint {joint.name!r} must be revolute (hinge) in '
                f'{robot.description_path.name}')
        if model.jnt_limited[jid]:
            low, high = (float(v) for v in model.jnt_range[jid])
            if not low - 1e-9 <= joint.default_pos_rad <= high + 1e-9:
                raise RobotConfigError(
                    f'joint {joint.name!r}: default_pos_rad {joint.default_pos_rad} is outside '
                    f'its range [{low}, {high}]')
        if model.jnt_actfrclimited[jid]:
            low, high = (float(v) for v in model.jnt_actfrcrange[jid])
            if not (_close(-low, joint.effort_limit_nm) and _close(high, joint.effort_limit_nm)):
                raise RobotConfigError(
                    f'joint {joint.name!r}: effort_limit_nm {joint.effort_limit_nm} does not '
                    f'match the effort limit [{low}, {high}] of {robot.description_path.name}')


def _validate_urdf_velocity_limits(robot: RobotConfig) -> None:
    """Check velocity limits against the URDF's ``<limit velocity=...>``."""
    root = ElementTree.parse(robot.description_path).getroot()
    limits = {}
    for joint in root.iter('joint'):
        limit = joint.find('limit')
        if limit is not None and limit.get('velocity') is not None:
            limits[joint.get('name')] = float(limit.get('velocity'))
    for joint in robot.joints:
        if joint.name in limits and not _close(limits[joint.name], joint.velocity_limit_rad_s):
            raise RobotConfigError(
                f'joint {joint.name!r}: velocity_limit_rad_s {joint.velocity_limit_rad_s} does '
                f'not match the URDF velocity limit {limits[joint.name]}')
