"""
The policy contract: the one document that joins training and deployment.

The exporter writes it twice, with equal content: into the ONNX file's metadata (key
:data:`ONNX_METADATA_KEY`, the YAML text) and as ``models/<policy>.yaml`` beside
``models/<policy>.onnx`` (the readable copy). :func:`read_contract` takes either path and
refuses a YAML and an ONNX that disagree. The policy node, the sim-to-sim evaluator and the
tests read it through :func:`read_contract` or
:class:`humanoid_rl_ros.core.policy_runtime.PolicyRuntime`.

Format 2 states everything a deployer needs who reads only the contract, the ONNX and the
robot files (``docs/DEPLOYING.md`` explains each field):

* format version, robot name, base link (= the odometry child frame);
* frames: base velocities in the base link frame, linear velocity of the base link origin,
  commands in the base link frame, gravity along world -z;
* joints in policy order: default pose, action scale, PD gains, effort, position and velocity
  limits, rotor inertia (armature);
* timing: physics (PD) period, decimation, policy period, the target held between policy steps;
* control: the PD law at the physics rate (the trained mode), and what drives that run their
  own PD (position mode) must do;
* the observation: terms in order with size and scale, clip, history (``history_length``
  frames, oldest first, started by repeating the first frame), the gait clock (sin before
  cos, period, start, runs at zero command), the last action (clipped, initially zero, the
  newest policy output);
* the action: clip and the joint-target formula;
* the command ranges;
* the training conditions: action delay, observation noise (uniform, half-widths), the
  estimator-like error on an observed base velocity (bias, scale error, lag), randomization,
  command sampling, and the delay the policy is known to tolerate;
* the physics the policy was trained in: simulator, integrator, solver, timestep, gravity,
  self collision, friction (MuJoCo combines a pair with max);
* the ONNX input and output names and shapes;
* provenance (commit, seed, iterations, backend, final metrics, training config).

Facts the code fixes (frames, clock order, last action, PD law, ...) are written in every
format-2 file and checked on reading: a file that states anything else is refused, because
this code cannot run it. Facts a training run did not record are ``null``: unknown, never
guessed.

Format 1 files (no frames, limits, training conditions or physics) still load: the facts
fixed by the format-1 code (the same frames, clock, last action and PD law) are implied, the
others are unknown (``None``). ``python -m training.export upgrade <policy>.yaml`` rewrites a
format-1 policy as format 2.

Reading validates every field. A problem raises :class:`ContractError` whose message starts
with the dotted path of the offending field, e.g. ``joints.kp_nm_per_rad: expected 21 values``.
"""

import dataclasses
from dataclasses import dataclass, field
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

FORMAT_VERSION = 2
"""Newest contract format this code reads and the one it writes."""

ONNX_METADATA_KEY = 'humanoid_rl_ros.contract'
"""ONNX ``metadata_props`` key whose value is the contract's YAML text."""

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

OBSERVATION_FORMULA = 'obs = clip(concat([raw(term) * term.scale for term in terms]), -clip, clip)'
"""How the observation vector is built from the raw terms (policy_math.build_observation)."""

ACTION_FORMULA = 'q_target = default_pos_rad + action_scale_rad * clip(action, -clip, clip)'
"""How an action becomes joint position targets (policy_math.action_to_joint_targets)."""

PD_LAW = 'effort = clip(kp * (q_target - q) - kd * qd, -effort_limit_nm, effort_limit_nm)'
"""The PD law run every physics tick (policy_math.pd_effort): zero velocity target."""

POSITION_MODE = ('drives that run their own PD receive q_target every policy step and must '
                 'apply control.pd_law with joints.kp_nm_per_rad, joints.kd_nms_per_rad and '
                 'joints.effort_limit_nm (zero velocity target) at control.pd_rate_hz or faster')
"""What a deployment that sends position targets instead of efforts must do."""

PHASE_FORMULA = ('phase = (start_phase + k * policy_dt_s / period_s) mod 1 at policy step k '
                 '(k = 0 at the first walking step); features = [sin(2 pi phase), '
                 'cos(2 pi phase)]')
"""The gait clock (policy_math.gait_phase_features; the clock advances every physics tick)."""

HISTORY_LAYOUT_NONE = 'current_only'
"""Observation history layout of ``history_length`` 1: the current observation alone."""

HISTORY_LAYOUT_STACKED = 'frames_oldest_first'
"""Observation history layout of ``history_length`` > 1 (policy_math.flatten_history)."""

HISTORY_FORMULA = ('policy_input = concat([frame(k - history_length + 1), ..., frame(k)]) at '
                   'policy step k, oldest first; each frame is observation.formula')
"""How the stacked policy input is built from the frames (policy_math.push_history)."""

CODE_FACTS: Tuple[Tuple[str, Any], ...] = (
    # policy_math.observation_inputs takes body-frame velocities; training feeds the free
    # joint's angular velocity (MuJoCo: body frame) and the world velocity of the base link
    # origin rotated into the body frame (policy_math.world_to_body).
    ('frames.base_velocity_frame', 'base_link'),
    ('frames.base_lin_vel_point', 'base_link_origin'),
    # training compares the command with the body-frame planar velocity and yaw rate
    ('frames.command_frame', 'base_link'),
    # policy_math.projected_gravity: the world's (0, 0, -1) in the body frame
    ('frames.gravity_direction_world', [0.0, 0.0, -1.0]),
    ('timing.target_hold', 'zero_order_hold'),
    ('control.trained_mode', 'pd_effort'),
    ('control.pd_law', PD_LAW),
    ('control.position_mode', POSITION_MODE),
    ('observation.formula', OBSERVATION_FORMULA),
    # training's last_action term is the clamped action of the previous policy step, zero
    # after a reset, and the newest output even when action latency delays the applied one
    ('observation.last_action.value', 'clipped_action'),
    ('observation.last_action.initial', 0.0),
    ('observation.last_action.when_delayed', 'newest_policy_output'),
    ('action.formula', ACTION_FORMULA),
)
"""Facts fixed by the code, as (dotted path, value): written in every format-2 file, checked."""

