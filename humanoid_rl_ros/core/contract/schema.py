"""
The policy contract as typed values: :class:`PolicyContract` and the sections it holds.

Each field's docstring gives its meaning and unit; ``None`` marks a fact a training run did not
record (unknown, never guessed).  Reading and writing the document is
:mod:`humanoid_rl_ros.core.contract`'s (the public API).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple, Union

from humanoid_rl_ros.core.contract.delay_section import ActionDelayTolerance
from humanoid_rl_ros.core.contract.facts import (expected_term_size, FORMAT_VERSION, get_dotted,
                                                 history_layout, KNOWN_OBS_TERMS, UNKNOWN_ALLOWED)


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
class Latency:
    """
    The sensing and actuation delays a policy was trained under, drawn once per episode.

    Each delay is a whole number of physics steps, drawn uniformly from its range (both ends
    included). The action delay: joint targets computed at physics step ``s`` reach the PD law
    at step ``s + d`` (the older targets act meanwhile). The observation delay: the actor sees
    its base and joint terms (velocities, gravity direction, joint positions and velocities) as
    they were ``d`` physics steps before. The ranges in milliseconds are the configured ones;
    the ranges in physics steps (each end rounded down) are what was drawn.
    """

    action_delay_ms: Tuple[float, float]
    """Configured action delay range [ms]."""
    action_delay_physics_steps: Tuple[int, int]
    """Action delay range drawn [physics steps]."""
    obs_delay_ms: Tuple[float, float]
    """Configured observation delay range [ms]."""
    obs_delay_physics_steps: Tuple[int, int]
    """Observation delay range drawn [physics steps]."""


@dataclass(frozen=True)
class Randomization:
    """
    Domain randomization a policy was trained under; ``None`` marks an item that was off.

    Every draw is uniform in its range, once per episode (pushes: at random intervals). The
    items from ``link_mass_scale_range`` on are optional in the file: written only where they
    were on (the code before them had none of them).
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
    link_mass_scale_range: Optional[Tuple[float, float]] = None
    """Scale of each robot body's mass and inertia, one factor per body [-]."""
    base_com_offset_m: Optional[Tuple[float, float, float]] = None
    """Half-range of the base's centre-of-mass offset along its x, y, z [m]."""
    kd_scale_range: Optional[Tuple[float, float]] = None
    """Second scale of each joint's kd, on top of ``pd_gain_scale_range`` [-]."""
    armature_scale_range: Optional[Tuple[float, float]] = None
    """Scale of each joint's rotor inertia (``joints.armature_kg_m2``) [-]."""
    joint_friction_nm: Optional[Tuple[float, float]] = None
    """Dry friction of each joint (MuJoCo frictionloss) [N*m]."""
    joint_damping_nms_per_rad: Optional[Tuple[float, float]] = None
    """Viscous damping of each joint, on top of the PD law's kd [N*m*s/rad]."""
    latency: Optional[Latency] = None
    """Per-episode action and observation delays."""
    gyro_bias_rad_s: Optional[float] = None
    """Half-range of the per-episode bias on each gyro axis the actor sees [rad/s]."""
    gravity_bias: Optional[float] = None
    """Half-range of the per-episode bias on each projected-gravity entry the actor sees [-]."""
    encoder_bias_rad: Optional[float] = None
    """Half-range of the per-episode bias on each joint position the actor sees [rad]."""
    push_lin_vel_z_m_s: Optional[float] = None
    """Half-range of each push's vertical base velocity change, world z [m/s]."""
    push_ang_vel_rad_s: Optional[Tuple[float, float, float]] = None
    """Half-ranges of each push's roll, pitch, yaw rate change, body frame [rad/s]."""


@dataclass(frozen=True)
class TerrainSpec:
    """
    The ground a policy was trained on: a grid of tiles, one difficulty level per row.

    Level 0 is flat; level ``l`` of ``num_levels`` has slopes of
    ``l / (num_levels - 1) * max_slope_deg`` and bumps of ``l / (num_levels - 1) *
    max_rough_m``. With ``curriculum`` an environment moved up a level after walking far
    enough and down after falling short; otherwise each episode drew a random level.
    """

    kinds: Tuple[str, ...]
    """Terrain kinds, one per column (flat, slope_up, slope_down, rough, rough_slope)."""
    num_levels: int
    """Difficulty levels."""
    max_slope_deg: float
    """Slope of the hardest level [deg]."""
    max_rough_m: float
    """Bump half-height of the hardest level [m]."""
    tile_size_m: float
    """Side of one square tile [m]."""
    curriculum: bool
    """Whether levels followed the curriculum (False: a random level per episode)."""


@dataclass(frozen=True)
class CommandSampling:
    """How training drew the velocity commands (within :class:`CommandRanges`)."""

    resample_interval_s: Tuple[float, float]
    """A command is held for a uniform draw from this interval [s]."""
    standing_fraction: float
    """Share of commands that are exactly zero [-]."""
    small_command_m_s: float
    """Planar commands slower than this were zeroed (yaw rate kept) [m/s]."""
    single_axis_fraction: float = 0.0
    """Share of commands that kept only one of (vx, vy, yaw rate) [-]; written only where
    nonzero."""


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
    """
    Extra observation-to-action delay the policy was measured to tolerate [s].

    With ``action_delay_tolerance`` stated, the figure that holds wherever the PD law runs: its
    :attr:`ActionDelayTolerance.bound_s` (``None`` where a place is unknown). Files without
    that section may state a figure without saying where the PD law ran.
    """
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
    terrain: Optional[TerrainSpec] = None
    """
    The terrain grid; ``None``: the flat floor.

    An optional section (``training.terrain``), written only for runs on terrain; files
    older than the field come from flat-floor training.
    """
    action_delay_tolerance: Optional[ActionDelayTolerance] = None
    """
    The measured delay tolerance per place of the PD law; ``None``: not measured.

    An optional section (``training.action_delay_tolerance``), written by ``python -m
    training.export record-tolerance`` from a robustness report of this very policy.
    """

    def tolerated_delay_s(self, pd_in_drive: bool) -> Optional[float]:
        """
        Return the action delay [s] tolerated with the PD law in the drive or in the node.

        From ``action_delay_tolerance`` where measured; else the location-free
        ``tolerated_action_delay_s`` (``None``: unknown).
        """
        if self.action_delay_tolerance is None:
            return self.tolerated_action_delay_s
        figures = self.action_delay_tolerance.at(pd_in_drive)
        return None if figures is None else figures.tolerated_s

    def delay_tolerance_note(self, pd_in_drive: bool) -> str:
        """Return one line on the tolerated action delay for where the PD law runs (for logs)."""
        if self.action_delay_tolerance is not None:
            return self.action_delay_tolerance.note(pd_in_drive)
        head = f'tolerated action delay, PD law in the {"drive" if pd_in_drive else "node"}: '
        flat = self.tolerated_action_delay_s
        if flat is None:
            return head + 'not measured'
        return head + f'{1e3 * flat:g} ms (the contract does not say where the PD law ran)'


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
        from humanoid_rl_ros.core.contract.document import contract_to_dict  # it imports these
        document = contract_to_dict(self)
        return [path for path in UNKNOWN_ALLOWED if get_dotted(document, path) is None]


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
