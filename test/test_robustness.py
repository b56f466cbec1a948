"""
The robustness suite: perturbations change the model and the loop, metrics, the ci suite.

The loop perturbations are checked on a scripted stand-in simulator whose state is a known
function of the tick count (whatever the efforts), through the real controller, so that what the
policy sees and what the robot receives can be computed by hand.
"""

import json
import math
from pathlib import Path

from humanoid_rl_ros.core.contract import read_contract
from humanoid_rl_ros.robot.description import load_robot, models_dir
from humanoid_rl_ros.robot.mujoco_model import HFIELD_GEOM_NAME, Terrain
import mujoco
import numpy as np
import pytest
from training.export_tolerance import contract_fingerprint, FINGERPRINT_KEY, graph_sha256
from training.robustness.cli import RobustnessCommand, run_robustness
from training.robustness.episode import (EpisodeSpec, LoopPerturbation, PushEvent,
                                         random_pushes, run_episode, SensorNoise)
from training.robustness.metrics import (action_rate_rad_s, aggregate, cost_of_transport,
                                         count_liftoffs, episode_metrics, joint_groups,
                                         rise_time_s, torque_limit_share, tracking_errors)
from training.robustness.perturbations import build_sim, ModelPerturbation
from training.robustness.report import scenario_summary
from training.robustness.runner import Job, job_spec, RunRecord
from training.robustness.scenarios import ci_suite, full_suite, Targets
import tyro

SHIPPED = models_dir() / 'humanoid_walk.yaml'
BASE_VEL = models_dir() / 'humanoid_walk_base_vel.yaml'
"""A shipped policy that observes the base velocity (the shipped default does not)."""
ROBOT = load_robot('kestrel')
DT = 0.005
Q_STEP_RAD = 1e-3  # scripted joint position: default + Q_STEP_RAD * tick
QD_STEP_RAD_S = 2e-3  # scripted joint velocity: QD_STEP_RAD_S * tick
BASE_VEL_M_S = np.array([0.3, -0.1, 0.0])


class ScriptedSim:
    """A simulator stand-in whose state follows the tick count, whatever the efforts."""

    def __init__(self) -> None:
        self.robot = ROBOT
        self.ticks = 0
        self.efforts = []
        self.pushes = []

    def reset(self, joint_pos_rad=None) -> None:
        self.ticks = 0
        self.efforts, self.pushes = [], []

    def step(self, effort) -> None:
        self.efforts.append(np.array(effort, dtype=np.float64))
        self.ticks += 1

    def push(self, delta) -> None:
        self.pushes.append((self.ticks, tuple(delta)))

    def fallen(self, min_height_m=None) -> bool:
        return False

    @property
    def joint_pos_rad(self):
        return ROBOT.default_pos_rad + Q_STEP_RAD * self.ticks

    @property
    def joint_vel_rad_s(self):
        return np.full(ROBOT.num_joints, QD_STEP_RAD_S * self.ticks)

    @property
    def joint_effort_nm(self):
        return self.efforts[-1] if self.efforts else np.zeros(ROBOT.num_joints)

    base_quat_wxyz = property(lambda self: np.array([1.0, 0.0, 0.0, 0.0]))
    base_lin_vel_body_m_s = property(lambda self: BASE_VEL_M_S.copy())
    base_lin_vel_world_m_s = property(lambda self: BASE_VEL_M_S.copy())
    base_ang_vel_body_rad_s = property(lambda self: np.zeros(3))
    base_pos_m = property(lambda self: np.array([0.0, 0.0, ROBOT.nominal_base_height_m]))
    foot_in_contact = property(lambda self: np.array([True, True]))
    foot_lin_vel_world_m_s = property(lambda self: np.zeros((2, 3)))


class RecordingPolicy:
    """Zero actions; records each observation with the simulator tick it was taken at."""

    def __init__(self, contract, sim: ScriptedSim) -> None:
        self.contract = contract
        self.sim = sim
        self.calls = []

    def act(self, obs):
        self.calls.append((self.sim.ticks, np.array(obs, dtype=np.float64)))
        return np.zeros(self.contract.action_dim, dtype=np.float32)

    def term(self, name: str) -> slice:
        start = 0
        for term in self.contract.obs_terms:
            if term.name == name:
                return slice(start, start + term.size)
            start += term.size
        raise KeyError(name)


needs_shipped = pytest.mark.skipif(not SHIPPED.is_file(), reason='no policy ships in models/')
needs_base_vel = pytest.mark.skipif(not BASE_VEL.is_file(), reason=f'no {BASE_VEL.name}')


