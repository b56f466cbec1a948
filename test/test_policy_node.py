"""
The policy node over real rclpy/DDS, in-process, with a randomly initialized exported policy.

A test node (``RobotFeed``, in ``policy_harness.py``) plays the robot: it publishes
``joint_states`` and ``odom`` at about 200 Hz from a state the test edits, and records
``joint_command`` and ``/diagnostics``. The policy node and the feed spin in their own executor
threads; tests wait for a condition with a generous deadline (no timed assertions).
"""

import math
from typing import List, Optional

from builtin_interfaces.msg import Time
from humanoid_rl_ros.ros.ros_conversions import make_joint_state, make_odometry, make_twist
import numpy as np
from policy_fixtures import make_mismatched_policy
from policy_harness import node_fixtures, RobotFeed, wait_for
import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState

pytestmark = pytest.mark.ros


policy_path, contract, ros_context, harness_factory = node_fixtures()


def _standing_expected(contract, feed: RobotFeed, names: Optional[List[str]] = None):
    """Return the standing PD effort (ramp complete) for the feed's state, in ``names`` order."""
    lookup = {n: i for i, n in enumerate(feed.names)}
    idx = [lookup[n] for n in contract.joint_names]
    q, qd = feed.q[idx], feed.qd[idx]
    effort = (np.asarray(contract.kp_nm_per_rad) * (np.asarray(contract.default_pos_rad) - q)
              - np.asarray(contract.kd_nms_per_rad) * qd)
    limit = np.asarray(contract.effort_limit_nm)
    effort = np.clip(effort, -limit, limit)
    by_name = dict(zip(contract.joint_names, effort))
    return np.array([by_name.get(n, 0.0) for n in (names or contract.joint_names)])


def _efforts_by_policy_order(contract, msg: JointState) -> np.ndarray:
    lookup = dict(zip(msg.name, msg.effort))
    return np.array([lookup[n] for n in contract.joint_names])


def _assert_bounded(contract, effort) -> None:
    effort = np.asarray(effort)
    assert np.all(np.isfinite(effort))
    assert np.all(np.abs(effort) <= np.asarray(contract.effort_limit_nm))


@pytest.mark.parametrize('order', ['policy', 'shuffled'])
def test_joint_state_order_does_not_change_efforts(contract, policy_path, harness_factory,
                                                   order):
    def shuffle(feed):
        if order == 'shuffled':
            perm = np.random.default_rng(7).permutation(len(feed.names))
            feed.names = [feed.names[i] for i in perm] + ['head_pan_joint']
            feed.q = np.append(feed.q[perm], 0.3)
            feed.qd = np.append(feed.qd[perm], -0.1)

    h = harness_factory(contract, f'policy_order_{order}',
                        {'policy': str(policy_path), 'stand_ramp_s': 0.0}, feed_names=shuffle)
    wait_for(lambda: h.feed.value('state') == 'standing', 'standing')
    h.feed.commands.clear()
    wait_for(lambda: h.feed.last_command() is not None, 'an effort command')
    msg = h.feed.last_command()
    assert list(msg.name) == list(contract.joint_names)
    np.testing.assert_allclose(_efforts_by_policy_order(contract, msg),
                               _standing_expected(contract, h.feed), rtol=1e-12, atol=1e-12)
    # the inputs were read from their serialized bytes and the command published as bytes
    assert h.node._output.writer is not None
    assert h.node._inputs.joint_state_reader._names == tuple(h.feed.names)


def _standing_pd(contract, q, qd) -> np.ndarray:
    """Return the standing PD effort (ramp complete) for ``q``, ``qd`` in policy order."""
    effort = (np.asarray(contract.kp_nm_per_rad) * (np.asarray(contract.default_pos_rad) - q)
              - np.asarray(contract.kd_nms_per_rad) * qd)
    limit = np.asarray(contract.effort_limit_nm)
    return np.clip(effort, -limit, limit)


