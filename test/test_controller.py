"""
Tests for the pure controller state machine (no ROS): states, stand ramp, walking, commands.

Time is synthetic: every input and tick carries the ROS time the test chooses. The graded
response to faults (hold, stand, damping), header stamps and clock jumps are tested in
test_controller_faults.py; the fault rules themselves in test_safety.py.
"""

import dataclasses
import math

from controller_fixtures import assert_bounded, DT, Feeder, tilted_about_x, UPRIGHT, walking
from humanoid_rl_ros.core.controller import (clamp_command, Controller, ControllerConfig,
                                             ControllerError, ControllerState)
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
from policy_fixtures import kestrel_contract, make_random_policy
import pytest


@pytest.fixture(scope='module')
def runtime(tmp_path_factory):
    """Return a runtime for a randomly initialized Kestrel policy."""
    return PolicyRuntime.load(make_random_policy(tmp_path_factory.mktemp('policy')))


def test_inactive_publishes_nothing(runtime):
    c = Controller(runtime.contract, runtime.act)
    assert c.step(0.0) is None


def test_activate_requires_a_joint_state(runtime):
    c = Controller(runtime.contract, runtime.act)
    with pytest.raises(ControllerError, match='no joint_states received'):
        c.activate(0.0)


def test_stand_ramp_goes_from_measured_pose_to_default(runtime):
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=1.0))
    f = Feeder(c)
    f.qd[:] = 0.0
    f.feed()
    c.activate(f.t)
    first = f.tick()
    # At the start of the ramp the target is the measured pose: almost no effort.
    assert np.max(np.abs(first)) < 0.01 * np.max(np.abs(np.asarray(c.contract.kp_nm_per_rad)))
    for _ in range(int(1.0 / DT) + 5):
        effort = f.tick()
    expected = np.asarray(c.contract.kp_nm_per_rad) * (
        np.asarray(c.contract.default_pos_rad) - f.q)
    limit = np.asarray(c.contract.effort_limit_nm)
    np.testing.assert_allclose(effort, np.clip(expected, -limit, limit), rtol=1e-9, atol=1e-9)
    assert c.state is ControllerState.STANDING


def _ramp_fraction_of(c: Controller, f: Feeder, effort: np.ndarray) -> float:
    """Return the ramp fraction implied by a standing effort (feeder state with qd = 0)."""
    kp = np.asarray(c.contract.kp_nm_per_rad)
    full = kp * (np.asarray(c.contract.default_pos_rad) - f.q)
    return float(np.dot(effort, full) / np.dot(full, full))


@pytest.mark.parametrize('activate_at_s', [0.0, 5.0])
def test_stand_ramp_starts_at_the_first_tick_not_at_activation(runtime, activate_at_s):
    # Under use_sim_time a node may activate before its clock has seen /clock (ROS time 0), or
    # long before its first control tick; the ramp must still take stand_ramp_s from the first
    # tick instead of being skipped.
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=1.0))
    f = Feeder(c)
    f.q = np.asarray(c.contract.default_pos_rad) + 0.1  # far enough from the default pose
    f.qd[:] = 0.0
    f.t = activate_at_s
    f.feed()
    c.activate(f.t)
    assert c.request_walk(f.t)[0]
    f.t = 100.0  # the first control tick, once /clock runs
    first = f.tick()
    assert abs(_ramp_fraction_of(c, f, first)) < 1e-9
    half = [f.tick() for _ in range(int(0.5 / DT))][-1]
    assert _ramp_fraction_of(c, f, half) == pytest.approx(0.5, abs=1e-6)
    assert c.state is ControllerState.STANDING
    for _ in range(int(0.5 / DT) + 2):
        f.tick()
    assert c.state is ControllerState.WALKING


def test_ticks_at_ros_time_zero_hold_the_measured_pose(runtime):
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=1.0))
    f = Feeder(c)
    f.qd[:] = 0.0
    f.feed()
    c.activate(0.0)
    for _ in range(3):  # ROS time 0: no /clock yet; not a valid ramp start time
        f.feed()
        effort = c.step(0.0)
        assert abs(_ramp_fraction_of(c, f, effort)) < 1e-9
    assert c.stand_ramp_fraction(0.0) == 0.0
    f.t = 42.0
    assert abs(_ramp_fraction_of(c, f, f.tick())) < 1e-9  # the ramp starts here
    assert c.stand_ramp_fraction(42.005 + 0.25) == pytest.approx(0.25)


