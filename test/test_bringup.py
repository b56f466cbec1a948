"""
Bring-up under every clock: with autostart the policy node comes up active, naming its waits.

Pure logic (:mod:`humanoid_rl_ros.ros.bringup`) with hand-made cases, then the node over real
rclpy/DDS: a test node publishes ``/clock`` at zero, held at 1 s, running from 100 s, looping
back (a jump every 0.25 s of wall time), running 1000 times faster than the wall clock (a
joint state is fresh for a moment only), or not at all (wall time), while the robot feed
publishes ``joint_states`` and ``odom``.
"""

from contextlib import contextmanager, ExitStack
import threading
from typing import Callable, Iterator, List

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from humanoid_rl_ros.ros import bringup
from policy_harness import node_fixtures, wait_for
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock

# ------------------------------------------------------------------ pure logic


def test_autostart_configures_then_activates_on_a_fit_joint_state():
    assert bringup.autostart_action('unconfigured', '', '') == (
        bringup.CONFIGURE, 'configure (joint_states and the policy)')
    assert bringup.autostart_action('inactive', '', '') == (bringup.ACTIVATE, '')
    assert bringup.autostart_action('active', '', '') == (bringup.DONE, '')


def test_autostart_waits_for_a_fresh_joint_state_and_names_the_problem():
    action, waiting = bringup.autostart_action(
        'inactive', '', 'joint_states stale: 1.000 s old > joint_state_timeout_s 0.1 s')
    assert action == bringup.WAIT
    assert waiting == ('a fresh joint_states to activate on (joint_states stale: 1.000 s old > '
                       'joint_state_timeout_s 0.1 s)')


def test_autostart_gives_up_only_on_a_configure_failure_that_is_not_waiting():
    assert bringup.autostart_action('unconfigured', 'cannot load policy', '')[0] == (
        bringup.GIVE_UP)


def test_stalled_ticks_names_the_clock_and_the_time():
    assert bringup.stalled_ticks(0.5, 10**9, True) == ''
    assert bringup.stalled_ticks(2.04, 1_000_000_000, True) == (
        '/clock to advance (use_sim_time: the control timer runs on /clock): no control tick '
        'for 2.0 s of wall time, ROS time 1.000000000 s')
    assert bringup.stalled_ticks(0.75, 5, False).startswith('the control timer (ROS time is '
                                                            'wall time): no control tick for 0.8')


# ------------------------------------------------------------------ the node


policy_path, contract, ros_context, harness_factory = node_fixtures()

pytestmark = pytest.mark.ros


NS_PER_TICK = 5_000_000  # the clock feed publishes every 5 ms of wall time
CLOCKS = {
    'zero': lambda k: 0,
    'held_at_1s': lambda k: 10**9,
    'running_from_100s': lambda k: 100 * 10**9 + k * NS_PER_TICK,
    'looping_back_every_0.25s': lambda k: 100 * 10**9 + (k % 50) * NS_PER_TICK,
    'running_1000x': lambda k: 100 * 10**9 + k * 1000 * NS_PER_TICK,
}
"""Clock case -> sim time [ns] of the k-th /clock message."""


@contextmanager
def _clock_feed(clock: Callable[[int], int]) -> Iterator[List[int]]:
    """Publish /clock every 5 ms (wall) from ``clock(k)``; yield the list of published times."""
    node = Node('clock_feed')
    pub = node.create_publisher(Clock, '/clock', 10)
    published: List[int] = []

    def tick() -> None:
        t_ns = clock(len(published))
        published.append(t_ns)
        pub.publish(Clock(clock=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)))

    node.create_timer(0.005, tick)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield published
    finally:
        executor.shutdown()
        thread.join(timeout=5.0)
        node.destroy_node()


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@pytest.mark.parametrize('case,clock_first', [
    *[(case, False) for case in CLOCKS], ('held_at_1s', True), ('running_from_100s', True),
    ('wall_time', False)])
def test_autostart_comes_up_active_under_any_clock(contract, policy_path, harness_factory,
                                                   case, clock_first):
    """
    Activation on a fresh joint state, whenever /clock starts and whatever it does.

    ``clock_first``: /clock runs before the node starts (a simulator already playing);
    otherwise it starts right after (the node may read its first joint_states at ROS time 0).
    """
    sim = case != 'wall_time'
    with ExitStack() as stack:
        if sim and clock_first:
            published = stack.enter_context(_clock_feed(CLOCKS[case]))
            wait_for(lambda: len(published) > 5, '/clock running')
        h = harness_factory(contract, f'bringup_{case.replace(".", "_")}_{int(clock_first)}',
                            {'policy': str(policy_path), 'use_sim_time': sim,
                             'stand_ramp_s': 0.5})
        if sim and not clock_first:
            stack.enter_context(_clock_feed(CLOCKS[case]))
        _check_bring_up(h, case)


def _check_bring_up(h, case: str) -> None:
    wait_for(lambda: h.node.lifecycle_state == 'active', f'activation ({case})')
    wait_for(lambda: h.feed.value('lifecycle_state') == 'active', 'active on /diagnostics')
    assert h.feed.value('last_error') == ''
    if case in ('zero', 'held_at_1s'):
        # Active and standing, but /clock stands still: no control tick; the node says so.
        wait_for(lambda: '/clock to advance' in h.feed.value('waiting_for'),
                 'waiting_for /clock on /diagnostics')
        assert h.feed.value('state') == 'standing'
        assert h.feed.level == DiagnosticStatus.WARN
        assert 'waiting for /clock to advance' in h.feed.message
    else:
        h.feed.commands.clear()
        wait_for(lambda: len(h.feed.commands) > 10, 'effort commands')
        if case == 'running_from_100s':
            assert all(_stamp_ns(m) >= 100 * 10**9 for m in list(h.feed.commands))
            wait_for(lambda: h.feed.value('state') == 'standing'
                     and h.feed.value('waiting_for') == ''
                     and h.feed.level == DiagnosticStatus.OK, 'standing, waiting for nothing')


def test_autostart_waits_for_joint_states_says_so_and_retries(contract, policy_path,
                                                              harness_factory):
    def silent(feed):
        feed.publish_joint_states = False

    h = harness_factory(contract, 'bringup_no_joint_states',
                        {'policy': str(policy_path), 'joint_state_wait_s': 0.3},
                        feed_names=silent)
    topic = '/bringup_no_joint_states/joint_states'
    # configure waited joint_state_wait_s in vain and autostart configures again
    wait_for(lambda: 'retrying' in h.feed.value('waiting_for'), 'a configure retry')
    assert topic in h.feed.value('waiting_for')
    assert h.feed.value('lifecycle_state') == 'unconfigured'
    assert h.feed.value('last_error') == ''
    assert h.feed.level == DiagnosticStatus.WARN
    assert h.feed.message.startswith('unconfigured/inactive: waiting for joint_states')
    with h.feed.lock:
        h.feed.publish_joint_states = True
    wait_for(lambda: h.node.lifecycle_state == 'active', 'activation once joint_states come')
    wait_for(lambda: h.feed.value('state') == 'standing', 'standing')
