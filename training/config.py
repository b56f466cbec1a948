"""
Typed configuration of the locomotion task.

Every field has a docstring and a unit. Defaults start from the published numbers of
legged_gym, mjlab and mujoco_playground and are cited where borrowed. Every field is an option
of ``python -m training.train`` (``--env.rewards.track-lin-vel 2.0``; ``--help`` lists them with
these docstrings) and the resolved config is saved in each run folder.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Dict, List, Literal, Optional, Sequence, Tuple

import tyro


@dataclass
class CommandConfig:
    """Velocity commands sampled per environment (body frame, REP-103)."""

    lin_vel_x_m_s: Tuple[float, float] = (-0.6, 1.2)
    """Forward velocity range [m/s]; covers Nav2's backing up and the evaluator's 1.0 m/s."""
    lin_vel_y_m_s: Tuple[float, float] = (-0.5, 0.5)
    """Sideways velocity range [m/s] (mjlab G1 flat: +/-0.5)."""
    ang_vel_z_rad_s: Tuple[float, float] = (-1.0, 1.0)
    """Yaw rate range [rad/s] (legged_gym, playground: +/-1)."""
    resample_interval_s: Tuple[float, float] = (3.0, 8.0)
    """Commands are resampled after a uniform draw from this interval [s] (mjlab: 3-8 s)."""
    standing_fraction: float = 0.15
    """Share of commands that are exactly zero so standing still is learned (mjlab: 0.1)."""
    small_command_m_s: float = 0.1
    """Planar commands below this speed are zeroed [m/s] (legged_gym's 0.2 rule, milder)."""
    single_axis_fraction: float = 0.0
    """Share of commands that keep only one of (vx, vy, yaw rate), the axis drawn uniformly:
    pure forward or backward walking, pure sidestepping and turning in place, which independent
    draws of the three axes rarely give (both planar speeds under 0.15 m/s in 5 % of the draws
    over the default ranges) and which Nav2 asks for near every goal. 0: off."""


@dataclass
class ObservationConfig:
    """
    Which terms the actor sees, their scales and the training-time noise.

    By default the actor sees what a robot measures without an external velocity estimator
    (gyro, gravity direction, joints, last action, command, gait clock), as the hardware-proven
    humanoid recipes do (unitree_rl_gym G1, humanoid-gym, Booster Gym); the critic also gets
    the base velocity and the other privileged state (``training.env.observations``).
    """

    use_base_lin_vel: bool = False
    """Give the actor the body-frame base velocity (then trained with the estimator-like error
    below); off by default: a robot without good odometry cannot supply it."""
    use_gait_phase: bool = True
    """Give the actor a gait clock (playground G1 joystick uses one)."""
    gait_period_s: float = 0.8
    """Gait cycle period [s] (playground samples 1.25-1.5 Hz)."""
    history_length: int = 1
    """Observation frames stacked into the actor's input, oldest first (humanoid-gym: 15;
    unitree_rl_gym G1: 1). Above 1 the policy node must keep the history too."""
    lin_vel_scale: float = 2.0
    """Scale of base_lin_vel and of the planar command (legged_gym: 2.0)."""
    ang_vel_scale: float = 0.25
    """Scale of base_ang_vel and of the yaw-rate command (legged_gym: 0.25)."""
    joint_vel_scale: float = 0.05
    """Scale of joint_vel (legged_gym: 0.05)."""
    clip: float = 100.0
    """Scaled observations are clipped to +/- this (legged_gym: 100)."""
    noise: Dict[str, float] = field(default_factory=lambda: {
        'base_lin_vel': 0.5, 'base_ang_vel': 0.2, 'projected_gravity': 0.05,
        'joint_pos': 0.01, 'joint_vel': 1.5})
    """Uniform noise half-width per raw term, in the term's units, drawn every policy step
    (mjlab velocity task, base_lin_vel +/-0.5 m/s included); only the actor's terms get it."""
    lin_vel_bias_m_s: float = 0.1
    """Half-width of the per-episode bias on an observed base_lin_vel, per axis [m/s]: an
    estimator's drift (no anchor publishes one; a fifth of mjlab's per-step noise)."""
    lin_vel_scale_error: float = 0.1
    """Half-width of the per-episode relative scale error on an observed base_lin_vel, per
    axis: a leg-odometry estimate off by up to 10 % (no anchor publishes one)."""
    lin_vel_lag_steps: Tuple[int, int] = (0, 2)
    """Per-episode lag of an observed base_lin_vel, both ends included [policy steps]: 0-40 ms
    at 50 Hz, an estimator's filter delay (no anchor publishes one)."""


@dataclass
class RewardConfig:
    """
    Reward scales (a term with scale 0 is skipped) and their parameters.

    Every term is multiplied by the policy period, as legged_gym does, so the scales compare
    with legged_gym's.
    """

    track_lin_vel: float = 2.0
    """exp(-|v_xy* - v_xy|^2 / sigma^2) (mjlab: 2.0)."""
    track_ang_vel: float = 2.0
    """exp(-(w_z* - w_z)^2 / sigma^2) (mjlab: 2.0)."""
    lin_vel_z: float = -2.0
    """Vertical base velocity squared (legged_gym: -2.0)."""
    ang_vel_xy: float = -0.05
    """Roll/pitch rate squared (legged_gym: -0.05)."""
    orientation: float = -5.0
    """Squared planar part of the projected gravity: stay upright."""
    base_height: float = -10.0
    """Squared error of the base height to its nominal value [1/m^2]."""
    torques: float = -1e-5
    """Sum of squared efforts (legged_gym: -1e-5)."""
    dof_acc: float = -2.5e-7
    """Sum of squared joint accelerations (legged_gym: -2.5e-7)."""
    action_rate: float = -0.01
    """Sum of squared action changes (legged_gym: -0.01; mjlab: -0.1)."""
    dof_pos_limits: float = -5.0
    """Joint excursion beyond the soft limits [rad]."""
    posture: float = -0.5
    """Deviation from the default pose of hip roll, torso and arm joints [rad^2]."""
    feet_air_time: float = 1.0
    """Air time minus the target at touchdown, while walking (legged_gym biped)."""
    feet_slip: float = -0.25
    """Squared planar speed of feet in contact (playground: -0.25)."""
    feet_phase: float = 1.0
    """Foot height following the gait clock's swing profile, while walking or disturbed; the
    maximum (1) otherwise (playground: 1.0)."""
    feet_distance: float = -10.0
    """Feet closer laterally than the minimum width [m]."""
    stand_still: float = -0.2
    """Sum of |joint deviation from the default pose| while standing: zero command, not
    disturbed (legged_gym's stand_still) [1/rad]."""
    stand_pose: float = 1.0
    """exp(-mean(((q - q_default) / stand_pose_std_rad)^2)) while standing (mjlab G1 pose
    reward: weight 1.0, std 0.05 rad in its standing regime)."""
    stand_feet_contact: float = 0.18
    """Feet in contact, counted, while standing (unitree_rl_gym G1 contact: 0.18 per foot
    whose contact matches the clock's stance; standing, every foot is stance)."""
    stand_joint_vel: float = -0.01
    """Sum of squared joint velocities while standing [s^2/rad^2] (unitree_rl_gym G1 dof_vel
    is -1e-3 at all times; ten times that, standing only)."""
    termination: float = -200.0
    """Falling (not time-outs)."""
    moving_command_threshold: float = 0.05
    """A command whose norm |(vx, vy, wz)| exceeds this is a walking command; below, the
    robot should stand (mjlab walking_threshold: 0.05)."""
    disturbed_speed_m_s: float = 0.3
    """At a zero command a planar base speed above this means pushed: the gait terms apply
    (recovery steps follow the clock) and the stand terms do not [m/s]. Chosen at about half
    the default push (0.6 m/s per axis); no anchor publishes one."""
    stand_pose_std_rad: float = 0.05
    """Per-joint std of the stand_pose kernel [rad] (mjlab G1 std_standing: 0.05)."""
    tracking_sigma: float = 0.5
    """Std of the tracking kernels [m/s, rad/s] (legged_gym: sigma^2 = 0.25)."""
    tracking_window_s: float = 0.0
    """The tracking terms compare the command with the base velocity averaged over this
    window [s] (whole policy steps; since the episode start while shorter), not the
    instantaneous one: a walking pelvis speeds up, slows down and yaws within every stride,
    and the evaluator measures the velocity averaged over a gait period. Instantaneously, that
    swing costs a walking robot more yaw-rate reward than standing through a small command
    costs in velocity reward. The critic then also sees the windowed velocity (its
    ``tracked_velocity`` part), which these rewards depend on. 0: instantaneous (legged_gym).
    Trained once, resumed for 589 iterations at 0.8 s with a critic that did not see it: the
    policy tracked worse (benchmarks/time_to_policy_real_world/README.md)."""
    swing_height_m: float = 0.08
    """Peak foot height of the gait clock's swing profile [m]."""
    feet_phase_sigma_m: float = 0.03
    """Std of the feet_phase kernel exp(-sum_feet (z - z*)^2 / sigma^2) [m] (mujoco_playground:
    0.1, its exp(-error / 0.01)). At 0.03 a foot left on the ground at the swing's 8 cm peak
    earns exp(-7.1), next to nothing, and a gait that lifts its feet too little hardly more: in
    the training env the real-world snapshot of iteration 2371 earned 0.25 per second from it
    standing through a 0.3 m/s command and 0.28 walking at 0.5. At 0.1 it earns 0.77 and 0.80:
    no bigger push towards stepping either (benchmarks/reward_terms.py, 2026-12-05)."""
    air_time_target_s: float = 0.25
    """Air time at which feet_air_time breaks even [s]. It must stay below the gait clock's
    swing time (half of ``observations.gait_period_s``: 0.4 s): at 0.4 s every step that
    follows the clock paid at most zero, so walking at a small command cost more than
    standing, and the policies trained so stood still at 0.3 m/s and 0.5 rad/s commands."""
    min_feet_width_m: float = 0.14
    """Lateral foot separation below which feet_distance penalizes [m]."""
    soft_joint_limit: float = 0.95
    """Share of the joint range beyond which dof_pos_limits penalizes."""
    contact_force_n: float = 5.0
    """A foot whose normal contact force exceeds this is in contact [N]."""


@dataclass
class DomainRandConfig:
    """
    Domain randomization; every item can be switched off.

    Every quantity is drawn per environment when its episode starts (uniformly over the given
    range), except the pushes (at random times within the episode).  Ranges that come from a
    published sim-to-real setup name it.  Every term works on the MuJoCo Warp backend, where
    mujoco_warp 4.0 holds the randomized model fields once per world (``put_model``'s
    ``batch_sizes``: geom_friction, body_mass, body_inertia, body_subtreemass, body_ipos,
    dof_armature, dof_frictionloss, dof_damping).  Not randomized per world there: the
    constraint solver's regularization scale (``body_invweight0``/``dof_invweight0``) keeps its
    nominal value, so contact softness does not follow the randomized masses.  A backend that
    lacks a term switches it off with a message (latency when the env is built, the others at
    the first reset); the Isaac Gym backend has friction, base mass, gains, motor strength and
    the observation-side terms only.
    """

    friction: bool = True
    """Randomize the ground-robot sliding friction per environment."""
    friction_range: Tuple[float, float] = (0.2, 1.5)
    """
    Sliding friction coefficient range (unitree_rl_gym G1: 0.1-1.25; mjlab: 0.3-1.2).

    It is written into every geom, floor and robot alike: MuJoCo uses the larger of a
    contact pair's two coefficients, so setting the floor alone could not go below the
    robot's own value.
    """
    added_base_mass: bool = True
    """Add a random payload to the base (at the base's centre of mass)."""
    added_base_mass_kg: Tuple[float, float] = (-1.0, 3.0)
    """Added base mass range [kg] (unitree_rl_gym G1: -1..+3 kg)."""
    link_mass: bool = False
    """Scale every robot body's mass (and inertia with it) by its own factor."""
    link_mass_scale_range: Tuple[float, float] = (0.9, 1.1)
    """Mass scale range of each body (mujoco_playground G1: x0.9-1.1)."""
    base_com: bool = False
    """Offset the base's centre of mass."""
    base_com_offset_m: Tuple[float, float, float] = (0.025, 0.025, 0.03)
    """Half-range of the offset along the base's x, y, z [m] (mjlab: +/-0.025, 0.025, 0.03)."""
    motor_strength: bool = True
    """Scale the effort limits (peak torque) per joint: weaker motors."""
    motor_strength_range: Tuple[float, float] = (0.8, 1.0)
    """Effort limit scale range; the actuators' range caps it at 1 (the motor's rating)."""
    pd_gain_scale: bool = True
    """Scale kp and kd per joint (one factor per joint for both)."""
    pd_gain_scale_range: Tuple[float, float] = (0.9, 1.1)
    """Scale range of kp and kd."""
    kd_scale: bool = False
    """Scale kd per joint by a second, independent factor (on top of ``pd_gain_scale``)."""
    kd_scale_range: Tuple[float, float] = (0.95, 1.05)
    """Extra kd scale range (Booster Gym T1: kp and kd x0.95-1.05 each)."""
    armature: bool = False
    """Scale each joint's rotor inertia (armature)."""
    armature_scale_range: Tuple[float, float] = (0.9, 1.1)
    """Armature scale range (mujoco_playground G1: x1.0-1.05; wider here, both ways)."""
    joint_friction: bool = False
    """Give each joint a random dry friction (MuJoCo frictionloss; one constraint row each)."""
    joint_friction_nm: Tuple[float, float] = (0.0, 1.0)
    """Dry friction range [N*m] (Booster Gym T1 draws joint friction over 0-2)."""
    joint_damping: bool = False
    """Give each joint a random viscous damping (on top of the PD law's kd)."""
    joint_damping_nms_per_rad: Tuple[float, float] = (0.0, 0.3)
    """Viscous damping range [N*m*s/rad] (no published anchor; small against kd of 1.5-16)."""
    latency: bool = False
    """
    Delay each environment's actions and observations by its own number of physics steps.

    Action delay: the PD targets reach the PD law late, inside the decimation loop (Booster
    Gym T1 delays actions by 0-9 substeps of 2 ms).  Observation delay: the actor sees the
    base orientation, velocities and joint state as they were that many physics steps before
    (the critic sees the present).  Delays are drawn in whole physics steps.
    """
    action_delay_ms: Tuple[float, float] = (0.0, 40.0)
    """Action delay range [ms], rounded down to physics steps (0-40 ms: 0-8 steps at 5 ms)."""
    obs_delay_ms: Tuple[float, float] = (0.0, 40.0)
    """Observation delay range [ms], rounded down to physics steps."""
    action_latency: bool = False
    """Apply the previous policy step's action (a fixed one policy step delay; older option)."""
    imu_bias: bool = False
    """Add a per-episode bias to the actor's gyro and projected-gravity observations."""
    gyro_bias_rad_s: float = 0.05
    """Gyro bias half-range per axis [rad/s]."""
    gravity_bias: float = 0.03
    """Projected-gravity bias half-range per axis (unit vector; 0.03 is about 1.7 deg)."""
    encoder_bias: bool = False
    """Add a per-episode bias to each joint position the actor sees."""
    encoder_bias_rad: float = 0.015
    """Joint encoder bias half-range [rad] (mjlab: +/-0.015)."""
    obs_noise: bool = True
    """Add the observation config's uniform per-step noise (gyro and gravity included)."""
    pushes: bool = True
    """Add random velocity impulses to the base at random intervals per environment."""
    push_interval_s: Tuple[float, float] = (3.0, 6.0)
    """Time between pushes, drawn per push and environment [s] (mjlab: 1-3 s)."""
    push_lin_vel_m_s: float = 0.6
    """Planar push velocity half-range per axis [m/s] (mjlab: 0.5)."""
    push_lin_vel_z_m_s: float = 0.0
    """Vertical push velocity half-range [m/s] (mjlab: 0.4; 0: none)."""
    push_ang_vel_rad_s: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Roll, pitch, yaw push rate half-ranges, body frame [rad/s] (mjlab: 0.52, 0.52, 0.78)."""
    ramp_iterations: int = 0
    """Grow the randomization over the first this many PPO iterations (0: full from the
    first iteration).  Push speeds (planar, vertical, angular) and the span of the action and
    observation delays above their lower bounds scale linearly from 0 to their full ranges;
    every randomized parameter's range (gains, strength, friction, masses, centre of mass,
    armature, joint friction and damping, sensor biases) grows from its nominal value (the
    unrandomized robot, clamped into the range) to the configured range.  Training starts on
    the robot of a flat-ground run and meets the world's spread once it walks; the terrain
    has its own curriculum, by success.  Observation noise is not ramped."""


@dataclass
class TerrainConfig:
    """
    Rough and sloped ground: one heightfield of square tiles, a difficulty curriculum per env.

    The tiles form a grid: one row per difficulty level along x, one column per terrain kind
    along y (mjlab's and legged_gym's layout; one heightfield shared by every world).  Level 0
    is flat for every kind; level ``l`` has slopes of ``l / (num_levels - 1) * max_slope_deg``
    and bumps of ``l / (num_levels - 1) * max_rough_m``.  Each environment is assigned a kind
    (env index modulo the kinds) and starts on a level in ``[0, max_init_level]``; at each
    reset it spawns on the flat platform at the centre of its tile.  The curriculum (mjlab's
    ``terrain_levels_vel`` rule) moves an environment one level up when its last episode took
    it farther than half a tile from its spawn point, and one level down when it fell or
    covered less than half the distance its command asked for; beyond the last level it goes
    to a random level.  Heights are measured from the ground under the robot (base height
    reward, fall test, foot heights).
    """

    enabled: bool = False
    """Train on the terrain grid (False: the flat floor, faster)."""
    kinds: Tuple[str, ...] = ('slope_up', 'slope_down', 'rough', 'rough_slope')
    """Kind of each column: flat, slope_up (pyramid), slope_down (pit), rough, rough_slope."""
    num_levels: int = 10
    """Difficulty levels (rows) (mjlab: 10)."""
    tile_size_m: float = 8.0
    """Side of a square tile [m] (mjlab, legged_gym: 8)."""
    max_slope_deg: float = 15.0
    """Slope of the hardest level [deg]."""
    max_rough_m: float = 0.04
    """Bump half-height of the hardest level: heights uniform in +/- this [m]."""
    platform_m: float = 2.0
    """Side of the flat square at each tile's centre where robots spawn [m] (mjlab: 2)."""
    cell_m: float = 0.1
    """Heightfield grid spacing [m] (legged_gym: 0.1)."""
    border_m: float = 20.0
    """Flat ground around the grid [m] (mjlab: 20)."""
    spawn_half_range_m: float = 0.5
    """Spawn points are uniform within +/- this of the tile centre along x and y [m]."""
    max_init_level: int = 0
    """Levels drawn at the first reset: 0..this (0: start on flat ground)."""
    curriculum: bool = True
    """Move levels by the curriculum rule; False: a random level at every reset."""
    height_scan_x_m: Tuple[float, ...] = (-0.3, 0.0, 0.3, 0.6)
    """Forward offsets of the critic's height samples, heading frame [m]."""
    height_scan_y_m: Tuple[float, ...] = (-0.2, 0.0, 0.2)
    """Sideways offsets of the critic's height samples, heading frame [m]."""
    seed: int = 0
    """Seed of the bumps."""