def test_walk_request_waits_for_ramp_then_runs_policy_every_decimation_ticks(runtime):
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=0.1))
    f = Feeder(c)
    f.feed()
    c.activate(f.t)
    ok, _ = c.request_walk(f.t)
    assert ok
    f.tick()
    assert c.state is ControllerState.STANDING
    while c.state is ControllerState.STANDING:
        f.tick()
    assert c.policy_steps == 1
    for _ in range(4 * 10 - 1):
        assert_bounded(c, f.tick())
    assert c.policy_steps == 10
    assert c.gait_phase == pytest.approx((40 * DT / runtime.contract.gait_period_s) % 1.0)


def test_joint_order_does_not_matter_and_extras_are_ignored(runtime):
    a = walking(runtime)
    b = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=0.0))
    rng = np.random.default_rng(3)
    perm = rng.permutation(len(a.names))
    names = [a.names[i] for i in perm] + ['finger_joint']
    q = np.append(a.q[perm], 1.0)
    qd = np.append(a.qd[perm], 1.0)
    b.update_joint_state(names, q, qd, 0.0)
    b.update_odom([1.0, 0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.2], 0.0)
    b.activate(0.0)
    b.request_walk(0.0)
    a2 = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=0.0))
    a2.update_joint_state(a.names, a.q, a.qd, 0.0)
    a2.update_odom([1.0, 0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.2], 0.0)
    a2.activate(0.0)
    a2.request_walk(0.0)
    np.testing.assert_array_equal(a2.step(DT), b.step(DT))


def test_policy_failure_ends_in_damping(runtime):
    def broken(obs):
        return np.full(runtime.contract.action_dim, np.nan, dtype=np.float32)

    c = Controller(runtime.contract, broken, ControllerConfig(stand_ramp_s=0.0))
    f = Feeder(c)
    f.feed()
    c.activate(f.t)
    c.request_walk(f.t)
    assert_bounded(c, f.tick())
    assert c.state is ControllerState.DAMPING
    assert 'policy' in c.fault_reason


def test_command_is_clamped_and_times_out(runtime):
    f = walking(runtime, cmd_vel_timeout_s=0.2)
    f.c.update_cmd_vel(5.0, -5.0, 0.5, f.t)
    low, high = runtime.contract.commands.as_bounds()
    np.testing.assert_allclose(f.c.command(f.t), [high[0], low[1], 0.5])
    assert 'clamped' in f.c.cmd_note
    np.testing.assert_allclose(f.c.command(f.t + 0.19), [high[0], low[1], 0.5])
    np.testing.assert_array_equal(f.c.command(f.t + 0.21), np.zeros(3))
    f.c.update_cmd_vel(math.nan, 0.0, 0.0, f.t)
    np.testing.assert_array_equal(f.c.command(f.t), np.zeros(3))


def test_command_reaches_the_observation(runtime):
    f = walking(runtime)
    f.c.update_cmd_vel(0.4, 0.1, -0.3, f.t)
    inputs = f.c.observation_inputs(f.t)
    np.testing.assert_allclose(inputs['velocity_command'], [0.4, 0.1, -0.3])
    np.testing.assert_allclose(inputs['projected_gravity'], [0.0, 0.0, -1.0], atol=1e-12)


def test_clamp_command_uses_contract_ranges(runtime):
    low, high = runtime.contract.commands.as_bounds()
    np.testing.assert_allclose(clamp_command([-9, 9, -9], runtime.contract),
                               [low[0], high[1], low[2]])


def test_invalid_config_is_named():
    with pytest.raises(ControllerError, match='orientation_source'):
        ControllerConfig(orientation_source='gps').validate()
    with pytest.raises(ControllerError, match='cmd_vel_timeout_s'):
        ControllerConfig(cmd_vel_timeout_s=0.0).validate()


def test_new_config_fields_are_validated():
    with pytest.raises(ControllerError, match='fault_hold_s'):
        ControllerConfig(fault_hold_s=-0.1).validate()
    with pytest.raises(ControllerError, match='max_tilt_rad'):
        ControllerConfig(max_tilt_rad=0.0).validate()
    with pytest.raises(ControllerError, match='max_tilt_rad'):
        ControllerConfig(max_tilt_rad=4.0).validate()


def test_stand_from_walking_and_deactivate(runtime):
    f = walking(runtime)
    assert f.c.request_stand(f.t)[0]
    assert f.c.state is ControllerState.STANDING
    f.c.deactivate()
    assert f.c.step(f.t) is None


