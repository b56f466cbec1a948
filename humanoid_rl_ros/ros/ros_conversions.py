"""
Conversions between ROS 2 messages and numpy arrays, shared by the policy node and the sim node.

Only message packages are imported here (no rclpy), so these helpers are testable without a ROS
graph. Conventions: quaternions leave as ``(w, x, y, z)`` (ROS carries ``x, y, z, w``); twists are
in the message's frame (for ``nav_msgs/Odometry`` the child frame, i.e. the base link).

The builders take sequences or numpy arrays; float arrays go into the messages as
``array('d')``, which rclpy's message setters take without checking element by element (the sim
node builds four messages per 5 ms physics tick with them).
"""

from array import array
from typing import Optional, Sequence, Tuple, Union

from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped, Twist, TwistStamped
from humanoid_rl_ros.core.timebase import ns_to_stamp, stamp_to_ns
from nav_msgs.msg import Odometry
import numpy as np
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension


def _xyz(vector) -> np.ndarray:
    return np.array([vector.x, vector.y, vector.z], dtype=np.float64)


def _doubles(values: Sequence[float]) -> array:
    """Return ``values`` as an ``array('d')`` (what rclpy stores float64 sequences as)."""
    return array('d', np.asarray(values, dtype=np.float64).tobytes())


def _set_xyz(vector, values: Sequence[float]) -> None:
    vector.x, vector.y, vector.z = (float(v) for v in values)


def _set_quat(quat, wxyz: Sequence[float]) -> None:
    quat.w, quat.x, quat.y, quat.z = (float(v) for v in wxyz)


def _set_header(header, stamp: Optional[Time], frame_id: str) -> None:
    """Set a std_msgs/Header's frame_id and (when given) its stamp."""
    header.frame_id = frame_id
    if stamp is not None:
        header.stamp = stamp


def time_msg(time_ns: int) -> Time:
    """Return a ``builtin_interfaces/Time`` for a time [ns] (e.g. a sim time)."""
    sec, nanosec = ns_to_stamp(time_ns)
    return Time(sec=sec, nanosec=nanosec)


def quat_msg_to_wxyz(q) -> np.ndarray:
    """Return a ``geometry_msgs/Quaternion`` as a ``(w, x, y, z)`` array."""
    return np.array([q.w, q.x, q.y, q.z], dtype=np.float64)


def header_stamp_ns(msg) -> int:
    """Return a stamped message's ``header.stamp`` as integer nanoseconds (0: unstamped)."""
    stamp = msg.header.stamp
    return stamp_to_ns(stamp.sec, stamp.nanosec)


def joint_state_to_arrays(msg: JointState) -> Tuple[Tuple[str, ...], np.ndarray, np.ndarray]:
    """Return ``(names, position [rad], velocity [rad/s])`` of a JointState (message order)."""
    return (tuple(msg.name), np.asarray(msg.position, dtype=np.float64),
            np.asarray(msg.velocity, dtype=np.float64))


def odometry_to_arrays(msg: Odometry) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return ``(quat_wxyz, lin_vel [m/s], ang_vel [rad/s])`` of an Odometry message.

    REP-105 / nav_msgs: the pose is in ``header.frame_id`` (odom, world-fixed), the twist in
    ``child_frame_id`` (the base link), so the velocities are body-frame velocities.
    """
    return (quat_msg_to_wxyz(msg.pose.pose.orientation), _xyz(msg.twist.twist.linear),
            _xyz(msg.twist.twist.angular))


def imu_to_arrays(msg: Imu) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``(quat_wxyz, ang_vel [rad/s])`` of an Imu message (sensor frame = base link)."""
    return quat_msg_to_wxyz(msg.orientation), _xyz(msg.angular_velocity)


