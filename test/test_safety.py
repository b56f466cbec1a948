"""
Tests for the controller's fault rules (no ROS, no controller): classification, holds, clocks.

Each rule is checked on hand-made messages and times; the controller's use of them (states,
efforts) is tested in test_controller_faults.py.
"""

import math

from humanoid_rl_ros.core.controller_config import ControllerError
from humanoid_rl_ros.core.safety import (age_s, backwards_jump, check_orientation_sample,
                                         FaultHold, grade_response, InputTrack,
                                         JointStateReader, match_joint_indices, Response,
                                         tilt_from_upright_rad, tilt_problem)
import numpy as np
import pytest


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


def test_age_is_never_negative():
    assert age_s(1.0, 1.25) == 0.25
    assert age_s(2.0, 1.0) == 0.0
    assert age_s(-math.inf, 0.0) == math.inf  # nothing received: infinitely old


# ------------------------------------------------------------------ input tracks and stamps
def test_a_track_is_unusable_until_a_sample_arrives_then_goes_stale_after_its_timeout():
    track = InputTrack('odom')
    assert track.problem_at(0.0, 0.1, 'odom_timeout_s') == 'no odom received'
    assert not track.fresh(0.0, 0.1)
    track.store((np.zeros(3),), 1.0)
    assert track.problem_at(1.0625, 0.125, 'odom_timeout_s') == ''
    assert track.fresh(1.125, 0.125)
    assert track.problem_at(1.25, 0.125, 'odom_timeout_s') == (
        'odom stale: 0.250 s old > odom_timeout_s 0.125 s')
    assert not track.fresh(1.25, 0.125)
    track.problem = 'non-finite odom value'  # a refused message: named even while fresh
    assert track.problem_at(1.0, 0.125, 'odom_timeout_s') == 'non-finite odom value'


def test_unstamped_or_unchecked_messages_always_arrive():
    track = InputTrack('joint_states')
    for stamp_ns in (None, 0, 0, None):
        assert track.arrive(stamp_ns, 1.0, use_header_stamps=True) == (True, '')
    for _ in range(3):
        assert track.arrive(5, 1.0, use_header_stamps=False) == (True, '')
    assert track.stamp_ns is None and track.frozen_since_s is None


def test_a_re_sent_stamp_does_not_arrive_and_its_age_names_the_frozen_stamp():
    track = InputTrack('odom')
    assert track.arrive(1_000_000_000, 2.0, use_header_stamps=True) == (True, '')
    track.store((np.zeros(3),), 2.0)
    assert track.arrive(1_000_000_000, 2.0625, use_header_stamps=True) == (False, '')
    assert track.arrive(1_000_000_000, 2.125, use_header_stamps=True) == (False, '')
    assert track.frozen_since_s == 2.0625  # the first re-send
    assert track.problem_at(2.25, 0.125, 'odom_timeout_s') == (
        'odom stale: 0.250 s old > odom_timeout_s 0.125 s (header stamp frozen at '
        '1.000000000 s: re-sent for 0.188 s without advancing)')
    assert track.arrive(1_005_000_000, 2.25, use_header_stamps=True) == (True, '')
    assert track.frozen_since_s is None


def test_a_stamp_going_back_is_accepted_as_the_new_reference_and_said_so():
    track = InputTrack('imu')
    track.arrive(3_000_000_000, 1.0, use_header_stamps=True)
    new, note = track.arrive(2_500_000_000, 1.5, use_header_stamps=True)
    assert new and note == ('imu header stamp went back 0.500 s at ROS time 1.500 s (publisher '
                            'clock reset or reordered message); accepted')
    assert track.stamp_ns == 2_500_000_000
    assert track.arrive(2_500_000_000, 1.5, use_header_stamps=True) == (False, '')


def test_a_clock_shift_moves_every_stored_time():
    track = InputTrack('odom')
    track.store((np.zeros(3),), 20.0)
    track.arrive(7, 20.0, use_header_stamps=True)
    track.arrive(7, 20.5, use_header_stamps=True)
    track.shift(-19.0)
    assert (track.time_s, track.frozen_since_s) == (1.0, 1.5)


