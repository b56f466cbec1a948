"""
The controller's graded fault response, as the policy node wires it (docs/SAFETY.md).

Over real rclpy/DDS with a random policy: a transient gap is ridden out on the last good input
and reported (``hold_reason``), a sustained odometry fault stands the robot and ``~/walk``
resumes, ``~/damp`` damps on request, frozen header stamps go stale (and do not, with
``use_header_stamps: false``), a joint named twice is refused at configure and damps while
walking, a base tilted past ``max_tilt_rad`` damps. The inputs go through the node's
serialized-message path, header stamps included.
"""

import math

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
from policy_harness import node_fixtures, wait_for
import pytest

pytestmark = pytest.mark.ros


policy_path, contract, ros_context, harness_factory = node_fixtures()


def _walking(contract, policy_path, harness_factory, name, feed_names=None, **params):
    base = {'policy': str(policy_path), 'stand_ramp_s': 0.0, 'start_walking_on_activate': True}
    base.update(params)
    h = harness_factory(contract, name, base, feed_names=feed_names)
    wait_for(lambda: h.feed.value('state') == 'walking', 'walking')
    return h


def test_a_transient_gap_is_held_and_reported_then_walking_goes_on(contract, policy_path,
                                                                   harness_factory):
    # a long fault_hold_s: the gap is transient however slow this machine is
    h = _walking(contract, policy_path, harness_factory, 'safety_hold',
                 joint_state_timeout_s=0.1, fault_hold_s=10.0)
    with h.feed.lock:
        h.feed.publish_joint_states = False
    wait_for(lambda: 'joint_states stale' in h.feed.value('hold_reason'),
             'the hold on /diagnostics')
    assert h.feed.value('state') == 'walking'
    assert h.feed.level == DiagnosticStatus.WARN
    assert h.feed.message.startswith('active/walking: holding the last good input')
    with h.feed.lock:
        h.feed.publish_joint_states = True
    wait_for(lambda: h.feed.value('hold_reason') == '', 'the hold to end')
    assert h.feed.value('state') == 'walking'


def test_a_sustained_odometry_fault_stands_and_walk_resumes(contract, policy_path,
                                                            harness_factory):
    h = _walking(contract, policy_path, harness_factory, 'safety_stand', odom_timeout_s=0.2,
                 fault_hold_s=0.2)
    with h.feed.lock:
        h.feed.publish_odom = False
    wait_for(lambda: h.feed.value('state') == 'standing', 'the fault stand')
    assert 'odom' in h.feed.value('stand_reason')
    assert 'call walk to resume' in h.feed.value('stand_reason')
    assert h.feed.level == DiagnosticStatus.WARN
    h.feed.commands.clear()
    wait_for(lambda: len(h.feed.commands) > 3, 'standing efforts')
    with h.feed.lock:
        h.feed.publish_odom = True
    assert h.feed.call('walk').success
    wait_for(lambda: h.feed.value('state') == 'walking', 'walking again')
    wait_for(lambda: h.feed.value('stand_reason') == '', 'the stand reason to clear')


def test_damp_service_damps_and_recover_stands(contract, policy_path, harness_factory):
    h = _walking(contract, policy_path, harness_factory, 'safety_damp')
    response = h.feed.call('damp')
    assert response.success, response.message
    wait_for(lambda: h.feed.value('state') == 'damping', 'damping')
    assert h.feed.value('fault_reason') == 'damping requested'
    assert h.feed.level == DiagnosticStatus.ERROR
    assert h.feed.call('recover').success
    wait_for(lambda: h.feed.value('state') == 'standing', 'standing after recover')


@pytest.mark.parametrize('use_stamps', [True, False])
def test_frozen_joint_state_stamps_go_stale_unless_stamps_are_ignored(contract, policy_path,
                                                                      harness_factory,
                                                                      use_stamps):
    def frozen(feed):
        feed.js_stamp = Time(sec=42, nanosec=5)  # the same stamp on every message

    h = harness_factory(contract, f'safety_frozen_{int(use_stamps)}',
                        {'policy': str(policy_path), 'stand_ramp_s': 0.0,
                         'joint_state_timeout_s': 1.0, 'fault_hold_s': 0.2,
                         'use_header_stamps': use_stamps}, feed_names=frozen)
    if use_stamps:
        # configure takes the first message; every later one is a re-send: stale, then damping
        wait_for(lambda: h.feed.value('state') == 'damping', 'damping on frozen stamps')
        assert 'joint_states' in h.feed.value('fault_reason')
        assert 'frozen' in h.feed.value('fault_reason'), h.feed.value('fault_reason')
    else:
        wait_for(lambda: h.feed.value('state') == 'standing'
                 and h.feed.value('joint_states') == 'ok', 'standing on fresh data')
        h.feed.commands.clear()
        wait_for(lambda: len(h.feed.commands) > 50, 'standing efforts')
        assert h.feed.value('state') == 'standing'


def test_a_joint_named_twice_is_refused_at_configure_and_named(contract, policy_path,
                                                               harness_factory):
    def twice(feed):
        feed.names = feed.names + [feed.names[3]]
        feed.q, feed.qd = np.append(feed.q, 0.0), np.append(feed.qd, 0.0)

    h = harness_factory(contract, 'safety_twice_cfg', {'policy': str(policy_path)},
                        feed_names=twice)
    wait_for(lambda: 'more than once' in h.feed.value('last_error'), 'the configure error')
    assert contract.joint_names[3] in h.feed.value('last_error')
    assert h.node.lifecycle_state == 'unconfigured'


def test_a_joint_named_twice_while_walking_damps_naming_it(contract, policy_path,
                                                           harness_factory):
    h = _walking(contract, policy_path, harness_factory, 'safety_twice_walk', fault_hold_s=0.1)
    with h.feed.lock:
        h.feed.names = h.feed.names + [h.feed.names[5]]
        h.feed.q, h.feed.qd = np.append(h.feed.q, 0.0), np.append(h.feed.qd, 0.0)
    wait_for(lambda: h.feed.value('state') == 'damping', 'damping')
    assert f'more than once: {contract.joint_names[5]}' in h.feed.value('fault_reason')


def test_a_base_tilted_past_the_limit_damps(contract, policy_path, harness_factory):
    h = _walking(contract, policy_path, harness_factory, 'safety_tilt',
                 max_tilt_rad=math.radians(60.0))
    half = math.radians(80.0) / 2.0
    with h.feed.lock:
        h.feed.quat_wxyz = (math.cos(half), math.sin(half), 0.0, 0.0)  # 80 deg about x
    wait_for(lambda: h.feed.value('state') == 'damping', 'damping')
    assert 'base tilted 1.396 rad' in h.feed.value('fault_reason'), h.feed.value('fault_reason')
    assert float(h.feed.value('tilt_rad')) == pytest.approx(math.radians(80.0), abs=1e-4)