def _scripted_run(loop: LoopPerturbation, end_s: float = 0.5, pushes=(), policy_path=SHIPPED):
    contract = read_contract(policy_path)
    sim = ScriptedSim()
    policy = RecordingPolicy(contract, sim)
    episode = run_episode(policy, sim, EpisodeSpec(command=(0.0, 0.0, 0.0), start_walk_s=0.2,
                                                   end_s=end_s, pushes=pushes, loop=loop))
    return sim, policy, episode


# ------------------------------------------------------------------ loop perturbations
@needs_shipped
@pytest.mark.parametrize('latency_ms, delay_ticks', [(0, 0), (20, 4), (40, 8)])
def test_latency_shows_the_policy_sensor_data_n_ticks_old(latency_ms, delay_ticks):
    sim, policy, episode = _scripted_run(LoopPerturbation(latency_s=latency_ms / 1000.0))
    assert not episode.fell and len(policy.calls) > 10
    joint_pos = policy.term('joint_pos')
    for tick, obs in policy.calls:
        # joint_pos term = measured q - default = Q_STEP_RAD * (tick seen)
        seen = obs[joint_pos] / Q_STEP_RAD
        np.testing.assert_allclose(seen, tick - delay_ticks, atol=1e-2)


@needs_shipped
def test_latency_with_pd_in_the_joint_drive_delays_only_the_policy():
    nominal = _scripted_run(LoopPerturbation())[0].efforts
    node = _scripted_run(LoopPerturbation(latency_s=0.02))[0].efforts
    joint = _scripted_run(LoopPerturbation(latency_s=0.02, drive='joint'))[0].efforts
    # zero actions: target = default pose, so the PD effort depends on the (fresh or old) state
    walking = range(60, len(nominal))
    for i in walking:
        np.testing.assert_allclose(joint[i], nominal[i], atol=1e-9)  # PD on fresh data
        np.testing.assert_allclose(node[i], nominal[i - 4], atol=1e-9)  # PD on 4-tick-old data
    assert not np.allclose(node[80], nominal[80])


@needs_shipped
@pytest.mark.parametrize('loop, factor', [(LoopPerturbation(motor_strength=0.8), 0.8),
                                          (LoopPerturbation(pd_gain_scale=1.3), 1.3),
                                          (LoopPerturbation(pd_gain_scale=0.7), 0.7)])
def test_motor_strength_and_gain_scale_scale_the_efforts(loop, factor):
    nominal = np.array(_scripted_run(LoopPerturbation())[0].efforts)
    scaled = np.array(_scripted_run(loop)[0].efforts)
    # no effort is near its limit here, so every effort scales exactly
    assert np.abs(nominal).max() > 1.0
    np.testing.assert_allclose(scaled, factor * nominal, rtol=1e-9, atol=1e-9)


@needs_base_vel
def test_sensor_noise_is_bounded_fresh_and_reaches_the_policy():
    noise = SensorNoise(joint_pos_rad=0.01, joint_vel_rad_s=1.5, lin_vel_m_s=0.1)
    _, policy, _ = _scripted_run(LoopPerturbation(noise=noise), policy_path=BASE_VEL)
    joint_pos, lin_vel = policy.term('joint_pos'), policy.term('base_lin_vel')
    errors = np.array([obs[joint_pos] - Q_STEP_RAD * tick for tick, obs in policy.calls])
    assert np.abs(errors).max() <= 0.01 + 1e-6
    assert errors.std() > 0.004  # uniform on +/-0.01: std 0.0058
    vel_errors = np.array([obs[lin_vel] / 2.0 - BASE_VEL_M_S for _, obs in policy.calls])
    assert np.abs(vel_errors).max() <= 0.1 + 1e-6 and vel_errors.std() > 0.04


@needs_base_vel
@pytest.mark.parametrize('loop, expected', [
    (LoopPerturbation(lin_vel_scale=0.7, lin_vel_bias_m_s=(0.1, 0.0, 0.0)), (0.31, -0.07, 0.0)),
    (LoopPerturbation(lin_vel_scale=0.0), (0.0, 0.0, 0.0))])
def test_velocity_estimate_is_scaled_and_biased(loop, expected):
    _, policy, _ = _scripted_run(loop, policy_path=BASE_VEL)
    lin_vel = policy.term('base_lin_vel')
    for _, obs in policy.calls:
        np.testing.assert_allclose(obs[lin_vel], 2.0 * np.array(expected), atol=1e-6)  # scale 2


