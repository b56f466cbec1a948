"""
launch_testing test of ``launch/sim_walk.launch.py``: sim node, policy node, robot_state_publisher.

It runs only where ``launch_ros`` and ``launch_testing`` import (a ROS 2 install); on our
PyPI-only machines they are not installable (no PyPI wheel) and the module is skipped with that
reason. ``test/test_launch_executables.py`` covers the same nodes, parameter files and remappings
by starting the executables directly.

The launch file is included with ``policy:=<a random exported policy>``; the test checks that
the policy node reaches walking and that efforts flow on ``/joint_command`` while ``/clock``
advances, and that every process exits cleanly.
"""

from pathlib import Path
import tempfile
import time
import unittest

from diagnostic_msgs.msg import DiagnosticArray
from policy_fixtures import make_random_policy
import pytest
import rclpy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState

launch_ros = pytest.importorskip(
    'launch_ros', reason='launch_ros is not installable from PyPI on this machine '
    '(no wheel exists); test_launch_executables.py runs the same nodes without it')
launch_testing = pytest.importorskip(
    'launch_testing', reason='launch_testing is not installable from PyPI on this machine '
    '(no wheel exists); test_launch_executables.py runs the same nodes without it')

from launch import LaunchDescription  # noqa: E402, I100
from launch.actions import IncludeLaunchDescription  # noqa: E402, I100
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402, I100
import launch_testing.actions  # noqa: E402, I100
import launch_testing.asserts  # noqa: E402, I100

REPO_ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 90.0


def _share_dir(package: str) -> Path:
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory(package))


def _launch_file() -> Path:
    try:
        return _share_dir('humanoid_rl_ros') / 'launch' / 'sim_walk.launch.py'
    except Exception:  # noqa: B902 - not installed: use the checkout's launch file
        return REPO_ROOT / 'launch' / 'sim_walk.launch.py'


def _have_robot_state_publisher() -> bool:
    try:
        _share_dir('robot_state_publisher')
    except Exception:  # noqa: B902 - any lookup failure means it is not installed
        return False
    return True


@pytest.mark.launch_test
def generate_test_description():
    """Include sim_walk.launch.py with a random policy."""
    policy = make_random_policy(Path(tempfile.mkdtemp(prefix='hrl_launch_test_')))
    sim_walk = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(_launch_file())),
        launch_arguments={
            'policy': str(policy),
            'robot_state_publisher': 'true' if _have_robot_state_publisher() else 'false',
        }.items())
    return LaunchDescription([sim_walk, launch_testing.actions.ReadyToTest()])


class TestSimWalk(unittest.TestCase):
    """Checks while the launched processes run."""

    @classmethod
    def setUpClass(cls) -> None:
        """Initialize rclpy."""
        rclpy.init()

    @classmethod
    def tearDownClass(cls) -> None:
        """Shut rclpy down."""
        rclpy.shutdown()

    def test_policy_node_walks_and_efforts_flow(self) -> None:
        """The policy node reaches walking; efforts and sim time advance together."""
        node = rclpy.create_node('sim_walk_launch_probe')
        commands, clock, states = [], [], []
        node.create_subscription(JointState, '/joint_command', commands.append, 10)
        node.create_subscription(Clock, '/clock', clock.append, 10)

        def on_diag(msg: DiagnosticArray) -> None:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if status.name.startswith('policy_node:') and 'state' in values:
                    states.append(values['state'])

        node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
        try:
            deadline = time.monotonic() + DEADLINE_S

            def done() -> bool:
                return bool(states) and states[-1] == 'walking' and len(commands) > 100

            while time.monotonic() < deadline and not done():
                rclpy.spin_once(node, timeout_sec=0.1)
            self.assertTrue(states and states[-1] == 'walking', f'states seen: {states[-5:]}')
            self.assertGreater(len(commands), 100)
            self.assertTrue(clock, 'no /clock from the sim node')
            for msg in commands[-20:]:
                self.assertEqual(len(msg.name), len(msg.effort))
        finally:
            node.destroy_node()


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """Checks after the launch shuts down."""

    def test_exit_codes(self, proc_info) -> None:
        """Every process exits cleanly on SIGINT."""
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, 130])
