"""
Tests for the controller's graded response to faults (no ROS): hold, stand, damping.

Time is synthetic: every input and tick carries the ROS time the test chooses. The response is
tested state by state, as docs/SAFETY.md lists it, together with header stamps and clock jumps.
"""

import math

from controller_fixtures import (assert_bounded, DT, Feeder, pd_effort, ticks_until_not_walking,
                                 tilted_about_x, UPRIGHT, walking)
from humanoid_rl_ros.core import policy_math, safety
from humanoid_rl_ros.core.controller import (Controller, ControllerConfig, ControllerError,
                                             ControllerState)
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


# ------------------------------------------------------------------ graded response: lost inputs
def test_missing_joint_is_held_then_named_in_damping(runtime):
    # Held at first (the last good joint state); missing for fault_hold_s it is a lost joint.
    f = walking(runtime, fault_hold_s=0.1)
    f.names = f.names[1:]
    f.q, f.qd = f.q[1:], f.qd[1:]
    for _ in range(int(0.1 / DT) - 1):
        assert_bounded(f.c, f.tick())
        assert f.c.state is ControllerState.WALKING
        assert runtime.contract.joint_names[0] in f.c.hold_reason
    for _ in range(3):
        effort = f.tick()
    assert f.c.state is ControllerState.DAMPING
    assert runtime.contract.joint_names[0] in f.c.fault_reason
    assert_bounded(f.c, effort)
    assert effort[0] == 0.0  # no velocity known for the missing joint


def test_sustained_non_finite_joint_state_ends_in_damping(runtime):
    f = walking(runtime)
    f.q[3] = math.nan
    f.qd[5] = math.inf
    assert_bounded(f.c, f.tick())
    assert f.c.state is ControllerState.WALKING and 'non-finite' in f.c.hold_reason
    for _ in range(int(0.25 / DT) + 2):  # fault_hold_s defaults to 0.25 s
        effort = f.tick()
    assert f.c.state is ControllerState.DAMPING
    assert 'non-finite' in f.c.fault_reason and runtime.contract.joint_names[3] in f.c.fault_reason
    assert_bounded(f.c, effort)
    expected = -np.asarray(runtime.contract.kd_nms_per_rad) * np.where(np.isfinite(f.qd), f.qd, 0)
    limit = np.asarray(runtime.contract.effort_limit_nm)
    np.testing.assert_allclose(effort, np.clip(expected, -limit, limit))


def test_sustained_non_finite_odom_stands_instead_of_damping(runtime):
    f = walking(runtime)
    f.lin_vel = (math.nan, 0.0, 0.0)
    assert_bounded(f.c, f.tick())
    assert f.c.state is ControllerState.WALKING and 'non-finite odom' in f.c.hold_reason
    ticks_until_not_walking(f, int(0.25 / DT) + 2)
    assert f.c.state is ControllerState.STANDING
    assert 'non-finite odom' in f.c.stand_reason and f.c.fault_reason == ''


def test_stale_joint_state_damps_with_zero_velocity(runtime):
    # No joint feedback for joint_state_timeout_s + fault_hold_s: standing is impossible.
    f = walking(runtime, joint_state_timeout_s=0.05)
    for _ in range(int((0.05 + 0.25) / DT) + 2):
        effort = f.tick(joints=False)
    assert f.c.state is ControllerState.DAMPING
    assert 'joint_states stale' in f.c.fault_reason and 'fault_hold_s' in f.c.fault_reason
    np.testing.assert_array_equal(effort, np.zeros_like(effort))


def test_stale_odom_ends_in_stand_not_damping(runtime):
    # A standing humanoid survives without odometry: stand, not damping.
    f = walking(runtime, odom_timeout_s=0.05)
    ticks_until_not_walking(f, int((0.05 + 0.25) / DT) + 2, odom=False)
    assert f.c.state is ControllerState.STANDING
    assert 'odom stale' in f.c.stand_reason and f.c.fault_reason == ''


def test_recover_requires_healthy_input_then_stands(runtime):
    f = walking(runtime, joint_state_timeout_s=0.05)
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


# ------------------------------------------------------------------ graded response: transient
def test_single_nan_joint_sample_keeps_walking_on_the_last_good_joint_state(runtime):
    f = walking(runtime)
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
    np.testing.assert_allclose(effort, pd_effort(f.c, f.c.q_target_rad, good_q, good_qd),
                               atol=1e-9)
    f.q = good_q
    for _ in range(8):
        assert_bounded(f.c, f.tick())
        assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''
    assert f.c.policy_steps == steps + 3