GAIT_CLOCK_FACTS: Tuple[Tuple[str, Any], ...] = (
    ('observation.gait_clock.features', ['sin', 'cos']),
    ('observation.gait_clock.phase_formula', PHASE_FORMULA),
    # training advances the phase every step whatever the command; so does the node
    ('observation.gait_clock.runs_at_zero_command', True),
    # the node starts walking at phase 0; each training episode started at a uniform phase
    ('observation.gait_clock.start_phase', 0.0),
    ('observation.gait_clock.trained_start_phase', 'uniform_0_1'),
)
"""Code facts of the gait clock, present when the ``gait_phase`` term is used."""

HISTORY_FACTS: Tuple[Tuple[str, Any], ...] = (
    ('observation.history_formula', HISTORY_FORMULA),
    # policy_math.init_history: at the first policy step of an episode (training) or of a walk
    # (the node) every slot holds the first frame; the newest frame comes last
    ('observation.history_start', 'first_frame_repeated'),
)
"""Code facts of a stacked observation, present when ``history_length`` > 1."""

NOISE_FACTS: Tuple[Tuple[str, Any], ...] = (
    ('training.observation_noise.distribution', 'uniform'),
    ('training.observation_noise.applied_to', 'raw_term_before_scale_and_clip'),
)
"""Code facts of the observation noise, present when the noise is known."""

RANDOMIZATION_FACTS: Tuple[Tuple[str, Any], ...] = (
    # the backend sets the sliding friction of every geom, floor included, so the pair's max
    # is the drawn value
    ('training.randomization.friction_applied_to', 'every_geom_sliding'),
    ('training.randomization.gain_scale_applies_to', 'kp_and_kd_one_factor_per_joint'),
    # the scaled limit clamps the PD effort; MuJoCo's actuator range (+/- the nominal limit)
    # then caps it, so scales above 1 act as 1
    ('training.randomization.motor_strength_applies_to',
     'effort_limit_in_pd_clamp_capped_at_nominal'),
    ('training.randomization.push', 'planar_world_velocity_change_uniform_per_axis'),
)
"""Code facts of the domain randomization, present when the randomization is known."""

LIN_VEL_ERROR_FORMULA = ('observed = v(k - lag) * (1 + scale_error) + bias + noise, with lag, '
                         'scale_error (per axis) and bias (per axis) drawn per episode')
"""How training corrupted the actor's base velocity (training.base_lin_vel_error)."""

LIN_VEL_ERROR_FACTS: Tuple[Tuple[str, Any], ...] = (
    ('training.base_lin_vel_error.drawn', 'uniform_per_episode'),
    ('training.base_lin_vel_error.formula', LIN_VEL_ERROR_FORMULA),
)
"""Code facts of the base velocity error model, present when the model is known."""

PHYSICS_FACTS: Tuple[Tuple[str, Any], ...] = (
    ('physics.friction_combination', 'max'),
)
"""Code facts of the physics, present when the physics is known (MuJoCo's contact rule)."""

OFF = 'off'
"""The value of a randomization item that was switched off."""


class ContractError(ValueError):
    """A policy contract is malformed; the message names the offending field."""

    def __init__(self, field_path: str, problem: str) -> None:
        """Build the error for ``field_path`` (dotted path) with a human-readable problem."""
        super().__init__(f'{field_path}: {problem}')
        self.field_path = field_path


def history_layout(history_length: int) -> str:
    """Return the ``observation.history_layout`` of a policy input of ``history_length`` frames."""
    return HISTORY_LAYOUT_NONE if history_length == 1 else HISTORY_LAYOUT_STACKED


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
class Randomization:
    """
    Domain randomization a policy was trained under; ``None`` marks an item that was off.

    Every draw is uniform in its range, once per episode (pushes: at random intervals).
    """

    friction_range: Optional[Tuple[float, float]]
    """Sliding friction of every geom of the world, floor and robot alike [-]."""
    added_base_mass_kg: Optional[Tuple[float, float]]
    """Mass added to the base link at its centre of mass [kg]."""
    motor_strength_range: Optional[Tuple[float, float]]
    """Scale of each joint's effort limit in the PD clamp [-]."""
    pd_gain_scale_range: Optional[Tuple[float, float]]
    """Scale of each joint's kp and kd (one factor for both) [-]."""
    push_interval_s: Optional[Tuple[float, float]]
    """Time between pushes [s]."""
    push_lin_vel_m_s: Optional[float]
    """Half-range of each push's planar base velocity change, world x and y [m/s]."""
    init_joint_noise_rad: float
    """Half-range of the uniform noise on the initial joint positions [rad]."""
    init_base_lin_vel_m_s: float
    """Half-range of the uniform initial planar base velocity [m/s]."""