@pytest.mark.parametrize('latest_s,now_s,expected', [
    (10.0, 12.0, (0.0, '')),  # forward: nothing to shift
    (10.0, 10.0, (0.0, '')),
    (-math.inf, 0.0, (0.0, '')),  # the first time seen
    (10.0, 9.998, (-0.002, '')),  # callers reading the clock out of order: shifted, no note
    (10.0, 4.0, (-6.0, 'ROS time jumped back 6.000 s to 4.000 s; input ages and the stand '
                       'ramp were kept')),
])
def test_backwards_jump(latest_s, now_s, expected):
    shift, note = backwards_jump(latest_s, now_s, dt_s=0.005)
    assert shift == pytest.approx(expected[0], abs=1e-12) and note == expected[1]


# ------------------------------------------------------------------ message classification
def test_joint_state_reader_picks_the_policy_joints_in_policy_order():
    reader = JointStateReader(['a', 'b', 'c'])
    reading = reader.read(['c', 'x', 'a', 'b'], [3.0, 9.0, 1.0, 2.0], [-3.0, 9.0, -1.0, -2.0])
    assert reading.problem == ''
    np.testing.assert_array_equal(reading.value[0], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(reading.value[1], [-1.0, -2.0, -3.0])
    np.testing.assert_array_equal(reading.damping_qd_rad_s, [-1.0, -2.0, -3.0])


def test_joint_state_reader_refuses_fields_of_another_length_and_keeps_damping_as_it_was():
    reader = JointStateReader(['a', 'b'])
    reading = reader.read(['a', 'b'], [1.0], [0.0, 0.0])
    assert reading == ('joint_states has 2 names but 1 positions', None, None)
    reading = reader.read(['a', 'b'], [1.0, 2.0], [])
    assert reading.problem == ('joint_states has 2 names but 0 velocities (the policy needs '
                               'joint velocities)')
    assert reading.value is None and reading.damping_qd_rad_s is None


def test_joint_state_reader_damps_the_joints_it_can_still_read():
    reader = JointStateReader(['a', 'b', 'c'])
    # 'a' missing, 'b' named twice, 'c' once: only c's velocity is known
    reading = reader.read(['b', 'c', 'b'], [0.0, 0.0, 0.0], [4.0, 5.0, 6.0])
    assert 'lacks required joint(s): a' in reading.problem
    assert 'more than once: b' in reading.problem
    assert reading.value is None
    np.testing.assert_array_equal(reading.damping_qd_rad_s, [0.0, 0.0, 5.0])
    reading = reader.read(['a', 'b', 'c'], [0.0, math.nan, 0.0], [1.0, 2.0, math.inf])
    assert reading.problem == 'non-finite joint_states value for joint(s): b, c'
    assert reading.value is None
    np.testing.assert_array_equal(reading.damping_qd_rad_s, [1.0, 2.0, 0.0])


def test_orientation_samples_are_normalized_or_refused():
    problem, unit = check_orientation_sample('odom', np.array([0.0, 0.6, 0.0, 0.8]) * 1.25,
                                             [np.zeros(3)])
    assert problem == '' and unit is not None
    np.testing.assert_allclose(unit, [0.0, 0.6, 0.0, 0.8], rtol=1e-15)
    assert check_orientation_sample('odom', np.array([2.0, 0.0, 0.0, 0.0]), []) == (
        'odom orientation quaternion has norm 2.000 (not a rotation)', None)
    assert check_orientation_sample('imu', np.array([0.1, 0.0, 0.0, 0.0]), []) == (
        'imu orientation quaternion has norm 0.100 (not a rotation)', None)
    assert check_orientation_sample('odom', np.array([1.0, 0.0, 0.0, 0.0]),
                                    [np.array([0.0, math.nan, 0.0])]) == (
        'non-finite odom value', None)


# ------------------------------------------------------------------ tilt
@pytest.mark.parametrize('quat,tilt', [
    ((1.0, 0.0, 0.0, 0.0), 0.0),
    ((math.cos(0.15), math.sin(0.15), 0.0, 0.0), 0.3),  # roll 0.3 rad
    ((math.cos(0.4), 0.0, math.sin(0.4), 0.0), 0.8),  # pitch 0.8 rad
    ((math.cos(1.0), 0.0, 0.0, math.sin(1.0)), 0.0),  # yaw does not tilt
    ((0.0, 1.0, 0.0, 0.0), math.pi),  # upside down
])
def test_tilt_from_upright(quat, tilt):
    assert tilt_from_upright_rad(np.array(quat)) == pytest.approx(tilt, abs=1e-7)


def test_tilt_problem_names_the_angle_the_limit_and_the_source():
    assert tilt_problem(None, 0.5, 'odom') == ''  # unknown: no fault
    assert tilt_problem(0.5, 0.5, 'odom') == ''
    assert tilt_problem(0.75, 0.5, 'imu') == (
        'base tilted 0.750 rad from upright > max_tilt_rad 0.500 rad (imu)')


# ------------------------------------------------------------------ graded response
def _grade(now_s, joint_hold, walk_hold, joint='', tilt='', walking='', hold_s=0.25):
    return grade_response(now_s, hold_s, joint_hold, joint, tilt, walk_hold, walking)


def test_a_joint_fault_is_held_for_fault_hold_s_then_damps():
    joints, walk = FaultHold(), FaultHold()
    assert _grade(1.0, joints, walk) == Response()
    assert _grade(1.0, joints, walk, joint='joint_states stale') == Response(
        hold='holding the last good input: joint_states stale')
    assert _grade(1.125, joints, walk, joint='joint_states stale').hold != ''
    assert _grade(1.25, joints, walk, joint='joint_states stale') == Response(
        damp='joint_states stale (unusable for 0.250 s >= fault_hold_s 0.25 s; standing needs '
             'joint feedback)')


def test_a_walking_input_fault_is_held_then_stands_and_a_healthy_tick_restarts_the_count():
    joints, walk = FaultHold(), FaultHold()
    assert _grade(1.0, joints, walk, walking='odom stale').hold == (
        'holding the last good input: odom stale')
    assert _grade(1.125, joints, walk, walking='') == Response()  # healthy again
    assert _grade(1.25, joints, walk, walking='odom stale').hold != ''  # counts from 1.25
    assert _grade(1.375, joints, walk, walking='odom stale').hold != ''
    assert _grade(1.5, joints, walk, walking='odom stale') == Response(
        stand='odom stale (unusable for 0.250 s >= fault_hold_s 0.25 s)')


def test_a_held_joint_fault_is_named_with_a_sustained_walking_fault():
    joints, walk = FaultHold(), FaultHold()
    _grade(1.0, joints, walk, walking='odom stale')
    assert _grade(1.25, joints, walk, joint='joint_states stale', walking='odom stale') == (
        Response(stand='odom stale (unusable for 0.250 s >= fault_hold_s 0.25 s)',
                 hold='holding the last good input: joint_states stale'))


def test_tilt_damps_at_once_and_the_walking_inputs_are_then_not_counted():
    joints, walk = FaultHold(), FaultHold()
    tilt = 'base tilted 1.300 rad from upright > max_tilt_rad 1.222 rad (odom)'
    assert _grade(1.0, joints, walk, tilt=tilt, walking='odom stale') == Response(damp=tilt)
    assert walk.since_s is None


def test_when_not_walking_the_walking_inputs_keep_their_count():
    joints, walk = FaultHold(), FaultHold()
    _grade(1.0, joints, walk, walking='odom stale')
    assert grade_response(2.0, 0.25, joints, '', '', walk, None) == Response()
    assert walk.since_s == 1.0
    walk.shift(-0.5)
    assert walk.since_s == 0.5
    walk.clear()
    assert walk.since_s is None


def test_zero_fault_hold_makes_every_fault_sustained_at_once():
    joints, walk = FaultHold(), FaultHold()
    assert _grade(1.0, joints, walk, hold_s=0.0) == Response()
    assert _grade(1.0, joints, walk, walking='imu stale', hold_s=0.0).stand.startswith(
        'imu stale (unusable for 0.000 s')
    assert _grade(1.0, joints, walk, joint='no joint_states received', hold_s=0.0).damp != ''