def _walk_lockstep(contract, policy_path, harness_factory, name: str, shuffled: bool,
                   ticks: int) -> np.ndarray:
    """
    Walk the node one control tick per joint_states message; return the efforts per tick.

    ``control_trigger: joint_states`` makes every message one tick, so the test publishes one
    state, waits for its command (generous deadline) and only then publishes the next. The
    states are the same for both orders (``shuffled`` permutes them and adds a joint the
    policy does not know).
    """
    num = contract.num_joints
    perm = (np.random.default_rng(7).permutation(num) if shuffled else np.arange(num))
    extra = ['head_pan_joint'] if shuffled else []

    def publish(feed, q, qd):
        names = [contract.joint_names[i] for i in perm] + extra
        feed.js_pub.publish(make_joint_state(names, list(q[perm]) + [0.3] * len(extra),
                                             list(qd[perm]) + [-0.1] * len(extra)))
        feed.odom_pub.publish(make_odometry([0.0, 0.0, 0.8], [1.0, 0.0, 0.0, 0.0],
                                            [0.1, 0.0, 0.0], [0.0, 0.0, 0.0]))

    def quiet(feed):
        feed.publish_joint_states = False  # this test publishes every message itself
        feed.publish_odom = False

    generous = 10.0  # [s] staleness limits far above any stall; ticks come from messages only
    h = harness_factory(contract, name,
                        {'policy': str(policy_path), 'stand_ramp_s': 0.0,
                         'control_trigger': 'joint_states', 'joint_state_timeout_s': generous,
                         'odom_timeout_s': generous, 'cmd_vel_timeout_s': 60.0},
                        feed_names=quiet)
    q0 = np.asarray(contract.default_pos_rad) + 0.05 * np.sin(np.arange(num))
    qd0 = 0.2 * np.cos(np.arange(num))

    def standing_seen():
        publish(h.feed, q0, qd0)  # configure waits for joint_states; standing ticks are PD only
        return h.feed.value('state') == 'standing'

    wait_for(standing_seen, 'standing')
    # Drain: a state of its own; once its command is back, no earlier message is in flight.
    q_b, qd_b = q0 + 0.03, qd0 - 0.05
    publish(h.feed, q_b, qd_b)
    wait_for(lambda: any(np.allclose(_efforts_by_policy_order(contract, m),
                                     _standing_pd(contract, q_b, qd_b), rtol=0, atol=1e-9)
                         for m in list(h.feed.commands)), 'the command for the drain state')
    command = (0.4, 0.1, 0.2)
    h.feed.send_cmd_vel(*command)
    wait_for(lambda: np.allclose([float(h.feed.value(k) or 'nan') for k in
                                  ('command_vx_m_s', 'command_vy_m_s', 'command_wz_rad_s')],
                                 command), 'the velocity command')
    assert h.feed.call('walk').success
    efforts = []
    for k in range(ticks):
        q = q0 + 0.02 * np.sin(0.7 * k + np.arange(num))
        qd = qd0 + 0.1 * np.cos(0.3 * k + np.arange(num))
        n = len(h.feed.commands)
        publish(h.feed, q, qd)
        wait_for(lambda: len(h.feed.commands) > n, f'the command of walking tick {k}')
        efforts.append(_efforts_by_policy_order(contract, h.feed.commands[n]))
    wait_for(lambda: h.feed.value('state') == 'walking'
             and int(h.feed.value('policy_steps') or 0) >= ticks // contract.decimation,
             'walking diagnostics')
    return np.array(efforts)


def test_joint_state_order_does_not_change_walking_efforts(contract, policy_path,
                                                           harness_factory):
    ticks = 3 * contract.decimation  # three policy periods
    assert ticks >= 8
    in_order = _walk_lockstep(contract, policy_path, harness_factory, 'policy_walk_order',
                              shuffled=False, ticks=ticks)
    shuffled = _walk_lockstep(contract, policy_path, harness_factory, 'policy_walk_shuffled',
                              shuffled=True, ticks=ticks)
    np.testing.assert_array_equal(shuffled, in_order)
    for effort in in_order:
        _assert_bounded(contract, effort)
    # Not vacuous: the policy moved the PD targets away from the default pose.
    num = contract.num_joints
    standing = np.array([_standing_pd(contract,
                                      np.asarray(contract.default_pos_rad)
                                      + 0.05 * np.sin(np.arange(num))
                                      + 0.02 * np.sin(0.7 * k + np.arange(num)),
                                      0.2 * np.cos(np.arange(num))
                                      + 0.1 * np.cos(0.3 * k + np.arange(num)))
                         for k in range(ticks)])
    assert not np.allclose(in_order, standing, atol=1e-6)


