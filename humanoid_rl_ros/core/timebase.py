"""ROS time stamps as integer nanoseconds: the one conversion every node, tool and test uses."""

from typing import Tuple

NSEC_PER_SEC = 1_000_000_000
"""Nanoseconds per second."""


def stamp_to_ns(sec: int, nanosec: int) -> int:
    """Return a ``builtin_interfaces/Time`` as integer nanoseconds."""
    return int(sec) * NSEC_PER_SEC + int(nanosec)


def ns_to_stamp(t_ns: int) -> Tuple[int, int]:
    """Return ``(sec, nanosec)`` for integer nanoseconds (t_ns >= 0)."""
    return int(t_ns // NSEC_PER_SEC), int(t_ns % NSEC_PER_SEC)