def test_imu_orientation_source(runtime):
    c = Controller(runtime.contract, runtime.act,
                   ControllerConfig(stand_ramp_s=0.0, orientation_source='imu',
                                    imu_timeout_s=0.05))
    f = Feeder(c)
    f.feed()
    c.activate(f.t)
    c.request_walk(f.t)
    f.tick()
    assert c.state is ControllerState.STANDING and 'no imu received' in c.note
    # The IMU says: rolled 60 degrees about x (the odometry says upright), so gravity lies at
    # (0, -sin 60, -cos 60) in the body frame. (A 90 degree roll is past max_tilt_rad: damping.)
    c.update_imu(tilted_about_x(math.radians(60.0)), [0.3, 0.0, 0.0], f.t)
    f.tick()
    assert c.state is ControllerState.WALKING
    assert c.tilt_rad(f.t) == pytest.approx(math.radians(60.0))
    inputs = c.observation_inputs(f.t)
    np.testing.assert_allclose(inputs['projected_gravity'], [0.0, -math.sqrt(0.75), -0.5],
                               atol=1e-9)
    np.testing.assert_allclose(inputs['base_ang_vel'], [0.3, 0.0, 0.0])
    for _ in range(int((0.05 + 0.25) / DT) + 2):  # no IMU (imu_timeout_s + fault_hold_s)
        f.tick()
    assert c.state is ControllerState.STANDING and 'imu stale' in c.stand_reason


def test_damping_on_request_and_recover(runtime):
    f = walking(runtime)
    ok, _ = f.c.request_damping(f.t)
    assert ok and f.c.state is ControllerState.DAMPING
    assert f.c.fault_reason == 'damping requested'
    assert_bounded(f.c, f.tick())
    assert f.c.recover(f.t)[0] and f.c.state is ControllerState.STANDING
    f.c.deactivate()
    assert not f.c.request_damping(f.t)[0]


# ------------------------------------------------------------------ random fault sequences
EVENTS = ('ok',) * 6 + (
    'nan_joint', 'missing_joint', 'duplicate_joint', 'no_joints', 'huge_joint', 'nan_odom',
    'bad_quat', 'no_odom', 'tilt', 'frozen_stamps', 'clock_back', 'clock_forward', 'policy_nan',
    'policy_raises', 'policy_huge', 'cmd_nan', 'cmd_huge', 'walk', 'stand', 'recover', 'damp',
    'deactivate', 'activate')
"""Per-tick events of the random fault test ('ok': healthy inputs, weighted up)."""


@settings(max_examples=40, deadline=None)
@given(runs=st.lists(st.tuples(st.sampled_from(EVENTS), st.integers(1, 15)),
                     min_size=1, max_size=25),
       hold_s=st.sampled_from([0.0, 0.02, 0.25]), ramp_s=st.sampled_from([0.0, 0.05]),
       auto_resume=st.booleans(), seed=st.integers(0, 2**16))
def test_efforts_stay_finite_and_bounded_under_random_faults(runs, hold_s, ramp_s,
                                                             auto_resume, seed):
    # runs: (event, ticks it lasts); a long run of a fault makes it sustained

    contract = kestrel_contract()
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((contract.action_dim, contract.obs_dim)) * 0.1
    mode = {'policy': 'ok'}

    def policy(obs: np.ndarray) -> np.ndarray:
        if mode['policy'] == 'policy_raises':
            raise RuntimeError('onnxruntime failed')
        action = weights @ obs
        if mode['policy'] == 'policy_nan':
            action[0] = math.nan
        if mode['policy'] == 'policy_huge':
            action *= 1e12
        return action.astype(np.float32)

    c = Controller(contract, policy, ControllerConfig(
        stand_ramp_s=ramp_s, fault_hold_s=hold_s, joint_state_timeout_s=0.02,
        odom_timeout_s=0.02, auto_resume_walk=auto_resume))
    names = list(contract.joint_names)
    n = len(names)
    limit = np.asarray(contract.effort_limit_nm)
    t, stamp = 1.0, 1
    c.update_joint_state(names, np.asarray(contract.default_pos_rad), np.zeros(n), t)
    c.update_odom(UPRIGHT, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], t)
    c.activate(t)
    c.request_walk(t)
    for event in (event for event, ticks in runs for _ in range(ticks)):
        t += {'clock_back': -0.5, 'clock_forward': 3.0}.get(event, DT)
        mode['policy'] = event
        q = np.asarray(contract.default_pos_rad) + 0.2 * rng.standard_normal(n)
        qd = rng.standard_normal(n)
        js_names = names
        if event == 'nan_joint':
            q[rng.integers(n)] = math.nan
        elif event == 'huge_joint':
            q, qd = q * 1e9, qd * 1e9
        elif event == 'missing_joint':
            js_names, q, qd = names[1:], q[1:], qd[1:]
        elif event == 'duplicate_joint':
            js_names, q, qd = names + [names[0]], np.append(q, 0.0), np.append(qd, 0.0)
        if event != 'frozen_stamps':
            stamp += 1
        if event != 'no_joints':
            c.update_joint_state(js_names, q, qd, t, stamp_ns=stamp)
        quat = {'tilt': tilted_about_x(2.0), 'bad_quat': (0.1, 0.0, 0.0, 0.0),
                'nan_odom': (math.nan, 0.0, 0.0, 0.0)}.get(event, UPRIGHT)
        if event != 'no_odom':
            c.update_odom(quat, [0.2, 0.0, 0.0], [0.0, 0.0, 0.1], t, stamp_ns=stamp)
        if event == 'cmd_nan':
            c.update_cmd_vel(math.nan, 0.0, 0.0, t)
        elif event == 'cmd_huge':
            c.update_cmd_vel(1e9, -1e9, 1e9, t)
        elif event == 'walk':
            c.request_walk(t)
        elif event == 'stand':
            c.request_stand(t)
        elif event == 'recover':
            c.recover(t)
        elif event == 'damp':
            c.request_damping(t)
        elif event == 'deactivate':
            c.deactivate()
        elif event == 'activate' and c.state is ControllerState.INACTIVE:
            try:
                c.activate(t)
            except ControllerError:
                pass
        effort = c.step(t)
        if c.state is ControllerState.INACTIVE:
            assert effort is None
            continue
        assert effort.shape == (n,)
        assert np.all(np.isfinite(effort)) and np.all(np.abs(effort) <= limit)
        assert (c.state is ControllerState.DAMPING) == bool(c.fault_reason)