def test_single_nan_odom_sample_keeps_walking_on_the_last_good_odometry(runtime):
    f = walking(runtime)
    f.lin_vel = (0.3, -0.1, 0.0)
    f.tick()
    f.lin_vel = (math.nan, 0.0, 0.0)
    steps = f.c.policy_steps
    for _ in range(4):
        assert_bounded(f.c, f.tick())
        assert f.c.state is ControllerState.WALKING and 'non-finite odom' in f.c.hold_reason
    assert f.c.policy_steps == steps + 1  # the policy keeps running through the hold
    np.testing.assert_allclose(f.c.observation_inputs(f.t)['base_lin_vel'], [0.3, -0.1, 0.0])
    f.lin_vel = (0.1, 0.0, 0.0)
    f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


@pytest.mark.parametrize('missing', ['odom', 'joints'])
def test_a_100_ms_gap_keeps_walking(runtime, missing):
    f = walking(runtime)  # default timeouts (0.1 s) and fault_hold_s (0.25 s)
    steps = f.c.policy_steps
    for _ in range(int(0.1 / DT)):
        assert_bounded(f.c, f.tick(**{missing: False}))
        assert f.c.state is ControllerState.WALKING
    for _ in range(4):
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''
    # 24 ticks, 6 policy ticks; the one at the end of a joint gap may find the joint state
    # just past joint_state_timeout_s (the policy then skips it and holds its target)
    assert f.c.policy_steps - steps == (6 if missing == 'odom' else pytest.approx(5.5, abs=0.5))


def test_odom_gap_within_the_hold_keeps_the_policy_running(runtime):
    f = walking(runtime, odom_timeout_s=0.05, fault_hold_s=0.25)
    steps = f.c.policy_steps
    for _ in range(int(0.25 / DT)):  # 0.05 s fresh, then 0.2 s held
        assert_bounded(f.c, f.tick(odom=False))
        assert f.c.state is ControllerState.WALKING
    assert 'odom stale' in f.c.hold_reason
    assert f.c.policy_steps == steps + int(0.25 / DT) // 4


def test_joint_gap_past_its_timeout_holds_the_target_without_the_velocity_term(runtime):
    f = walking(runtime, joint_state_timeout_s=0.02, fault_hold_s=0.25)
    last_q = f.q.copy()
    f.q = f.q + 0.05  # never seen: joint_states stop now
    for _ in range(int(0.02 / DT) + 1):
        f.tick(joints=False)
    steps, target = f.c.policy_steps, f.c.q_target_rad
    for _ in range(20):
        effort = f.tick(joints=False)
        assert f.c.state is ControllerState.WALKING and 'joint_states stale' in f.c.hold_reason
        # the last target on the last good positions, with no (stale) velocity term
        np.testing.assert_allclose(effort, pd_effort(f.c, target, last_q, 0.0 * last_q), atol=1e-9)
    assert f.c.policy_steps == steps  # paused without joint feedback
    np.testing.assert_array_equal(f.c.q_target_rad, target)
    for _ in range(8):
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''
    assert f.c.policy_steps == steps + 2


# ------------------------------------------------------------------ graded response: sustained
def test_sustained_odom_gap_ends_in_stand_with_pd_to_the_default_pose(runtime):
    f = walking(runtime)  # stand_ramp_s = 0: the stand target is the default pose at once
    f.tick()
    ticks = ticks_until_not_walking(f, 200, odom=False)
    # held for odom_timeout_s (0.1 s, fresh) + fault_hold_s (0.25 s), then stand
    assert abs(ticks * DT - 0.35) <= 2 * DT
    assert f.c.state is ControllerState.STANDING
    assert f.c.fault_reason == '' and 'odom stale' in f.c.stand_reason
    assert not f.c.walk_requested
    steps = f.c.policy_steps
    default = np.asarray(runtime.contract.default_pos_rad)
    for _ in range(10):
        effort = f.tick(odom=False)
        np.testing.assert_allclose(effort, pd_effort(f.c, default, f.q, f.qd), atol=1e-9)
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
    ticks_until_not_walking(f, 100, odom=False)
    assert c.state is ControllerState.STANDING
    assert c.stand_ramp_fraction(f.t) == 0.0  # starts at the measured pose, this tick
    assert c.stand_ramp_fraction(f.t + 0.1) == pytest.approx(0.5)


