"""
The policy node's command output: the message built once, published as verified CDR bytes.

:class:`EffortOutput` publishes efforts [N*m] (policy order in) as

* ``joint_state``: ``sensor_msgs/JointState`` names + effort (Isaac Sim's articulation
  controller), stamped with the control tick's ROS time, or
* ``float64_array``: ``std_msgs/Float64MultiArray`` in ``output_joint_order`` (ros2_control's
  ``forward_command_controller``); joints the policy does not drive get 0 N*m.

Where rclpy publishes serialized messages and reads back what
:class:`humanoid_rl_ros.ros.cdr.Float64ArrayWriter` writes as exactly the message the node would
publish, the bytes are published (no per-tick conversion of the names); otherwise the message
object, of which only the stamp and the values change.
"""

from array import array
from typing import List, Optional, Sequence

from humanoid_rl_ros.core.policy_math import all_finite
from humanoid_rl_ros.core.timebase import ns_to_stamp
from humanoid_rl_ros.ros import cdr, control_loop
from humanoid_rl_ros.ros.ros_conversions import make_float64_array
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray


class OutputConfigError(ValueError):
    """The output cannot be built as configured; the message names the problem."""


class EffortOutput:
    """The effort command publisher of the policy node (a lifecycle publisher)."""

    def __init__(self, node, output_type: str, policy_joints: Sequence[str],
                 output_joint_order: Sequence[str], topic: str, qos) -> None:
        """
        Build the message and the publisher on ``topic``; raise :class:`OutputConfigError`.

        ``output_joint_order`` (``float64_array`` only; empty: policy order) must hold every
        policy joint; joints not in the policy are logged once and get 0 N*m.
        """
        self._node = node
        self.output_type = output_type
        order = [n for n in output_joint_order if n]
        self.names: List[str] = order if order else list(policy_joints)
        missing = [n for n in policy_joints if n not in self.names]
        if output_type == 'float64_array' and missing:
            raise OutputConfigError('output_joint_order lacks policy joint(s): '
                                    + ', '.join(missing))
        extra = [n for n in self.names if n not in policy_joints]
        if extra and output_type == 'float64_array':
            node.get_logger().warning('output_joint_order joints not driven by the policy get '
                                      f'0 N*m: {", ".join(extra)}')
        lookup = {n: i for i, n in enumerate(policy_joints)}
        self._index = np.array([lookup.get(n, -1) for n in self.names])
        self.msg = (JointState(name=list(policy_joints)) if output_type == 'joint_state' else
                    make_float64_array(np.zeros(len(self.names))))
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

    def publish(self, effort: np.ndarray, now_ns: Optional[int] = None) -> None:
        """Publish efforts [N*m] (policy order) stamped ``now_ns`` (default: the clock's now)."""
        effort = np.asarray(effort, dtype=np.float64)
        if not all_finite(effort):  # The controller guarantees this; never send NaN.
            effort = np.zeros_like(effort)
        if self.output_type == 'joint_state':
            if now_ns is None:
                now_ns = self._node.get_clock().now().nanoseconds
            values = effort
        else:
            values = np.where(self._index >= 0, effort[np.maximum(self._index, 0)], 0.0)
        if self.writer is not None:
            self.publisher.publish(self.writer.write(values, now_ns or 0))
            return
        msg = self.msg
        if self.output_type == 'joint_state':
            msg.header.stamp.sec, msg.header.stamp.nanosec = ns_to_stamp(now_ns)
            msg.effort = array('d', values.tobytes())  # skips rclpy's per-element checks
        else:
            msg.data = array('d', values.tobytes())
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
        if self.output_type == 'joint_state':
            writer = cdr.Float64ArrayWriter.joint_state(msg.name, msg.header.frame_id)
        else:
            writer = cdr.Float64ArrayWriter.float64_multi_array(
                len(msg.data), msg.layout.dim[0].label)
        sample = 1.0 / 3.0 + 0.25 * np.arange(writer.num_values)
        sample_ns = 1_234_567_890_123_456_789
        expected = deserialize_message(serialize_message(msg), type(msg))
        if self.output_type == 'joint_state':
            expected.header.stamp.sec, expected.header.stamp.nanosec = ns_to_stamp(sample_ns)
            expected.effort = sample.tolist()
        else:
            expected.data = sample.tolist()
        logger = self._node.get_logger()
        try:
            ok = deserialize_message(writer.write(sample, sample_ns), type(msg)) == expected
        except Exception as exc:  # noqa: B902 - any failure means: publish message objects
            logger.info(f'publishing effort messages, not bytes: {exc}')
            return None
        if not ok:
            logger.info('publishing effort messages, not bytes: the bytes written here do not '
                        'read back as the message')
        return writer if ok else None