def test_observation_history_is_stacked_oldest_first_and_restarts_with_a_walk(runtime):
    """A contract with history_length 3: the policy sees [f0, f0, f0], then [f0, f0, f1], ..."""
    contract = dataclasses.replace(runtime.contract, history_length=3)
    frame_dim = runtime.contract.obs_dim
    seen = []

    def policy(obs):
        seen.append(np.array(obs, dtype=np.float64))
        return np.zeros(contract.action_dim)

    c = Controller(contract, policy, ControllerConfig(stand_ramp_s=0.0))
    f = Feeder(c)
    f.feed()
    c.activate(f.t)
    assert c.request_walk(f.t)[0]
    for _ in range(3 * contract.decimation):
        f.qd = f.qd + 0.01  # every frame differs
        f.tick()
    assert len(seen) >= 3 and all(o.shape == (3 * frame_dim,) for o in seen)
    frames = [o.reshape(3, frame_dim) for o in seen]
    f0, f1, f2 = frames[0][2], frames[1][2], frames[2][2]
    assert not np.allclose(f0, f1) and not np.allclose(f1, f2)
    np.testing.assert_allclose(frames[0], np.stack([f0, f0, f0]))
    np.testing.assert_allclose(frames[1], np.stack([f0, f0, f1]))
    np.testing.assert_allclose(frames[2], np.stack([f0, f1, f2]))
    c.request_stand(f.t)
    f.tick()
    assert c.request_walk(f.t)[0]
    seen.clear()
    for _ in range(contract.decimation):
        f.tick()
    first = seen[0].reshape(3, frame_dim)
    np.testing.assert_allclose(first, np.stack([first[2]] * 3))  # a new walk starts afresh


def test_joint_state_is_the_newest_usable_message_and_says_when_it_is_not_usable(runtime):
    c = Controller(runtime.contract, runtime.act, ControllerConfig(joint_state_timeout_s=0.1))
    q, qd, problem = c.joint_state(0.0)
    assert np.all(np.isnan(q)) and np.all(np.isnan(qd))
    assert problem == 'no joint_states received'
    f = Feeder(c)
    f.t = 1.0
    f.feed()
    q, qd, problem = c.joint_state(1.05)
    np.testing.assert_array_equal(q, f.q)
    np.testing.assert_array_equal(qd, f.qd)
    assert problem == ''
    # a refused message keeps the last usable state, and says why it is not used
    bad = f.q.copy()
    bad[0] = math.nan
    c.update_joint_state(f.names, bad, f.qd, 1.06)
    q, _, problem = c.joint_state(1.07)
    np.testing.assert_array_equal(q, f.q)
    assert 'non-finite' in problem and f.names[0] in problem
    # older than joint_state_timeout_s: stale
    f.t = 2.0
    f.feed()
    assert c.joint_state(2.09)[2] == ''
    assert 'stale: 0.150 s old > joint_state_timeout_s 0.1 s' in c.joint_state(2.15)[2]
