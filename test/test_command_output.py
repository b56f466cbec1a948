"""The policy node's command output in position mode, on a stand-in node (no DDS)."""

from types import SimpleNamespace

from humanoid_rl_ros.core.controller import ControllerState, JointSample
from humanoid_rl_ros.ros.command_output import CommandOutput
import numpy as np
from rclpy.serialization import deserialize_message
from std_msgs.msg import Float64MultiArray

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
    controller = SimpleNamespace(state=ControllerState.WALKING, policy_restarts=1,
                                 idle_standing=False, q_target_rad=np.array([0.1, -0.2]))
    t = 100 * NS
    for _ in range(8):  # 40 ms at 200 Hz: targets every 20 ms
        out.control_tick(controller, np.zeros(2), t)
        t += 5_000_000
    assert len(node.publisher.sent) == 2
    out.control_tick(controller, np.zeros(2), 0)  # ROS time back to 0 (a sim reset)
    assert len(node.publisher.sent) == 3


def test_position_targets_go_out_at_once_when_an_idle_stand_starts_or_ends() -> None:
    """The policy's first target after a restart is not held back by the old schedule."""
    node = _Node()
    out = CommandOutput(node, 'float64_array', ['a', 'b'], [], 'cmd', None, mode='position',
                        period_s=0.02, tick_s=0.005)
    controller = SimpleNamespace(state=ControllerState.WALKING, policy_restarts=1,
                                 idle_standing=False, q_target_rad=np.array([0.1, -0.2]))
    t = 100 * NS
    out.control_tick(controller, np.zeros(2), t)  # a target at t, the next due at t + 20 ms
    controller.idle_standing = True  # the idle stand starts 5 ms later: its target now
    controller.q_target_rad = np.array([0.0, 0.0])
    out.control_tick(controller, np.zeros(2), t + 5_000_000)
    assert len(node.publisher.sent) == 2
    controller.idle_standing, controller.policy_restarts = False, 2  # a push ends it
    controller.q_target_rad = np.array([0.3, 0.3])
    out.control_tick(controller, np.zeros(2), t + 10_000_000)
    assert len(node.publisher.sent) == 3
    np.testing.assert_allclose(_sent_values(node.publisher.sent[-1]), [0.3, 0.3])
    out.control_tick(controller, np.zeros(2), t + 15_000_000)  # then every 20 ms again
    assert len(node.publisher.sent) == 3


def _stale_controller(state):
    """Return a controller stand-in whose joint state has gone stale at 8 rad/s."""
    return SimpleNamespace(
        state=state, policy_restarts=0, idle_standing=False,
        kp_nm_per_rad=np.array([100.0, 100.0]), kd_nms_per_rad=np.array([5.0, 5.0]),
        joint_state=lambda now_s: JointSample(np.array([0.3, -0.1]), np.array([8.0, -8.0]),
                                              'joint_states stale'))


def test_position_targets_never_carry_a_stale_velocity() -> None:
    """Standing on a stale joint state: the target holds the pose; damping: nothing is sent."""
    node = _Node()
    out = CommandOutput(node, 'float64_array', ['a', 'b'], [], 'cmd', None, mode='position',
                        period_s=0.02, tick_s=0.005)
    out.control_tick(_stale_controller(ControllerState.STANDING), np.zeros(2), NS)
    assert len(node.publisher.sent) == 1
    sent = node.publisher.sent[0]
    if isinstance(sent, (bytes, bytearray)):
        sent = deserialize_message(bytes(sent), Float64MultiArray)
    target = np.asarray(sent.data)
    np.testing.assert_allclose(target, [0.3, -0.1])  # zero effort at zero velocity: the pose
    out.control_tick(_stale_controller(ControllerState.DAMPING), np.zeros(2), 2 * NS)
    assert len(node.publisher.sent) == 1


def _sent_values(sent) -> np.ndarray:
    """Return the values of a sent Float64MultiArray (bytes or message)."""
    if isinstance(sent, (bytes, bytearray)):
        sent = deserialize_message(bytes(sent), Float64MultiArray)
    return np.asarray(sent.data)


def _measured_controller(problem: str):
    """Return a controller stand-in whose newest joint state is q = [0.3, -0.1] rad."""
    return SimpleNamespace(
        state=ControllerState.WALKING, policy_restarts=1, idle_standing=False,
        q_target_rad=np.array([0.9, 0.9]),
        joint_state=lambda now_s: JointSample(np.array([0.3, -0.1]), np.array([8.0, -8.0]),
                                              problem))


def test_final_command_in_effort_mode_is_zero_effort_in_output_order() -> None:
    """Effort mode: zeros, also for an output joint the policy does not drive."""
    node = _Node()
    out = CommandOutput(node, 'float64_array', ['a', 'b'], ['b', 'x', 'a'], 'cmd', None)
    assert out.final_command(_measured_controller(''), NS) == 'zero effort'
    assert len(node.publisher.sent) == 1
    np.testing.assert_array_equal(_sent_values(node.publisher.sent[0]), [0.0, 0.0, 0.0])


def test_final_command_in_position_mode_holds_the_measured_pose() -> None:
    """Position mode: the measured positions (not the walking target), in output order."""
    node = _Node()
    out = CommandOutput(node, 'float64_array', ['a', 'b'], ['b', 'a'], 'cmd', None,
                        mode='position', period_s=0.02, tick_s=0.005)
    assert out.final_command(_measured_controller(''), NS) == \
        'a hold on the measured joint positions'
    assert len(node.publisher.sent) == 1
    np.testing.assert_array_equal(_sent_values(node.publisher.sent[0]), [-0.1, 0.3])


def test_final_command_in_position_mode_sends_nothing_on_an_unusable_joint_state() -> None:
    """A stale joint state is no pose to hold: nothing is sent, the drives keep their target."""
    node = _Node()
    out = CommandOutput(node, 'float64_array', ['a', 'b'], [], 'cmd', None, mode='position',
                        period_s=0.02, tick_s=0.005)
    assert out.final_command(_measured_controller('joint_states stale'), NS) == ''
    nan_controller = SimpleNamespace(
        joint_state=lambda now_s: JointSample(np.full(2, np.nan), np.full(2, np.nan), ''))
    assert out.final_command(nan_controller, NS) == ''
    assert node.publisher.sent == []
