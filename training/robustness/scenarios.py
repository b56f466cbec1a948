"""
The robustness scenarios: typed entries, the targets they are judged by, and the two suites.

A :class:`Scenario` names one way a real robot differs from the nominal simulation (its
:class:`~training.robustness.perturbations.ModelPerturbation` and
:class:`~training.robustness.episode.LoopPerturbation`), the commands it is run with (from
:data:`training.evaluate.SUITE`), how many seeds, how long, any pushes, and which checks of
:class:`Targets` it must pass. :func:`full_suite` is the complete suite; :func:`ci_suite` a
reduced one (a few seconds per scenario, a couple of scenarios per family) for the tests.

Push scenarios push at random times: the first push comes 1-2.5 s after the command starts,
each next one 2.5-4 s later (a range wider than the 0.8 s gait period, so the pushes meet
every gait phase), each in a random horizontal direction, as a change of the base's velocity.
20 episodes of 5 pushes give 100 push events per scenario: one fall in 50 events (2 %) shows.
"""

from dataclasses import asdict, dataclass, field
from typing import Optional, Tuple

from training.evaluate import CommandCase, SUITE
from training.robustness.episode import LoopPerturbation, SensorNoise
from training.robustness.perturbations import ModelPerturbation

__all__ = ['CHECKS', 'ci_suite', 'full_suite', 'PushSchedule', 'Scenario', 'suite', 'SUITES',
           'SENSOR_NOISE', 'Targets']

CHECKS = ('no_falls', 'push_falls', 'tracking', 'follows', 'rise', 'joint_speed',
          'slope_speed', 'standstill')
"""The checks a scenario can ask for (see :class:`Targets`)."""
COMMANDS = {case.name: case for case in SUITE}
"""The evaluator's commands by name."""
RISE_COMMAND = 'forward_0.5'
"""The command whose rise time is checked."""
FOLLOWED = ('no_falls', 'follows')
"""The checks of a perturbation scenario: no falls, and the robot still walks as told."""


SENSOR_NOISE = SensorNoise(gyro_rad_s=0.2, orientation_rad=0.05, joint_pos_rad=0.01,
                           joint_vel_rad_s=1.5, lin_vel_m_s=0.1)
"""Sensor noise of the ``sensor_noise`` scenario (uniform half-widths): gyro 0.2 rad/s,
orientation 0.05 rad about each axis, joint positions 0.01 rad, joint velocities 1.5 rad/s, base
velocity 0.1 m/s: the observation noise the shipped policy was trained with (its contract's
provenance; 0.05 on projected gravity is about a 0.05 rad tilt). Fixed numbers, so that every
policy is tested under the same noise."""


@dataclass(frozen=True)
class Targets:
    """What a robust policy achieves (the checks of :data:`CHECKS`)."""

    tracking_mean_m_s: float = 0.10
    """``tracking``: planar velocity error, mean over the commands [m/s]."""
    tracking_worst_m_s: float = 0.15
    """``tracking``: planar velocity error of every command [m/s]."""
    yaw_rate_worst_rad_s: float = 0.15
    """``tracking``: yaw rate error of every command [rad/s]."""
    push_fall_rate: float = 0.0
    """``push_falls``: falls per push event for pushes up to ``hard_push_above_m_s`` (any
    gait phase)."""
    hard_push_above_m_s: float = 1.0
    """``push_falls``: pushes faster than this [m/s] are hard ones."""
    hard_push_fall_rate: float = 0.02
    """``push_falls``: falls per push event for hard pushes (the suite's 1.5 m/s)."""

    def push_fall_rate_for(self, speed_m_s: float) -> float:
        """Return the acceptable falls per push event for pushes of ``speed_m_s``."""
        return (self.hard_push_fall_rate if speed_m_s > self.hard_push_above_m_s
                else self.push_fall_rate)
    follow_fraction: float = 0.5
    """``follows``: every moving command is still followed: planar velocity error at most
    this fraction of the commanded speed (at least ``follow_speed_floor_m_s``), and yaw rate
    error at most this fraction of the commanded yaw rate (at least
    ``follow_yaw_rate_floor_rad_s``), worst command. The perturbation scenarios whose target
    is "no falls" ask for it, so that a policy that stands still under every command, or
    turns while told to walk straight, cannot pass them."""
    follow_speed_floor_m_s: float = 0.3
    """``follows``: the speed that planar errors are judged against when a command asks for
    less (a turn in place), [m/s] (the suite's slowest walking command)."""
    follow_yaw_rate_floor_rad_s: float = 0.5
    """``follows``: the yaw rate that yaw errors are judged against when a command asks for
    less (walking straight) [rad/s] (the suite's slowest turning command)."""
    slope_speed_error_m_s: float = 0.15
    """``slope_speed``: |speed along the slope - command| of every run [m/s]."""
    standstill_steps_per_10s: float = 0.0
    """``standstill``: foot lift-offs per 10 s at zero command (no foot leaves the ground)."""
    standstill_drift_m_s: float = 0.02
    """``standstill``: planar drift at zero command, worst run [m/s]."""
    rise_time_s: float = 1.0
    """``rise``: a 0.5 m/s command reaches 0.25 m/s (gait-averaged) within this time [s]."""
    joint_speed_ratio: float = 1.0
    """``joint_speed``: largest |joint speed| / URDF velocity limit."""