@needs_shipped
def test_pushes_apply_at_their_times_with_the_gait_phase_recorded():
    pushes = (PushEvent(0.3, (0.5, 0.0, 0.0)), PushEvent(0.415, (0.0, -1.0, 0.0)))
    sim, _, episode = _scripted_run(LoopPerturbation(), pushes=pushes)
    assert [tick for tick, _ in sim.pushes] == [61, 84]  # after the step of ticks 60 and 83
    assert episode.push_times_s == pytest.approx([0.3, 0.415])
    assert [d for _, d in sim.pushes] == [(0.5, 0.0, 0.0), (0.0, -1.0, 0.0)]
    assert len(episode.push_phases) == 2 and all(0.0 <= p < 1.0 for p in episode.push_phases)


def test_random_push_times_are_not_periodic_and_meet_every_gait_phase():
    rng = np.random.default_rng(0)
    events = random_pushes(rng, (1.0, 2.5), (2.5, 4.0), 100, 1.0)
    times = np.array([e.time_s for e in events])
    gaps = np.diff(times)
    assert len(events) == 100 and gaps.min() >= 2.5 and gaps.max() <= 4.0
    assert gaps.std() > 0.3  # uniform on 2.5-4 s: std 0.43; a fixed period has 0
    phase = (times % 0.8) / 0.8  # the 0.8 s gait period
    counts = np.histogram(phase, bins=4, range=(0, 1))[0]
    assert counts.min() >= 12, counts
    speeds = [math.hypot(*e.delta_vel_world_m_s[:2]) for e in events]
    assert speeds == pytest.approx([1.0] * 100)
    angles = [math.atan2(e.delta_vel_world_m_s[1], e.delta_vel_world_m_s[0]) for e in events]
    assert np.histogram(angles, bins=4, range=(-math.pi, math.pi))[0].min() >= 12


@needs_shipped
def test_push_scenarios_schedule_enough_random_events():
    contract = read_contract(SHIPPED)
    for scenario in full_suite():
        if scenario.pushes is None:
            continue
        assert scenario.runs * scenario.pushes.per_episode >= 50, scenario.name
        assert scenario.pushes.gap_s[1] - scenario.pushes.gap_s[0] > contract.gait_period_s
        times = [job_spec(Job(scenario, scenario.commands[0], seed), contract).pushes[0].time_s
                 for seed in range(3)]
        assert len(set(times)) == 3  # every episode has its own schedule


def test_full_suite_has_every_scenario_family():
    names = {s.name for s in full_suite()}
    for name in ('nominal', 'push_stand_0.5', 'push_stand_1.0', 'push_stand_1.5', 'push_walk_0.5',
                 'push_walk_1.0', 'push_walk_1.5', 'friction_0.3', 'friction_1.5',
                 'payload_3kg', 'payload_6kg', 'motor_strength_0.8', 'latency_20ms',
                 'latency_40ms', 'sensor_noise', 'armature_0.7', 'armature_1.3', 'pd_gains_0.7',
                 'pd_gains_1.3', 'slope_up_5deg', 'slope_down_5deg', 'slope_up_10deg',
                 'slope_down_10deg', 'rough_2cm', 'rough_4cm', 'standstill', 'lin_vel_bias_0.1',
                 'lin_vel_scale_0.7', 'lin_vel_zero'):
        assert name in names, name
    assert len(names) == len(full_suite())  # unique


# ------------------------------------------------------------------ model perturbations
def _contacts_after_standing(sim, steps: int = 40):
    for _ in range(steps):
        sim.step(np.zeros(ROBOT.num_joints))
    return [sim.data.contact[i] for i in range(sim.data.ncon)]


@pytest.mark.parametrize('mu', [0.3, 1.5])
def test_friction_is_set_on_every_geom_and_rules_the_foot_contacts(mu):
    nominal = build_sim(ROBOT, DT, ModelPerturbation())
    assert {c.friction[0] for c in _contacts_after_standing(nominal)} == {1.0}
    sim = build_sim(ROBOT, DT, ModelPerturbation(friction=mu))
    np.testing.assert_array_equal(sim.model.geom_friction[:, 0], mu)
    contacts = _contacts_after_standing(sim)
    assert contacts and all(c.friction[0] == pytest.approx(mu) for c in contacts)


def test_payload_adds_mass_and_inertia_to_the_base():
    nominal = build_sim(ROBOT, DT, ModelPerturbation())
    sim = build_sim(ROBOT, DT, ModelPerturbation(payload_kg=6.0))
    base = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_BODY, ROBOT.base_link)
    assert sim.total_mass_kg == pytest.approx(nominal.total_mass_kg + 6.0)
    assert sim.model.body_mass[base] == pytest.approx(nominal.model.body_mass[base] + 6.0)
    # a 0.2 m cube of 6 kg: I = m a^2 / 6 = 0.04 kg m^2 about each axis
    np.testing.assert_allclose(sim.model.body_inertia[base] - nominal.model.body_inertia[base],
                               0.04)
    # derived constants recomputed: the base's subtree (the whole robot) is 6 kg heavier
    assert sim.model.body_subtreemass[base] == pytest.approx(
        nominal.model.body_subtreemass[base] + 6.0)


