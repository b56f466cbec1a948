"""
Bring-up of the policy node: what configure and autostart wait for.

:func:`wait_for_joint_states` is configure's wait for the robot's first ``joint_states``.
"""

import time
from typing import List, Optional

import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState


def wait_for_joint_states(node, topic: str, qos, timeout_s: float) -> Optional[JointState]:
    """
    Wait (wall time) up to ``timeout_s`` for one JointState on ``topic``; return it or None.

    A private helper node in ``node``'s context and namespace subscribes, so the wait neither
    needs nor disturbs ``node``'s executor.
    """
    received: List[JointState] = []
    probe = rclpy.create_node(
        f'{node.get_name()}_joint_states_probe', namespace=node.get_namespace(),
        context=node.context, use_global_arguments=False, start_parameter_services=False,
        enable_rosout=False)
    executor = SingleThreadedExecutor(context=node.context)
    try:
        probe.create_subscription(JointState, topic, received.append, qos)
        executor.add_node(probe)
        deadline = time.monotonic() + timeout_s
        while not received and time.monotonic() < deadline and node.context.ok():
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.remove_node(probe)
        executor.shutdown()
        probe.destroy_node()
    return received[-1] if received else None