@dataclass(frozen=True)
class PushSchedule:
    """Random pushes of one episode (times after the command starts)."""

    speed_m_s: float
    """Horizontal velocity added to the base by each push [m/s]."""
    per_episode: int = 5
    """Pushes per episode."""
    first_s: Tuple[float, float] = (1.0, 2.5)
    """The first push comes a uniform time in this range after the command starts [s]."""
    gap_s: Tuple[float, float] = (2.5, 4.0)
    """Each next push comes a uniform time in this range later [s]."""
    recover_s: float = 2.5
    """The episode runs at least this long after the last push [s]."""

    @property
    def duration_s(self) -> float:
        """Return the command time that fits every push plus the recovery [s]."""
        return self.first_s[1] + (self.per_episode - 1) * self.gap_s[1] + self.recover_s


@dataclass(frozen=True)
class Scenario:
    """One named robustness scenario."""

    name: str
    """Unique name (used in the report and ``--only``)."""
    family: str
    """What it varies: nominal, push, friction, payload, motor, latency, sensor_noise,
    inertia, pd_gains, slope, rough, standstill, velocity_estimate."""
    description: str
    """One line with the values, for the report."""
    commands: Tuple[CommandCase, ...]
    """Commands, each run with every seed."""
    seeds: int = 2
    """Runs per command (seeds of the initial pose, pushes, noise and terrain)."""
    duration_s: float = 15.0
    """Time the command is held [s] (push scenarios: from the push schedule)."""
    settle_s: float = 1.0
    """Walking at zero command before the command starts [s]."""
    rise_s: float = 2.0
    """Time after the command starts left out of tracking, drift, steps and cost [s]."""
    model: ModelPerturbation = field(default_factory=ModelPerturbation)
    """Changes to the simulated robot and ground."""
    loop: LoopPerturbation = field(default_factory=LoopPerturbation)
    """Changes between the robot and the controller."""
    pushes: Optional[PushSchedule] = None
    """Random pushes, or None."""
    checks: Tuple[str, ...] = ('no_falls',)
    """Checks of :class:`Targets` this scenario must pass."""
    requires_term: str = ''
    """An observation term the policy must take for the scenario to apply ('' for none)."""
    terrain_per_seed: bool = False
    """Draw a new heightfield for every seed."""

    def __post_init__(self) -> None:
        """Check the checks' names and the sizes."""
        unknown = [c for c in self.checks if c not in CHECKS]
        if unknown:
            raise ValueError(f'{self.name}: unknown checks {unknown}; known: {CHECKS}')
        if self.seeds < 1 or not self.commands:
            raise ValueError(f'{self.name}: needs at least one command and one seed')

    @property
    def command_s(self) -> float:
        """Return how long the command runs [s]."""
        return self.pushes.duration_s if self.pushes is not None else self.duration_s

    @property
    def episode_s(self) -> float:
        """Return the simulated time of one episode [s] (stand ramp left out)."""
        return self.settle_s + self.command_s

    @property
    def runs(self) -> int:
        """Return the number of episodes."""
        return len(self.commands) * self.seeds


