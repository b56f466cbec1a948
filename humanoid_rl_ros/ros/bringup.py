"""
Bring-up of the policy node: what configure and autostart wait for.

* :func:`wait_for_joint_states`: configure's wait for the robot's first ``joint_states``.
* :func:`autostart_action`: the next step of ``autostart`` (pure), which :class:`Autostart`
  takes on a steady timer until the node is active. Configure is retried while it fails only
  for want of ``joint_states``; activation waits until the controller has a fresh joint state
  on the node clock, whatever that clock does: ``/clock`` at zero, held at a value, running
  from any value, jumping, or wall time. Activating on a joint state received before ``/clock``
  came (ROS time 0) or before a jump would be refused as stale, so autostart waits for one
  received since.
* :func:`stalled_ticks`: what an active node that gets no control ticks waits for.
"""

import time
from typing import Callable, List, Optional, Sequence, Tuple

from humanoid_rl_ros.core.timebase import ns_to_stamp
from humanoid_rl_ros.ros.node_main import stop_requested
import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from sensor_msgs.msg import JointState

CONFIGURE, ACTIVATE, WAIT, DONE, GIVE_UP = 'configure', 'activate', 'wait', 'done', 'give_up'
"""The actions :func:`autostart_action` returns."""

TICK_STALL_S = 0.5
"""[s wall] An active node without a control tick for this long says what it waits for."""


def wait_for_joint_states(node, topic: str, qos, timeout_s: float,
                          on_wait: Optional[Callable[[str], None]] = None,
                          on_wait_period_s: float = 1.0,
                          joint_names: Sequence[str] = ()) -> Optional[JointState]:
    """
    Wait (wall time) up to ``timeout_s`` for one JointState on ``topic``; return it or None.

    With ``joint_names``, messages that name none of them (another driver on the same topic,
    e.g. a gripper's) are passed over: the first message that names one of them is returned.

    A private helper node in ``node``'s context and namespace subscribes, so the wait neither
    needs nor disturbs ``node``'s executor. ``on_wait(waiting_for)`` is called every
    ``on_wait_period_s`` of waiting with what is waited for (e.g. to publish diagnostics from
    the blocked thread). The wait ends early (None) when the process is asked to stop
    (:func:`humanoid_rl_ros.ros.node_main.stop_requested`) or the context shuts down.
    """
    received: List[JointState] = []
    wanted = frozenset(joint_names)

    def receive(msg: JointState) -> None:
        if not wanted or any(name in wanted for name in msg.name):
            received.append(msg)

    probe = rclpy.create_node(
        f'{node.get_name()}_joint_states_probe', namespace=node.get_namespace(),
        context=node.context, use_global_arguments=False, start_parameter_services=False,
        enable_rosout=False)
    executor = SingleThreadedExecutor(context=node.context)
    try:
        probe.create_subscription(JointState, topic, receive, qos)
        executor.add_node(probe)
        start = time.monotonic()
        deadline = start + timeout_s
        next_report = start + on_wait_period_s
        while (not received and time.monotonic() < deadline and node.context.ok()
               and not stop_requested()):
            executor.spin_once(timeout_sec=0.05)
            if on_wait is not None and not received and time.monotonic() >= next_report:
                next_report += on_wait_period_s
                on_wait(f'joint_states on {topic} (configure waited '
                        f'{time.monotonic() - start:.0f} of joint_state_wait_s {timeout_s:g} s)')
    finally:
        executor.remove_node(probe)
        executor.shutdown()
        probe.destroy_node()
    return received[-1] if received else None


def autostart_action(lifecycle_state: str, configure_failure: str,
                     activation_problem: str) -> Tuple[str, str]:
    """
    Return ``(action, waiting_for)``: autostart's next step and what it waits for ('' if none).

    ``configure_failure`` is why the last configure failed for good ('' if it did not, or only
    for want of joint_states: that is retried); ``activation_problem`` why the controller's
    joint state is not fit to activate on now ('' if it is).
    """
    if lifecycle_state == 'unconfigured':
        if configure_failure:
            return GIVE_UP, ''
        return CONFIGURE, 'configure (joint_states and the policy)'
    if lifecycle_state == 'inactive':
        if activation_problem:
            return WAIT, f'a fresh joint_states to activate on ({activation_problem})'
        return ACTIVATE, ''
    return DONE, ''


def stalled_ticks(gap_s: float, ros_time_ns: int, use_sim_time: bool) -> str:
    """
    Return what an active node without a control tick for ``gap_s`` [s wall] waits for.

    '' while ticks come (``gap_s`` <= :data:`TICK_STALL_S`). The control timer runs on ROS
    time: under ``use_sim_time`` it stands still while ``/clock`` does (a paused simulator, a
    lock-step sim waiting for its first command, no ``/clock`` publisher at all).
    """
    if gap_s <= TICK_STALL_S:
        return ''
    sec, nsec = ns_to_stamp(max(0, ros_time_ns))
    why = ('/clock to advance (use_sim_time: the control timer runs on /clock)' if use_sim_time
           else 'the control timer (ROS time is wall time)')
    return f'{why}: no control tick for {gap_s:.1f} s of wall time, ROS time {sec}.{nsec:09d} s'


class Autostart:
    """
    Configure and activate a lifecycle node as soon as it can (``autostart``), retrying.

    A steady-clock timer (so it also runs before ``/clock`` does and while ``/clock`` stands
    still) takes :func:`autostart_action`'s step every ``period_s`` until the node is active or
    configure failed for a reason other than missing ``joint_states``.
    """

    def __init__(self, node, period_s: float, activation_problem: Callable[[], str]) -> None:
        """Start the timer; ``activation_problem()`` says why activating now would fail."""
        self._node = node
        self._activation_problem = activation_problem
        self.waiting_for = ''
        """What autostart waits for ('' if nothing)."""
        self.configure_failure = ''
        """Why configure failed for good ('' if it did not)."""
        self._timer = node.create_timer(period_s, self.step,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))

    @property
    def running(self) -> bool:
        """Return whether autostart still has steps to take."""
        return self._timer is not None

    def step(self) -> None:
        """Configure, or activate (at once after configure if the joint state is fit)."""
        node = self._node
        for _ in range(2):
            action, waiting = autostart_action(node.lifecycle_state, self.configure_failure,
                                               self._activation_problem())
            if action != CONFIGURE or not self.waiting_for:  # keep why configure is retried
                self.waiting_for = waiting
            if action == CONFIGURE:
                if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                    if self.configure_failure:
                        node.get_logger().error(
                            f'autostart: configure failed: {self.configure_failure}')
                    return
                self.waiting_for = ''
            elif action == ACTIVATE:
                if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                    node.get_logger().warning(f'autostart: activate failed, retrying: '
                                              f'{node.last_error}', throttle_duration_sec=5.0)
                return
            else:
                if action in (DONE, GIVE_UP):
                    self.stop()
                return

    def refused(self, message: str, retry: bool) -> bool:
        """
        Take a configure failure; return True if autostart retries it (a wait, not an error).

        ``retry``: the failure is one that goes away by itself (no joint_states yet).
        """
        if retry and self.running:
            self.waiting_for = f'joint_states ({message}; retrying)'
            return True
        self.configure_failure = message
        return False

    def stop(self) -> None:
        """Stop taking steps."""
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
            self._timer = None
