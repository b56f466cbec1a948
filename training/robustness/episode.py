"""
One episode of an exported policy in simulation: the evaluator's and the robustness suite's loop.

:func:`run_episode` drives a simulator with the interface of
:class:`~humanoid_rl_ros.sim.mujoco_sim.MujocoRobotSim` through the policy node's
:class:`~humanoid_rl_ros.core.controller.Controller`: every
physics tick it feeds the controller the sensor values, the velocity command, steps the
controller and applies its efforts; it applies scheduled pushes, stops at a fall and logs a trace
once per policy step. :class:`LoopPerturbation` changes what happens between the robot and the
controller, the way a real robot differs from the simulation:

* latency: the controller sees the sensor data of ``latency_s`` ago (rounded to physics ticks),
  and what it sends applies at once. In this package's deployment the policy node computes the
  PD efforts from the joint states it receives and the driver applies them, so the whole round
  trip (sensor message, computation, effort message) acts like sensors that are that much late
  for both the PD law and the policy (``drive='node'``). With ``drive='joint'`` the PD law runs
  in the joint drive on fresh measurements and only the policy's joint targets are late (a
  position-controlled drive, e.g. through ros2_control); the stand ramp before walking then
  runs on fresh measurements too;
* sensor noise: uniform noise on the gyro, the orientation (a random rotation of up to the
  stated angle about each body axis), joint positions and velocities, and the base velocity,
  drawn afresh for every measurement. The controller's PD law sees the same noisy joint states
  as the policy (the node computes both from one message);
* a wrong base velocity estimate (``lin_vel_scale``, ``lin_vel_bias_m_s``);
* motor strength: the efforts applied are the controller's times ``motor_strength``;
* PD gain mismatch: the PD law's ``kp`` and ``kd`` both times ``pd_gain_scale`` (the drive's
  real gains differ from the contract's).

The trace holds, per policy step (after the physics tick and any push of that tick): the base
velocity (body and world frame), position, the command, the controller's efforts relative to
their limits, the largest joint speed relative to the URDF velocity limit since the previous
sample, the mechanical power, the policy's joint targets, foot contacts and foot slip.
"""

from collections import deque
from dataclasses import dataclass, field
import math
from typing import Deque, Dict, List, Optional, Tuple

from humanoid_rl_ros.core.controller import Controller, ControllerConfig, ControllerState
from humanoid_rl_ros.core.policy_math import pd_effort
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from humanoid_rl_ros.sim.robot_sim import quat_wxyz_multiply
import numpy as np

__all__ = ['Episode', 'EpisodeSpec', 'LoopPerturbation', 'periodic_pushes', 'PushEvent',
           'random_pushes', 'rotate_small', 'run_episode', 'SensorNoise', 'TRACE_SCALARS']

STAND_RAMP_S = 0.2
"""Stand ramp of the controller before walking starts [s] (the walk request waits for it)."""
FAULT_GRACE_S = 0.3
"""Before this time the controller may still be standing; after it, not walking is a fault [s]."""
DRIVES = ('node', 'joint')
"""Accepted values of :attr:`LoopPerturbation.drive`."""
TRACE_SCALARS = ('t', 'vx', 'vy', 'wz', 'x', 'y', 'z', 'vwx', 'vwy', 'vwz', 'cvx', 'cvy', 'cwz',
                 'effort_share', 'slip', 'power_w', 'ground_z', 'phase')
"""Per-sample scalars of :attr:`Episode.trace`: time [s]; base velocity in the body frame (vx,
vy [m/s], yaw rate wz [rad/s]); base position [m]; base velocity in the world frame [m/s];
command; mean |effort| / limit over joints; mean horizontal speed of the feet in contact [m/s]
(NaN without contact); mechanical power sum |effort * joint speed| averaged over the physics
ticks since the previous sample [W]; ground height under the base [m]; gait phase [0, 1)."""