@pytest.mark.parametrize('scale', [0.7, 1.3])
def test_armature_scale_changes_every_joint_and_nothing_else(scale):
    nominal = build_sim(ROBOT, DT, ModelPerturbation())
    sim = build_sim(ROBOT, DT, ModelPerturbation(armature_scale=scale))
    for joint in ROBOT.joints:
        dof = sim.model.jnt_dofadr[sim.model.joint(joint.name).id]
        assert sim.model.dof_armature[dof] == pytest.approx(scale * joint.armature_kg_m2)
    changed = sim.model.dof_armature != nominal.model.dof_armature
    assert changed.sum() == ROBOT.num_joints


@pytest.mark.parametrize('deg', [5.0, -10.0])
def test_slope_is_a_ramp_tilted_against_gravity_after_a_flat_start(deg):
    sim = build_sim(ROBOT, DT, ModelPerturbation(slope_deg=deg))
    geom = np.zeros(1, np.int32)

    def ground(x: float, y: float = 0.3) -> float:
        dist = mujoco.mj_ray(sim.model, sim.data, np.array([x, y, 5.0]),
                             np.array([0.0, 0.0, -1.0]), None, 1, -1, geom)
        return 5.0 - dist

    for x in (-1.0, 0.0, 0.4):  # flat where the robot starts
        assert ground(x) == pytest.approx(0.0, abs=1e-9)
    up = -sim.model.opt.gravity / np.linalg.norm(sim.model.opt.gravity)
    for x in (1.5, 4.0, 9.0):
        # the surface's normal from two points 0.1 m apart, against gravity
        tangent = np.array([0.1, 0.0, ground(x + 0.05) - ground(x - 0.05)])
        normal = np.cross(tangent, [0.0, 1.0, 0.0])
        normal /= np.linalg.norm(normal)
        # MuJoCo stores heightfields in float32
        assert math.degrees(math.acos(float(normal @ up))) == pytest.approx(abs(deg), abs=1e-4)
        height = (x - 0.5) * math.tan(math.radians(deg))  # the ramp starts at x = 0.5 m
        assert ground(x) == pytest.approx(height, abs=1e-5)
        assert sim.ground_height_m(x, 0.3) == pytest.approx(height, abs=1e-9)
    assert (ground(5.0) > 0) == (deg > 0)  # up along +x for a positive slope


@pytest.mark.parametrize('amplitude_m', [0.02, 0.04])
def test_rough_ground_is_a_heightfield_of_the_stated_amplitude(amplitude_m):
    sim = build_sim(ROBOT, DT, ModelPerturbation(rough_amplitude_m=amplitude_m),
                    terrain_seed=3)
    assert sim.model.geom(HFIELD_GEOM_NAME).type == mujoco.mjtGeom.mjGEOM_HFIELD
    assert sim.model.hfield_size[0][2] == pytest.approx(amplitude_m)
    terrain = Terrain(rough_amplitude_m=amplitude_m, seed=3)
    heights = terrain.heightfield_m()
    assert heights.min() == 0.0 and heights.max() == pytest.approx(amplitude_m)
    assert heights.std() > 0.2 * amplitude_m  # uniform: std = amplitude / sqrt(12)
    geom = np.zeros(1, np.int32)
    rng = np.random.default_rng(0)
    for _ in range(20):  # grid points: the model's surface is the heightfield's
        row, col = rng.integers(5, heights.shape[0] - 5, 2)
        x, y = -20.0 + 0.2 * col, -20.0 + 0.2 * row
        dist = mujoco.mj_ray(sim.model, sim.data, np.array([x, y, 1.0]),
                             np.array([0.0, 0.0, -1.0]), None, 1, -1, geom)
        assert 1.0 - dist == pytest.approx(heights[row, col], abs=1e-6)
        assert sim.ground_height_m(x, y) == pytest.approx(heights[row, col], abs=1e-9)
    assert sim.ground_height_m(0.1, -0.2) == 0.0  # flat pad under the reset pose
    other = Terrain(rough_amplitude_m=amplitude_m, seed=4).heightfield_m()
    assert not np.array_equal(other, heights)