def _commands(*names: str) -> Tuple[CommandCase, ...]:
    return tuple(COMMANDS[n] for n in names)


ALL = tuple(SUITE)
WALK = _commands('forward_0.5')
STAND = _commands('stand')


@dataclass(frozen=True)
class _Size:
    """How big a suite's runs are."""

    seeds: int
    duration_s: float
    rise_s: float
    commands: Tuple[CommandCase, ...]
    nominal_seeds: int
    nominal_duration_s: float
    push_episodes: int
    push: PushSchedule
    standstill_seeds: int
    standstill_s: float
    slope_seeds: int


FULL_SIZE = _Size(seeds=2, duration_s=15.0, rise_s=2.0, commands=ALL, nominal_seeds=3,
                  nominal_duration_s=20.0, push_episodes=20, push=PushSchedule(0.0),
                  standstill_seeds=5, standstill_s=10.0, slope_seeds=3)
CI_SIZE = _Size(seeds=1, duration_s=3.5, rise_s=1.5, commands=WALK, nominal_seeds=1,
                nominal_duration_s=3.5, push_episodes=2,
                push=PushSchedule(0.0, per_episode=2, first_s=(0.5, 1.5), gap_s=(1.5, 2.5),
                                  recover_s=1.5),
                standstill_seeds=1, standstill_s=3.0, slope_seeds=1)


