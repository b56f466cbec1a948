"""The plain-CDR readers and writer against rclpy's own serialization (the RMW's)."""

from humanoid_rl_ros.core.timebase import stamp_to_ns
from humanoid_rl_ros.ros import cdr
from humanoid_rl_ros.ros.ros_conversions import imu_to_arrays
from humanoid_rl_ros.ros.ros_conversions import joint_state_to_arrays
from humanoid_rl_ros.ros.ros_conversions import make_float64_array
from humanoid_rl_ros.ros.ros_conversions import odometry_to_arrays
from hypothesis import given, settings
from hypothesis import strategies as st
from nav_msgs.msg import Odometry
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray


pytestmark = pytest.mark.ros  # against rclpy's serialization, on every distro

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
# Characters a ROS string can hold: a NUL ends a string on the wire (rclpy's serialization
# truncates there) and a lone surrogate is not UTF-8.
ros_chars = st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00')
text = st.text(ros_chars, min_size=1, max_size=16)
frame = st.text(ros_chars, max_size=12)
stamps = st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 999_999_999))


def _fill(rng: np.random.Generator, *vectors) -> None:
    for vector in vectors:
        for axis in 'xyz':
            setattr(vector, axis, float(rng.normal()))


@settings(max_examples=60, deadline=None)
@given(names=st.lists(text, max_size=8), frame_id=frame,
       stamp=stamps, with_position=st.booleans(), with_velocity=st.booleans(),
       with_effort=st.booleans(), data=st.data())
def test_joint_state_reads_as_rclpy_deserializes(names, frame_id, stamp, with_position,
                                                 with_velocity, with_effort, data):
    n = len(names)
    msg = JointState(name=names)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    if with_position:
        msg.position = data.draw(st.lists(finite, min_size=n, max_size=n))
    if with_velocity:
        msg.velocity = data.draw(st.lists(finite, min_size=n, max_size=n))
    if with_effort:
        msg.effort = data.draw(st.lists(finite, min_size=n, max_size=n))
    stamp_ns, read_names, position, velocity = cdr.JointStateReader().read(
        serialize_message(msg))
    want_names, want_position, want_velocity = joint_state_to_arrays(msg)
    assert stamp_ns == stamp_to_ns(*stamp)
    assert read_names == want_names
    np.testing.assert_array_equal(position, want_position)
    np.testing.assert_array_equal(velocity, want_velocity)


def test_joint_state_names_decoded_once_per_name_set():
    reader = cdr.JointStateReader()
    first = JointState(name=['hip', 'knee'], position=[0.1, 0.2], velocity=[1.0, 2.0])
    names = reader.read(serialize_message(first))[1]
    first.position = [0.3, 0.4]
    first.header.frame_id = 'a_longer_frame'  # the name block moves; still the same names
    again = reader.read(serialize_message(first))
    assert again[1] is names
    np.testing.assert_array_equal(again[2], [0.3, 0.4])
    renamed = JointState(name=['hip', 'kneX'], position=[0.1, 0.2], velocity=[1.0, 2.0])
    assert reader.read(serialize_message(renamed))[1] == ('hip', 'kneX')
    fewer = JointState(name=['hip'], position=[0.5], velocity=[1.5])
    stamp_ns, names, position, velocity = reader.read(serialize_message(fewer))
    assert names == ('hip',)
    np.testing.assert_array_equal(position, [0.5])


@settings(max_examples=40, deadline=None)
@given(frame_id=frame, child=frame, stamp=stamps, seed=st.integers(0, 2**32 - 1))
def test_odometry_reads_as_rclpy_deserializes(frame_id, child, stamp, seed):
    rng = np.random.default_rng(seed)
    msg = Odometry()
    msg.header.frame_id, msg.child_frame_id = frame_id, child
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    _fill(rng, msg.pose.pose.position, msg.twist.twist.linear, msg.twist.twist.angular)
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in rng.normal(size=4))
    msg.pose.covariance = rng.normal(size=36)
    msg.twist.covariance = rng.normal(size=36)
    stamp_ns, *arrays = cdr.read_odometry(serialize_message(msg))
    assert stamp_ns == stamp_to_ns(*stamp)
    for got, want in zip(arrays, odometry_to_arrays(msg)):
        np.testing.assert_array_equal(got, want)