# ------------------------------------------------------------------ metrics (hand-computed)
def test_liftoffs_count_only_feet_that_leave_the_ground_long_enough():
    contact = np.array([[1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0],
                        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]).T
    # foot 0: out 3 samples (counts), out 1 sample (chatter), out 2 samples (counts)
    assert count_liftoffs(contact, min_air_samples=2) == 2
    assert count_liftoffs(contact, min_air_samples=1) == 3
    assert count_liftoffs(contact, min_air_samples=3) == 1
    assert count_liftoffs(np.array([[0], [0], [1], [0], [0]]), 2) == 1  # starts in the air


def test_torque_limit_share_per_group():
    ratio = np.array([[1.0, 0.5, 0.995],
                      [0.2, 1.0, 0.98],
                      [0.1, 0.1, 0.1],
                      [1.0, 1.0, 1.0]])
    share = torque_limit_share(ratio, {'legs': (0, 1), 'arms': (2,)})
    assert share == {'legs': pytest.approx(4 / 8), 'arms': pytest.approx(2 / 4)}


def test_joint_groups_from_kestrel_names():
    groups = joint_groups(ROBOT.joint_names)
    names = {g: [ROBOT.joint_names[i] for i in idx] for g, idx in groups.items()}
    assert set(groups) == {'ankles', 'legs', 'torso', 'arms'}
    assert len(groups['ankles']) == 4 and len(groups['legs']) == 8
    assert names['torso'] == ['torso_yaw_joint'] and len(groups['arms']) == 8
    assert all('ankle' not in n for n in names['legs'])


def test_action_rate_cost_of_transport_and_rise_time():
    q = np.array([[0.0, 0.0], [0.02, 0.0], [0.02, 0.04]])
    assert action_rate_rad_s(q, 0.02) == pytest.approx((0.02 + 0.04) / 4 / 0.02)  # 0.75
    assert cost_of_transport(100.0, 30.0, 0.5) == pytest.approx(100.0 / (30.0 * 9.81 * 0.5))
    assert math.isnan(cost_of_transport(100.0, 30.0, 0.05))  # standing: undefined
    t = np.arange(0.0, 1.0, 0.1)
    v = 2.0 * t  # reaches 0.25 (half of 0.5) at the sample t = 0.2 (v = 0.4)
    assert rise_time_s(t, v, np.zeros_like(t), (0.5, 0.0), 0.0) == pytest.approx(0.2)
    assert rise_time_s(t, 0.1 * v, np.zeros_like(t), (0.5, 0.0), 0.0) == math.inf
    assert math.isnan(rise_time_s(t, v, v, (0.0, 0.0), 0.0))


def _synthetic_trace(n: int = 100, dt: float = 0.02):
    t = np.arange(n) * dt
    trace = {'t': t, 'vx': np.full(n, 0.45), 'vy': np.full(n, 0.03), 'wz': np.full(n, -0.1),
             'cvx': np.full(n, 0.5), 'cvy': np.zeros(n), 'cwz': np.zeros(n),
             'x': 0.45 * t, 'y': 0.03 * t, 'effort_share': np.linspace(0.1, 0.3, n),
             'slip': np.where(np.arange(n) % 2 == 0, 0.02, np.nan),
             'power_w': np.full(n, 150.0), 'vwx': np.full(n, 0.45), 'vwz': np.zeros(n),
             'effort_ratio': np.zeros((n, 3)), 'speed_ratio': np.full((n, 3), 0.25),
             'q_target': np.zeros((n, 3)), 'contact': np.ones((n, 2))}
    trace['speed_ratio'][37, 1] = 0.9
    trace['contact'][50:60, 0] = 0.0  # one lift-off of 0.2 s
    trace['contact'][70:75, 1] = 0.0  # one of 0.1 s
    trace['contact'][80, 1] = 0.0  # chatter: one sample
    return trace


def test_tracking_errors_on_a_synthetic_trace():
    trace = _synthetic_trace()
    mask = trace['t'] >= 0.5
    errors = tracking_errors(trace, mask, window=5)
    assert errors['vx_mae_m_s'] == pytest.approx(0.05)
    assert errors['vy_mae_m_s'] == pytest.approx(0.03)
    assert errors['yaw_rate_mae_rad_s'] == pytest.approx(0.1)
    assert errors['lin_vel_error_m_s'] == pytest.approx(math.hypot(0.05, 0.03))
    assert errors['lin_vel_error_instant_m_s'] == pytest.approx(math.hypot(0.05, 0.03))
    assert errors['planar_drift_m_s'] == pytest.approx(math.hypot(0.45, 0.03))


