"""
Stopping the policy node in one process: its final command, and waits that end.

* deactivate and the shutdown transition send the same final command: zero effort, or in
  ``output_mode: position`` a hold on the measured joint positions (the robot feed's joints
  stand still at a known pose, while standing targets differ from it);
* a control callback that never returns does not hang the shutdown transition: the wait for
  the node's lock and for the control thread give up, and say so;
* configure interrupted by a stop request no longer reports that it waits for
  ``joint_states``.
"""

import threading

from humanoid_rl_ros.ros import node_main
import numpy as np
from policy_harness import node_fixtures, wait_for
import pytest
from rclpy.lifecycle import TransitionCallbackReturn

pytestmark = [pytest.mark.ros, pytest.mark.slow]

policy_path, contract, ros_context, harness_factory = node_fixtures()

HANG_DEADLINE_S = 60.0  # [s wall] generous: the bounded waits take a few seconds in all


def _values(msg, mode: str) -> np.ndarray:
    return np.asarray(msg.position if mode == 'position' else msg.effort)


def _commands(h):
    with h.feed.lock:
        return list(h.feed.commands)


@pytest.mark.parametrize('mode', ['effort', 'position'])
def test_deactivate_and_shutdown_send_the_same_final_command(contract, policy_path,
                                                             harness_factory, mode):
    h = harness_factory(contract, f'policy_final_{mode}',
                        {'policy': str(policy_path), 'output_mode': mode})
    with h.feed.lock:
        h.feed.qd = np.zeros(contract.num_joints)  # joints at rest at feed.q
        measured = h.feed.q.copy()
    expected = measured if mode == 'position' else np.zeros(contract.num_joints)

    def final_arrived() -> bool:
        commands = _commands(h)
        return bool(commands) and np.array_equal(_values(commands[-1], mode), expected)

    for stop in ('deactivate', 'shutdown'):
        wait_for(lambda: h.feed.value('state') == 'standing' and len(_commands(h)) > 5,
                 f'standing commands before {stop}')
        # not vacuous: the standing command (the ramp from the measured pose toward the
        # default pose) is not the final one
        assert not np.array_equal(_values(_commands(h)[-1], mode), expected)
        result = (h.node.trigger_deactivate() if stop == 'deactivate'
                  else h.node.trigger_shutdown())
        assert result == TransitionCallbackReturn.SUCCESS
        wait_for(final_arrived, f'the final command of {stop} ({mode})')
        if stop == 'deactivate':
            assert h.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            with h.feed.lock:
                h.feed.commands.clear()


def test_a_control_callback_that_never_returns_does_not_hang_shutdown(contract, policy_path,
                                                                      harness_factory):
    h = harness_factory(contract, 'policy_hung_tick', {'policy': str(policy_path)})
    wait_for(lambda: h.feed.value('state') == 'standing', 'standing')
    loop = h.node._control_loop
    assert loop is not None and loop.running
    entered, release = threading.Event(), threading.Event()

    def hung_tick(now_ns: int) -> None:  # called by the control thread under the node's lock
        entered.set()
        release.wait()

    stops = []
    real_stop = loop.stop
    loop.stop = lambda: stops.append(real_stop()) or stops[-1]
    h.node._tick = hung_tick
    results = []
    try:
        assert entered.wait(HANG_DEADLINE_S), 'the control tick did not run'
        shutdown = threading.Thread(target=lambda: results.append(h.node.trigger_shutdown()),
                                    daemon=True)
        shutdown.start()
        shutdown.join(HANG_DEADLINE_S)
        assert not shutdown.is_alive(), 'the shutdown transition waits for the hung callback'
    finally:
        release.set()
    assert results == [TransitionCallbackReturn.SUCCESS]
    assert stops[0] is False  # the control thread was left behind, not waited for forever
    assert h.node.lifecycle_state == 'finalized'


def test_configure_stopped_by_a_stop_request_no_longer_waits(contract, policy_path,
                                                             harness_factory):
    def no_joint_states(feed) -> None:
        feed.publish_joint_states = False

    h = harness_factory(contract, 'policy_configure_stop',
                        {'policy': str(policy_path), 'autostart': False,
                         'joint_state_wait_s': 600.0},
                        feed_names=no_joint_states)
    results = []
    configure = threading.Thread(target=lambda: results.append(h.node.trigger_configure()),
                                 daemon=True)
    try:
        configure.start()
        wait_for(lambda: h.node.status_values()['waiting_for'].startswith('joint_states on'),
                 'configure to wait for joint_states')
        node_main._stop.set()  # what SIGINT does under run_node
        configure.join(HANG_DEADLINE_S)
        assert not configure.is_alive(), 'configure did not end on the stop request'
    finally:
        node_main._stop.clear()
    assert results == [TransitionCallbackReturn.FAILURE]
    assert h.node.lifecycle_state == 'unconfigured'
    assert h.node.status_values()['waiting_for'] == ''