@dataclass
class EnvConfig:
    """The velocity-tracking locomotion task."""

    robot: Annotated[str, tyro.conf.arg(aliases=('--robot',))] = 'kestrel'
    """Robot name under models/robots/, or a robot folder / robot.yaml path."""
    num_envs: Annotated[int, tyro.conf.arg(aliases=('--num-envs',))] = 4096
    """Parallel environments (worlds)."""
    physics_dt_s: float = 0.005
    """Physics and PD period [s] (legged_gym, Isaac Lab, mjlab: 200 Hz)."""
    decimation: int = 4
    """Physics steps per policy step (policy at 50 Hz)."""
    episode_length_s: float = 20.0
    """Episode length before a time-out [s] (mjlab: 20 s)."""
    action_scale_factor: float = 0.25
    """Action scale per joint = factor * effort limit / kp [rad] (mjlab: 0.25)."""
    action_clip: float = 100.0
    """Raw actions are clipped to +/- this (legged_gym: 100)."""
    fall_height_fraction: float = 0.55
    """Terminate when the base drops below this share of its nominal height."""
    fall_tilt_rad: float = 1.22
    """Terminate when the base tilts more than this [rad] (mjlab: 70 deg)."""
    nconmax_per_world: int = 24
    """MuJoCo Warp contact buffer per world (pooled); overflow is detected and raised."""
    njmax_per_world: int = 128
    """MuJoCo Warp constraint rows per world; overflow is detected and raised."""
    ground_contact: Literal['all', 'feet'] = 'all'
    """Robot geoms that touch the ground: 'all', or only the feet (``robot.yaml``'s
    foot_links; the rest pass through the ground, and a fall ends the episode by height or
    tilt as before), as mujoco_playground's feet-only rough-terrain scenes and mjlab's
    FEET_ONLY_COLLISION train: every robot geom against the terrain heightfield is a costly
    collision test in every physics step."""
    foot_collision: Literal['model', 'sole_spheres'] = 'model'
    """How the feet touch the ground in training: the robot model's own collision geoms, or
    each foot box's sole as six 1 cm spheres (corners and long-edge middles; same standing
    height, no mass change; ``build_mujoco_model(sole_spheres=True)``). A box against the
    terrain heightfield is MuJoCo Warp's costliest collision test: on one H200 one heightfield
    kernel took 10.1 of the real-world env step's 16.9 ms, and on one H100 the spheres made
    that step 1.82 times as fast (benchmarks/RESULTS.md). The evaluator and the sim node keep
    the model's boxes."""
    overflow_tolerance: float = 0.0
    """Share of the worlds whose contact or constraint buffers may overflow between two
    overflow checks (every 100 steps) without stopping the run: each such world's episode
    ends as a time-out at the step of its overflow (its terrain level stays), and a line and
    the run's provenance count them.  0: any overflow raises SimOverflowError (training then
    saves a checkpoint and stops).  More worlds than this, or a backend that cannot tell
    which worlds, still raise."""
    solver_iterations: Optional[int] = None
    """MuJoCo Warp constraint solver iterations per physics step; None: the robot model's
    (10, mjlab's).  MuJoCo Warp iterates until every world has converged, so the slowest of
    thousands of worlds sets the count for all: joint dry friction and rough ground make some
    world need 8-10 where flat ground needs 2."""
    solver_ls_iterations: Optional[int] = None
    """MuJoCo Warp line search iterations per solver iteration; None: the robot model's (20,
    mjlab's)."""
    ccd_iterations: Optional[int] = None
    """GJK/EPA iterations of MuJoCo's convex collision test per geom pair; None: the model's
    (MuJoCo: 35).  MuJoCo Warp tests a foot against the terrain heightfield prism by prism,
    each test iterating until it converges or reaches this limit, and a GPU warp waits for
    its slowest thread: with terrain this test is most of the env step."""
    ccd_tolerance: Optional[float] = None
    """Convergence tolerance of the convex collision test [m]; None: the model's (MuJoCo:
    1e-6, below what single precision resolves at a metre, so a test in float32 can run to
    ``ccd_iterations``)."""
    init_joint_noise_rad: float = 0.1
    """Uniform noise on the initial joint positions [rad]."""
    init_base_vel_m_s: float = 0.3
    """Uniform noise on the initial planar base velocity [m/s]."""
    compile_step: str = 'auto'
    """torch.compile the step's torch code: 'auto' (inductor on CUDA), 'off', or a backend."""
    commands: CommandConfig = field(default_factory=CommandConfig)
    """Command sampling."""
    observations: ObservationConfig = field(default_factory=ObservationConfig)
    """Observation terms."""
    rewards: RewardConfig = field(default_factory=RewardConfig)
    """Reward terms."""
    randomization: DomainRandConfig = field(default_factory=DomainRandConfig)
    """Domain randomization."""
    terrain: TerrainConfig = field(default_factory=TerrainConfig)
    """Ground shape and its curriculum."""


