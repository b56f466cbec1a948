"""
The policy node's sensor subscriptions: ``joint_states``, ``odom`` and, if used, ``imu``.

:class:`SensorInputs` creates them for the control path (in the control loop's callback group,
with the serialized-message handlers the loop uses, see
:mod:`humanoid_rl_ros.ros.control_loop`) and hands every message on as arrays: names, positions
[rad] and velocities [rad/s]; orientation ``(w, x, y, z)`` and body-frame velocities; and,
last, the header stamp [ns] (0: unstamped).
"""

from typing import Callable, Dict, List

from humanoid_rl_ros.ros import cdr
from humanoid_rl_ros.ros.control_loop import raw_handler
from humanoid_rl_ros.ros.ros_conversions import (header_stamp_ns, imu_to_arrays,
                                                 joint_state_to_arrays, odometry_to_arrays)
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, JointState

# Topic names are relative, so a namespace or a remap (``-r joint_states:=/robot/js``) moves them.
JOINT_STATES_TOPIC = 'joint_states'
ODOM_TOPIC = 'odom'
IMU_TOPIC = 'imu'


class SensorInputs:
    """The sensor subscriptions of one configured policy node."""

    def __init__(self, node, qos, *, use_imu: bool, on_joint_state: Callable,
                 on_odom: Callable, on_imu: Callable, **subscription_kwargs) -> None:
        """
        Subscribe; each message goes to its ``on_*`` as arrays.

        ``on_joint_state(names, position [rad], velocity [rad/s], stamp_ns)``,
        ``on_odom(quat_wxyz, lin_vel [m/s], ang_vel [rad/s], stamp_ns)`` (body frame),
        ``on_imu(quat_wxyz, ang_vel [rad/s], stamp_ns)``.
        ``subscription_kwargs`` go to every ``create_subscription`` (callback group, events).
        """
        self._node = node
        self.joint_state_reader = cdr.JointStateReader()

        def on_joint_state_msg(msg: JointState) -> None:
            on_joint_state(*joint_state_to_arrays(msg), header_stamp_ns(msg))

        def on_odom_msg(msg: Odometry) -> None:
            on_odom(*odometry_to_arrays(msg), header_stamp_ns(msg))

        def on_imu_msg(msg: Imu) -> None:
            on_imu(*imu_to_arrays(msg), header_stamp_ns(msg))

        self.joint_states = node.create_subscription(
            JointState, JOINT_STATES_TOPIC, on_joint_state_msg, qos, **subscription_kwargs)
        odom = node.create_subscription(Odometry, ODOM_TOPIC, on_odom_msg, qos,
                                        **subscription_kwargs)
        self.subscriptions: List = [self.joint_states, odom]
        self.raw_handlers: Dict = {
            self.joint_states: raw_handler(self.joint_state_reader.read, JointState,
                                           joint_state_to_arrays, on_joint_state),
            odom: raw_handler(cdr.read_odometry, Odometry, odometry_to_arrays, on_odom)}
        """Subscription -> handler of its serialized messages (for the control loop)."""
        if use_imu:
            imu = node.create_subscription(Imu, IMU_TOPIC, on_imu_msg, qos,
                                           **subscription_kwargs)
            self.subscriptions.append(imu)
            self.raw_handlers[imu] = raw_handler(cdr.read_imu, Imu, imu_to_arrays, on_imu)

    @property
    def joint_states_topic(self) -> str:
        """Return the resolved (remapped) ``joint_states`` topic."""
        return self.joint_states.topic_name

    def destroy(self) -> None:
        """Unsubscribe."""
        for sub in self.subscriptions:
            self._node.destroy_subscription(sub)
        self.subscriptions, self.raw_handlers = [], {}