def test_walks_and_publishes_finite_bounded_efforts(contract, policy_path, harness_factory):
    h = harness_factory(contract, 'policy_walk', {'policy': str(policy_path),
                                                  'stand_ramp_s': 0.05,
                                                  'start_walking_on_activate': True})
    wait_for(lambda: h.feed.value('state') == 'walking'
             and int(h.feed.value('policy_steps') or 0) > 10, 'walking with policy steps')
    for msg in list(h.feed.commands):
        _assert_bounded(contract, msg.effort)
    assert h.feed.value('fault_reason') == ''
    wait_for(lambda: float(h.feed.value('policy_rate_hz') or 0) > 0, 'a policy rate')


def test_missing_joint_at_configure_is_refused_and_named(contract, policy_path,
                                                         harness_factory):
    def drop_knee(feed):
        keep = [i for i, n in enumerate(feed.names) if n != 'left_knee_joint']
        feed.names = [feed.names[i] for i in keep]
        feed.q, feed.qd = feed.q[keep], feed.qd[keep]

    h = harness_factory(contract, 'policy_missing_cfg', {'policy': str(policy_path)},
                        feed_names=drop_knee)
    wait_for(lambda: 'left_knee_joint' in h.feed.value('last_error'), 'the configure error')
    assert 'configure refused' in h.feed.value('last_error')
    assert h.node.lifecycle_state == 'unconfigured'
    assert h.feed.last_command() is None


def test_onnx_contract_mismatch_is_refused_and_named(contract, tmp_path, harness_factory):
    bad = make_mismatched_policy(tmp_path, obs_dim=40)
    h = harness_factory(contract, 'policy_mismatch', {'policy': str(bad)})
    wait_for(lambda: 'mismatch' in h.feed.value('last_error'), 'the configure error')
    error = h.feed.value('last_error')
    assert '40' in error and str(contract.obs_dim) in error
    assert h.node.lifecycle_state == 'unconfigured'


def _walking(contract, policy_path, harness_factory, name, **params):
    base = {'policy': str(policy_path), 'stand_ramp_s': 0.0, 'start_walking_on_activate': True}
    base.update(params)
    h = harness_factory(contract, name, base, cmd_stamped=bool(params.get('cmd_vel_stamped')))
    wait_for(lambda: h.feed.value('state') == 'walking', 'walking')
    return h


def test_missing_joint_while_walking_ends_in_damping(contract, policy_path, harness_factory):
    h = _walking(contract, policy_path, harness_factory, 'policy_missing_walk')
    with h.feed.lock:
        h.feed.names, h.feed.q, h.feed.qd = h.feed.names[1:], h.feed.q[1:], h.feed.qd[1:]
    wait_for(lambda: h.feed.value('state') == 'damping', 'damping')
    assert contract.joint_names[0] in h.feed.value('fault_reason')
    h.feed.commands.clear()
    wait_for(lambda: len(h.feed.commands) > 3, 'damping commands')
    for msg in list(h.feed.commands):
        _assert_bounded(contract, msg.effort)


def test_non_finite_input_ends_in_damping(contract, policy_path, harness_factory):
    h = _walking(contract, policy_path, harness_factory, 'policy_nan')
    with h.feed.lock:
        h.feed.q = h.feed.q.copy()
        h.feed.q[2] = math.nan
    wait_for(lambda: h.feed.value('state') == 'damping', 'damping')
    assert 'non-finite' in h.feed.value('fault_reason')
    h.feed.commands.clear()
    wait_for(lambda: len(h.feed.commands) > 3, 'damping commands')
    for msg in list(h.feed.commands):
        _assert_bounded(contract, msg.effort)


def test_stale_input_damps_and_recover_returns_to_standing(contract, policy_path,
                                                           harness_factory):
    h = _walking(contract, policy_path, harness_factory, 'policy_stale',
                 joint_state_timeout_s=0.2)
    response = h.feed.call('recover')
    assert not response.success  # nothing to recover from
    with h.feed.lock:
        h.feed.publish_joint_states = False
    wait_for(lambda: h.feed.value('state') == 'damping', 'damping')
    assert 'stale' in h.feed.value('fault_reason')
    h.feed.commands.clear()
    wait_for(lambda: len(h.feed.commands) > 3, 'damping commands')
    np.testing.assert_array_equal(h.feed.last_command().effort, np.zeros(contract.num_joints))
    response = h.feed.call('recover')
    assert not response.success and 'stale' in response.message
    with h.feed.lock:
        h.feed.publish_joint_states = True
    wait_for(lambda: h.feed.call('recover').success, 'a successful recover')
    wait_for(lambda: h.feed.value('state') == 'standing', 'standing after recover')
    assert h.feed.call('walk').success
    wait_for(lambda: h.feed.value('state') == 'walking', 'walking after recover')