@dataclass(frozen=True)
class CommandSampling:
    """How training drew the velocity commands (within :class:`CommandRanges`)."""

    resample_interval_s: Tuple[float, float]
    """A command is held for a uniform draw from this interval [s]."""
    standing_fraction: float
    """Share of commands that are exactly zero [-]."""
    small_command_m_s: float
    """Planar commands slower than this were zeroed (yaw rate kept) [m/s]."""


@dataclass(frozen=True)
class BaseLinVelError:
    """
    The estimator-like error training put on the actor's ``base_lin_vel`` input.

    Drawn uniformly once per episode: ``observed = lagged(v) * (1 + scale_error) + bias``, where
    ``lagged(v)`` is the true body-frame velocity ``lag`` policy steps earlier; the per-step
    uniform noise of ``observation_noise`` comes on top. The critic and the rewards see ``v``.
    """

    bias_m_s: float
    """Half-width of the per-episode bias, per axis [m/s]."""
    scale_error: float
    """Half-width of the per-episode relative scale error, per axis [-]."""
    lag_policy_steps: Tuple[int, int]
    """Range of the per-episode lag, both ends included [policy steps]."""


@dataclass(frozen=True)
class TrainingConditions:
    """The conditions a policy was trained under; ``None`` means not recorded (unknown)."""

    action_delay_policy_steps: Optional[int] = None
    """
    Policy steps between an observation and its action reaching the PD law.

    0: the action computed from the observation of physics tick t drives the PD law from
    tick t on; 1: the previous policy step's action is applied (one policy period late).
    """
    tolerated_action_delay_s: Optional[float] = None
    """Extra observation-to-action delay the policy was measured to tolerate [s]."""
    observation_noise: Optional[Mapping[str, float]] = None
    """Uniform noise half-width per raw term, in the term's units; ``{}``: no noise."""
    randomization: Optional[Randomization] = None
    """Domain randomization."""
    command_sampling: Optional[CommandSampling] = None
    """Command sampling."""
    base_lin_vel_error: Optional[BaseLinVelError] = None
    """
    Estimator-like error on the actor's base velocity; ``None``: none was applied.

    An optional section (``training.base_lin_vel_error``), written only when stated: the code
    before it existed fed the policy the true velocity plus the uniform noise, so its files
    (the shipped policy's among them) lack the section and read as ``None``.
    """


@dataclass(frozen=True)
class PhysicsSpec:
    """The simulation a policy was trained in (MuJoCo options of the robot's model)."""

    simulator: str
    """Training backend, e.g. ``mjwarp`` (MuJoCo Warp)."""
    timestep_s: float
    """Physics timestep [s] (= the contract's physics_dt_s)."""
    integrator: str
    """MuJoCo integrator, e.g. ``implicitfast``."""
    solver: str
    """MuJoCo constraint solver, e.g. ``newton``."""
    cone: str
    """Friction cone, ``pyramidal`` or ``elliptic``."""
    iterations: int
    """Solver iterations."""
    ls_iterations: int
    """Solver line-search iterations."""
    gravity_m_s2: Tuple[float, float, float]
    """Gravity in the world frame [m/s^2]."""
    self_collision: bool
    """Whether robot geoms collide with each other (False: only with the floor)."""
    floor_friction: Tuple[float, float, float]
    """Floor friction (sliding, torsional, rolling) without randomization."""
    robot_geom_friction: Optional[Tuple[float, float, float]]
    """Friction of every robot collision geom; ``None`` where they differ (see the robot)."""


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
    """Format of the document this contract was read from (it is always written as the newest)."""
    base_link: Optional[str] = None
    """Base link: frame of the base velocities, odometry's child frame; ``None``: unknown."""
    position_min_rad: Optional[Tuple[float, ...]] = None
    """Lower joint position limits, policy order [rad]; ``None``: unknown."""
    position_max_rad: Optional[Tuple[float, ...]] = None
    """Upper joint position limits, policy order [rad]; ``None``: unknown."""
    velocity_limit_rad_s: Optional[Tuple[float, ...]] = None
    """Joint velocity limits, policy order [rad/s]; ``None``: unknown."""
    armature_kg_m2: Optional[Tuple[float, ...]] = None
    """Reflected rotor inertia of each joint in training, policy order [kg*m^2]."""
    history_length: int = 1
    """Observations stacked into the policy input (1: the current one alone)."""
    training: TrainingConditions = field(default_factory=TrainingConditions)
    """Training conditions (delay, noise, randomization, command sampling)."""
    physics: Optional[PhysicsSpec] = None
    """The simulation the policy was trained in; ``None``: unknown."""

    @property
    def num_joints(self) -> int:
        """Return the number of actuated joints (= action size)."""
        return len(self.joint_names)

    @property
    def action_dim(self) -> int:
        """Return the action vector size."""
        return len(self.joint_names)

    @property
    def frame_dim(self) -> int:
        """Return the size of one observation frame (sum of the term sizes)."""
        return sum(t.size for t in self.obs_terms)

    @property
    def obs_dim(self) -> int:
        """Return the policy input size: ``history_length`` frames."""
        return self.history_length * self.frame_dim

    @property
    def history_layout(self) -> str:
        """Return the layout of the policy input (``observation.history_layout``)."""
        return history_layout(self.history_length)

    @property
    def policy_dt_s(self) -> float:
        """Return the policy period [s]."""
        return self.physics_dt_s * self.decimation

    def term_names(self) -> Tuple[str, ...]:
        """Return the observation term names in order."""
        return tuple(t.name for t in self.obs_terms)

    def onnx_path(self, contract_path: Union[str, Path]) -> Path:
        """
        Return the ONNX file's path for a contract stored at ``contract_path``.

        A contract read from an ONNX file (``.onnx``) names that file itself.
        """
        path = Path(contract_path).resolve()
        return path if path.suffix == '.onnx' else path.parent / self.onnx_file

    def unknown_fields(self) -> List[str]:
        """Return the dotted paths of the facts this contract leaves unknown (``null``)."""
        document = contract_to_dict(self)
        return [path for path in _UNKNOWN_ALLOWED if _get(document, path) is None]