@dataclass(frozen=True)
class PushEvent:
    """A push: a change of the base's linear velocity at a time."""

    time_s: float
    """Episode time of the push [s] (applied after the first physics tick at or after it)."""
    delta_vel_world_m_s: Tuple[float, float, float]
    """Velocity added to the base [m/s, world frame]."""


@dataclass(frozen=True)
class SensorNoise:
    """Uniform noise on each measurement the controller receives (half-widths)."""

    gyro_rad_s: float = 0.0
    """Base angular velocity [rad/s], each axis."""
    orientation_rad: float = 0.0
    """Base orientation: a rotation of up to this angle about each body axis [rad]."""
    joint_pos_rad: float = 0.0
    """Joint positions [rad]."""
    joint_vel_rad_s: float = 0.0
    """Joint velocities [rad/s]."""
    lin_vel_m_s: float = 0.0
    """Base linear velocity estimate [m/s], each axis."""

    def is_set(self) -> bool:
        """Return whether any noise is set."""
        return any(v != 0.0 for v in (self.gyro_rad_s, self.orientation_rad, self.joint_pos_rad,
                                      self.joint_vel_rad_s, self.lin_vel_m_s))


@dataclass(frozen=True)
class LoopPerturbation:
    """What differs between the controller and the robot (see the module docstring)."""

    latency_s: float = 0.0
    """Age of the sensor data the controller sees [s], rounded to physics ticks."""
    drive: str = 'node'
    """Where the PD law runs: 'node' (the controller, as deployed) or 'joint' (the drive, on
    fresh measurements, towards the controller's policy targets while walking)."""
    motor_strength: float = 1.0
    """Applied effort = controller effort times this [-]."""
    pd_gain_scale: float = 1.0
    """The PD law's kp and kd are the contract's times this [-]."""
    noise: SensorNoise = field(default_factory=SensorNoise)
    """Sensor noise."""
    lin_vel_scale: float = 1.0
    """Base velocity estimate = true body-frame velocity times this, plus the bias [-]."""
    lin_vel_bias_m_s: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Bias of the base velocity estimate [m/s, body frame]."""
    idle_stand_after_s: float = 0.0
    """The controller's idle stand (``ControllerConfig.idle_stand_after_s``) [s]; 0: off."""

    def __post_init__(self) -> None:
        """Check the values."""
        if self.drive not in DRIVES:
            raise ValueError(f'drive must be one of {DRIVES}, got {self.drive!r}')
        for name in ('latency_s', 'motor_strength', 'pd_gain_scale', 'idle_stand_after_s'):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0:
                raise ValueError(f'{name} must be finite and >= 0, got {value}')

    def delay_steps(self, physics_dt_s: float) -> int:
        """Return the latency in physics ticks."""
        return int(round(self.latency_s / physics_dt_s))


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode: when the command starts, how long it runs, pushes and perturbations."""

    command: Tuple[float, float, float]
    """Body-frame command (vx [m/s], vy [m/s], yaw rate [rad/s]) from ``start_walk_s`` on."""
    start_walk_s: float
    """Time the command starts [s]; before it the command is zero (the robot walks in place)."""
    end_s: float
    """Episode end [s]."""
    init_joint_pos_rad: Optional[Tuple[float, ...]] = None
    """Initial joint positions [rad], policy order; None: the default pose."""
    pushes: Tuple[PushEvent, ...] = ()
    """Pushes, in time order."""
    fall_height_fraction: float = 0.5
    """A base lower than this share of its nominal height above the ground is a fall."""
    loop: LoopPerturbation = field(default_factory=LoopPerturbation)
    """Loop perturbations."""
    noise_seed: int = 0
    """Seed of the sensor noise."""


@dataclass
class Episode:
    """The outcome and trace of one episode."""

    spec: EpisodeSpec
    """What was run."""
    sample_dt_s: float
    """Time between trace samples (the policy step) [s]."""
    trace: Dict[str, np.ndarray]
    """:data:`TRACE_SCALARS` as [T] arrays; ``effort_ratio`` |effort| / limit, ``speed_ratio``
    largest |joint speed| / velocity limit since the previous sample and ``q_target`` the policy's
    joint targets [rad], each [T, joints]; ``contact`` [T, feet] (1: in contact)."""
    fall_time_s: Optional[float] = None
    """Time of the fall [s], or None."""
    fault: str = ''
    """Why the controller left walking ('' if it did not)."""
    push_times_s: List[float] = field(default_factory=list)
    """Times the pushes were applied [s]."""
    push_phases: List[float] = field(default_factory=list)
    """The controller's gait phase [0, 1) at each applied push."""
    push_idle_standing: List[bool] = field(default_factory=list)
    """Whether the controller's idle stand held (policy paused) at each applied push."""
    total_mass_kg: float = float('nan')
    """The robot's mass including any payload [kg] (NaN if the simulator does not say)."""

    @property
    def fell(self) -> bool:
        """Return True after a fall or after the controller stopped walking."""
        return self.fall_time_s is not None


