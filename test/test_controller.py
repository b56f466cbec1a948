"""
Tests for the pure controller state machine (no ROS): states, faults, commands, recovery.

Time is synthetic: every input and tick carries the ROS time the test chooses. The graded
response to faults (hold, stand, damping) is tested state by state, as docs/SAFETY.md lists it.
"""

import math

from humanoid_rl_ros.core import policy_math
from humanoid_rl_ros.core.controller import (clamp_command, Controller, ControllerConfig,
                                             ControllerError, ControllerState,
                                             match_joint_indices)
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
from policy_fixtures import kestrel_contract, make_random_policy
import pytest

DT = 0.005
UPRIGHT = (1.0, 0.0, 0.0, 0.0)


@pytest.fixture(scope='module')
def runtime(tmp_path_factory):
    """Return a runtime for a randomly initialized Kestrel policy."""
    return PolicyRuntime.load(make_random_policy(tmp_path_factory.mktemp('policy')))


class Feeder:
    """Drives a controller tick by tick with a constant, healthy robot state."""

    def __init__(self, controller: Controller, seed: int = 0) -> None:
        """Create the feeder with a random standing-ish state."""
        rng = np.random.default_rng(seed)
        n = controller.contract.num_joints
        self.c = controller
        self.names = list(controller.joint_names)
        self.q = np.asarray(controller.contract.default_pos_rad) + 0.1 * rng.standard_normal(n)
        self.qd = 0.5 * rng.standard_normal(n)
        self.quat = UPRIGHT
        self.lin_vel = (0.1, 0.0, 0.0)
        self.t = 0.0
        self.joint_stamp_ns = None  # header stamps to send (None: unstamped messages)
        self.odom_stamp_ns = None

    def feed(self, odom: bool = True, joints: bool = True) -> None:
        """Publish joint state and odometry at the current time."""
        if joints:
            self.c.update_joint_state(self.names, self.q, self.qd, self.t,
                                      stamp_ns=self.joint_stamp_ns)
        if odom:
            self.c.update_odom(self.quat, self.lin_vel, [0.0, 0.0, 0.2], self.t,
                               stamp_ns=self.odom_stamp_ns)

    def tick(self, odom: bool = True, joints: bool = True) -> np.ndarray:
        """Advance one physics tick, feeding inputs first; return the effort."""
        self.t += DT
        self.feed(odom, joints)
        return self.c.step(self.t)


def _walking(runtime, **config) -> Feeder:
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=0.0, **config))
    f = Feeder(c)
    f.feed()
    c.activate(f.t)
    assert c.request_walk(f.t)[0]
    f.tick()
    assert c.state is ControllerState.WALKING
    return f


def _assert_bounded(c: Controller, effort: np.ndarray) -> None:
    assert effort is not None
    assert np.all(np.isfinite(effort))
    assert np.all(np.abs(effort) <= np.asarray(c.contract.effort_limit_nm))


