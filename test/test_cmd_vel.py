"""
cmd_vel of the type its publishers send: Twist (Nav2 Jazzy, teleop) or TwistStamped (Nav2 Kilted).

The choice (:mod:`humanoid_rl_ros.ros.cmd_vel_types`) with hand-made publisher lists, then the
node over real rclpy/DDS with each shipped preset: a Twist and a TwistStamped publisher each
drive the robot, and publishers of both types at once are reported at WARN. Each publisher of
``cmd_vel`` runs in an rclpy context of its own (a DDS participant holds one type per topic).
"""

from pathlib import Path

from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import Twist, TwistStamped
from humanoid_rl_ros.ros import launch_config
from humanoid_rl_ros.ros.cmd_vel_types import (choose_cmd_vel_type, DEFAULT_TYPE, TWIST,
                                               TWIST_STAMPED)
from humanoid_rl_ros.ros.policy_params import cmd_vel_mode
from humanoid_rl_ros.ros.ros_conversions import make_twist
import numpy as np
from policy_harness import node_fixtures, wait_for
import pytest
import rclpy
from rclpy.context import Context

REPO_ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------ pure logic

NAV2 = ('/controller_server', TWIST_STAMPED)
TELEOP = ('/teleop', TWIST)


def test_auto_takes_the_type_of_the_publishers():
    assert choose_cmd_vel_type('auto', [NAV2]).msg_type == TWIST_STAMPED
    choice = choose_cmd_vel_type('auto', [TELEOP], current=TWIST_STAMPED)
    assert choice.msg_type == TWIST and choice.warning == ''
    assert choice.note == 'Twist (auto: the type of its publishers)'


def test_auto_without_publishers_keeps_its_type_or_takes_what_nav2_kilted_sends():
    assert DEFAULT_TYPE == TWIST_STAMPED
    assert choose_cmd_vel_type('auto', []).msg_type == TWIST_STAMPED
    assert choose_cmd_vel_type('auto', [], current=TWIST).msg_type == TWIST


def test_both_types_at_once_keep_the_current_one_and_warn_naming_the_others():
    choice = choose_cmd_vel_type('auto', [NAV2, TELEOP], current=TWIST)
    assert choice.msg_type == TWIST
    assert choice.warning == ('cmd_vel publishers not heard (subscribed as Twist): '
                              '/controller_server send geometry_msgs/msg/TwistStamped')
    assert choose_cmd_vel_type('auto', [NAV2, TELEOP]).msg_type == TWIST_STAMPED


def test_a_forced_type_warns_of_publishers_of_another():
    choice = choose_cmd_vel_type('twist', [NAV2, ('/teleop', TWIST)])
    assert choice.msg_type == TWIST
    assert '/controller_server send geometry_msgs/msg/TwistStamped' in choice.warning
    assert choose_cmd_vel_type('stamped', [NAV2]).warning == ''
    other = choose_cmd_vel_type('auto', [('/talker', 'std_msgs/msg/String')])
    assert other.msg_type == TWIST_STAMPED and '/talker send std_msgs/msg/String' in (
        other.warning)
    with pytest.raises(ValueError, match='auto, twist or stamped'):
        choose_cmd_vel_type('unstamped', [])


def test_cmd_vel_stamped_maps_onto_cmd_vel_type():
    def mode(cmd_vel_type, stamped):
        return cmd_vel_mode({'cmd_vel_type': cmd_vel_type, 'cmd_vel_stamped': stamped}.get)

    assert mode('auto', False) == 'auto'
    assert mode('auto', True) == 'stamped'
    assert mode('twist', False) == 'twist'
    with pytest.raises(ValueError, match='cmd_vel_stamped is true but cmd_vel_type is twist'):
        mode('twist', True)


# ------------------------------------------------------------------ the node


policy_path, contract, ros_context, harness_factory = node_fixtures()

pytestmark = pytest.mark.ros