@settings(max_examples=40, deadline=None)
@given(frame_id=frame, stamp=stamps, seed=st.integers(0, 2**32 - 1))
def test_imu_reads_as_rclpy_deserializes(frame_id, stamp, seed):
    rng = np.random.default_rng(seed)
    msg = Imu()
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    _fill(rng, msg.angular_velocity, msg.linear_acceleration)
    o = msg.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in rng.normal(size=4))
    msg.orientation_covariance = rng.normal(size=9)
    msg.angular_velocity_covariance = rng.normal(size=9)
    stamp_ns, *arrays = cdr.read_imu(serialize_message(msg))
    assert stamp_ns == stamp_to_ns(*stamp)
    for got, want in zip(arrays, imu_to_arrays(msg)):
        np.testing.assert_array_equal(got, want)


def test_clock_time():
    msg = Clock()
    msg.clock.sec, msg.clock.nanosec = 12, 345
    assert cdr.read_time(serialize_message(msg)) == (12, 345)


def test_other_encapsulations_are_left_to_rclpy():
    data = serialize_message(JointState(name=['a'], position=[1.0], velocity=[2.0]))
    other = b'\x00\x07' + data[2:]  # PLAIN_CDR2 little endian
    assert cdr.JointStateReader().read(other) is None
    assert cdr.read_odometry(b'\x00\x00' + serialize_message(Odometry())[2:]) is None
    assert cdr.read_imu(other) is None
    assert cdr.read_time(other) is None


@pytest.mark.parametrize('cut', [6, 20, 40])
def test_truncated_messages_raise_cdr_error(cut):
    joint_state = serialize_message(JointState(name=['a', 'b'], position=[1.0, 2.0],
                                               velocity=[3.0, 4.0]))
    with pytest.raises(cdr.CdrError, match='JointState'):
        cdr.JointStateReader().read(joint_state[:cut])
    with pytest.raises(cdr.CdrError, match='Odometry'):
        cdr.read_odometry(serialize_message(Odometry())[:cut])
    with pytest.raises(cdr.CdrError, match='Imu'):
        cdr.read_imu(serialize_message(Imu())[:cut])


def test_string_length_past_the_end_raises():
    data = bytearray(serialize_message(JointState(name=['hip'], position=[1.0],
                                                  velocity=[2.0])))
    data[20:24] = (10_000).to_bytes(4, 'little')  # the first name's length
    with pytest.raises(cdr.CdrError, match='malformed'):
        cdr.JointStateReader().read(bytes(data))


@settings(max_examples=40, deadline=None)
@given(names=st.lists(text, max_size=12), stamp=stamps, frame_id=frame, data=st.data())
def test_joint_state_writer_is_read_back_by_rclpy(names, stamp, frame_id, data):
    effort = np.array(data.draw(st.lists(finite, min_size=len(names), max_size=len(names))))
    writer = cdr.Float64ArrayWriter.joint_state(names, frame_id)
    msg = deserialize_message(writer.write(effort, stamp_to_ns(*stamp)), JointState)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == stamp
    assert msg.header.frame_id == frame_id
    assert list(msg.name) == names
    assert len(msg.position) == 0 and len(msg.velocity) == 0
    np.testing.assert_array_equal(msg.effort, effort)


@settings(max_examples=40, deadline=None)
@given(names=st.lists(text, max_size=12), stamp=stamps, frame_id=frame, data=st.data())
def test_joint_state_position_writer_is_read_back_by_rclpy(names, stamp, frame_id, data):
    position = np.array(data.draw(st.lists(finite, min_size=len(names), max_size=len(names))))
    writer = cdr.Float64ArrayWriter.joint_state_positions(names, frame_id)
    msg = deserialize_message(writer.write(position, stamp_to_ns(*stamp)), JointState)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == stamp
    assert msg.header.frame_id == frame_id
    assert list(msg.name) == names
    np.testing.assert_array_equal(msg.position, position)
    np.testing.assert_array_equal(msg.velocity, np.zeros(len(names)))
    assert len(msg.effort) == 0


@settings(max_examples=20, deadline=None)
@given(values=st.lists(finite, max_size=30), label=text)
def test_float64_multi_array_writer_is_read_back_by_rclpy(values, label):
    writer = cdr.Float64ArrayWriter.float64_multi_array(len(values), label)
    msg = deserialize_message(writer.write(np.array(values)), Float64MultiArray)
    assert msg == make_float64_array(values, label)


def test_writer_checks_the_number_of_values():
    with pytest.raises(cdr.CdrError, match='expected 5 values'):
        cdr.Float64ArrayWriter.float64_multi_array(5).write(np.zeros(4))
    with pytest.raises(cdr.CdrError, match='expected 2 values'):
        cdr.Float64ArrayWriter.joint_state(['a', 'b']).write(np.zeros(3), 0)