def test_episode_metrics_on_a_synthetic_trace():
    trace = _synthetic_trace()
    names = ('left_hip_pitch_joint', 'left_knee_joint', 'left_ankle_pitch_joint')
    m = episode_metrics(trace, start_walk_s=0.0, rise_s=0.5, command=(0.5, 0.0, 0.0),
                        sample_dt_s=0.02, gait_period_s=0.1, joint_names=names,
                        total_mass_kg=30.0, slope_rad=math.radians(5.0))
    window_s = 75 * 0.02  # samples t = 0.50 .. 1.98
    assert m['steps_per_10s'] == pytest.approx(2 * 10.0 / window_s)  # 2 lift-offs in 1.5 s
    assert m['cost_of_transport'] == pytest.approx(
        150.0 / (30.0 * 9.81 * math.hypot(0.45, 0.03)))
    assert m['peak_joint_speed_ratio'] == pytest.approx(0.9)
    assert m['peak_joint_speed_joint'] == 'left_knee_joint'
    assert m['foot_slip_m_s'] == pytest.approx(0.02)
    assert m['effort_share_mean'] == pytest.approx(0.2)
    assert m['effort_share_max'] == pytest.approx(0.3)
    assert m['action_rate_rad_s'] == 0.0
    assert m['torque_limit_share_legs'] == 0.0
    assert m['rise_time_s'] == 0.0  # already faster than 0.25 m/s at the start
    assert m['along_slope_speed_m_s'] == pytest.approx(0.45 * math.cos(math.radians(5.0)))
    # a curved walk: the distance is the path through positions one gait period (5 samples)
    # apart, here on a circle of radius 0.3 m at pi / 1.5 rad/s (75 samples, t = 0.5..1.98 s)
    curved = dict(trace)
    angle = np.clip((trace['t'] - 0.5) / 1.5, 0.0, 1.0) * math.pi
    curved['x'], curved['y'] = 0.3 * np.sin(angle), 0.3 * (1.0 - np.cos(angle))
    m = episode_metrics(curved, start_walk_s=0.0, rise_s=0.5, command=(0.5, 0.0, 0.5),
                        sample_dt_s=0.02, gait_period_s=0.1, joint_names=names,
                        total_mass_kg=30.0)
    # samples 0, 5, .., 70 and the last, 74: 14 chords of pi/15 rad and one of 4 samples
    chords = 14 * 0.6 * math.sin(math.pi / 30) + 0.6 * math.sin(2 * math.pi / 75)
    assert m['cost_of_transport'] == pytest.approx(150.0 / (30.0 * 9.81 * chords / 1.48))
    turn = episode_metrics(trace, start_walk_s=0.0, rise_s=0.5, command=(0.0, 0.0, 0.8),
                           sample_dt_s=0.02, gait_period_s=0.1, joint_names=names,
                           total_mass_kg=30.0)
    assert math.isnan(turn['cost_of_transport'])  # turning in place transports nothing
    fell = episode_metrics(trace, start_walk_s=0.0, rise_s=0.5, command=(0.5, 0.0, 0.0),
                           sample_dt_s=0.02, gait_period_s=0.1, joint_names=names, fell=True)
    assert math.isnan(fell['lin_vel_error_m_s']) and math.isnan(fell['steps_per_10s'])


def test_aggregate_means_finite_values_and_keeps_the_worst_peaks():
    rows = [{'a': 1.0, 'peak_joint_speed_ratio': 0.5, 'rise_time_s': 0.3},
            {'a': float('nan'), 'peak_joint_speed_ratio': 0.8, 'rise_time_s': math.inf},
            {'a': 3.0, 'peak_joint_speed_ratio': float('nan'), 'rise_time_s': 0.2}]
    out = aggregate(rows, ('a', 'peak_joint_speed_ratio', 'rise_time_s', 'missing'))
    assert out['a'] == 2.0 and out['peak_joint_speed_ratio'] == 0.8
    assert out['rise_time_s'] == math.inf  # a run that never got there is the worst
    assert math.isnan(out['missing'])


def _record(scenario: str, fell: bool, phases, lin: float = 0.05) -> RunRecord:
    metrics = {'lin_vel_error_m_s': lin, 'yaw_rate_mae_rad_s': 0.01, 'steps_per_10s': 2.0,
               'peak_joint_speed_ratio': 0.5, 'peak_joint_speed_joint': 'left_knee_joint'}
    return RunRecord(scenario=scenario, command='forward_0.5', seed=0, fell=fell,
                     fall_time_s=9.0 if fell else None, fault='', metrics=metrics, wall_s=1.0,
                     push_times_s=[2.0 + 3.0 * i for i in range(len(phases))],
                     push_phases=list(phases))