def _scenarios(size: _Size) -> Tuple[Scenario, ...]:
    """Return every scenario at ``size``."""
    # the perturbation scenarios: every command, no falls, and the commands still followed
    common = {'seeds': size.seeds, 'duration_s': size.duration_s, 'rise_s': size.rise_s,
              'commands': size.commands, 'checks': FOLLOWED}
    out = [
        Scenario('nominal', 'nominal', 'no perturbation', **{
            **common, 'seeds': size.nominal_seeds, 'duration_s': size.nominal_duration_s,
            'commands': size.commands + (() if size.commands == ALL else STAND),
            'checks': ('no_falls', 'tracking', 'rise', 'joint_speed')}),
        Scenario('sensor_noise', 'sensor_noise',
                 'uniform noise: gyro 0.2 rad/s, orientation 0.05 rad/axis, joint pos 0.01 rad, '
                 'joint vel 1.5 rad/s, base vel 0.1 m/s',
                 **{**common, 'seeds': size.nominal_seeds, 'duration_s': size.nominal_duration_s,
                    'checks': ('no_falls', 'tracking')},
                 loop=LoopPerturbation(noise=SENSOR_NOISE)),
        Scenario('sensor_noise_2x', 'sensor_noise', 'twice the noise of sensor_noise',
                 **common, loop=LoopPerturbation(noise=SensorNoise(
                     **{k: 2.0 * v for k, v in asdict(SENSOR_NOISE).items()}))),
    ]
    for where, commands in (('stand', STAND), ('walk', WALK)):
        for speed in (0.5, 1.0, 1.5):
            schedule = PushSchedule(speed, size.push.per_episode, size.push.first_s,
                                    size.push.gap_s, size.push.recover_s)
            what = 'standing (zero command)' if where == 'stand' else 'walking at 0.5 m/s'
            out.append(Scenario(
                f'push_{where}_{speed:.1f}', 'push',
                f'{speed:.1f} m/s base pushes while {what}, random times (gaps '
                f'{schedule.gap_s[0]}-{schedule.gap_s[1]} s) and directions, '
                f'{schedule.per_episode} per episode', commands=commands,
                seeds=size.push_episodes, rise_s=size.rise_s, pushes=schedule,
                checks=('push_falls',)))
    for mu in (0.3, 1.5):
        out.append(Scenario(f'friction_{mu}', 'friction', f'friction {mu} on every geom',
                            **common, model=ModelPerturbation(friction=mu)))
    for kg in (3.0, 6.0):
        out.append(Scenario(f'payload_{kg:.0f}kg', 'payload',
                            f'+{kg:.0f} kg on the base (at its centre of mass)', **common,
                            model=ModelPerturbation(payload_kg=kg)))
    out.append(Scenario('motor_strength_0.8', 'motor', 'efforts x0.8 after the PD law', **common,
                        loop=LoopPerturbation(motor_strength=0.8)))
    for ms in (5, 10):
        out.append(Scenario(
            f'latency_{ms}ms', 'latency',
            f'{ms} ms round trip, PD in the policy node (what the node-side PD law tolerates)',
            **common, loop=LoopPerturbation(latency_s=ms / 1000.0)))
    for ms in (20, 40):
        out.append(Scenario(
            f'latency_{ms}ms', 'latency',
            f'{ms} ms round trip, PD in the policy node: the controller sees sensor data '
            f'{ms} ms old', **common, loop=LoopPerturbation(latency_s=ms / 1000.0)))
        out.append(Scenario(
            f'latency_joint_pd_{ms}ms', 'latency',
            f'{ms} ms policy latency, PD in the joint drive on fresh data: the policy targets '
            f'apply {ms} ms late', **common,
            loop=LoopPerturbation(latency_s=ms / 1000.0, drive='joint')))
    for scale in (0.7, 1.3):
        out.append(Scenario(f'armature_{scale}', 'inertia', f'rotor inertia (armature) x{scale}',
                            **common, model=ModelPerturbation(armature_scale=scale)))
    for scale in (0.7, 1.3):
        out.append(Scenario(f'pd_gains_{scale}', 'pd_gains',
                            f'kp and kd x{scale} in the PD law (drive gains differ from the '
                            'contract)', **common, loop=LoopPerturbation(pd_gain_scale=scale)))
    for deg in (5, 10):
        for way, sign in (('up', 1), ('down', -1)):
            out.append(Scenario(
                f'slope_{way}_{deg}deg', 'slope', f'walking {way} a {deg} deg slope at 0.5 m/s',
                commands=WALK, seeds=size.slope_seeds, duration_s=size.duration_s,
                rise_s=size.rise_s, model=ModelPerturbation(slope_deg=sign * deg),
                checks=('no_falls', 'slope_speed')))
    for cm in (2, 4):
        out.append(Scenario(f'rough_{cm}cm', 'rough',
                            f'random heightfield, {cm} cm peak to peak, 0.2 m grid', **common,
                            model=ModelPerturbation(rough_amplitude_m=cm / 100.0),
                            terrain_per_seed=True))
    out.append(Scenario('standstill', 'standstill',
                        f'zero command for {size.standstill_s:.0f} s after 2 s of settling',
                        commands=STAND, seeds=size.standstill_seeds,
                        duration_s=size.standstill_s, settle_s=2.0, rise_s=0.0,
                        checks=('no_falls', 'standstill')))
    for name, loop, text in (
            ('lin_vel_bias_0.1', LoopPerturbation(lin_vel_bias_m_s=(0.1, 0.0, 0.0)),
             'base velocity estimate +0.1 m/s forward bias'),
            ('lin_vel_scale_0.7', LoopPerturbation(lin_vel_scale=0.7),
             'base velocity estimate x0.7'),
            ('lin_vel_zero', LoopPerturbation(lin_vel_scale=0.0), 'base velocity estimate 0')):
        # no target but "no falls": a wrong estimate moves the robot off its command
        out.append(Scenario(name, 'velocity_estimate', text,
                            **{**common, 'checks': ('no_falls',)}, loop=loop,
                            requires_term='base_lin_vel'))
    return tuple(out)


CI_NAMES = ('nominal', 'sensor_noise', 'push_stand_1.0', 'push_walk_1.0', 'friction_0.3',
            'friction_1.5', 'payload_6kg', 'motor_strength_0.8', 'latency_20ms', 'latency_40ms',
            'armature_1.3', 'pd_gains_0.7', 'slope_up_10deg', 'slope_down_10deg', 'rough_4cm',
            'standstill', 'lin_vel_bias_0.1', 'lin_vel_zero')
