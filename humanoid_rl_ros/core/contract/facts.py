"""
The vocabulary of the policy contract's format: version, ONNX key, terms and code-fixed facts.

Format 2 states, in every file, the facts this code fixes (frames, the gait clock's order, the
last action, the PD law, ...) as ``(dotted path, value)`` tables; :func:`check_facts` refuses a
document that states anything else, because this code cannot run it.  Which tables apply
depends on the sections a document gives (a gait clock, a stacked history, noise,
randomization, the base velocity error, physics).  :class:`ContractError` is the one error
of the contract's reading and writing; its message starts with the offending dotted path.
"""

from typing import Any, Dict, Mapping, Sequence, Tuple

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
)
"""
Code facts of the domain randomization, present when the randomization is known.

``training.randomization.push`` is stated too, but it depends on the push terms a run had
switched on: :func:`push_kind`.
"""

PUSH_PLANAR = 'planar_world_velocity_change_uniform_per_axis'
"""``training.randomization.push`` of pushes that change the base's world x and y velocity."""

PUSH_SPATIAL = 'world_velocity_change_uniform_per_axis'
"""``training.randomization.push`` of pushes that also change the world z velocity."""

PUSH_ANGULAR = '_and_body_angular_velocity_change_uniform_per_axis'
"""Appended to the push kind where pushes also change the base's body-frame angular velocity."""


def push_kind(vertical: bool, angular: bool) -> str:
    """
    Return ``training.randomization.push``: what a push changed (training.env.episodes).

    Every push adds a uniform change to the base's world x and y velocity; ``vertical`` runs
    (``push_lin_vel_z_m_s`` stated) also to its world z velocity, ``angular`` runs
    (``push_ang_vel_rad_s`` stated) also to its body-frame roll, pitch and yaw rates.
    """
    return (PUSH_SPATIAL if vertical else PUSH_PLANAR) + (PUSH_ANGULAR if angular else '')


LIN_VEL_ERROR_FORMULA = ('observed = v(k - lag) * (1 + scale_error) + bias + noise, with lag, '
                         'scale_error (per axis) and bias (per axis) drawn per episode')
"""How training corrupted the actor's base velocity (training.base_lin_vel_error)."""

LIN_VEL_ERROR_FACTS: Tuple[Tuple[str, Any], ...] = (
    ('training.base_lin_vel_error.drawn', 'uniform_per_episode'),
    ('training.base_lin_vel_error.formula', LIN_VEL_ERROR_FORMULA),
)
"""Code facts of the base velocity error model, present when the model is known."""

PD_IN_NODE = 'pd_in_node'
"""The PD law runs in the policy node, which sends efforts (``control.trained_mode``)."""

PD_IN_DRIVE = 'pd_in_drive'
"""The PD law runs in the joint drive, which receives position targets (``position_mode``)."""

PD_LOCATIONS = (PD_IN_NODE, PD_IN_DRIVE)
"""Where the PD law can run; ``training.action_delay_tolerance`` has a figure for each."""

DELAY_PD_IN_NODE = ('every sensor value the node reads is delay_s old and its efforts apply at '
                    'once: the round trip of sensing, policy and PD law')
"""What the delay of ``pd_in_node`` is (the robustness suite's ``latency_<ms>ms`` scenarios)."""

DELAY_PD_IN_DRIVE = ('the drive runs control.pd_law on fresh joint states; the joint targets '
                     'of the policy reach it delay_s late')
"""What the delay of ``pd_in_drive`` is (the suite's ``latency_joint_pd_<ms>ms`` scenarios)."""

DELAY_CRITERION = ('tolerated_s: the largest tried delay_s with no fall in any episode at it or '
                   'at any smaller tried delay; first_failed_s: the smallest tried delay_s with '
                   'a fall (null: none fell)')
"""How the tolerated delay follows from the delays tried."""

DELAY_TOLERANCE_FACTS: Tuple[Tuple[str, Any], ...] = (
    ('training.action_delay_tolerance.pd_in_node_delay', DELAY_PD_IN_NODE),
    ('training.action_delay_tolerance.pd_in_drive_delay', DELAY_PD_IN_DRIVE),
    ('training.action_delay_tolerance.criterion', DELAY_CRITERION),
)
"""Code facts of the measured delay tolerance, present when it was measured."""

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


UNKNOWN_ALLOWED = (
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


def get_dotted(document: Mapping[str, Any], dotted: str) -> Any:
    """Return the value at ``dotted`` in ``document`` (None where a level is missing)."""
    value: Any = document
    for key in dotted.split('.'):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def put_dotted(document: Dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``dotted`` in ``document``, creating the mappings on the way."""
    *parents, last = dotted.split('.')
    for key in parents:
        document = document.setdefault(key, {})
    document[last] = value


def check_facts(data: Mapping[str, Any], facts: Sequence[Tuple[str, Any]]) -> None:
    """Raise :class:`ContractError` unless ``data`` states every fact of ``facts``."""
    for dotted, expected in facts:
        parent, _, key = dotted.rpartition('.')
        holder = get_dotted(data, parent)
        if not isinstance(holder, Mapping) or key not in holder:
            raise ContractError(dotted, f'missing required field (this code implements '
                                f'{expected!r})')
        if holder[key] != expected:
            raise ContractError(dotted, f'this code implements {expected!r} only, the contract '
                                f'says {holder[key]!r}')