def test_scenario_summary_counts_falls_per_push_event_and_judges_the_target():
    scenario = {s.name: s for s in full_suite()}['push_walk_1.5']
    records = [_record(scenario.name, False, [0.1, 0.3, 0.6, 0.8, 0.9]),
               _record(scenario.name, False, [0.2, 0.4, 0.45, 0.7, 0.95]),
               _record(scenario.name, True, [0.05, 0.55])]  # fell after its 2nd push
    row = scenario_summary(scenario, records, Targets())
    assert (row['runs'], row['falls'], row['push_events']) == (3, 1, 12)
    assert row['falls_per_push_event'] == pytest.approx(1 / 12)
    assert row['push_phase_quartile_counts'] == [3, 3, 3, 3]
    assert row['fall_push_phase_quartile_counts'] == [0, 0, 1, 0]  # the last push: 0.55
    check = row['checks'][0]
    assert check['check'] == 'falls_per_push_event' and check['passed'] is False  # > 2 %
    assert row['passed'] is False
    # tracking: the mean over the runs without a fall
    assert row['per_command']['forward_0.5']['lin_vel_error_m_s'] == pytest.approx(0.05)
    passing = scenario_summary(scenario, records[:2] * 30, Targets())
    assert passing['falls_per_push_event'] == 0.0 and passing['passed'] is True
    # the targets decide: 1/12 passes at a 10 % limit, and 1.5 m/s is no hard push above 2 m/s
    assert scenario_summary(scenario, records, Targets(hard_push_fall_rate=0.1))['passed']
    assert not scenario_summary(scenario, records, Targets(hard_push_above_m_s=2.0,
                                                           push_fall_rate=0.05))['passed']


def _command_record(scenario: str, command: str, lin: float, yaw: float,
                    fell: bool = False) -> RunRecord:
    metrics = {'lin_vel_error_m_s': lin, 'yaw_rate_mae_rad_s': yaw, 'peak_joint_speed_ratio': 0.5,
               'peak_joint_speed_joint': 'left_knee_joint'}
    return RunRecord(scenario=scenario, command=command, seed=0, fell=fell,
                     fall_time_s=3.0 if fell else None, fault='', metrics=metrics, wall_s=1.0,
                     push_times_s=[], push_phases=[])


def test_fall_only_scenarios_also_check_that_the_commands_are_followed():
    suite = {s.name: s for s in full_suite()}
    for name in ('friction_0.3', 'payload_6kg', 'motor_strength_0.8', 'latency_40ms',
                 'latency_joint_pd_40ms', 'armature_0.7', 'pd_gains_1.3', 'rough_4cm',
                 'sensor_noise_2x'):
        assert suite[name].checks == ('no_falls', 'follows'), name
    scenario = suite['friction_0.3']
    moving = {'forward_0.5': (0.5, 0.0), 'forward_1.0': (1.0, 0.0), 'backward_0.3': (0.3, 0.0),
              'sideways_0.3': (0.3, 0.0), 'turn_0.8': (0.0, 0.8),
              'walk_and_turn': (0.5, 0.5)}

    def summary(errors):
        records = [_command_record(scenario.name, 'stand', 0.02, 0.01)]
        records += [_command_record(scenario.name, name, *errors(speed, turn))
                    for name, (speed, turn) in moving.items()]
        return scenario_summary(scenario, records, Targets())

    # a robot that stands still under every command: errors as large as the commands
    standing = summary(lambda speed, turn: (speed, turn))
    follows = [c for c in standing['checks'] if c['check'] == 'command_error_ratio_worst'][0]
    assert standing['falls'] == 0 and follows['passed'] is False
    assert follows['value'] == pytest.approx(1.0)
    assert standing['passed'] is False
    # one that walks: small errors everywhere
    walking = summary(lambda speed, turn: (0.05, 0.05))
    assert walking['passed'] is True
    # the worst command decides: turning at a third of 0.8 rad/s fails, naming the command
    slow_turn = summary(lambda speed, turn: (0.05, 0.55 if turn == 0.8 else 0.05))
    follows = [c for c in slow_turn['checks'] if c['check'] == 'command_error_ratio_worst'][0]
    assert not follows['passed'] and 'turn_0.8' in follows['note']
    assert follows['value'] == pytest.approx(0.55 / 0.8)
    # turning while told to walk straight, or drifting while turning in place, fails too
    spinning = summary(lambda speed, turn: (0.05, 0.4 if turn == 0.0 else 0.05))
    follows = [c for c in spinning['checks'] if c['check'] == 'command_error_ratio_worst'][0]
    assert not follows['passed'] and follows['value'] == pytest.approx(0.4 / 0.5)
    drifting = summary(lambda speed, turn: (0.2 if speed == 0.0 else 0.05, 0.05))
    follows = [c for c in drifting['checks'] if c['check'] == 'command_error_ratio_worst'][0]
    assert not follows['passed'] and 'turn_0.8' in follows['note']
    assert follows['value'] == pytest.approx(0.2 / 0.3)
    # a command whose every run fell has no error to judge: the check fails too
    records = [_command_record(scenario.name, name, 0.05, 0.05, fell=(name == 'turn_0.8'))
               for name in moving]
    fell = scenario_summary(scenario, records, Targets())
    follows = [c for c in fell['checks'] if c['check'] == 'command_error_ratio_worst'][0]
    assert follows['passed'] is False


