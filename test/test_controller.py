"""Tests for the pure controller state machine (no ROS): states, faults, commands, recovery."""

import math

from humanoid_rl_ros.core.controller import (clamp_command, Controller, ControllerConfig,
                                             ControllerError, ControllerState,
                                             match_joint_indices)
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
import numpy as np
from policy_fixtures import make_random_policy
import pytest

DT = 0.005


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
        self.t = 0.0

    def feed(self, odom: bool = True, joints: bool = True) -> None:
        """Publish joint state and odometry at the current time."""
        if joints:
            self.c.update_joint_state(self.names, self.q, self.qd, self.t)
        if odom:
            self.c.update_odom([1.0, 0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.2], self.t)

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


def test_missing_joint_is_named_and_ends_in_damping(runtime):
    f = _walking(runtime)
    f.names = f.names[1:]
    f.q, f.qd = f.q[1:], f.qd[1:]
    effort = f.tick()
    assert f.c.state is ControllerState.DAMPING
    assert runtime.contract.joint_names[0] in f.c.fault_reason
    _assert_bounded(f.c, effort)
    assert effort[0] == 0.0  # no velocity known for the missing joint


def test_non_finite_joint_state_ends_in_damping(runtime):
    f = _walking(runtime)
    f.q[3] = math.nan
    f.qd[5] = math.inf
    effort = f.tick()
    assert f.c.state is ControllerState.DAMPING
    assert 'non-finite' in f.c.fault_reason and runtime.contract.joint_names[3] in f.c.fault_reason
    _assert_bounded(f.c, effort)
    expected = -np.asarray(runtime.contract.kd_nms_per_rad) * np.where(np.isfinite(f.qd), f.qd, 0)
    limit = np.asarray(runtime.contract.effort_limit_nm)
    np.testing.assert_allclose(effort, np.clip(expected, -limit, limit))


def test_non_finite_odom_ends_in_damping(runtime):
    f = _walking(runtime)
    f.c.update_odom([1.0, 0.0, 0.0, 0.0], [math.nan, 0.0, 0.0], [0.0, 0.0, 0.0], f.t)
    f.t += DT
    f.c.update_joint_state(f.names, f.q, f.qd, f.t)
    _assert_bounded(f.c, f.c.step(f.t))
    assert f.c.state is ControllerState.DAMPING
    assert 'odom' in f.c.fault_reason


def test_stale_joint_state_damps_with_zero_velocity(runtime):
    f = _walking(runtime, joint_state_timeout_s=0.05)
    for _ in range(20):
        effort = f.tick(joints=False)
    assert f.c.state is ControllerState.DAMPING
    assert 'joint_states stale' in f.c.fault_reason
    np.testing.assert_array_equal(effort, np.zeros_like(effort))


def test_stale_odom_ends_in_damping(runtime):
    f = _walking(runtime, odom_timeout_s=0.05)
    for _ in range(20):
        _assert_bounded(f.c, f.tick(odom=False))
    assert f.c.state is ControllerState.DAMPING
    assert 'odom stale' in f.c.fault_reason


def test_inputs_from_before_a_backwards_time_jump_count_as_stale(runtime):
    f = _walking(runtime)
    for _ in range(10):
        f.tick()
    f.t = 0.5 * DT  # ROS time jumped back (sim reset); no fresh joint state or odometry yet
    _assert_bounded(f.c, f.c.step(f.t))
    assert f.c.state is ControllerState.DAMPING
    assert 'time jumped backwards' in f.c.fault_reason
    f.tick()  # fresh inputs at the new time make the robot recoverable
    assert f.c.recover(f.t)[0]


def test_recover_requires_healthy_input_then_stands(runtime):
    f = _walking(runtime, joint_state_timeout_s=0.05)
    for _ in range(20):
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
    # The IMU says: rolled 90 degrees about x, so gravity lies along -y in the body frame.
    half = math.sqrt(0.5)
    c.update_imu([half, half, 0.0, 0.0], [0.3, 0.0, 0.0], f.t)
    f.tick()
    assert c.state is ControllerState.WALKING
    inputs = c.observation_inputs(f.t)
    np.testing.assert_allclose(inputs['projected_gravity'], [0.0, -1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(inputs['base_ang_vel'], [0.3, 0.0, 0.0])
    for _ in range(20):
        f.tick()
    assert c.state is ControllerState.DAMPING and 'imu stale' in c.fault_reason