def _pd(c: Controller, target: np.ndarray, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
    """Return the hand-written PD effort ``kp (target - q) - kd qd``, clipped to the limits."""
    kp, kd = np.asarray(c.contract.kp_nm_per_rad), np.asarray(c.contract.kd_nms_per_rad)
    limit = np.asarray(c.contract.effort_limit_nm)
    return np.clip(kp * (target - q) - kd * qd, -limit, limit)


def _tilted_about_x(angle_rad: float) -> tuple:
    """Return the quaternion (w, x, y, z) of a roll by ``angle_rad``."""
    return (math.cos(0.5 * angle_rad), math.sin(0.5 * angle_rad), 0.0, 0.0)


def _ticks_until_not_walking(f: Feeder, limit: int, **tick) -> int:
    """Tick (with ``tick`` arguments) until the controller leaves walking; return the count."""
    for n in range(1, limit + 1):
        _assert_bounded(f.c, f.tick(**tick))
        if f.c.state is not ControllerState.WALKING:
            return n
    raise AssertionError(f'still walking after {limit} ticks')


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
        _assert_bounded(c, f.tick())
    assert c.policy_steps == 10
    assert c.gait_phase == pytest.approx((40 * DT / runtime.contract.gait_period_s) % 1.0)


def test_joint_order_does_not_matter_and_extras_are_ignored(runtime):
    a = _walking(runtime)
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


def test_missing_joint_is_held_then_named_in_damping(runtime):
    # Held at first (the last good joint state); missing for fault_hold_s it is a lost joint.
    f = _walking(runtime, fault_hold_s=0.1)
    f.names = f.names[1:]
    f.q, f.qd = f.q[1:], f.qd[1:]
    for _ in range(int(0.1 / DT) - 1):
        _assert_bounded(f.c, f.tick())
        assert f.c.state is ControllerState.WALKING
        assert runtime.contract.joint_names[0] in f.c.hold_reason
    for _ in range(3):
        effort = f.tick()
    assert f.c.state is ControllerState.DAMPING
    assert runtime.contract.joint_names[0] in f.c.fault_reason
    _assert_bounded(f.c, effort)
    assert effort[0] == 0.0  # no velocity known for the missing joint


def test_sustained_non_finite_joint_state_ends_in_damping(runtime):
    f = _walking(runtime)
    f.q[3] = math.nan
    f.qd[5] = math.inf
    _assert_bounded(f.c, f.tick())
    assert f.c.state is ControllerState.WALKING and 'non-finite' in f.c.hold_reason
    for _ in range(int(0.25 / DT) + 2):  # fault_hold_s defaults to 0.25 s
        effort = f.tick()
    assert f.c.state is ControllerState.DAMPING
    assert 'non-finite' in f.c.fault_reason and runtime.contract.joint_names[3] in f.c.fault_reason
    _assert_bounded(f.c, effort)
    expected = -np.asarray(runtime.contract.kd_nms_per_rad) * np.where(np.isfinite(f.qd), f.qd, 0)
    limit = np.asarray(runtime.contract.effort_limit_nm)
    np.testing.assert_allclose(effort, np.clip(expected, -limit, limit))


def test_sustained_non_finite_odom_stands_instead_of_damping(runtime):
    f = _walking(runtime)
    f.lin_vel = (math.nan, 0.0, 0.0)
    _assert_bounded(f.c, f.tick())
    assert f.c.state is ControllerState.WALKING and 'non-finite odom' in f.c.hold_reason
    _ticks_until_not_walking(f, int(0.25 / DT) + 2)
    assert f.c.state is ControllerState.STANDING
    assert 'non-finite odom' in f.c.stand_reason and f.c.fault_reason == ''


def test_stale_joint_state_damps_with_zero_velocity(runtime):
    # No joint feedback for joint_state_timeout_s + fault_hold_s: standing is impossible.
    f = _walking(runtime, joint_state_timeout_s=0.05)
    for _ in range(int((0.05 + 0.25) / DT) + 2):
        effort = f.tick(joints=False)
    assert f.c.state is ControllerState.DAMPING
    assert 'joint_states stale' in f.c.fault_reason and 'fault_hold_s' in f.c.fault_reason
    np.testing.assert_array_equal(effort, np.zeros_like(effort))


def test_stale_odom_ends_in_stand_not_damping(runtime):
    # A standing humanoid survives without odometry: stand, not damping.
    f = _walking(runtime, odom_timeout_s=0.05)
    _ticks_until_not_walking(f, int((0.05 + 0.25) / DT) + 2, odom=False)
    assert f.c.state is ControllerState.STANDING
    assert 'odom stale' in f.c.stand_reason and f.c.fault_reason == ''


def test_recover_requires_healthy_input_then_stands(runtime):
    f = _walking(runtime, joint_state_timeout_s=0.05)
    for _ in range(int((0.05 + 0.25) / DT) + 2):
        f.tick(joints=False)
    assert f.c.state is ControllerState.DAMPING
    ok, message = f.c.recover(f.t)
    assert not ok and 'stale' in message
    assert not f.c.request_walk(f.t)[0]
    f.tick()
    ok, message = f.c.recover(f.t)
    assert ok, message
    assert f.c.state is ControllerState.STANDING
    assert f.c.request_walk(f.t)[0]
    f.tick()
    assert f.c.state is ControllerState.WALKING


def test_policy_failure_ends_in_damping(runtime):
    def broken(obs):
        return np.full(runtime.contract.action_dim, np.nan, dtype=np.float32)

    c = Controller(runtime.contract, broken, ControllerConfig(stand_ramp_s=0.0))
    f = Feeder(c)
    f.feed()
    c.activate(f.t)
    c.request_walk(f.t)
    _assert_bounded(c, f.tick())
    assert c.state is ControllerState.DAMPING
    assert 'policy' in c.fault_reason


def test_command_is_clamped_and_times_out(runtime):
    f = _walking(runtime, cmd_vel_timeout_s=0.2)
    f.c.update_cmd_vel(5.0, -5.0, 0.5, f.t)
    low, high = runtime.contract.commands.as_bounds()
    np.testing.assert_allclose(f.c.command(f.t), [high[0], low[1], 0.5])
    assert 'clamped' in f.c.cmd_note
    np.testing.assert_allclose(f.c.command(f.t + 0.19), [high[0], low[1], 0.5])
    np.testing.assert_array_equal(f.c.command(f.t + 0.21), np.zeros(3))
    f.c.update_cmd_vel(math.nan, 0.0, 0.0, f.t)
    np.testing.assert_array_equal(f.c.command(f.t), np.zeros(3))


def test_command_reaches_the_observation(runtime):
    f = _walking(runtime)
    f.c.update_cmd_vel(0.4, 0.1, -0.3, f.t)
    inputs = f.c.observation_inputs(f.t)
    np.testing.assert_allclose(inputs['velocity_command'], [0.4, 0.1, -0.3])
    np.testing.assert_allclose(inputs['projected_gravity'], [0.0, 0.0, -1.0], atol=1e-12)


def test_clamp_command_uses_contract_ranges(runtime):
    low, high = runtime.contract.commands.as_bounds()
    np.testing.assert_allclose(clamp_command([-9, 9, -9], runtime.contract),
                               [low[0], high[1], low[2]])


def test_match_joint_indices_names_every_missing_joint():
    with pytest.raises(ControllerError, match='b, d'):
        match_joint_indices(['a', 'b', 'c', 'd'], ['c', 'a', 'x'])
    np.testing.assert_array_equal(match_joint_indices(['a', 'b'], ['b', 'x', 'a']), [2, 0])


def test_match_joint_indices_refuses_repeated_required_joints_by_name():
    with pytest.raises(ControllerError, match='more than once: b, c'):
        match_joint_indices(['a', 'b', 'c'], ['c', 'b', 'a', 'b', 'c'])
    with pytest.raises(ControllerError, match='lacks required joint.*: c;.*more than once: a'):
        match_joint_indices(['a', 'b', 'c'], ['a', 'b', 'a'])
    # a repeated joint the policy does not read cannot change the efforts: ignored
    np.testing.assert_array_equal(match_joint_indices(['a', 'b'], ['b', 'x', 'a', 'x']), [2, 0])


def test_invalid_config_is_named():
    with pytest.raises(ControllerError, match='orientation_source'):
        ControllerConfig(orientation_source='gps').validate()
    with pytest.raises(ControllerError, match='cmd_vel_timeout_s'):
        ControllerConfig(cmd_vel_timeout_s=0.0).validate()


def test_stand_from_walking_and_deactivate(runtime):
    f = _walking(runtime)
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
    c.update_imu(_tilted_about_x(math.radians(60.0)), [0.3, 0.0, 0.0], f.t)
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


# ------------------------------------------------------------------ graded response: transient
def test_single_nan_joint_sample_keeps_walking_on_the_last_good_joint_state(runtime):
    f = _walking(runtime)
    for _ in range(3):
        f.tick()
    good_q, good_qd = f.q.copy(), f.qd.copy()
    f.q = good_q.copy()
    f.q[3] = math.nan
    steps = f.c.policy_steps
    effort = f.tick()  # a policy tick: the policy runs on the last good joint state
    assert f.c.state is ControllerState.WALKING
    assert 'non-finite' in f.c.hold_reason and runtime.contract.joint_names[3] in f.c.hold_reason
    assert f.c.policy_steps == steps + 1
    np.testing.assert_allclose(effort, _pd(f.c, f.c.q_target_rad, good_q, good_qd), atol=1e-9)
    f.q = good_q
    for _ in range(8):
        _assert_bounded(f.c, f.tick())
        assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''
    assert f.c.policy_steps == steps + 3


def test_single_nan_odom_sample_keeps_walking_on_the_last_good_odometry(runtime):
    f = _walking(runtime)
    f.lin_vel = (0.3, -0.1, 0.0)
    f.tick()
    f.lin_vel = (math.nan, 0.0, 0.0)
    steps = f.c.policy_steps
    for _ in range(4):
        _assert_bounded(f.c, f.tick())
        assert f.c.state is ControllerState.WALKING and 'non-finite odom' in f.c.hold_reason
    assert f.c.policy_steps == steps + 1  # the policy keeps running through the hold
    np.testing.assert_allclose(f.c.observation_inputs(f.t)['base_lin_vel'], [0.3, -0.1, 0.0])
    f.lin_vel = (0.1, 0.0, 0.0)
    f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


@pytest.mark.parametrize('missing', ['odom', 'joints'])
def test_a_100_ms_gap_keeps_walking(runtime, missing):
    f = _walking(runtime)  # default timeouts (0.1 s) and fault_hold_s (0.25 s)
    steps = f.c.policy_steps
    for _ in range(int(0.1 / DT)):
        _assert_bounded(f.c, f.tick(**{missing: False}))
        assert f.c.state is ControllerState.WALKING
    for _ in range(4):
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''
    # 24 ticks, 6 policy ticks; the one at the end of a joint gap may find the joint state
    # just past joint_state_timeout_s (the policy then skips it and holds its target)
    assert f.c.policy_steps - steps == (6 if missing == 'odom' else pytest.approx(5.5, abs=0.5))


def test_odom_gap_within_the_hold_keeps_the_policy_running(runtime):
    f = _walking(runtime, odom_timeout_s=0.05, fault_hold_s=0.25)
    steps = f.c.policy_steps
    for _ in range(int(0.25 / DT)):  # 0.05 s fresh, then 0.2 s held
        _assert_bounded(f.c, f.tick(odom=False))
        assert f.c.state is ControllerState.WALKING
    assert 'odom stale' in f.c.hold_reason
    assert f.c.policy_steps == steps + int(0.25 / DT) // 4


def test_joint_gap_past_its_timeout_holds_the_target_without_the_velocity_term(runtime):
    f = _walking(runtime, joint_state_timeout_s=0.02, fault_hold_s=0.25)
    last_q = f.q.copy()
    f.q = f.q + 0.05  # never seen: joint_states stop now
    for _ in range(int(0.02 / DT) + 1):
        f.tick(joints=False)
    steps, target = f.c.policy_steps, f.c.q_target_rad
    for _ in range(20):
        effort = f.tick(joints=False)
        assert f.c.state is ControllerState.WALKING and 'joint_states stale' in f.c.hold_reason
        # the last target on the last good positions, with no (stale) velocity term
        np.testing.assert_allclose(effort, _pd(f.c, target, last_q, 0.0 * last_q), atol=1e-9)
    assert f.c.policy_steps == steps  # paused without joint feedback
    np.testing.assert_array_equal(f.c.q_target_rad, target)
    for _ in range(8):
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''
    assert f.c.policy_steps == steps + 2


# ------------------------------------------------------------------ graded response: sustained
def test_sustained_odom_gap_ends_in_stand_with_pd_to_the_default_pose(runtime):
    f = _walking(runtime)  # stand_ramp_s = 0: the stand target is the default pose at once
    f.tick()
    ticks = _ticks_until_not_walking(f, 200, odom=False)
    # held for odom_timeout_s (0.1 s, fresh) + fault_hold_s (0.25 s), then stand
    assert abs(ticks * DT - 0.35) <= 2 * DT
    assert f.c.state is ControllerState.STANDING
    assert f.c.fault_reason == '' and 'odom stale' in f.c.stand_reason
    assert not f.c.walk_requested
    steps = f.c.policy_steps
    default = np.asarray(runtime.contract.default_pos_rad)
    for _ in range(10):
        effort = f.tick(odom=False)
        np.testing.assert_allclose(effort, _pd(f.c, default, f.q, f.qd), atol=1e-9)
    assert f.c.policy_steps == steps  # the policy is stopped
    for _ in range(10):  # odometry is back: stands until asked to walk
        f.tick()
    assert f.c.state is ControllerState.STANDING and f.c.note == ''
    assert f.c.request_walk(f.t)[0]
    f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.stand_reason == ''


def test_sustained_fault_stand_ramps_from_the_measured_pose(runtime):
    c = Controller(runtime.contract, runtime.act,
                   ControllerConfig(stand_ramp_s=0.2, fault_hold_s=0.05, odom_timeout_s=0.05))
    f = Feeder(c)
    f.feed()
    c.activate(f.t)
    c.request_walk(f.t)
    while c.state is not ControllerState.WALKING:
        f.tick()
    _ticks_until_not_walking(f, 100, odom=False)
    assert c.state is ControllerState.STANDING
    assert c.stand_ramp_fraction(f.t) == 0.0  # starts at the measured pose, this tick
    assert c.stand_ramp_fraction(f.t + 0.1) == pytest.approx(0.5)


def test_auto_resume_walk_walks_again_once_inputs_are_healthy(runtime):
    f = _walking(runtime, auto_resume_walk=True)
    _ticks_until_not_walking(f, 200, odom=False)
    assert f.c.state is ControllerState.STANDING and f.c.walk_requested
    f.tick(odom=False)
    assert f.c.state is ControllerState.STANDING and 'odom stale' in f.c.note
    f.tick()
    assert f.c.state is ControllerState.WALKING


def test_zero_fault_hold_makes_every_fault_sustained(runtime):
    f = _walking(runtime, fault_hold_s=0.0)
    f.lin_vel = (math.nan, 0.0, 0.0)
    f.tick()
    assert f.c.state is ControllerState.STANDING


# ------------------------------------------------------------------ damping
def test_tilt_past_the_limit_ends_in_damping(runtime):
    f = _walking(runtime, max_tilt_rad=0.5)
    f.quat = _tilted_about_x(0.45)
    for _ in range(5):
        f.tick()
    assert f.c.state is ControllerState.WALKING
    f.quat = _tilted_about_x(-0.55)
    effort = f.tick()
    assert f.c.state is ControllerState.DAMPING
    assert 'max_tilt_rad' in f.c.fault_reason and '0.550' in f.c.fault_reason
    limit = np.asarray(runtime.contract.effort_limit_nm)
    kd = np.asarray(runtime.contract.kd_nms_per_rad)
    np.testing.assert_allclose(effort, np.clip(-kd * f.qd, -limit, limit))
    ok, message = f.c.recover(f.t)  # the robot is still down
    assert not ok and 'max_tilt_rad' in message
    f.quat = UPRIGHT  # stood up (e.g. on its gantry)
    f.tick()
    assert f.c.recover(f.t)[0] and f.c.state is ControllerState.STANDING


def test_tilt_past_the_limit_damps_a_standing_robot_and_refuses_activation(runtime):
    c = Controller(runtime.contract, runtime.act, ControllerConfig(max_tilt_rad=1.0))
    f = Feeder(c)
    f.quat = _tilted_about_x(1.2)
    f.feed()
    with pytest.raises(ControllerError, match='max_tilt_rad'):
        c.activate(f.t)
    f.quat = UPRIGHT
    f.tick()
    c.activate(f.t)
    f.tick()
    assert c.state is ControllerState.STANDING
    f.quat = _tilted_about_x(1.2)
    f.tick()
    assert c.state is ControllerState.DAMPING and 'max_tilt_rad' in c.fault_reason


@settings(max_examples=50, deadline=None)
@given(quat=st.tuples(*[st.floats(-1.0, 1.0)] * 4).filter(
    lambda q: 0.6 < math.sqrt(sum(v * v for v in q)) < 1.4))
def test_tilt_is_the_angle_of_the_projected_gravity(quat):
    c = Controller(kestrel_contract(), lambda obs: obs)
    c.update_odom(quat, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 1.0)
    gravity_z = float(policy_math.projected_gravity(np.asarray(quat))[2])
    assert c.tilt_rad(1.0) == pytest.approx(math.acos(min(1.0, max(-1.0, -gravity_z))),
                                            abs=1e-6)
    assert c.tilt_rad(1.0 + 0.2) is None  # older than odom_timeout_s: unknown


def test_damping_on_request_and_recover(runtime):
    f = _walking(runtime)
    ok, _ = f.c.request_damping(f.t)
    assert ok and f.c.state is ControllerState.DAMPING
    assert f.c.fault_reason == 'damping requested'
    _assert_bounded(f.c, f.tick())
    assert f.c.recover(f.t)[0] and f.c.state is ControllerState.STANDING
    f.c.deactivate()
    assert not f.c.request_damping(f.t)[0]


def test_duplicate_joint_in_joint_states_is_refused_by_name(runtime):
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=0.0))
    f = Feeder(c)
    knee = f.names[4]
    names = f.names + [knee]
    c.update_joint_state(names, np.append(f.q, 0.7), np.append(f.qd, 0.0), 0.0)
    assert knee in c.joint_state_problem(0.0) and 'more than once' in c.joint_state_problem(0.0)
    with pytest.raises(ControllerError, match=f'more than once: {knee}'):
        c.activate(0.0)
    f = _walking(runtime, fault_hold_s=0.05)
    f.names = names
    f.q, f.qd = np.append(f.q, 0.7), np.append(f.qd, 0.0)
    f.tick()
    assert f.c.state is ControllerState.WALKING and knee in f.c.hold_reason
    for _ in range(int(0.05 / DT) + 1):
        _assert_bounded(f.c, f.tick())
    assert f.c.state is ControllerState.DAMPING and knee in f.c.fault_reason