"""The scenarios of the ci suite."""


def full_suite() -> Tuple[Scenario, ...]:
    """Return the full suite (every scenario, full size)."""
    return _scenarios(FULL_SIZE)


def ci_suite() -> Tuple[Scenario, ...]:
    """Return the ci suite: a couple of scenarios per family, one seed, a few seconds each."""
    by_name = {s.name: s for s in _scenarios(CI_SIZE)}
    return tuple(by_name[n] for n in CI_NAMES)


IDLE_STAND_AFTER_S = 1.0
"""``idle_stand_after_s`` of the controller in the idle_stand suite [s]."""


def idle_stand_suite() -> Tuple[Scenario, ...]:
    """
    Return the idle_stand suite: the controller's idle stand on (policy paused at zero command).

    The standstill, pushes while standing and a start from standing of the full suite, run with
    ``ControllerConfig.idle_stand_after_s`` = :data:`IDLE_STAND_AFTER_S`; the full suite runs
    without it. It measures the controller option, not the policy alone.
    """
    size = FULL_SIZE
    loop = LoopPerturbation(idle_stand_after_s=IDLE_STAND_AFTER_S)
    what = f'idle stand after {IDLE_STAND_AFTER_S:g} s'
    out = [Scenario('standstill_idle_stand', 'standstill',
                    f'zero command for {size.standstill_s:.0f} s after 2 s of settling, {what}',
                    commands=STAND, seeds=size.standstill_seeds, duration_s=size.standstill_s,
                    settle_s=2.0, rise_s=0.0, loop=loop, checks=('no_falls', 'standstill')),
           Scenario('start_from_idle_stand', 'nominal',
                    f'0.5 m/s forward after 3 s at zero command, {what}', commands=WALK,
                    seeds=size.nominal_seeds, duration_s=size.duration_s, settle_s=3.0,
                    rise_s=size.rise_s, loop=loop, checks=('no_falls', 'tracking', 'rise'))]
    for name, text, model, noisy in (
            ('standstill_idle_stand_noise', 'with the sensor noise of sensor_noise',
             ModelPerturbation(), LoopPerturbation(noise=SENSOR_NOISE,
                                                   idle_stand_after_s=IDLE_STAND_AFTER_S)),
            ('standstill_idle_stand_payload_6kg', '+6 kg on the base',
             ModelPerturbation(payload_kg=6.0), loop),
            ('standstill_idle_stand_friction_0.3', 'friction 0.3 on every geom',
             ModelPerturbation(friction=0.3), loop)):
        out.append(Scenario(name, 'standstill', f'standstill_idle_stand {text}',
                            commands=STAND, seeds=size.standstill_seeds,
                            duration_s=size.standstill_s, settle_s=2.0, rise_s=0.0, model=model,
                            loop=noisy, checks=('no_falls', 'standstill')))
    for speed in (0.5, 1.0, 1.5):
        schedule = PushSchedule(speed, size.push.per_episode, size.push.first_s,
                                size.push.gap_s, size.push.recover_s)
        out.append(Scenario(
            f'push_stand_{speed:.1f}_idle_stand', 'push',
            f'{speed:.1f} m/s base pushes at zero command, {what}, random times (gaps '
            f'{schedule.gap_s[0]}-{schedule.gap_s[1]} s) and directions, '
            f'{schedule.per_episode} per episode', commands=STAND, seeds=size.push_episodes,
            rise_s=size.rise_s, pushes=schedule, loop=loop, checks=('push_falls',)))
    return tuple(out)


SUITES = {'full': full_suite, 'ci': ci_suite, 'idle_stand': idle_stand_suite}
"""The suites by name."""


def suite(name: str) -> Tuple[Scenario, ...]:
    """Return the suite called ``name`` (``full``, ``ci`` or ``idle_stand``)."""
    if name not in SUITES:
        raise ValueError(f'unknown suite {name!r}; known: {sorted(SUITES)}')
    return SUITES[name]()