class CmdVelSender:
    """A cmd_vel publisher in an rclpy context (a DDS participant) of its own."""

    def __init__(self, topic: str, stamped: bool) -> None:
        """Start a context and a node publishing Twist or TwistStamped on ``topic``."""
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f'{"nav2" if stamped else "teleop"}_cmd_vel',
                                      context=self.context)
        self.stamped = stamped
        self.pub = self.node.create_publisher(TwistStamped if stamped else Twist, topic, 10)

    def send(self, vx: float, vy: float, wz: float) -> None:
        """Publish one command."""
        self.pub.publish(make_twist(vx, vy, wz, stamped=self.stamped))

    def close(self) -> None:
        """Destroy the node and shut the context down (once)."""
        if self.context.ok():
            self.node.destroy_publisher(self.pub)  # its removal reaches the graph at once
            self.node.destroy_node()
            rclpy.shutdown(context=self.context)


@pytest.fixture
def senders():
    """Make cmd_vel senders; close them after the test."""
    made = []

    def make(topic: str, stamped: bool) -> CmdVelSender:
        made.append(CmdVelSender(topic, stamped))
        return made[-1]

    yield make
    for sender in made:
        sender.close()


def _command(h):
    return tuple(float(h.feed.value(k) or 'nan')
                 for k in ('command_vx_m_s', 'command_vy_m_s', 'command_wz_rad_s'))


def _drives(h, sender: CmdVelSender, command) -> bool:
    sender.send(*command)
    return np.allclose(_command(h), command, atol=1e-6)


@pytest.mark.parametrize('preset', sorted(launch_config.PRESETS))
@pytest.mark.parametrize('stamped', [False, True], ids=['twist', 'twist_stamped'])
def test_a_publisher_of_either_type_drives_the_robot_with_each_preset(
        contract, policy_path, harness_factory, senders, preset, stamped):
    name = f'cmd_vel_{preset}_{int(stamped)}'
    h = harness_factory(
        contract, name,
        # the preset's cmd_vel settings, a test policy and generous input timeouts
        {'policy': str(policy_path), 'stand_ramp_s': 0.0, 'start_walking_on_activate': True,
         'cmd_vel_timeout_s': 5.0},
        params_file=str(REPO_ROOT / 'config' / launch_config.PRESETS[preset]),
        output_array=preset == 'ros2_control', cmd_vel=False)
    wait_for(lambda: h.feed.value('state') == 'walking', 'walking')
    sender = senders(f'/{name}/cmd_vel', stamped)
    command = (0.3, -0.1, 0.2)
    wait_for(lambda: _drives(h, sender, command), 'the commanded velocity')
    kind = 'TwistStamped' if stamped else 'Twist'
    wait_for(lambda: h.feed.value('cmd_vel_type') == f'{kind} (auto: the type of its publishers)',
             'the cmd_vel type on /diagnostics')
    assert h.feed.value('cmd_vel_warning') == ''
    assert h.feed.value('state') == 'walking'


def test_publishers_of_both_types_warn_and_the_node_follows_the_one_left(
        contract, policy_path, harness_factory, senders):
    name = 'cmd_vel_mixed'
    h = harness_factory(contract, name,
                        {'policy': str(policy_path), 'stand_ramp_s': 0.0,
                         'start_walking_on_activate': True, 'cmd_vel_timeout_s': 5.0},
                        cmd_vel=False)
    wait_for(lambda: h.feed.value('state') == 'walking', 'walking')
    teleop = senders(f'/{name}/cmd_vel', stamped=False)
    wait_for(lambda: _drives(h, teleop, (0.1, 0.0, 0.0)), 'the teleop (Twist) command')
    nav2 = senders(f'/{name}/cmd_vel', stamped=True)
    wait_for(lambda: 'nav2_cmd_vel send geometry_msgs/msg/TwistStamped'
             in h.feed.value('cmd_vel_warning'), 'the mixed-type warning naming the publisher')
    assert h.feed.value('cmd_vel_warning').startswith(
        'cmd_vel publishers not heard (subscribed as Twist): ')
    wait_for(lambda: h.feed.level == DiagnosticStatus.WARN
             and 'cmd_vel publishers not heard' in h.feed.message, 'WARN on /diagnostics')
    teleop.close()
    wait_for(lambda: _drives(h, nav2, (0.4, 0.0, -0.3)), 'the Nav2 (stamped) command')
    wait_for(lambda: h.feed.value('cmd_vel_warning') == '', 'the warning to clear')