def rotate_small(quat_wxyz: np.ndarray, rotvec_body_rad: np.ndarray) -> np.ndarray:
    """Return ``quat_wxyz`` turned by the rotation vector ``rotvec_body_rad`` about body axes."""
    angle = float(np.linalg.norm(rotvec_body_rad))
    if angle == 0.0:
        return np.asarray(quat_wxyz, dtype=np.float64).copy()
    axis = np.asarray(rotvec_body_rad, dtype=np.float64) / angle
    delta = np.concatenate(([math.cos(0.5 * angle)], math.sin(0.5 * angle) * axis))
    out = quat_wxyz_multiply(np.asarray(quat_wxyz, dtype=np.float64), delta)
    return out / np.linalg.norm(out)


class _Sensors:
    """Measurements as the controller receives them: noisy, biased and ``delay`` ticks old."""

    def __init__(self, loop: LoopPerturbation, delay_steps: int, seed: int) -> None:
        self.loop = loop
        self.noise = loop.noise
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E2]))
        self.buffer: Deque[Tuple[np.ndarray, ...]] = deque(maxlen=delay_steps + 1)
        self.bias = np.asarray(loop.lin_vel_bias_m_s, dtype=np.float64)
        self.identity = (not self.noise.is_set() and loop.lin_vel_scale == 1.0
                         and not self.bias.any())

    def measure(self, sim, delayed: bool = True) -> Tuple[np.ndarray, ...]:
        """Take a measurement now; return the one the controller sees now (``delayed``) or it."""
        sample = (sim.joint_pos_rad, sim.joint_vel_rad_s, sim.base_quat_wxyz,
                  sim.base_lin_vel_body_m_s, sim.base_ang_vel_body_rad_s)
        if not self.identity:
            sample = self._perturb(*sample)
        self.buffer.append(sample)
        return self.buffer[0] if delayed else sample

    def _perturb(self, q, qd, quat, lin_vel, ang_vel) -> Tuple[np.ndarray, ...]:
        noise, u = self.noise, self.rng.uniform
        lin_vel = self.loop.lin_vel_scale * lin_vel + self.bias
        if noise.is_set():
            q = q + u(-noise.joint_pos_rad, noise.joint_pos_rad, q.shape)
            qd = qd + u(-noise.joint_vel_rad_s, noise.joint_vel_rad_s, qd.shape)
            quat = rotate_small(quat, u(-noise.orientation_rad, noise.orientation_rad, 3))
            lin_vel = lin_vel + u(-noise.lin_vel_m_s, noise.lin_vel_m_s, 3)
            ang_vel = ang_vel + u(-noise.gyro_rad_s, noise.gyro_rad_s, 3)
        return q, qd, quat, lin_vel, ang_vel