def test_repeated_joints_the_policy_does_not_read_are_ignored(runtime):
    f = _walking(runtime)
    f.names = f.names + ['finger_joint', 'finger_joint']
    f.q, f.qd = np.append(f.q, [0.1, 0.2]), np.append(f.qd, [0.0, 0.0])
    for _ in range(4):
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


# ------------------------------------------------------------------ header stamps and clocks
def test_frozen_odom_stamp_goes_stale_although_it_keeps_arriving(runtime):
    f = _walking(runtime)
    f.odom_stamp_ns = 1_000_000_000
    for _ in range(int(0.1 / DT) - 1):  # re-sent; fresh until odom_timeout_s
        f.tick()
        assert f.c.walking_input_problem(f.t) == ''
    for _ in range(3):
        f.tick()
    assert 'odom stale' in f.c.hold_reason and 'frozen' in f.c.hold_reason
    _ticks_until_not_walking(f, int(0.25 / DT) + 2)
    assert f.c.state is ControllerState.STANDING and 'frozen' in f.c.stand_reason


def test_advancing_stamps_keep_walking(runtime):
    f = _walking(runtime)
    for _ in range(int(0.5 / DT)):
        f.odom_stamp_ns = f.joint_stamp_ns = int(round((f.t + DT) * 1e9))
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