def test_auto_resume_walk_walks_again_once_inputs_are_healthy(runtime):
    f = walking(runtime, auto_resume_walk=True)
    ticks_until_not_walking(f, 200, odom=False)
    assert f.c.state is ControllerState.STANDING and f.c.walk_requested
    f.tick(odom=False)
    assert f.c.state is ControllerState.STANDING and 'odom stale' in f.c.note
    f.tick()
    assert f.c.state is ControllerState.WALKING


def test_zero_fault_hold_makes_every_fault_sustained(runtime):
    f = walking(runtime, fault_hold_s=0.0)
    f.lin_vel = (math.nan, 0.0, 0.0)
    f.tick()
    assert f.c.state is ControllerState.STANDING


# ------------------------------------------------------------------ damping
def test_tilt_past_the_limit_ends_in_damping(runtime):
    f = walking(runtime, max_tilt_rad=0.5)
    f.quat = tilted_about_x(0.45)
    for _ in range(5):
        f.tick()
    assert f.c.state is ControllerState.WALKING
    f.quat = tilted_about_x(-0.55)
    f.tick()  # one sample past the limit is held, not damped (it may be a glitch)
    assert f.c.state is ControllerState.WALKING and 'max_tilt_rad' in f.c.hold_reason
    for _ in range(int(round(safety.TILT_HOLD_S / DT)) - 1):
        f.tick()
    assert f.c.state is ControllerState.WALKING
    effort = f.tick()  # the tilt has lasted TILT_HOLD_S: a fall, not a glitch
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
    f.quat = tilted_about_x(1.2)
    f.feed()
    with pytest.raises(ControllerError, match='max_tilt_rad'):
        c.activate(f.t)
    f.quat = UPRIGHT
    f.tick()
    c.activate(f.t)
    f.tick()
    assert c.state is ControllerState.STANDING
    f.quat = tilted_about_x(1.2)
    for _ in range(int(round(safety.TILT_HOLD_S / DT)) + 1):
        f.tick()
    assert c.state is ControllerState.DAMPING and 'max_tilt_rad' in c.fault_reason


def test_one_upside_down_orientation_sample_does_not_drop_a_standing_robot(runtime):
    """A single wrong unit quaternion (e.g. an estimator re-initialising) is ridden out."""
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=0.0))
    f = Feeder(c)
    f.feed()
    c.activate(f.t)
    f.tick()
    assert c.state is ControllerState.STANDING
    f.quat = (0.0, 1.0, 0.0, 0.0)  # upside down, for one odometry sample
    effort = f.tick()
    assert c.state is ControllerState.STANDING and 'max_tilt_rad' in c.hold_reason
    assert np.all(np.isfinite(effort))
    f.quat = UPRIGHT
    for _ in range(20):
        f.tick()
    assert c.state is ControllerState.STANDING and c.hold_reason == ''


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


def test_duplicate_joint_in_joint_states_is_refused_by_name(runtime):
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=0.0))
    f = Feeder(c)
    knee = f.names[4]
    names = f.names + [knee]
    c.update_joint_state(names, np.append(f.q, 0.7), np.append(f.qd, 0.0), 0.0)
    assert knee in c.joint_state_problem(0.0) and 'more than once' in c.joint_state_problem(0.0)
    with pytest.raises(ControllerError, match=f'more than once: {knee}'):
        c.activate(0.0)
    f = walking(runtime, fault_hold_s=0.05)
    f.names = names
    f.q, f.qd = np.append(f.q, 0.7), np.append(f.qd, 0.0)
    f.tick()
    assert f.c.state is ControllerState.WALKING and knee in f.c.hold_reason
    for _ in range(int(0.05 / DT) + 1):
        assert_bounded(f.c, f.tick())
    assert f.c.state is ControllerState.DAMPING and knee in f.c.fault_reason


def test_repeated_joints_the_policy_does_not_read_are_ignored(runtime):
    f = walking(runtime)
    f.names = f.names + ['finger_joint', 'finger_joint']
    f.q, f.qd = np.append(f.q, [0.1, 0.2]), np.append(f.qd, [0.0, 0.0])
    for _ in range(4):
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


# ------------------------------------------------------------------ header stamps and clocks
def test_frozen_odom_stamp_goes_stale_although_it_keeps_arriving(runtime):
    f = walking(runtime)
    f.odom_stamp_ns = 1_000_000_000
    for _ in range(int(0.1 / DT) - 1):  # re-sent; fresh until odom_timeout_s
        f.tick()
        assert f.c.walking_input_problem(f.t) == ''
    for _ in range(3):
        f.tick()
    assert 'odom stale' in f.c.hold_reason and 'frozen' in f.c.hold_reason
    ticks_until_not_walking(f, int(0.25 / DT) + 2)
    assert f.c.state is ControllerState.STANDING and 'frozen' in f.c.stand_reason