def run_episode(runtime: PolicyRuntime, sim, spec: EpisodeSpec) -> Episode:
    """
    Run one episode of ``runtime``'s policy on ``sim``; return its trace and outcome.

    ``sim`` has :class:`~humanoid_rl_ros.sim.mujoco_sim.MujocoRobotSim`'s interface (reset,
    step, push, fallen and the state properties); ``ground_height_m`` and ``total_mass_kg`` are
    used where it has them. The controller stands for :data:`STAND_RAMP_S`, then walks with a
    zero command until ``spec.start_walk_s`` and with ``spec.command`` until ``spec.end_s``. The
    episode ends early at a fall (base lower than ``fall_height_fraction`` of its nominal height
    above the ground, or tilted past 70 deg) or when the controller leaves walking after
    :data:`FAULT_GRACE_S` (``Episode.fault`` says why; it counts as a fall).
    """
    contract = runtime.contract
    loop = spec.loop
    sim.reset(joint_pos_rad=spec.init_joint_pos_rad)
    controller = Controller(contract, runtime.act, ControllerConfig(
        stand_ramp_s=STAND_RAMP_S, idle_stand_after_s=loop.idle_stand_after_s))
    kp = np.asarray(contract.kp_nm_per_rad, dtype=np.float64) * loop.pd_gain_scale
    kd = np.asarray(contract.kd_nms_per_rad, dtype=np.float64) * loop.pd_gain_scale
    if loop.pd_gain_scale != 1.0:
        # the controller's PD law reads these gains every tick (core/controller.py: _pd)
        controller.kp_nm_per_rad = kp
        controller.kd_nms_per_rad = kd
    dt = contract.physics_dt_s
    names = contract.joint_names
    limit = np.asarray(contract.effort_limit_nm, dtype=np.float64)
    vel_limit = np.asarray(sim.robot.velocity_limit_rad_s, dtype=np.float64)
    ground = getattr(sim, 'ground_height_m', None)
    min_height = spec.fall_height_fraction * sim.robot.nominal_base_height_m
    sensors = _Sensors(loop, loop.delay_steps(dt), spec.noise_seed)
    cmd_walk = tuple(float(c) for c in spec.command)

    def feed(now_s: float) -> None:
        # with the PD law in the joint drive, the stand ramp runs there too, on fresh data
        delayed = loop.drive == 'node' or controller.state is ControllerState.WALKING
        q, qd, quat, lin_vel, ang_vel = sensors.measure(sim, delayed)
        controller.update_joint_state(names, q, qd, now_s)
        controller.update_odom(quat, lin_vel, ang_vel, now_s)

    feed(0.0)
    controller.activate(0.0)
    controller.request_walk(0.0)
    steps = int(round(spec.end_s / dt))
    scalars: Dict[str, List[float]] = {k: [] for k in TRACE_SCALARS}
    rows: Dict[str, List[np.ndarray]] = {k: [] for k in ('effort_ratio', 'speed_ratio',
                                                         'q_target', 'contact')}
    episode = Episode(spec=spec, sample_dt_s=contract.policy_dt_s, trace={},
                      total_mass_kg=float(getattr(sim, 'total_mass_kg', float('nan'))))
    pushes = list(spec.pushes)
    energy_j, energy_ticks = 0.0, 0
    peak_speed = np.zeros(len(names))
    for i in range(steps):
        now = i * dt
        feed(now)
        cmd = cmd_walk if now >= spec.start_walk_s else (0.0, 0.0, 0.0)
        controller.update_cmd_vel(*cmd, now)
        effort = controller.step(now)
        if controller.state is not ControllerState.WALKING and now > FAULT_GRACE_S:
            episode.fault = f'{controller.state.value} ({controller.fault_reason})'
            episode.fall_time_s = now
            break
        applied = effort
        if loop.drive == 'joint' and controller.state is ControllerState.WALKING:
            applied = pd_effort(controller.q_target_rad, sim.joint_pos_rad, sim.joint_vel_rad_s,
                                kp, kd, limit)
        if loop.motor_strength != 1.0:
            applied = loop.motor_strength * applied
        sim.step(applied)
        qd = sim.joint_vel_rad_s
        energy_j += float(np.abs(sim.joint_effort_nm * qd).sum()) * dt
        energy_ticks += 1
        np.maximum(peak_speed, np.abs(qd) / vel_limit, out=peak_speed)
        while pushes and now >= pushes[0].time_s:
            push = pushes.pop(0)
            sim.push(list(push.delta_vel_world_m_s))
            episode.push_times_s.append(now)
            episode.push_phases.append(float(controller.gait_phase))
            episode.push_idle_standing.append(bool(controller.idle_standing))
        pos = sim.base_pos_m
        ground_z = float(ground(pos[0], pos[1])) if ground is not None else 0.0
        if sim.fallen(min_height + ground_z):
            episode.fall_time_s = now
            break
        if i % contract.decimation == 0:
            v, w = sim.base_lin_vel_body_m_s, sim.base_ang_vel_body_rad_s
            vw = sim.base_lin_vel_world_m_s
            contact = sim.foot_in_contact
            foot_v = np.linalg.norm(sim.foot_lin_vel_world_m_s[:, :2], axis=1)
            ratio = np.abs(effort) / limit
            values = (now, v[0], v[1], w[2], pos[0], pos[1], pos[2], vw[0], vw[1], vw[2],
                      cmd[0], cmd[1], cmd[2], float(np.mean(ratio)),
                      float(foot_v[contact].mean()) if contact.any() else float('nan'),
                      energy_j / (energy_ticks * dt), ground_z, controller.gait_phase)
            for key, value in zip(TRACE_SCALARS, values):
                scalars[key].append(float(value))
            rows['effort_ratio'].append(ratio)
            rows['speed_ratio'].append(peak_speed.copy())
            rows['q_target'].append(controller.q_target_rad)
            rows['contact'].append(contact.astype(np.float64))
            energy_j, energy_ticks = 0.0, 0
            peak_speed[:] = 0.0
    trace = {k: np.asarray(v, dtype=np.float64) for k, v in scalars.items()}
    widths = {'effort_ratio': len(names), 'speed_ratio': len(names), 'q_target': len(names),
              'contact': len(sim.robot.foot_links)}
    for key, value in rows.items():
        trace[key] = (np.asarray(value, dtype=np.float64) if value
                      else np.zeros((0, widths[key])))
    episode.trace = trace
    return episode