def test_frozen_joint_state_stamp_ends_in_damping(runtime):
    f = _walking(runtime, fault_hold_s=0.05)
    f.joint_stamp_ns = 7
    for _ in range(int((0.1 + 0.05) / DT) + 3):
        f.tick()
    assert f.c.state is ControllerState.DAMPING
    assert 'joint_states stale' in f.c.fault_reason and 'frozen' in f.c.fault_reason


@pytest.mark.parametrize('config,stamp_ns', [({}, 0), ({'use_header_stamps': False}, 5)])
def test_unstamped_or_unchecked_stamps_count_every_message(runtime, config, stamp_ns):
    f = _walking(runtime, **config)
    f.odom_stamp_ns = f.joint_stamp_ns = stamp_ns
    for _ in range(int(0.5 / DT)):
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


def test_a_future_stamp_or_a_stamp_going_back_does_not_drop_the_robot(runtime):
    f = _walking(runtime)

    def stamp(offset_s: float = 0.0) -> int:
        return int(round((f.t + DT + offset_s) * 1e9))

    for _ in range(5):
        f.odom_stamp_ns = f.joint_stamp_ns = stamp()
        f.tick()
    f.odom_stamp_ns = f.joint_stamp_ns = stamp(1000.0)  # one message from a wrong clock
    f.tick()
    for _ in range(int(0.5 / DT)):  # back to normal: the stamp went back and is accepted
        f.odom_stamp_ns = f.joint_stamp_ns = stamp()
        f.tick()
        assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''
    assert 'went back 999.995 s' in f.c.stamp_note  # 1000 s ahead, then DT later


