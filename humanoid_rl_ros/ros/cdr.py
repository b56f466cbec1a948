"""
Plain CDR (XCDR1) reading of the control path's input messages and writing of its command.

rclpy turns every message it takes into Python objects, field by field: measured on the 2-vCPU
dev box (hot, p50) ``nav_msgs/Odometry`` 93 us, ``sensor_msgs/Imu`` 56 us,
``sensor_msgs/JointState`` (23 joints) 44 us and ``rosgraph_msgs/Clock`` 23 us per take, about
twice that between 5 ms control ticks, against 12 us to take the serialized bytes. The policy
node's control loop takes the bytes and reads only the fields the controller uses with the
readers below; its effort command is written by :class:`Float64ArrayWriter`, which encodes
everything but the stamp and the values once.

Only little-endian plain CDR (encapsulation ``CDR_LE``, what ROS 2 RMWs send for ROS messages
on little-endian hosts) is read: for any other encapsulation a reader returns ``None`` and the
caller lets rclpy deserialize the message. Data that is not a well-formed message raises
:class:`CdrError`. Nothing here imports rclpy; the tests check every reader and the writer
against rclpy's own (de)serialization.

Layout rules (XCDR1): a 4-byte encapsulation header, then the fields in declaration order,
each aligned to its size (8 for float64) relative to the end of the header; a string is a
uint32 length (including its NUL) and the bytes; a sequence is a uint32 count and the elements.
"""

import struct
from typing import Optional, Sequence, Tuple

from humanoid_rl_ros.core.timebase import ns_to_stamp, stamp_to_ns
import numpy as np

_HEADER_BYTES = 4
_CDR_LE = b'\x00\x01'
_U32 = struct.Struct('<I')
_STAMP = struct.Struct('<iI')  # builtin_interfaces/Time: sec, nanosec
_F8 = np.dtype('<f8')
_EMPTY = np.zeros(0)

# Offsets (in float64 values) inside the float64 block that follows the strings.
_ODOM_VALUES = 49  # pose.position 3, orientation xyzw 4, covariance 36, twist linear 3, angular 3
_ODOM_QUAT_WXYZ = [6, 3, 4, 5]
_ODOM_LIN = slice(43, 46)
_ODOM_ANG = slice(46, 49)
_IMU_VALUES = 16  # orientation xyzw 4, covariance 9, angular_velocity 3
_IMU_QUAT_WXYZ = [3, 0, 1, 2]
_IMU_ANG = slice(13, 16)


class CdrError(ValueError):
    """The bytes are not a well-formed serialization of the expected message."""


def is_plain_cdr(data: bytes) -> bool:
    """Return whether ``data`` is little-endian plain CDR (the readers' format)."""
    return data[:2] == _CDR_LE


def _align(pos: int, size: int) -> int:
    return pos + (-(pos - _HEADER_BYTES)) % size


def _skip_string(data: bytes, pos: int) -> int:
    pos = _align(pos, 4)
    (length,) = _U32.unpack_from(data, pos)
    end = pos + 4 + length
    if end > len(data):
        raise CdrError(f'string of {length} bytes at offset {pos} runs past the end')
    return end


def _read_strings(data: bytes, pos: int) -> Tuple[Tuple[str, ...], int]:
    (count,) = _U32.unpack_from(data, pos)
    pos += 4
    if count > len(data):
        raise CdrError(f'sequence of {count} strings in {len(data)} bytes')
    names = []
    for _ in range(count):
        pos = _align(pos, 4)
        (length,) = _U32.unpack_from(data, pos)
        if length < 1 or pos + 4 + length > len(data):
            raise CdrError(f'string of {length} bytes at offset {pos} is malformed')
        names.append(data[pos + 4:pos + 3 + length].decode('utf-8'))
        pos += 4 + length
    return tuple(names), pos


def _read_doubles(data: bytes, pos: int) -> Tuple[np.ndarray, int]:
    pos = _align(pos, 4)
    (count,) = _U32.unpack_from(data, pos)
    pos += 4
    if count == 0:
        return _EMPTY, pos
    pos = _align(pos, 8)
    if pos + 8 * count > len(data):
        raise CdrError(f'float64 sequence of {count} at offset {pos} runs past the end')
    return np.frombuffer(data, dtype=_F8, count=count, offset=pos), pos + 8 * count


