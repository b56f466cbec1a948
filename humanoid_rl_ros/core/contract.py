"""
The policy contract: the one file that joins training and deployment.

The exporter writes ``models/<policy>.yaml`` beside ``models/<policy>.onnx``. The policy node,
the sim-to-sim evaluator and the tests read it. It records everything a deployment needs to
reproduce the training-time observation and action math:

* format version and robot name;
* joint names in policy order, default positions, action scale, PD gains, effort limits;
* physics dt and decimation (hence the policy rate);
* the observation terms in order, each with its size and scale;
* the command ranges the policy was trained on;
* the ONNX input and output names and shapes;
* provenance (commit, seed, iterations, backend, final metrics).

Reading validates every field. A problem raises :class:`ContractError` whose message starts
with the dotted path of the offending field, e.g. ``joints.kp_nm_per_rad: expected 21 values``.
"""

import dataclasses
from dataclasses import dataclass, field
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import yaml

FORMAT_VERSION = 1
"""Newest contract format this code reads and the one it writes."""

KNOWN_OBS_TERMS = (
    'base_lin_vel',
    'base_ang_vel',
    'projected_gravity',
    'velocity_command',
    'joint_pos',
    'joint_vel',
    'last_action',
    'gait_phase',
)
"""Observation term names a contract may list (sizes are checked by :func:`expected_term_size`)."""


class ContractError(ValueError):
    """A policy contract is malformed; the message names the offending field."""

    def __init__(self, field_path: str, problem: str) -> None:
        """Build the error for ``field_path`` (dotted path) with a human-readable problem."""
        super().__init__(f'{field_path}: {problem}')
        self.field_path = field_path


def expected_term_size(name: str, num_joints: int) -> int:
    """Return the size an observation term must have for a robot with ``num_joints`` joints."""
    fixed = {
        'base_lin_vel': 3,
        'base_ang_vel': 3,
        'projected_gravity': 3,
        'velocity_command': 3,
        'gait_phase': 2,
    }
    if name in fixed:
        return fixed[name]
    if name in ('joint_pos', 'joint_vel', 'last_action'):
        return num_joints
    raise ContractError('observation.terms', f'unknown observation term {name!r}; '
                        f'known terms are {", ".join(KNOWN_OBS_TERMS)}')


@dataclass(frozen=True)
class ObsTermSpec:
    """One observation term: its name, its width and the scale applied to its raw value."""

    name: str
    """Term name, one of :data:`KNOWN_OBS_TERMS`."""
    size: int
    """Number of observation entries this term contributes."""
    scale: Tuple[float, ...]
    """Per-entry scale, ``size`` values (a scalar in the file is broadcast)."""


@dataclass(frozen=True)
class CommandRanges:
    """Velocity command ranges the policy was trained on (REP-103 body frame)."""

    lin_vel_x_m_s: Tuple[float, float]
    """Forward velocity range [m/s]."""
    lin_vel_y_m_s: Tuple[float, float]
    """Leftward velocity range [m/s]."""
    ang_vel_z_rad_s: Tuple[float, float]
    """Yaw rate range, counter-clockwise positive [rad/s]."""

    def as_bounds(self) -> Tuple[Tuple[float, float, float], Tuple[float, float, float]]:
        """Return ``(low, high)`` as (vx, vy, wz) triples."""
        return ((self.lin_vel_x_m_s[0], self.lin_vel_y_m_s[0], self.ang_vel_z_rad_s[0]),
                (self.lin_vel_x_m_s[1], self.lin_vel_y_m_s[1], self.ang_vel_z_rad_s[1]))