def placeholder_contract(robot: Any, onnx_file: str = 'policy.onnx') -> PolicyContract:
    """
    Return a contract for an untrained placeholder policy of ``robot`` (a ``RobotConfig``).

    Joints, default pose, gains and limits come from the robot config; every known observation
    term is used with unit scale, at 200 Hz PD and a 50 Hz policy. Only for plumbing runs and
    tests: a trained policy brings the contract its training wrote. Joint position limits,
    training conditions and physics are unknown (the exporter fills what it can).
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
        gait_period_s=0.8, onnx_file=onnx_file, base_link=robot.base_link,
        velocity_limit_rad_s=tuple(float(v) for v in robot.velocity_limit_rad_s),
        armature_kg_m2=tuple(float(v) for v in robot.armature_kg_m2))


_UNKNOWN_ALLOWED = (
    'frames.base_link',
    'joints.position_min_rad',
    'joints.position_max_rad',
    'joints.velocity_limit_rad_s',
    'joints.armature_kg_m2',
    'training.action_delay_policy_steps',
    'training.tolerated_action_delay_s',
    'training.observation_noise',
    'training.randomization',
    'training.command_sampling',
    'physics',
)
"""Dotted paths of the format-2 fields that may be ``null`` (unknown)."""


def _get(document: Mapping[str, Any], dotted: str) -> Any:
    """Return the value at ``dotted`` in ``document`` (None where a level is missing)."""
    value: Any = document
    for key in dotted.split('.'):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _put(document: Dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``dotted`` in ``document``, creating the mappings on the way."""
    *parents, last = dotted.split('.')
    for key in parents:
        document = document.setdefault(key, {})
    document[last] = value


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


def _optional_vector(value: Any, path: str, size: int, **kw: bool) -> Optional[Tuple[float, ...]]:
    return None if value is None else _vector(value, path, size, **kw)


def _optional_range(value: Any, path: str) -> Optional[Tuple[float, float]]:
    return None if value == OFF else _range(value, path)


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContractError(path, f'expected a mapping, got {value!r}')
    return value


def _check_facts(data: Mapping[str, Any], facts: Sequence[Tuple[str, Any]]) -> None:
    """Raise :class:`ContractError` unless ``data`` states every fact of ``facts``."""
    for dotted, expected in facts:
        parent, _, key = dotted.rpartition('.')
        holder = _get(data, parent)
        if not isinstance(holder, Mapping) or key not in holder:
            raise ContractError(dotted, f'missing required field (this code implements '
                                f'{expected!r})')
        if holder[key] != expected:
            raise ContractError(dotted, f'this code implements {expected!r} only, the contract '
                                f'says {holder[key]!r}')


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _parse_frames(data: Mapping[str, Any]) -> Optional[str]:
    frames = _mapping(_require(data, 'frames', ''), 'frames')
    base = _require(frames, 'base_link', 'frames')
    child = _require(frames, 'odometry_child_frame', 'frames')
    base = None if base is None else _string(base, 'frames.base_link')
    if child != base:
        raise ContractError('frames.odometry_child_frame', f'must equal frames.base_link '
                            f'({base!r}): odometry twists are read in the base link frame, '
                            f'got {child!r}')
    return base


def _parse_joint_limits(joints: Mapping[str, Any], n: int,
                        default: Tuple[float, ...]) -> Dict[str, Any]:
    out = {}
    for key, kw in (('position_min_rad', {}), ('position_max_rad', {}),
                    ('velocity_limit_rad_s', {'positive': True}),
                    ('armature_kg_m2', {'nonneg': True})):
        out[key] = _optional_vector(_require(joints, key, 'joints'), f'joints.{key}', n, **kw)
    low, high = out['position_min_rad'], out['position_max_rad']
    if (low is None) != (high is None):
        raise ContractError('joints.position_min_rad', 'give both position limits or neither')
    if low is not None:
        for i, (lo, hi, q0) in enumerate(zip(low, high, default)):
            if not lo - 1e-9 <= q0 <= hi + 1e-9:
                raise ContractError(f'joints.default_pos_rad[{i}]', f'{q0} is outside the '
                                    f'position limits [{lo}, {hi}]')
    return out


def _parse_gait_clock(obs: Mapping[str, Any], data: Mapping[str, Any],
                      uses_clock: bool) -> Optional[float]:
    clock = obs.get('gait_clock')
    if not uses_clock:
        if clock is not None:
            raise ContractError('observation.gait_clock', 'given but no gait_phase term is used')
        return None
    clock = _mapping(_require(obs, 'gait_clock', 'observation'), 'observation.gait_clock')
    _check_facts(data, GAIT_CLOCK_FACTS)
    period = _number(_require(clock, 'period_s', 'observation.gait_clock'),
                     'observation.gait_clock.period_s', positive=True)
    rate = _number(_require(clock, 'rate_hz', 'observation.gait_clock'),
                   'observation.gait_clock.rate_hz', positive=True)
    if not _close(rate, 1.0 / period):
        raise ContractError('observation.gait_clock.rate_hz', f'{rate} is not 1 / period_s '
                            f'({1.0 / period})')
    return period