def test_stale_odom_stands_the_robot(contract, policy_path, harness_factory):
    # graded response: a sustained odometry fault stops the policy and stands (no damping)
    h = _walking(contract, policy_path, harness_factory, 'policy_stale_odom',
                 odom_timeout_s=0.2)
    with h.feed.lock:
        h.feed.publish_odom = False
    wait_for(lambda: h.feed.value('state') == 'standing', 'standing')
    assert 'odom' in h.feed.value('stand_reason')
    assert h.feed.value('fault_reason') == ''


@pytest.mark.parametrize('stamped', [False, True])
def test_cmd_vel_is_clamped_and_times_out(contract, policy_path, harness_factory, stamped):
    h = _walking(contract, policy_path, harness_factory, f'policy_cmd_{int(stamped)}',
                 cmd_vel_stamped=stamped, cmd_vel_timeout_s=0.5)
    low, high = contract.commands.as_bounds()

    def command():
        return tuple(float(h.feed.value(k) or 'nan')
                     for k in ('command_vx_m_s', 'command_vy_m_s', 'command_wz_rad_s'))

    def sent_and_seen(expected):
        h.feed.send_cmd_vel(5.0, 0.1, -9.0)
        return np.allclose(command(), expected, atol=1e-6)

    wait_for(lambda: sent_and_seen((high[0], 0.1, low[2])), 'the clamped command')
    assert 'clamped' in h.feed.value('cmd_vel_note')
    wait_for(lambda: np.allclose(command(), (0.0, 0.0, 0.0)), 'the command to time out')


def test_float64_array_output_in_configured_joint_order(contract, policy_path,
                                                        harness_factory):
    order = list(reversed(contract.joint_names)) + ['gripper_joint']
    h = harness_factory(contract, 'policy_array',
                        {'policy': str(policy_path), 'stand_ramp_s': 0.0,
                         'output_type': 'float64_array', 'output_joint_order': order},
                        output_array=True)
    wait_for(lambda: h.feed.value('state') == 'standing', 'standing')
    h.feed.commands.clear()
    wait_for(lambda: h.feed.last_command() is not None, 'an effort array')
    data = np.asarray(h.feed.last_command().data)
    assert data.shape == (len(order),)
    np.testing.assert_allclose(data, _standing_expected(contract, h.feed, order), atol=1e-12)
    assert data[-1] == 0.0
    assert h.node._output.writer is not None  # published as bytes


def test_invalid_parameter_values_are_rejected(contract, policy_path, harness_factory):
    h = _walking(contract, policy_path, harness_factory, 'policy_params')
    result = h.node.set_parameters([Parameter('cmd_vel_timeout_s', value=-1.0)])[0]
    assert not result.successful
    result = h.node.set_parameters([Parameter('output_type', value='pwm')])[0]
    assert not result.successful
    result = h.node.set_parameters([Parameter('stand_ramp_s', value=1.5)])[0]
    assert result.successful
    assert h.node.status_values()['idle_stand'] == 'off'
    result = h.node.set_parameters([Parameter('idle_stand_after_s', value=-1.0)])[0]
    assert not result.successful
    result = h.node.set_parameters([Parameter('idle_stand_after_s', value=1.0)])[0]
    assert result.successful
    assert h.node.controller.config.idle_stand_after_s == 1.0
    assert h.node.status_values()['idle_stand'] in ('ready', 'holding (policy paused)')