@dataclass(frozen=True)
class PolicyContract:
    """Everything deployment needs to run an exported policy exactly as it was trained."""

    robot: str
    """Robot name (a folder under ``models/robots/``)."""
    joint_names: Tuple[str, ...]
    """Actuated joints in policy order (action and joint observation order)."""
    default_pos_rad: Tuple[float, ...]
    """Default standing pose, policy order [rad]."""
    action_scale_rad: Tuple[float, ...]
    """Joint target offset per unit action, policy order [rad]."""
    kp_nm_per_rad: Tuple[float, ...]
    """PD stiffness, policy order [N*m/rad]."""
    kd_nms_per_rad: Tuple[float, ...]
    """PD damping, policy order [N*m*s/rad]."""
    effort_limit_nm: Tuple[float, ...]
    """Effort limits, policy order [N*m]."""
    physics_dt_s: float
    """Physics and PD period [s]."""
    decimation: int
    """Physics steps per policy step."""
    obs_terms: Tuple[ObsTermSpec, ...]
    """Observation terms in the order they are concatenated."""
    commands: CommandRanges
    """Command ranges seen in training; deployment clamps to them."""
    obs_clip: float = 100.0
    """Scaled observations are clipped to [-obs_clip, obs_clip]."""
    action_clip: float = 100.0
    """Raw actions are clipped to [-action_clip, action_clip] before scaling."""
    gait_period_s: Optional[float] = None
    """Period of the gait clock [s]; required exactly when the ``gait_phase`` term is used."""
    onnx_file: str = 'policy.onnx'
    """ONNX file name, relative to the contract file's folder."""
    onnx_input_name: str = 'obs'
    """ONNX input tensor name, shape [batch, obs_dim]."""
    onnx_output_name: str = 'actions'
    """ONNX output tensor name, shape [batch, action_dim]."""
    provenance: Mapping[str, Any] = field(default_factory=dict)
    """Free-form record of how the policy was made (commit, seed, backend, metrics, ...)."""
    format_version: int = FORMAT_VERSION
    """Contract format version."""

    @property
    def num_joints(self) -> int:
        """Return the number of actuated joints (= action size)."""
        return len(self.joint_names)

    @property
    def action_dim(self) -> int:
        """Return the action vector size."""
        return len(self.joint_names)

    @property
    def obs_dim(self) -> int:
        """Return the observation vector size (sum of the term sizes)."""
        return sum(t.size for t in self.obs_terms)

    @property
    def policy_dt_s(self) -> float:
        """Return the policy period [s]."""
        return self.physics_dt_s * self.decimation

    def term_names(self) -> Tuple[str, ...]:
        """Return the observation term names in order."""
        return tuple(t.name for t in self.obs_terms)

    def onnx_path(self, contract_path: Union[str, Path]) -> Path:
        """Return the ONNX file's path for a contract stored at ``contract_path``."""
        return Path(contract_path).resolve().parent / self.onnx_file


def placeholder_contract(robot: Any, onnx_file: str = 'policy.onnx') -> PolicyContract:
    """
    Return a contract for an untrained placeholder policy of ``robot`` (a ``RobotConfig``).

    Joints, default pose, gains and limits come from the robot config; every known observation
    term is used with unit scale, at 200 Hz PD and a 50 Hz policy. Only for plumbing runs and
    tests: a trained policy brings the contract its training wrote.
    """
    n = robot.num_joints
    terms = tuple(ObsTermSpec(name, expected_term_size(name, n),
                              (1.0,) * expected_term_size(name, n))
                  for name in KNOWN_OBS_TERMS)
    return PolicyContract(
        robot=robot.name, joint_names=tuple(robot.joint_names),
        default_pos_rad=tuple(float(v) for v in robot.default_pos_rad),
        action_scale_rad=(0.25,) * n,
        kp_nm_per_rad=tuple(float(v) for v in robot.kp_nm_per_rad),
        kd_nms_per_rad=tuple(float(v) for v in robot.kd_nms_per_rad),
        effort_limit_nm=tuple(float(v) for v in robot.effort_limit_nm),
        physics_dt_s=0.005, decimation=4, obs_terms=terms,
        commands=CommandRanges((-1.0, 1.0), (-0.5, 0.5), (-1.0, 1.0)),
        gait_period_s=0.8, onnx_file=onnx_file)