def _parse_training(data: Mapping[str, Any]) -> TrainingConditions:
    training = _mapping(_require(data, 'training', ''), 'training')
    delay = _require(training, 'action_delay_policy_steps', 'training')
    tolerated = _require(training, 'tolerated_action_delay_s', 'training')
    noise = _require(training, 'observation_noise', 'training')
    randomization = _require(training, 'randomization', 'training')
    sampling = _require(training, 'command_sampling', 'training')
    if delay is not None:
        delay = _int(delay, 'training.action_delay_policy_steps', minimum=0)
    if tolerated is not None:
        tolerated = _number(tolerated, 'training.tolerated_action_delay_s', nonneg=True)
    if noise is not None:
        _mapping(noise, 'training.observation_noise')
        _check_facts(data, NOISE_FACTS)
        widths = _mapping(_require(noise, 'half_width', 'training.observation_noise'),
                          'training.observation_noise.half_width')
        for name in widths:
            if name not in KNOWN_OBS_TERMS:
                raise ContractError(f'training.observation_noise.half_width.{name}',
                                    f'unknown observation term {name!r}')
        noise = {str(name): _number(width, f'training.observation_noise.half_width.{name}',
                                    nonneg=True) for name, width in widths.items()}
    if randomization is not None:
        randomization = _parse_randomization(_mapping(randomization, 'training.randomization'),
                                             data)
    if sampling is not None:
        path = 'training.command_sampling'
        _mapping(sampling, path)
        sampling = CommandSampling(
            resample_interval_s=_range(_require(sampling, 'resample_interval_s', path),
                                       f'{path}.resample_interval_s'),
            standing_fraction=_number(_require(sampling, 'standing_fraction', path),
                                      f'{path}.standing_fraction', nonneg=True),
            small_command_m_s=_number(_require(sampling, 'small_command_m_s', path),
                                      f'{path}.small_command_m_s', nonneg=True))
    # optional: absent where no error model was applied (and in files older than the field)
    lin_vel_error = training.get('base_lin_vel_error')
    if lin_vel_error is not None:
        lin_vel_error = _parse_lin_vel_error(_mapping(lin_vel_error,
                                                      'training.base_lin_vel_error'), data)
    return TrainingConditions(action_delay_policy_steps=delay,
                              tolerated_action_delay_s=tolerated, observation_noise=noise,
                              randomization=randomization, command_sampling=sampling,
                              base_lin_vel_error=lin_vel_error)


def _parse_lin_vel_error(raw: Mapping[str, Any], data: Mapping[str, Any]) -> BaseLinVelError:
    path = 'training.base_lin_vel_error'
    _check_facts(data, LIN_VEL_ERROR_FACTS)
    lag = _require(raw, 'lag_policy_steps', path)
    if not isinstance(lag, Sequence) or isinstance(lag, str) or len(lag) != 2:
        raise ContractError(f'{path}.lag_policy_steps', f'expected [low, high], got {lag!r}')
    low = _int(lag[0], f'{path}.lag_policy_steps[0]', minimum=0)
    high = _int(lag[1], f'{path}.lag_policy_steps[1]', minimum=0)
    if low > high:
        raise ContractError(f'{path}.lag_policy_steps', f'range low {low} is above high {high}')
    return BaseLinVelError(
        bias_m_s=_number(_require(raw, 'bias_m_s', path), f'{path}.bias_m_s', nonneg=True),
        scale_error=_number(_require(raw, 'scale_error', path), f'{path}.scale_error',
                            nonneg=True),
        lag_policy_steps=(low, high))


def _parse_randomization(raw: Mapping[str, Any], data: Mapping[str, Any]) -> Randomization:
    path = 'training.randomization'
    _check_facts(data, RANDOMIZATION_FACTS)
    ranges = {key: _optional_range(_require(raw, key, path), f'{path}.{key}')
              for key in ('friction_range', 'added_base_mass_kg', 'motor_strength_range',
                          'pd_gain_scale_range', 'push_interval_s')}
    push = _require(raw, 'push_lin_vel_m_s', path)
    push = None if push == OFF else _number(push, f'{path}.push_lin_vel_m_s', nonneg=True)
    if (push is None) != (ranges['push_interval_s'] is None):
        raise ContractError(f'{path}.push_lin_vel_m_s', 'push_interval_s and push_lin_vel_m_s '
                            f'must both be {OFF!r} or both be given')
    return Randomization(
        push_lin_vel_m_s=push,
        init_joint_noise_rad=_number(_require(raw, 'init_joint_noise_rad', path),
                                     f'{path}.init_joint_noise_rad', nonneg=True),
        init_base_lin_vel_m_s=_number(_require(raw, 'init_base_lin_vel_m_s', path),
                                      f'{path}.init_base_lin_vel_m_s', nonneg=True),
        **ranges)


