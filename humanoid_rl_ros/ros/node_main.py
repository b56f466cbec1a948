"""The ``main`` of a node executable: init rclpy, make the node, spin it, clean up."""

from typing import Callable, Optional, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def run_node(make_node: Callable[[], Node], args: Optional[Sequence[str]] = None,
             spin: Callable[[Node], None] = rclpy.spin) -> None:
    """
    Run a node until Ctrl-C or an external shutdown, then destroy it and shut rclpy down.

    ``make_node`` builds the node after ``rclpy.init(args=args)`` (so ``--ros-args`` apply);
    ``spin`` runs it (default: ``rclpy.spin``).
    """
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