def _require(mapping: Mapping[str, Any], key: str, path: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise ContractError(path, f'expected a mapping, got {type(mapping).__name__}')
    if key not in mapping:
        raise ContractError(f'{path}.{key}' if path else key, 'missing required field')
    return mapping[key]


def _number(value: Any, path: str, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(path, f'expected a number, got {value!r}')
    value = float(value)
    if not math.isfinite(value):
        raise ContractError(path, f'expected a finite number, got {value}')
    if positive and value <= 0.0:
        raise ContractError(path, f'must be > 0, got {value}')
    if nonneg and value < 0.0:
        raise ContractError(path, f'must be >= 0, got {value}')
    return value


def _int(value: Any, path: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(path, f'expected an integer, got {value!r}')
    if value < minimum:
        raise ContractError(path, f'must be >= {minimum}, got {value}')
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ContractError(path, f'expected a non-empty string, got {value!r}')
    return value


def _vector(value: Any, path: str, size: int, **kw: bool) -> Tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * size
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ContractError(path, f'expected a list of {size} numbers, got {value!r}')
    if len(value) != size:
        raise ContractError(path, f'expected {size} values (one per entry), got {len(value)}')
    return tuple(_number(v, f'{path}[{i}]', **kw) for i, v in enumerate(value))


def _range(value: Any, path: str) -> Tuple[float, float]:
    low, high = _vector(value, path, 2)
    if low > high:
        raise ContractError(path, f'range low {low} is above high {high}')
    return (low, high)


def _shape(value: Any, path: str, size: int) -> None:
    if not isinstance(value, Sequence) or len(value) != 2:
        raise ContractError(path, f'expected [batch, {size}], got {value!r}')
    if value[1] != size:
        raise ContractError(f'{path}[1]', f'ONNX shape says {value[1]} but the contract implies '
                            f'{size}')


def contract_from_dict(data: Mapping[str, Any]) -> PolicyContract:
    """Validate a parsed contract document and build a :class:`PolicyContract`."""
    if not isinstance(data, Mapping):
        raise ContractError('<root>', f'expected a mapping, got {type(data).__name__}')
    version = _int(_require(data, 'format_version', ''), 'format_version')
    if version > FORMAT_VERSION:
        raise ContractError('format_version', f'version {version} is newer than this code reads '
                            f'({FORMAT_VERSION}); update humanoid_rl_ros')
    robot = _string(_require(data, 'robot', ''), 'robot')

    joints = _require(data, 'joints', '')
    names = _require(joints, 'names', 'joints')
    if not isinstance(names, Sequence) or isinstance(names, str) or not names:
        raise ContractError('joints.names', 'expected a non-empty list of joint names')
    names = tuple(_string(n, f'joints.names[{i}]') for i, n in enumerate(names))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ContractError('joints.names', f'duplicate joint names {duplicates}')
    n = len(names)
    default = _vector(_require(joints, 'default_pos_rad', 'joints'), 'joints.default_pos_rad', n)
    scale = _vector(_require(joints, 'action_scale_rad', 'joints'), 'joints.action_scale_rad', n,
                    nonneg=True)
    kp = _vector(_require(joints, 'kp_nm_per_rad', 'joints'), 'joints.kp_nm_per_rad', n,
                 nonneg=True)
    kd = _vector(_require(joints, 'kd_nms_per_rad', 'joints'), 'joints.kd_nms_per_rad', n,
                 nonneg=True)
    limit = _vector(_require(joints, 'effort_limit_nm', 'joints'), 'joints.effort_limit_nm', n,
                    positive=True)

    timing = _require(data, 'timing', '')
    dt = _number(_require(timing, 'physics_dt_s', 'timing'), 'timing.physics_dt_s', positive=True)
    decimation = _int(_require(timing, 'decimation', 'timing'), 'timing.decimation')

    obs = _require(data, 'observation', '')
    raw_terms = _require(obs, 'terms', 'observation')
    if not isinstance(raw_terms, Sequence) or isinstance(raw_terms, str) or not raw_terms:
        raise ContractError('observation.terms', 'expected a non-empty list of terms')
    terms = []
    for i, raw in enumerate(raw_terms):
        path = f'observation.terms[{i}]'
        name = _string(_require(raw, 'name', path), f'{path}.name')
        if name not in KNOWN_OBS_TERMS:
            raise ContractError(f'{path}.name', f'unknown observation term {name!r}; known '
                                f'terms are {", ".join(KNOWN_OBS_TERMS)}')
        size = _int(_require(raw, 'size', path), f'{path}.size')
        expected = expected_term_size(name, n)
        if size != expected:
            raise ContractError(f'{path}.size', f'term {name!r} has size {expected} for '
                                f'{n} joints, got {size}')
        term_scale = _vector(raw.get('scale', 1.0), f'{path}.scale', size)
        terms.append(ObsTermSpec(name=name, size=size, scale=term_scale))
    seen = [t.name for t in terms]
    repeated = sorted({t for t in seen if seen.count(t) > 1})
    if repeated:
        raise ContractError('observation.terms', f'terms listed twice: {repeated}')
    obs_clip = _number(obs.get('clip', 100.0), 'observation.clip', positive=True)

    gait_period = obs.get('gait_period_s')
    if 'gait_phase' in seen:
        if gait_period is None:
            raise ContractError('observation.gait_period_s', 'required by the gait_phase term')
        gait_period = _number(gait_period, 'observation.gait_period_s', positive=True)
    elif gait_period is not None:
        raise ContractError('observation.gait_period_s', 'given but no gait_phase term is used')

    action = data.get('action', {})
    action_clip = _number(action.get('clip', 100.0) if isinstance(action, Mapping) else action,
                          'action.clip', positive=True)

    cmd = _require(data, 'commands', '')
    commands = CommandRanges(
        lin_vel_x_m_s=_range(_require(cmd, 'lin_vel_x_m_s', 'commands'), 'commands.lin_vel_x_m_s'),
        lin_vel_y_m_s=_range(_require(cmd, 'lin_vel_y_m_s', 'commands'), 'commands.lin_vel_y_m_s'),
        ang_vel_z_rad_s=_range(_require(cmd, 'ang_vel_z_rad_s', 'commands'),
                               'commands.ang_vel_z_rad_s'))

    onnx = _require(data, 'onnx', '')
    onnx_file = _string(_require(onnx, 'file', 'onnx'), 'onnx.file')
    onnx_in = _require(onnx, 'input', 'onnx')
    onnx_out = _require(onnx, 'output', 'onnx')
    in_name = _string(_require(onnx_in, 'name', 'onnx.input'), 'onnx.input.name')
    out_name = _string(_require(onnx_out, 'name', 'onnx.output'), 'onnx.output.name')
    obs_dim = sum(t.size for t in terms)
    _shape(_require(onnx_in, 'shape', 'onnx.input'), 'onnx.input.shape', obs_dim)
    _shape(_require(onnx_out, 'shape', 'onnx.output'), 'onnx.output.shape', n)

    provenance = data.get('provenance', {})
    if not isinstance(provenance, Mapping):
        raise ContractError('provenance', 'expected a mapping')

    return PolicyContract(
        format_version=version, robot=robot, joint_names=names, default_pos_rad=default,
        action_scale_rad=scale, kp_nm_per_rad=kp, kd_nms_per_rad=kd, effort_limit_nm=limit,
        physics_dt_s=dt, decimation=decimation, obs_terms=tuple(terms), commands=commands,
        obs_clip=obs_clip, action_clip=action_clip, gait_period_s=gait_period,
        onnx_file=onnx_file, onnx_input_name=in_name, onnx_output_name=out_name,
        provenance=dict(provenance))


def contract_to_dict(contract: PolicyContract) -> Dict[str, Any]:
    """Return the plain-data document that :func:`write_contract` stores."""
    observation: Dict[str, Any] = {
        'terms': [{'name': t.name, 'size': t.size, 'scale': [float(s) for s in t.scale]}
                  for t in contract.obs_terms],
        'clip': float(contract.obs_clip),
    }
    if contract.gait_period_s is not None:
        observation['gait_period_s'] = float(contract.gait_period_s)
    return {
        'format_version': int(contract.format_version),
        'robot': contract.robot,
        'joints': {
            'names': list(contract.joint_names),
            'default_pos_rad': [float(v) for v in contract.default_pos_rad],
            'action_scale_rad': [float(v) for v in contract.action_scale_rad],
            'kp_nm_per_rad': [float(v) for v in contract.kp_nm_per_rad],
            'kd_nms_per_rad': [float(v) for v in contract.kd_nms_per_rad],
            'effort_limit_nm': [float(v) for v in contract.effort_limit_nm],
        },
        'timing': {
            'physics_dt_s': float(contract.physics_dt_s),
            'decimation': int(contract.decimation),
            'policy_dt_s': float(contract.policy_dt_s),
        },
        'observation': observation,
        'action': {'clip': float(contract.action_clip)},
        'commands': {
            'lin_vel_x_m_s': [float(v) for v in contract.commands.lin_vel_x_m_s],
            'lin_vel_y_m_s': [float(v) for v in contract.commands.lin_vel_y_m_s],
            'ang_vel_z_rad_s': [float(v) for v in contract.commands.ang_vel_z_rad_s],
        },
        'onnx': {
            'file': contract.onnx_file,
            'input': {'name': contract.onnx_input_name, 'shape': ['batch', contract.obs_dim]},
            'output': {'name': contract.onnx_output_name,
                       'shape': ['batch', contract.action_dim]},
        },
        'provenance': plain_data(dict(contract.provenance)),
    }


def plain_data(value: Any) -> Any:
    """Convert dataclasses, mappings, tuples, paths and numpy scalars into YAML-safe builtins."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, 'item') and callable(value.item):
        return value.item()
    return value


def read_contract(path: Union[str, Path]) -> PolicyContract:
    """Read and validate the contract at ``path``; raise :class:`ContractError` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ContractError('<file>', f'no policy contract at {path}')
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ContractError('<file>', f'{path} is not valid YAML: {exc}') from exc
    return contract_from_dict(data)


def write_contract(contract: PolicyContract, path: Union[str, Path]) -> Path:
    """Validate ``contract`` and write it as YAML to ``path``; return the path."""
    document = contract_to_dict(contract)
    contract_from_dict(document)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ('# humanoid_rl_ros policy contract: the interface between training and deployment.\n'
              '# Written by training/export.py; read by the policy node and the evaluator.\n')
    path.write_text(header + yaml.safe_dump(document, sort_keys=False, width=100))
    return path