def _parse_physics(data: Mapping[str, Any], physics_dt_s: float) -> Optional[PhysicsSpec]:
    raw = _require(data, 'physics', '')
    if raw is None:
        return None
    path = 'physics'
    _mapping(raw, path)
    _check_facts(data, PHYSICS_FACTS)
    timestep = _number(_require(raw, 'timestep_s', path), 'physics.timestep_s', positive=True)
    if not _close(timestep, physics_dt_s):
        raise ContractError('physics.timestep_s', f'{timestep} differs from timing.physics_dt_s '
                            f'{physics_dt_s}')
    self_collision = _require(raw, 'self_collision', path)
    if not isinstance(self_collision, bool):
        raise ContractError('physics.self_collision', f'expected true or false, got '
                            f'{self_collision!r}')
    geom_friction = _require(raw, 'robot_geom_friction', path)
    return PhysicsSpec(
        simulator=_string(_require(raw, 'simulator', path), 'physics.simulator'),
        timestep_s=timestep,
        integrator=_string(_require(raw, 'integrator', path), 'physics.integrator'),
        solver=_string(_require(raw, 'solver', path), 'physics.solver'),
        cone=_string(_require(raw, 'cone', path), 'physics.cone'),
        iterations=_int(_require(raw, 'iterations', path), 'physics.iterations'),
        ls_iterations=_int(_require(raw, 'ls_iterations', path), 'physics.ls_iterations'),
        gravity_m_s2=_vector(_require(raw, 'gravity_m_s2', path), 'physics.gravity_m_s2', 3),
        self_collision=self_collision,
        floor_friction=_vector(_require(raw, 'floor_friction', path), 'physics.floor_friction',
                               3, nonneg=True),
        robot_geom_friction=_optional_vector(geom_friction, 'physics.robot_geom_friction', 3,
                                             nonneg=True))


def contract_from_dict(data: Mapping[str, Any]) -> PolicyContract:
    """
    Validate a parsed contract document and build a :class:`PolicyContract`.

    Format 2 must state every code fact (:data:`CODE_FACTS` and the gait clock, noise,
    randomization and physics facts of the sections it gives) and every field, ``null`` where
    unknown. Format 1 lacks them: its code facts are implied and the rest is unknown.
    """
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

    extra: Dict[str, Any] = {}
    if version >= 2:
        gait_period = _parse_gait_clock(obs, data, 'gait_phase' in seen)
        extra['base_link'] = _parse_frames(data)
        extra.update(_parse_joint_limits(joints, n, default))
        _check_facts(data, CODE_FACTS)
        control = _mapping(_require(data, 'control', ''), 'control')
        rate = _number(_require(control, 'pd_rate_hz', 'control'), 'control.pd_rate_hz',
                       positive=True)
        if not _close(rate, 1.0 / dt):
            raise ContractError('control.pd_rate_hz', f'{rate} is not 1 / timing.physics_dt_s '
                                f'({1.0 / dt})')
        history = _int(_require(obs, 'history_length', 'observation'),
                       'observation.history_length')
        layout = _require(obs, 'history_layout', 'observation')
        if layout != history_layout(history):
            raise ContractError('observation.history_layout', f'this code implements '
                                f'{history_layout(history)!r} for history_length {history}, the '
                                f'contract says {layout!r}')
        if history > 1:
            _check_facts(data, HISTORY_FACTS)
        extra['history_length'] = history
        extra['training'] = _parse_training(data)
        extra['physics'] = _parse_physics(data, dt)
    else:
        gait_period = obs.get('gait_period_s')
        if 'gait_phase' in seen:
            if gait_period is None:
                raise ContractError('observation.gait_period_s', 'required by the gait_phase term')
            gait_period = _number(gait_period, 'observation.gait_period_s', positive=True)
        elif gait_period is not None:
            raise ContractError('observation.gait_period_s',
                                'given but no gait_phase term is used')

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
    obs_dim = extra.get('history_length', 1) * sum(t.size for t in terms)
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
        provenance=dict(provenance), **extra)


def _floats(values: Optional[Sequence[float]]) -> Optional[List[float]]:
    return None if values is None else [float(v) for v in values]


def _range_or_off(values: Optional[Sequence[float]]) -> Any:
    return OFF if values is None else [float(v) for v in values]


def _training_to_dict(training: TrainingConditions) -> Dict[str, Any]:
    noise = None
    if training.observation_noise is not None:
        noise = {'distribution': None, 'applied_to': None,
                 'half_width': {str(k): float(v) for k, v in training.observation_noise.items()}}
    randomization = None
    r = training.randomization
    if r is not None:
        randomization = {
            'friction_range': _range_or_off(r.friction_range),
            'friction_applied_to': None,
            'added_base_mass_kg': _range_or_off(r.added_base_mass_kg),
            'motor_strength_range': _range_or_off(r.motor_strength_range),
            'motor_strength_applies_to': None,
            'pd_gain_scale_range': _range_or_off(r.pd_gain_scale_range),
            'gain_scale_applies_to': None,
            'push_interval_s': _range_or_off(r.push_interval_s),
            'push_lin_vel_m_s': OFF if r.push_lin_vel_m_s is None else float(r.push_lin_vel_m_s),
            'push': None,
            'init_joint_noise_rad': float(r.init_joint_noise_rad),
            'init_base_lin_vel_m_s': float(r.init_base_lin_vel_m_s),
        }
    sampling = None
    s = training.command_sampling
    if s is not None:
        sampling = {'resample_interval_s': [float(v) for v in s.resample_interval_s],
                    'standing_fraction': float(s.standing_fraction),
                    'small_command_m_s': float(s.small_command_m_s)}
    delay = training.action_delay_policy_steps
    tolerated = training.tolerated_action_delay_s
    document = {
        'action_delay_policy_steps': None if delay is None else int(delay),
        'tolerated_action_delay_s': None if tolerated is None else float(tolerated),
        'observation_noise': noise,
        'randomization': randomization,
        'command_sampling': sampling,
    }
    e = training.base_lin_vel_error
    if e is not None:  # written only where stated: files older than the field stay as they were
        document['base_lin_vel_error'] = {
            'bias_m_s': float(e.bias_m_s), 'scale_error': float(e.scale_error),
            'lag_policy_steps': [int(v) for v in e.lag_policy_steps], 'drawn': None,
            'formula': None}
    return document