def periodic_pushes(rng: np.random.Generator, first_s: float, end_s: float, interval_s: float,
                    speed_m_s: float) -> Tuple[PushEvent, ...]:
    """
    Return pushes every ``interval_s`` from ``first_s`` until before ``end_s``.

    Each push has ``speed_m_s`` in a horizontal direction drawn from ``rng`` in push order (the
    evaluator's pushes).
    """
    events = []
    time_s = first_s
    while time_s < end_s:
        angle = rng.uniform(-math.pi, math.pi)
        events.append(PushEvent(time_s, (speed_m_s * math.cos(angle),
                                         speed_m_s * math.sin(angle), 0.0)))
        time_s += interval_s
    return tuple(events)


def random_pushes(rng: np.random.Generator, first_s: Tuple[float, float],
                  gap_s: Tuple[float, float], count: int,
                  speed_m_s: float) -> Tuple[PushEvent, ...]:
    """
    Return ``count`` pushes at random times in random horizontal directions.

    The first comes at a time uniform in ``first_s``, each next one a time uniform in ``gap_s``
    later [s]; with a gap range wider than a gait period the pushes meet the gait at random
    phases. Each has ``speed_m_s`` in a direction uniform in [-pi, pi).
    """
    events = []
    time_s = rng.uniform(*first_s)
    for _ in range(count):
        angle = rng.uniform(-math.pi, math.pi)
        events.append(PushEvent(float(time_s), (speed_m_s * math.cos(angle),
                                                speed_m_s * math.sin(angle), 0.0)))
        time_s += rng.uniform(*gap_s)
    return tuple(events)