def test_backwards_clock_jump_keeps_walking_and_input_ages(runtime):
    f = _walking(runtime)
    f.t = 20.0
    for _ in range(10):
        f.tick()
    last_input_s = f.t
    f.t = 1.0  # ROS time jumped back (sim reset): the inputs of 'just now' are 0 s old
    _assert_bounded(f.c, f.c.step(f.t))
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''
    assert 'jumped back' in f.c.clock_note and f'{last_input_s - 1.0:.3f}' in f.c.clock_note
    assert f.c.joint_state_problem(1.0 + 0.09) == ''
    assert 'stale: 0.110 s old' in f.c.joint_state_problem(1.0 + 0.11)
    for _ in range(20):
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


def test_backwards_clock_jump_keeps_the_stand_ramp_progress(runtime):
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=1.0))
    f = Feeder(c)
    f.t = 50.0
    f.feed()
    c.activate(f.t)
    for _ in range(int(0.4 / DT)):
        f.tick()
    fraction = c.stand_ramp_fraction(f.t)
    f.t = 2.0
    f.tick()  # how long the jump took is unknown: no time passes across it
    assert c.stand_ramp_fraction(f.t) == pytest.approx(fraction)
    f.tick()
    assert c.stand_ramp_fraction(f.t) == pytest.approx(fraction + DT / 1.0)