# ------------------------------------------------------------------ command line and ci suite
def test_command_line_parses_suite_and_workers():
    args = tyro.cli(RobustnessCommand, args=['models/humanoid_walk.yaml', '--suite', 'ci',
                                             '--workers', '1', '--only', 'nominal', 'rough_4cm'])
    assert (args.suite, args.workers, args.only) == ('ci', 1, ('nominal', 'rough_4cm'))
    assert args.targets.hard_push_fall_rate == 0.02
    with pytest.raises(SystemExit):
        tyro.cli(RobustnessCommand, args=['x.yaml', '--suite', 'huge'])


VELOCITY_ESTIMATE_SCENARIOS = {'lin_vel_bias_0.1', 'lin_vel_zero'}
"""The ci suite's scenarios of a biased or missing base velocity estimate."""


@needs_base_vel
@pytest.mark.slow
def test_ci_suite_runs_the_velocity_estimate_scenarios_on_a_base_velocity_policy(
        tmp_path: Path):
    report = run_robustness(BASE_VEL, tmp_path, 'ci', workers=2, progress=None,
                            only=tuple(sorted(VELOCITY_ESTIMATE_SCENARIOS)))
    assert set(report['scenarios']) == VELOCITY_ESTIMATE_SCENARIOS
    assert not report['summary'].get('skipped')
    assert {row['family'] for row in report['scenarios'].values()} == {'velocity_estimate'}
    # the flat-ground policy lives on its velocity input: zeroed, it falls
    assert report['scenarios']['lin_vel_zero']['falls'] > 0


@needs_shipped
@pytest.mark.slow
def test_ci_suite_runs_on_the_shipped_policy_and_writes_the_report(tmp_path: Path):
    report = run_robustness(SHIPPED, tmp_path, 'ci', workers=2, progress=None)
    saved = json.loads((tmp_path / 'robustness_report.json').read_text())
    # the shipped policy observes no base velocity: the scenarios that perturb its estimate
    # are skipped, named as such
    assert 'base_lin_vel' not in read_contract(SHIPPED).term_names()
    assert set(saved['summary'].get('skipped', {})) == VELOCITY_ESTIMATE_SCENARIOS
    names = [s.name for s in ci_suite() if s.name not in VELOCITY_ESTIMATE_SCENARIOS]
    assert list(saved['scenarios']) == names
    families = {row['family'] for row in saved['scenarios'].values()}
    assert families >= {'nominal', 'push', 'friction', 'payload', 'motor', 'latency',
                        'sensor_noise', 'inertia', 'pd_gains', 'slope', 'rough', 'standstill'}
    nominal = saved['scenarios']['nominal']
    assert nominal['falls'] == 0 and nominal['passed'], nominal['checks']
    assert nominal['tracking']['lin_vel_error_worst_m_s'] <= 0.15
    assert 0.0 < nominal['quality']['peak_joint_speed_ratio'] < 1.0
    push = saved['scenarios']['push_walk_1.0']
    assert push['push_events'] >= 2  # 2 episodes x 2 pushes (fewer only after a fall)
    assert sum(push['push_phase_quartile_counts']) == push['push_events']
    assert all(row['checks'] for row in saved['scenarios'].values())
    assert saved['summary']['scenarios'] == len(names) == report['summary']['scenarios']
    # the report names the graph it measured, so a fresh run's report matches its model
    assert saved['policy_graph_sha256'] == graph_sha256(
        read_contract(SHIPPED).onnx_path(SHIPPED))
    # and the fingerprint of the contract fields it ran the graph with
    assert saved[FINGERPRINT_KEY] == contract_fingerprint(read_contract(SHIPPED))
    runs = saved['runs']
    assert len(runs['rows']) == saved['summary']['episodes'] == sum(
        s.runs for s in ci_suite() if s.name in names)
    assert {'scenario', 'fell', 'push_phases', 'lin_vel_error_m_s'} <= set(runs['columns'])
    for figure in ('summary', 'falls', 'tracking', 'quality', 'speed_traces'):
        assert (tmp_path / f'{figure}.png').stat().st_size > 10_000