def _physics_to_dict(physics: Optional[PhysicsSpec]) -> Optional[Dict[str, Any]]:
    if physics is None:
        return None
    return {
        'simulator': physics.simulator,
        'timestep_s': float(physics.timestep_s),
        'integrator': physics.integrator,
        'solver': physics.solver,
        'cone': physics.cone,
        'iterations': int(physics.iterations),
        'ls_iterations': int(physics.ls_iterations),
        'gravity_m_s2': [float(v) for v in physics.gravity_m_s2],
        'self_collision': bool(physics.self_collision),
        'floor_friction': [float(v) for v in physics.floor_friction],
        'robot_geom_friction': _floats(physics.robot_geom_friction),
        'friction_combination': None,
    }


def contract_to_dict(contract: PolicyContract) -> Dict[str, Any]:
    """
    Return the plain-data document that :func:`write_contract` stores (always format 2).

    ``None`` placeholders in the layout below are the code facts, filled from the fact tables.
    """
    observation: Dict[str, Any] = {
        'terms': [{'name': t.name, 'size': t.size, 'scale': [float(s) for s in t.scale]}
                  for t in contract.obs_terms],
        'clip': float(contract.obs_clip),
        'formula': None,
        'history_length': int(contract.history_length),
        'history_layout': contract.history_layout,
    }
    if contract.history_length > 1:
        observation['history_formula'] = None
        observation['history_start'] = None
    if contract.gait_period_s is not None:
        period = float(contract.gait_period_s)
        observation['gait_clock'] = {
            'period_s': period, 'rate_hz': 1.0 / period, 'features': None,
            'phase_formula': None, 'runs_at_zero_command': None, 'start_phase': None,
            'trained_start_phase': None}
    observation['last_action'] = {'value': None, 'initial': None, 'when_delayed': None}
    document = {
        'format_version': FORMAT_VERSION,
        'robot': contract.robot,
        'frames': {
            'base_link': contract.base_link,
            'odometry_child_frame': contract.base_link,
            'base_velocity_frame': None,
            'base_lin_vel_point': None,
            'command_frame': None,
            'gravity_direction_world': None,
        },
        'joints': {
            'names': list(contract.joint_names),
            'default_pos_rad': [float(v) for v in contract.default_pos_rad],
            'action_scale_rad': [float(v) for v in contract.action_scale_rad],
            'kp_nm_per_rad': [float(v) for v in contract.kp_nm_per_rad],
            'kd_nms_per_rad': [float(v) for v in contract.kd_nms_per_rad],
            'effort_limit_nm': [float(v) for v in contract.effort_limit_nm],
            'position_min_rad': _floats(contract.position_min_rad),
            'position_max_rad': _floats(contract.position_max_rad),
            'velocity_limit_rad_s': _floats(contract.velocity_limit_rad_s),
            'armature_kg_m2': _floats(contract.armature_kg_m2),
        },
        'timing': {
            'physics_dt_s': float(contract.physics_dt_s),
            'decimation': int(contract.decimation),
            'policy_dt_s': float(contract.policy_dt_s),
            'target_hold': None,
        },
        'control': {
            'trained_mode': None,
            'pd_law': None,
            'pd_rate_hz': 1.0 / float(contract.physics_dt_s),
            'position_mode': None,
        },
        'observation': observation,
        'action': {'clip': float(contract.action_clip), 'formula': None},
        'commands': {
            'lin_vel_x_m_s': [float(v) for v in contract.commands.lin_vel_x_m_s],
            'lin_vel_y_m_s': [float(v) for v in contract.commands.lin_vel_y_m_s],
            'ang_vel_z_rad_s': [float(v) for v in contract.commands.ang_vel_z_rad_s],
        },
        'training': _training_to_dict(contract.training),
        'physics': _physics_to_dict(contract.physics),
        'onnx': {
            'file': contract.onnx_file,
            'input': {'name': contract.onnx_input_name, 'shape': ['batch', contract.obs_dim]},
            'output': {'name': contract.onnx_output_name,
                       'shape': ['batch', contract.action_dim]},
        },
        'provenance': plain_data(dict(contract.provenance)),
    }
    facts = list(CODE_FACTS)
    if contract.history_length > 1:
        facts += HISTORY_FACTS
    if contract.gait_period_s is not None:
        facts += GAIT_CLOCK_FACTS
    if document['training']['observation_noise'] is not None:
        facts += NOISE_FACTS
    if document['training']['randomization'] is not None:
        facts += RANDOMIZATION_FACTS
    if 'base_lin_vel_error' in document['training']:
        facts += LIN_VEL_ERROR_FACTS
    if document['physics'] is not None:
        facts += PHYSICS_FACTS
    for dotted, value in facts:
        _put(document, dotted, list(value) if isinstance(value, list) else value)
    return document


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


def contract_text(contract: PolicyContract) -> str:
    """
    Return the contract's YAML text: the ONNX metadata value, and the YAML file's body.

    Validated first (the text always reads back as ``contract``).
    """
    document = contract_to_dict(contract)
    contract_from_dict(document)
    return yaml.safe_dump(document, sort_keys=False, width=100)