def twist_to_command(msg: Union[Twist, TwistStamped]) -> Tuple[float, float, float]:
    """Return ``(vx [m/s], vy [m/s], wz [rad/s])`` from a Twist or TwistStamped."""
    twist = msg.twist if isinstance(msg, TwistStamped) else msg
    return float(twist.linear.x), float(twist.linear.y), float(twist.angular.z)


def make_twist(vx_m_s: float, vy_m_s: float, wz_rad_s: float, stamped: bool = False,
               stamp: Optional[Time] = None,
               frame_id: str = 'base_link') -> Union[Twist, TwistStamped]:
    """Build a Twist (or a TwistStamped with ``stamp``/``frame_id``) for a planar command."""
    twist = Twist()
    twist.linear.x = float(vx_m_s)
    twist.linear.y = float(vy_m_s)
    twist.angular.z = float(wz_rad_s)
    if not stamped:
        return twist
    msg = TwistStamped()
    _set_header(msg.header, stamp, frame_id)
    msg.twist = twist
    return msg


def make_joint_state(names: Sequence[str], position: Optional[Sequence[float]] = None,
                     velocity: Optional[Sequence[float]] = None,
                     effort: Optional[Sequence[float]] = None,
                     stamp: Optional[Time] = None) -> JointState:
    """Build a JointState; omitted fields stay empty (e.g. an effort-only command)."""
    msg = JointState()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.name = list(names)
    if position is not None:
        msg.position = _doubles(position)
    if velocity is not None:
        msg.velocity = _doubles(velocity)
    if effort is not None:
        msg.effort = _doubles(effort)
    return msg


def make_float64_array(values: Sequence[float], label: str = 'joints') -> Float64MultiArray:
    """Build a one-dimensional Float64MultiArray (ros2_control forward_command_controller)."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=len(values), stride=len(values))]
    msg.data = _doubles(values)
    return msg


def make_odometry(position_m: Sequence[float], quat_wxyz: Sequence[float],
                  lin_vel_body_m_s: Sequence[float], ang_vel_body_rad_s: Sequence[float],
                  stamp: Optional[Time] = None, frame_id: str = 'odom',
                  child_frame_id: str = 'base_link') -> Odometry:
    """Build an Odometry with pose in ``frame_id`` and twist in ``child_frame_id`` (body)."""
    msg = Odometry()
    _set_header(msg.header, stamp, frame_id)
    msg.child_frame_id = child_frame_id
    _set_xyz(msg.pose.pose.position, position_m)
    _set_quat(msg.pose.pose.orientation, quat_wxyz)
    _set_xyz(msg.twist.twist.linear, lin_vel_body_m_s)
    _set_xyz(msg.twist.twist.angular, ang_vel_body_rad_s)
    return msg


def make_imu(quat_wxyz: Sequence[float], ang_vel_body_rad_s: Sequence[float],
             lin_acc_body_m_s2: Sequence[float] = (0.0, 0.0, 9.81),
             stamp: Optional[Time] = None, frame_id: str = 'base_link') -> Imu:
    """Build an Imu message (orientation, angular velocity, linear acceleration)."""
    msg = Imu()
    _set_header(msg.header, stamp, frame_id)
    _set_quat(msg.orientation, quat_wxyz)
    _set_xyz(msg.angular_velocity, ang_vel_body_rad_s)
    _set_xyz(msg.linear_acceleration, lin_acc_body_m_s2)
    return msg


def make_transform(translation_m: Sequence[float], quat_wxyz: Sequence[float],
                   stamp: Optional[Time] = None, frame_id: str = 'odom',
                   child_frame_id: str = 'base_link') -> TransformStamped:
    """Build a TransformStamped: the pose of ``child_frame_id`` in ``frame_id`` (a TF edge)."""
    msg = TransformStamped()
    _set_header(msg.header, stamp, frame_id)
    msg.child_frame_id = child_frame_id
    _set_xyz(msg.transform.translation, translation_m)
    _set_quat(msg.transform.rotation, quat_wxyz)
    return msg