TERRAIN_SWITCH = 'terrain'
"""The switch name of the terrain (``EnvConfig.terrain.enabled``)."""


def randomization_switches(rand: DomainRandConfig) -> List[str]:
    """Return the names of the boolean fields (the terms' on/off switches) of ``rand``."""
    return [f.name for f in dataclasses.fields(rand) if f.type in (bool, 'bool')]


def switches_on(env: EnvConfig) -> List[str]:
    """Return the env's switches that are on: boolean randomization terms, then terrain."""
    rand = env.randomization
    names = [n for n in randomization_switches(rand) if getattr(rand, n) is True]
    if env.terrain.enabled:
        names.append(TERRAIN_SWITCH)
    return names


def with_switches_off(env: EnvConfig, names: Sequence[str]) -> EnvConfig:
    """Return ``env`` with the switches ``names`` off (ValueError naming unknown ones)."""
    known = set(randomization_switches(env.randomization))
    unknown = [n for n in names if n != TERRAIN_SWITCH and n not in known]
    if unknown:
        raise ValueError(f'unknown switches {unknown}; known: {sorted(known) + [TERRAIN_SWITCH]}')
    rand = dataclasses.replace(env.randomization,
                               **{n: False for n in names if n != TERRAIN_SWITCH})
    terrain = (dataclasses.replace(env.terrain, enabled=False) if TERRAIN_SWITCH in names
               else env.terrain)
    return dataclasses.replace(env, randomization=rand, terrain=terrain)