YAML_HEADER = ('# humanoid_rl_ros policy contract: the interface between training and '
               'deployment.\n'
               '# The readable copy of the contract inside the ONNX file beside it (metadata key\n'
               f'# {ONNX_METADATA_KEY}); the two must be equal. Written by training/export.py;\n'
               '# read by the policy node and the evaluator. Fields: docs/DEPLOYING.md.\n')
"""Comment lines at the top of every written YAML copy."""


def _parse_yaml(text: str, source: Union[str, Path]) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError('<file>', f'{source} is not valid YAML: {exc}') from exc


def onnx_metadata(onnx_path: Union[str, Path]) -> Dict[str, str]:
    """
    Return the ``metadata_props`` of an ONNX file as a dict.

    Read with the ``onnx`` package where installed, else through onnxruntime. Raise
    :class:`ContractError` for a file that is not a readable ONNX model.
    """
    onnx_path = Path(onnx_path)
    try:
        try:
            import onnx
        except ImportError:  # pragma: no cover - a deployment with onnxruntime only
            import onnxruntime
            session = onnxruntime.InferenceSession(str(onnx_path),
                                                   providers=['CPUExecutionProvider'])
            return dict(session.get_modelmeta().custom_metadata_map)
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # noqa: B902 - protobuf and onnxruntime raise unrelated types
        raise ContractError('<file>', f'{onnx_path} is not a readable ONNX model: {exc}') from exc
    return {prop.key: prop.value for prop in model.metadata_props}


def embedded_contract_document(onnx_path: Union[str, Path]) -> Optional[Any]:
    """Return the parsed contract embedded in an ONNX file, or None if it carries none."""
    text = onnx_metadata(onnx_path).get(ONNX_METADATA_KEY)
    if text is None:
        return None
    return _parse_yaml(text, f'the contract embedded in {onnx_path}')


def _first_difference(a: Any, b: Any, path: str = '') -> Optional[Tuple[str, Any, Any]]:
    """Return ``(dotted path, a's value, b's value)`` of the first difference, or None."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f'{path}.{key}' if path else str(key)
            if key not in a or key not in b:
                return sub, a.get(key, '<absent>'), b.get(key, '<absent>')
            found = _first_difference(a[key], b[key], sub)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f'{path}[{i}]')
            if found:
                return found
        return None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return None  # a NaN metric (e.g. no finished episode) equals itself here
    return None if a == b else (path or '<root>', a, b)


def contract_difference(a: Union[PolicyContract, Mapping[str, Any]],
                        b: Union[PolicyContract, Mapping[str, Any]]) -> Optional[str]:
    """
    Return where two contracts (objects or parsed documents) differ, or None if they agree.

    Both are validated and compared as written (format 2), so formatting does not count.
    """
    docs = [contract_to_dict(c if isinstance(c, PolicyContract) else contract_from_dict(c))
            for c in (a, b)]
    found = _first_difference(*docs)
    if found is None:
        return None
    where, left, right = found
    return f'{where}: {_short(left)} against {_short(right)}'


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + '...'


def _mismatch_error(yaml_path: Path, onnx_path: Path, difference: str) -> ContractError:
    return ContractError('<file>', (
        f'{yaml_path} and the contract embedded in {onnx_path} differ (the YAML first) at '
        f'{difference}. The ONNX carries the contract it was exported with: rewrite the YAML '
        f'from it with "python -m training.export extract {onnx_path}", or re-export the '
        'policy'))


def read_contract(path: Union[str, Path]) -> PolicyContract:
    """
    Read and validate the contract at ``path``; raise :class:`ContractError` on any problem.

    ``path`` is the YAML copy (``.yaml``/``.yml``) or the ONNX file (``.onnx``). Where both the
    YAML and the ONNX's embedded contract exist they must agree; a disagreement is refused with
    the first differing field. An ONNX without an embedded contract (an export older than
    format 2) is read through its ``.yaml`` sibling.
    """
    path = Path(path)
    if not path.is_file():
        raise ContractError('<file>', f'no policy contract at {path}')
    if path.suffix == '.onnx':
        embedded = embedded_contract_document(path)
        sibling = path.with_suffix('.yaml')
        if embedded is None:
            if sibling.is_file():
                return read_contract(sibling)
            raise ContractError('<file>', (
                f'{path} carries no policy contract (no {ONNX_METADATA_KEY!r} metadata) and '
                f'has no {sibling.name} beside it; re-export the policy, or run "python -m '
                'training.export upgrade <its contract .yaml>"'))
        contract = contract_from_dict(embedded)
        if sibling.is_file():
            difference = contract_difference(_parse_yaml(sibling.read_text(), sibling), embedded)
            if difference:
                raise _mismatch_error(sibling, path, difference)
        return contract
    document = _parse_yaml(path.read_text(), path)
    contract = contract_from_dict(document)
    onnx_path = contract.onnx_path(path)
    if onnx_path.is_file():
        embedded = embedded_contract_document(onnx_path)
        if embedded is not None:
            difference = contract_difference(document, embedded)
            if difference:
                raise _mismatch_error(path, onnx_path, difference)
    return contract


def write_contract(contract: PolicyContract, path: Union[str, Path]) -> Path:
    """
    Validate ``contract`` and write its YAML copy to ``path``; return the path.

    The ONNX metadata copy is written by ``training.export`` (the ``onnx`` package is a
    training dependency); the YAML is :data:`YAML_HEADER` plus :func:`contract_text`.
    """
    text = contract_text(contract)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(YAML_HEADER + text)
    return path
