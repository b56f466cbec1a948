"""The policy node's command output in position mode, on a stand-in node (no DDS)."""

from types import SimpleNamespace

from humanoid_rl_ros.core.controller import ControllerState
from humanoid_rl_ros.ros.command_output import CommandOutput
import numpy as np

NS = 1_000_000_000


class _Publisher:

    def __init__(self) -> None:
        self.sent = []

    def publish(self, msg) -> None:
        self.sent.append(msg)


class _Node:

    def __init__(self) -> None:
        self.publisher = _Publisher()

    def create_lifecycle_publisher(self, msg_type, topic, qos):
        return self.publisher

    def get_logger(self):
        return SimpleNamespace(info=lambda *_: None, warning=lambda *_: None)


def test_position_targets_resume_at_once_after_ros_time_goes_back() -> None:
    """A sim reset or a clock step back must not silence the targets until time catches up."""
    node = _Node()
    joints = ['a', 'b']
    out = CommandOutput(node, 'float64_array', joints, [], 'cmd', None, mode='position',
                        period_s=0.02, tick_s=0.005)
    controller = SimpleNamespace(state=ControllerState.WALKING,
                                 q_target_rad=np.array([0.1, -0.2]))
    t = 100 * NS
    for _ in range(8):  # 40 ms at 200 Hz: targets every 20 ms
        out.control_tick(controller, np.zeros(2), t)
        t += 5_000_000
    assert len(node.publisher.sent) == 2
    out.control_tick(controller, np.zeros(2), 0)  # ROS time back to 0 (a sim reset)
    assert len(node.publisher.sent) == 3