def test_forward_clock_jump_is_ridden_out(runtime):
    f = _walking(runtime)
    f.t += 10.0  # every input looks 10 s old for one tick, until the next messages
    _assert_bounded(f.c, f.c.step(f.t))
    assert f.c.state is ControllerState.WALKING and 'stale' in f.c.hold_reason
    f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


def test_frozen_cmd_vel_stamp_times_out_to_zero(runtime):
    f = _walking(runtime, cmd_vel_timeout_s=0.2)
    f.c.update_cmd_vel(0.4, 0.0, 0.1, f.t, stamp_ns=123)
    start = f.t
    while f.t < start + 0.3:
        f.tick()
        f.c.update_cmd_vel(0.4, 0.0, 0.1, f.t, stamp_ns=123)  # a stuck planner re-sending
    np.testing.assert_array_equal(f.c.command(f.t), np.zeros(3))
    assert 're-sent' in f.c.cmd_note
    f.c.update_cmd_vel(0.4, 0.0, 0.1, f.t, stamp_ns=124)
    np.testing.assert_allclose(f.c.command(f.t), [0.4, 0.0, 0.1])


def test_new_config_fields_are_validated():
    with pytest.raises(ControllerError, match='fault_hold_s'):
        ControllerConfig(fault_hold_s=-0.1).validate()
    with pytest.raises(ControllerError, match='max_tilt_rad'):
        ControllerConfig(max_tilt_rad=0.0).validate()
    with pytest.raises(ControllerError, match='max_tilt_rad'):
        ControllerConfig(max_tilt_rad=4.0).validate()


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
        quat = {'tilt': _tilted_about_x(2.0), 'bad_quat': (0.1, 0.0, 0.0, 0.0),
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