def test_advancing_stamps_keep_walking(runtime):
    f = walking(runtime)
    for _ in range(int(0.5 / DT)):
        f.odom_stamp_ns = f.joint_stamp_ns = int(round((f.t + DT) * 1e9))
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


def test_frozen_joint_state_stamp_ends_in_damping(runtime):
    f = walking(runtime, fault_hold_s=0.05)
    f.joint_stamp_ns = 7
    for _ in range(int((0.1 + 0.05) / DT) + 3):
        f.tick()
    assert f.c.state is ControllerState.DAMPING
    assert 'joint_states stale' in f.c.fault_reason and 'frozen' in f.c.fault_reason


@pytest.mark.parametrize('config,stamp_ns', [({}, 0), ({'use_header_stamps': False}, 5)])
def test_unstamped_or_unchecked_stamps_count_every_message(runtime, config, stamp_ns):
    f = walking(runtime, **config)
    f.odom_stamp_ns = f.joint_stamp_ns = stamp_ns
    for _ in range(int(0.5 / DT)):
        f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


def test_a_future_stamp_or_a_stamp_going_back_does_not_drop_the_robot(runtime):
    f = walking(runtime)

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
    f = walking(runtime)
    f.t = 20.0
    for _ in range(10):
        f.tick()
    last_input_s = f.t
    f.t = 1.0  # ROS time jumped back (sim reset): the inputs of 'just now' are 0 s old
    assert_bounded(f.c, f.c.step(f.t))
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
    f = walking(runtime)
    f.t += 10.0  # every input looks 10 s old for one tick, until the next messages
    assert_bounded(f.c, f.c.step(f.t))
    assert f.c.state is ControllerState.WALKING and 'stale' in f.c.hold_reason
    f.tick()
    assert f.c.state is ControllerState.WALKING and f.c.hold_reason == ''


def test_frozen_cmd_vel_stamp_times_out_to_zero(runtime):
    f = walking(runtime, cmd_vel_timeout_s=0.2)
    f.c.update_cmd_vel(0.4, 0.0, 0.1, f.t, stamp_ns=123)
    start = f.t
    while f.t < start + 0.3:
        f.tick()
        f.c.update_cmd_vel(0.4, 0.0, 0.1, f.t, stamp_ns=123)  # a stuck planner re-sending
    np.testing.assert_array_equal(f.c.command(f.t), np.zeros(3))
    assert 're-sent' in f.c.cmd_note
    f.c.update_cmd_vel(0.4, 0.0, 0.1, f.t, stamp_ns=124)
    np.testing.assert_allclose(f.c.command(f.t), [0.4, 0.0, 0.1])


@pytest.mark.parametrize('gripper_first', [True, False])
def test_another_drivers_joint_states_on_the_topic_are_ignored(runtime, gripper_first):
    """A gripper publishing on joint_states (same stamp, either order) never faults walking."""
    f = walking(runtime)
    stamp = 1_000_000_000
    for _ in range(200):  # 1 s, longer than fault_hold_s
        f.t += DT
        stamp += 5_000_000
        gripper = (['gripper_finger_joint'], [0.01], [0.0])
        if gripper_first:
            f.c.update_joint_state(*gripper, f.t, stamp_ns=stamp)
        f.c.update_joint_state(f.names, f.q, f.qd, f.t, stamp_ns=stamp)
        if not gripper_first:
            f.c.update_joint_state(*gripper, f.t, stamp_ns=stamp)
        f.c.update_odom(f.quat, f.lin_vel, [0.0, 0.0, 0.2], f.t)
        f.c.step(f.t)
        assert f.c.state is ControllerState.WALKING, f.c.fault_reason
        assert f.c.hold_reason == ''


def test_a_forward_clock_jump_advances_the_stand_ramp_by_one_tick(runtime):
    """An NTP step or a /clock skip mid-ramp must not snap the PD target to the default pose."""
    c = Controller(runtime.contract, runtime.act, ControllerConfig(stand_ramp_s=2.0))
    f = Feeder(c)
    f.feed()
    c.activate(f.t)
    for _ in range(10):
        f.tick()
    before = c.stand_ramp_fraction(f.t)
    f.t += 30.0  # the clock steps forward by 30 s
    f.feed()
    effort = c.step(f.t)
    after = c.stand_ramp_fraction(f.t)
    assert after - before == pytest.approx(DT / 2.0, abs=1e-9)
    assert np.all(np.abs(effort) < np.asarray(runtime.contract.effort_limit_nm))