def _stamp_ns(data: bytes) -> int:
    return stamp_to_ns(*_STAMP.unpack_from(data, _HEADER_BYTES))


def _header_end(data: bytes) -> int:
    """Return the offset after a leading ``std_msgs/Header`` (stamp, frame_id)."""
    return _skip_string(data, _HEADER_BYTES + 8)


def read_time(data: bytes) -> Optional[Tuple[int, int]]:
    """
    Return ``(sec, nanosec)`` of a message that starts with a ``builtin_interfaces/Time``.

    That is ``rosgraph_msgs/Clock`` (its ``clock``) and every message with a ``std_msgs/Header``
    (its stamp). ``None`` if ``data`` is not plain CDR.
    """
    if not is_plain_cdr(data):
        return None
    try:
        return _STAMP.unpack_from(data, _HEADER_BYTES)
    except struct.error as exc:
        raise CdrError(f'too short for a time stamp: {exc}') from exc


def read_odometry(data: bytes) -> Optional[Tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """
    Read a ``nav_msgs/Odometry``: ``(stamp [ns], quat_wxyz, lin_vel [m/s], ang_vel [rad/s])``.

    The twist is in the child frame (the base link), as in
    :func:`humanoid_rl_ros.ros.ros_conversions.odometry_to_arrays`. ``None`` if not plain CDR.
    """
    if not is_plain_cdr(data):
        return None
    try:
        pos = _align(_skip_string(data, _header_end(data)), 8)  # after child_frame_id
        values = np.frombuffer(data, dtype=_F8, count=_ODOM_VALUES, offset=pos)
        return _stamp_ns(data), values[_ODOM_QUAT_WXYZ], values[_ODOM_LIN], values[_ODOM_ANG]
    except (struct.error, ValueError) as exc:
        raise CdrError(f'malformed nav_msgs/Odometry: {exc}') from exc


def read_imu(data: bytes) -> Optional[Tuple[int, np.ndarray, np.ndarray]]:
    """
    Read a ``sensor_msgs/Imu``: ``(stamp [ns], quat_wxyz, ang_vel [rad/s])``.

    As :func:`humanoid_rl_ros.ros.ros_conversions.imu_to_arrays`. ``None`` if not plain CDR.
    """
    if not is_plain_cdr(data):
        return None
    try:
        pos = _align(_header_end(data), 8)
        values = np.frombuffer(data, dtype=_F8, count=_IMU_VALUES, offset=pos)
        return _stamp_ns(data), values[_IMU_QUAT_WXYZ], values[_IMU_ANG]
    except (struct.error, ValueError) as exc:
        raise CdrError(f'malformed sensor_msgs/Imu: {exc}') from exc


class JointStateReader:
    """
    Read ``sensor_msgs/JointState`` messages of a stream.

    The names are decoded once: while a message's name block is byte-identical to the last
    one's, the same tuple is returned (a driver sends the same joints every tick).
    """

    def __init__(self) -> None:
        """Create a reader with no names seen yet."""
        self._names_block = b''
        self._names: Tuple[str, ...] = ()

    def read(self, data: bytes
             ) -> Optional[Tuple[int, Tuple[str, ...], np.ndarray, np.ndarray]]:
        """
        Return ``(stamp [ns], names, position [rad], velocity [rad/s])`` in message order.

        As :func:`humanoid_rl_ros.ros.ros_conversions.joint_state_to_arrays`; the arrays are
        read-only views of ``data``. ``None`` if not plain CDR.
        """
        if not is_plain_cdr(data):
            return None
        try:
            pos = _align(_header_end(data), 4)
            block = self._names_block
            if block and data.startswith(block, pos):
                names = self._names
                pos += len(block)
            else:
                names, end = _read_strings(data, pos)
                self._names_block, self._names = data[pos:end], names
                pos = end
            position, pos = _read_doubles(data, pos)
            velocity, _ = _read_doubles(data, pos)
            return _stamp_ns(data), names, position, velocity
        except (struct.error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            raise CdrError(f'malformed sensor_msgs/JointState: {exc}') from exc


class _Encoder:
    """Append plain-CDR (little-endian) fields to a buffer, padding with zeros."""

    def __init__(self) -> None:
        self.buf = bytearray(_CDR_LE + b'\x00\x00')

    def align(self, size: int) -> None:
        self.buf += bytes(_align(len(self.buf), size) - len(self.buf))

    def u32(self, value: int) -> None:
        self.align(4)
        self.buf += _U32.pack(value)

    def string(self, text: str) -> None:
        data = text.encode('utf-8') + b'\x00'
        self.u32(len(data))
        self.buf += data


class Float64ArrayWriter:
    """
    Write the command as a serialized message: only its stamp and values change.

    The parts before and after the values (header frame, names or layout; zero velocities) are
    encoded once; :meth:`write` joins them with the stamp and the values. Three messages are
    written:

    * ``sensor_msgs/JointState`` with names and efforts only (Isaac Sim's articulation
      controller), stamped (:meth:`joint_state`);
    * ``sensor_msgs/JointState`` with names, positions (the values) and zero velocities (joint
      position targets for drives that run their own PD), stamped
      (:meth:`joint_state_positions`);
    * ``std_msgs/Float64MultiArray`` with a one-dimensional layout, as
      :func:`humanoid_rl_ros.ros.ros_conversions.make_float64_array` builds it
      (:meth:`float64_multi_array`).

    The policy node checks the bytes by deserializing them with rclpy before it uses a writer.
    """

    def __init__(self, head: bytes, middle: bytes, stamped: bool, num_values: int,
                 tail: bytes = b'') -> None:
        """Use :meth:`joint_state`, :meth:`joint_state_positions`, :meth:`float64_multi_array`."""
        self._head = head
        self._middle = middle
        self._stamped = stamped
        self._tail = tail
        self.num_values = num_values

    @classmethod
    def joint_state(cls, names: Sequence[str], frame_id: str = '') -> 'Float64ArrayWriter':
        """Return a writer of effort-only ``sensor_msgs/JointState`` messages for ``names``."""
        enc = _Encoder()
        head = bytes(enc.buf)
        enc.buf += bytes(8)  # header.stamp, written per message
        enc.string(frame_id)
        enc.u32(len(names))
        for name in names:
            enc.string(name)
        enc.u32(0)  # position[]
        enc.u32(0)  # velocity[]
        cls._values_prefix(enc, len(names))
        return cls(head, bytes(enc.buf[len(head) + 8:]), True, len(names))

    @classmethod
    def joint_state_positions(cls, names: Sequence[str],
                              frame_id: str = '') -> 'Float64ArrayWriter':
        """Return a writer of ``sensor_msgs/JointState`` position targets, zero velocities."""
        count = len(names)
        enc = _Encoder()
        head = bytes(enc.buf)
        enc.buf += bytes(8)  # header.stamp, written per message
        enc.string(frame_id)
        enc.u32(count)
        for name in names:
            enc.string(name)
        cls._values_prefix(enc, count)  # position[]: the values
        middle = bytes(enc.buf[len(head) + 8:])
        values_end = len(enc.buf) + 8 * count
        enc.buf += bytes(8 * count)  # stands for the values: the alignment after them is fixed
        cls._values_prefix(enc, count)  # velocity[]: zeros (the PD law's velocity target)
        enc.buf += bytes(8 * count)
        enc.u32(0)  # effort[]
        return cls(head, middle, True, count, bytes(enc.buf[values_end:]))

    @classmethod
    def float64_multi_array(cls, num_values: int,
                            label: str = 'joints') -> 'Float64ArrayWriter':
        """Return a writer of one-dimensional ``std_msgs/Float64MultiArray`` messages."""
        enc = _Encoder()
        enc.u32(1)  # layout.dim[]: one MultiArrayDimension
        enc.string(label)
        enc.u32(num_values)  # size
        enc.u32(num_values)  # stride
        enc.u32(0)  # layout.data_offset
        cls._values_prefix(enc, num_values)
        return cls(bytes(enc.buf), b'', False, num_values)

    @staticmethod
    def _values_prefix(enc: _Encoder, count: int) -> None:
        enc.u32(count)
        if count:
            enc.align(8)

    def write(self, values: np.ndarray, stamp_ns: int = 0) -> bytes:
        """Return the serialized message with ``values`` (and the stamp [ns], if stamped)."""
        values = np.asarray(values, dtype=_F8)
        if values.shape != (self.num_values,):
            raise CdrError(f'expected {self.num_values} values, got shape {values.shape}')
        if not self._stamped:
            return self._head + values.tobytes() + self._tail
        return b''.join((self._head, _STAMP.pack(*ns_to_stamp(stamp_ns)), self._middle,
                         values.tobytes(), self._tail))