def test_message_conversions_round_trip():
    from humanoid_rl_ros.ros import ros_conversions as rc
    odom = make_odometry([1.0, 2.0, 0.8], [0.9, 0.1, -0.2, 0.3], [0.5, -0.1, 0.0],
                         [0.0, 0.1, 0.7])
    quat, lin, ang = rc.odometry_to_arrays(odom)
    np.testing.assert_allclose(quat, [0.9, 0.1, -0.2, 0.3])
    np.testing.assert_allclose(lin, [0.5, -0.1, 0.0])
    np.testing.assert_allclose(ang, [0.0, 0.1, 0.7])
    assert odom.child_frame_id == 'base_link'
    assert rc.twist_to_command(make_twist(0.4, -0.2, 0.3)) == (0.4, -0.2, 0.3)
    assert rc.twist_to_command(make_twist(0.4, -0.2, 0.3, stamped=True)) == (0.4, -0.2, 0.3)
    imu = rc.make_imu([1.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(rc.imu_to_arrays(imu)[1], [0.1, 0.2, 0.3])
    js = make_joint_state(['b', 'a'], [2.0, 1.0], [0.2, 0.1])
    names, q, qd = rc.joint_state_to_arrays(js)
    assert names == ('b', 'a')
    np.testing.assert_allclose(q, [2.0, 1.0])
    np.testing.assert_allclose(qd, [0.2, 0.1])


def test_joint_states_trigger_ticks_per_message_and_watchdog_damps(contract, policy_path,
                                                                   harness_factory):
    h = harness_factory(contract, 'policy_trigger',
                        {'policy': str(policy_path), 'stand_ramp_s': 0.0,
                         'control_trigger': 'joint_states', 'joint_state_timeout_s': 0.2})
    wait_for(lambda: h.feed.value('state') == 'standing', 'standing')
    h.feed.commands.clear()
    wait_for(lambda: h.feed.last_command() is not None, 'an effort command')
    np.testing.assert_allclose(_efforts_by_policy_order(contract, h.feed.last_command()),
                               _standing_expected(contract, h.feed), atol=1e-12)
    with h.feed.lock:
        h.feed.publish_joint_states = False
    wait_for(lambda: h.feed.value('state') == 'damping', 'damping from the watchdog')
    h.feed.commands.clear()
    wait_for(lambda: len(h.feed.commands) > 3, 'damping commands from the watchdog timer')
    np.testing.assert_array_equal(h.feed.last_command().effort, np.zeros(contract.num_joints))


def test_control_loop_runs_sim_time_ticks_and_gives_entities_back(contract, policy_path,
                                                                  harness_factory):
    """
    The control path runs in the node's control thread, on /clock time, across re-configures.

    With ``use_sim_time`` the control timer fires on ``/clock`` (the time source's subscription
    is run by the control loop while configured), so each command is stamped with a published
    sim time. After cleanup the loop has stopped and the executor owns ``/clock`` again; a second
    configure + activate controls again, and keeps controlling when ``use_sim_time`` is switched
    off at run time.
    """
    # Configured by hand once /clock runs: a joint state received at ROS time 0 (before the
    # first /clock) is 10 s old at the first /clock, and activation would refuse it.
    h = harness_factory(contract, 'policy_simtime', {'policy': str(policy_path),
                                                     'use_sim_time': True, 'autostart': False,
                                                     'stand_ramp_s': 0.05})
    clock_node = Node('policy_simtime_clock')
    clock_pub = clock_node.create_publisher(Clock, '/clock', 10)
    sim_ns = [10 * 10**9]
    published = set()

    def publish_clock() -> None:
        sim_ns[0] += 5_000_000
        published.add(sim_ns[0])
        clock_pub.publish(Clock(clock=Time(sec=sim_ns[0] // 10**9,
                                           nanosec=sim_ns[0] % 10**9)))

    clock_node.create_timer(0.005, publish_clock)
    h._spin(clock_node)
    wait_for(lambda: h.node.get_clock().now().nanoseconds > 0, 'the first /clock')
    assert h.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert h.node.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def stamps() -> List[int]:
        with h.feed.lock:
            return [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
                    for m in h.feed.commands]

    def clock_subs() -> List:
        return [s for s in h.node.subscriptions if s.topic_name == '/clock']

    wait_for(lambda: h.feed.value('state') == 'standing' and len(stamps()) > 20,
             'standing commands on sim time')
    assert all(stamp in published for stamp in stamps()[-20:])
    loop = h.node._control_loop
    assert loop is not None and loop.running
    assert clock_subs() and all(s.callback_group is h.node._control_group
                                for s in clock_subs())

    assert h.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert h.node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert not loop.running
    assert all(s.callback_group is h.node.default_callback_group for s in clock_subs())

    with h.feed.lock:
        h.feed.commands.clear()
    assert h.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert h.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    wait_for(lambda: h.feed.value('state') == 'standing' and len(stamps()) > 20,
             'standing commands after a second configure')
    assert loop.running
    effort = np.asarray(h.feed.last_command().effort)
    _assert_bounded(contract, effort)

    # use_sim_time off at run time: the time source drops its /clock subscription and the loop
    # restarts without it; control continues on wall time (the time jump may end in damping).
    result = h.node.set_parameters([Parameter('use_sim_time', value=False)])[0]
    assert result.successful
    assert loop.running and not clock_subs()
    count = len(stamps())
    wait_for(lambda: len(stamps()) > count + 20, 'commands after use_sim_time was switched off')
    assert stamps()[-1] > sim_ns[0] + 10**9 * 3600  # a wall-clock stamp, not a sim time
    _assert_bounded(contract, np.asarray(h.feed.last_command().effort))


def test_control_thread_priority_is_applied_or_refused_with_a_reason(contract, policy_path,
                                                                     harness_factory):
    # SCHED_FIFO needs CAP_SYS_NICE / an rtprio limit: as root it is applied, elsewhere the
    # node says why not and keeps controlling at normal priority. Either way it stands.
    h = harness_factory(contract, 'policy_priority',
                        {'policy': str(policy_path), 'stand_ramp_s': 0.0,
                         'control_thread_priority': 1})
    wait_for(lambda: h.feed.value('state') == 'standing', 'standing')
    wait_for(lambda: h.feed.value('control_thread') != '', 'the control_thread diagnostic')
    status = h.feed.value('control_thread')
    assert status == 'SCHED_FIFO 1' or status.startswith('normal: SCHED_FIFO 1 refused'), status
    # state_since_s: exact decimal seconds of the first standing tick (ROS time); '' in the
    # status published on activation, before that tick
    wait_for(lambda: h.feed.value('state_since_s') != '', 'state_since_s of the first tick')
    since = h.feed.value('state_since_s')
    sec, _, nsec = since.partition('.')
    assert sec.isdigit() and len(nsec) == 9 and int(sec) > 0, since


def test_a_dead_control_loop_is_reported_on_diagnostics(contract, policy_path, harness_factory,
                                                        monkeypatch):
    """If the control thread dies, the executor takes diagnostics back and names the failure."""
    import types
    from humanoid_rl_ros.ros import control_loop

    def broken_wait_set(*args):
        raise RuntimeError('wait set broken for this test')

    monkeypatch.setattr(control_loop, 'rclpy_impl',
                        types.SimpleNamespace(WaitSet=broken_wait_set))
    h = harness_factory(contract, 'policy_dead_loop', {'policy': str(policy_path)})
    wait_for(lambda: 'control loop stopped' in h.feed.value('control_thread'),
             'the dead control loop on /diagnostics')
    assert 'wait set broken for this test' in h.feed.value('control_thread')
    assert h.node._diag_timer.callback_group is h.node.default_callback_group
    assert h.node._output.writer is None  # this "rclpy" cannot publish bytes: message objects


def test_serialized_input_not_read_by_cdr_goes_through_rclpy():
    """A reader that refuses the bytes (not plain CDR) hands them to rclpy's deserialization."""
    from humanoid_rl_ros.ros.control_loop import raw_handler
    from humanoid_rl_ros.ros.ros_conversions import joint_state_to_arrays
    from rclpy.serialization import serialize_message
    got = []
    handle = raw_handler(lambda data: None, JointState, joint_state_to_arrays,
                         lambda *fields: got.append(fields))
    handle(serialize_message(make_joint_state(['a', 'b'], [0.5, 1.5], [2.0, 3.0],
                                              stamp=Time(sec=3, nanosec=7))))
    names, position, velocity, stamp_ns = got[0]
    assert stamp_ns == 3_000_000_007
    assert names == ('a', 'b')
    np.testing.assert_array_equal(position, [0.5, 1.5])
    np.testing.assert_array_equal(velocity, [2.0, 3.0])
    assert handle.__name__ == 'JointState_bytes_handler'
