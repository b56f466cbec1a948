"""
The policy node's command output: efforts every tick, or position targets at the policy rate.

:class:`CommandOutput` publishes, per ``output_mode``,

* ``effort`` (the trained mode): efforts [N*m] every control tick, as ``joint_state``
  (``sensor_msgs/JointState`` names + effort, Isaac Sim's articulation controller, stamped with
  the tick's ROS time) or ``float64_array`` (``std_msgs/Float64MultiArray`` in
  ``output_joint_order``, ros2_control's ``forward_command_controller`` with ``interface_name:
  effort``; joints the policy does not drive get 0 N*m);
* ``position``: joint position targets [rad] at the policy rate (every ``policy_dt_s`` of ROS
  time, from the first tick in each controller state; by time, not by counting ticks, as a
  control timer on ``/clock`` may skip ticks when the clock advances several at once), for
  drives that run the contract's PD law themselves (contract ``control.position_mode``): a
  ``JointState`` with names, positions and zero velocities (the PD law's velocity target), or a
  ``Float64MultiArray`` of positions (``interface_name: position``). While walking the target
  is the policy's; otherwise the target for which the PD law gives the controller's effort
  (:func:`humanoid_rl_ros.ros.position_targets.pd_equivalent_target`). The schedule restarts at
  every state change, so the first walking target goes out on the tick the policy computed it.

When the node stops (deactivate, shutdown), :meth:`CommandOutput.final_command` sends the command
the drives keep: zero effort, or (position mode) a hold on the measured joint positions.

Where rclpy publishes serialized messages and reads back what
:class:`humanoid_rl_ros.ros.cdr.Float64ArrayWriter` writes as exactly the message the node would
publish, the bytes are published (no per-tick conversion of the names); otherwise the message
object, of which only the stamp and the values change.
"""

from array import array
from typing import List, Optional, Sequence

from humanoid_rl_ros.core.controller import ControllerState
from humanoid_rl_ros.core.policy_math import all_finite
from humanoid_rl_ros.core.timebase import ns_to_stamp
from humanoid_rl_ros.ros import cdr, control_loop
from humanoid_rl_ros.ros.position_targets import pd_equivalent_target
from humanoid_rl_ros.ros.ros_conversions import make_float64_array
import numpy as np
from rclpy.duration import Duration
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray


class OutputConfigError(ValueError):
    """The output cannot be built as configured; the message names the problem."""


class CommandOutput:
    """The command publisher of the policy node (a lifecycle publisher)."""

    def __init__(self, node, output_type: str, policy_joints: Sequence[str],
                 output_joint_order: Sequence[str], topic: str, qos,
                 mode: str = 'effort', period_s: float = 0.0, tick_s: float = 0.0) -> None:
        """
        Build the message and the publisher on ``topic``; raise :class:`OutputConfigError`.

        ``output_joint_order`` (``float64_array`` only; empty: policy order) must hold every
        policy joint; joints not in the policy are logged once and get 0 N*m (effort mode; a
        position target cannot be made up for them, so position mode refuses them).
        ``period_s``: how often position targets go out (the policy period); ``tick_s``: the
        control tick (physics period).
        """
        self._node = node
        self.output_type = output_type
        self.mode = mode
        self._period_ns = int(round(period_s * 1e9))
        self._half_tick_ns = int(round(tick_s * 0.5e9))
        self._next_ns: Optional[int] = None  # when the next target is due (None: at once)
        self._state = None
        self._num_joints = len(policy_joints)
        order = [n for n in output_joint_order if n]
        self.names: List[str] = order if order else list(policy_joints)
        missing = [n for n in policy_joints if n not in self.names]
        if output_type == 'float64_array' and missing:
            raise OutputConfigError('output_joint_order lacks policy joint(s): '
                                    + ', '.join(missing))
        extra = [n for n in self.names if n not in policy_joints]
        if extra and output_type == 'float64_array':
            if mode == 'position':
                raise OutputConfigError('output_mode position: output_joint_order joints not '
                                        f'driven by the policy have no target: {", ".join(extra)}')
            node.get_logger().warning('output_joint_order joints not driven by the policy get '
                                      f'0 N*m: {", ".join(extra)}')
        lookup = {n: i for i, n in enumerate(policy_joints)}
        self._index = np.array([lookup.get(n, -1) for n in self.names])
        if output_type == 'joint_state':
            self.msg = JointState(name=list(policy_joints))
            if mode == 'position':
                self.msg.velocity = array('d', bytes(8 * len(policy_joints)))
        else:
            self.msg = make_float64_array(np.zeros(len(self.names)))
        msg_type = JointState if output_type == 'joint_state' else Float64MultiArray
        self.publisher = node.create_lifecycle_publisher(msg_type, topic, qos)
        self.writer: Optional[cdr.Float64ArrayWriter] = self._verified_writer()

    @property
    def topic_name(self) -> str:
        """Return the publisher's resolved topic name."""
        return self.publisher.topic_name

    def destroy(self) -> None:
        """Destroy the publisher."""
        self._node.destroy_lifecycle_publisher(self.publisher)

    def wait_delivered(self, timeout_s: float) -> bool:
        """
        Wait up to ``timeout_s`` [s wall] until every reliable subscriber has what was published.

        Return whether all acknowledged (True at once for none, or only best-effort ones). Call
        it before :meth:`destroy` after a final command: a deleted writer resends nothing.
        """
        return self.publisher.wait_for_all_acked(Duration(nanoseconds=int(timeout_s * 1e9)))

    def control_tick(self, controller, effort: np.ndarray, now_ns: int) -> None:
        """Publish a control tick's command: the effort, or (position mode) maybe a target."""
        if self.mode == 'effort':
            self.publish(effort, now_ns)
            return
        # a new state, or the policy restarted (an idle stand ended): a target goes out now
        key = (controller.state, controller.policy_restarts, controller.idle_standing)
        if key != self._state:
            self._state, self._next_ns = key, None
        if self._next_ns is not None and now_ns < self._next_ns - self._period_ns:
            self._next_ns = None  # ROS time went back (a sim reset, a clock step): restart
        if self._next_ns is None or now_ns >= self._next_ns - self._half_tick_ns:
            self.publish(self._target(controller, effort, now_ns * 1e-9), now_ns)
            self._next_ns = now_ns + self._period_ns

    def final_command(self, controller, now_ns: int) -> str:
        """
        Publish the command the drives keep once the node stops; return what it was.

        Effort mode: zero effort (an effort controller that holds its last command leaves the
        robot limp). Position mode: the measured joint positions of ``controller``'s newest
        joint state, with zero velocities, so that the drives' PD law brakes the joints and
        holds the pose the robot is in, instead of the last target (the policy's next step
        while walking). Where that joint state is unusable at ``now_ns`` (stale, refused, none)
        nothing is sent: a hold on an old pose would pull the joints back to it, so the drives
        keep the last target. Return '' when nothing was sent.
        """
        if self.mode == 'effort':
            self.publish(np.zeros(self._num_joints), now_ns)
            return 'zero effort'
        q_rad, _, problem = controller.joint_state(now_ns * 1e-9)
        if problem or not all_finite(q_rad):
            return ''
        self.publish(q_rad, now_ns)
        return 'a hold on the measured joint positions'

    @staticmethod
    def _target(controller, effort: np.ndarray, now_s: float) -> np.ndarray:
        if controller.state is ControllerState.WALKING:
            return controller.q_target_rad
        q, qd, problem = controller.joint_state(now_s)  # the newest usable joint state
        if problem:
            if controller.state is ControllerState.DAMPING:
                return np.full_like(qd, np.nan)  # no feedback: send nothing (publish skips it)
            qd = np.zeros_like(qd)  # the controller's PD drops a stale velocity too
        return pd_equivalent_target(effort, q, qd, controller.kp_nm_per_rad,
                                    controller.kd_nms_per_rad)

    def publish(self, values: np.ndarray, now_ns: Optional[int] = None) -> None:
        """Publish efforts [N*m] or targets [rad] (policy order) stamped ``now_ns`` (or now)."""
        values = np.asarray(values, dtype=np.float64)
        if not all_finite(values):  # The controller guarantees this; never send NaN.
            if self.mode == 'position':
                return  # no target is better than a made-up one
            values = np.zeros_like(values)
        if self.output_type == 'joint_state':
            if now_ns is None:
                now_ns = self._node.get_clock().now().nanoseconds
        else:
            values = np.where(self._index >= 0, values[np.maximum(self._index, 0)], 0.0)
        if self.writer is not None:
            self.publisher.publish(self.writer.write(values, now_ns or 0))
            return
        msg = self.msg
        packed = array('d', values.tobytes())  # skips rclpy's per-element checks
        if self.output_type == 'float64_array':
            msg.data = packed
        else:
            msg.header.stamp.sec, msg.header.stamp.nanosec = ns_to_stamp(now_ns)
            if self.mode == 'position':
                msg.position = packed
            else:
                msg.effort = packed
        self.publisher.publish(msg)

    def _verified_writer(self) -> Optional[cdr.Float64ArrayWriter]:
        """
        Return a writer of the message's bytes if rclpy reads them back exactly.

        The writer is used only when this rclpy publishes serialized messages and deserializes
        a sample written with distinctive values and stamp into exactly the message the node
        would publish; otherwise the node publishes the message object.
        """
        binding = control_loop.rclpy_impl
        if not hasattr(getattr(binding, 'Publisher', None), 'publish_raw'):
            return None
        msg = self.msg
        if self.output_type == 'joint_state' and self.mode == 'position':
            writer = cdr.Float64ArrayWriter.joint_state_positions(msg.name, msg.header.frame_id)
        elif self.output_type == 'joint_state':
            writer = cdr.Float64ArrayWriter.joint_state(msg.name, msg.header.frame_id)
        else:
            writer = cdr.Float64ArrayWriter.float64_multi_array(
                len(msg.data), msg.layout.dim[0].label)
        sample = 1.0 / 3.0 + 0.25 * np.arange(writer.num_values)
        sample_ns = 1_234_567_890_123_456_789
        expected = deserialize_message(serialize_message(msg), type(msg))
        if self.output_type == 'joint_state':
            expected.header.stamp.sec, expected.header.stamp.nanosec = ns_to_stamp(sample_ns)
            if self.mode == 'position':
                expected.position = sample.tolist()
            else:
                expected.effort = sample.tolist()
        else:
            expected.data = sample.tolist()
        logger = self._node.get_logger()
        try:
            ok = deserialize_message(writer.write(sample, sample_ns), type(msg)) == expected
        except Exception as exc:  # noqa: B902 - any failure means: publish message objects
            logger.info(f'publishing command messages, not bytes: {exc}')
            return None
        if not ok:
            logger.info('publishing command messages, not bytes: the bytes written here do '
                        'not read back as the message')
        return writer if ok else None
