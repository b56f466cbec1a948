"""
A policy node and a test node that plays the robot, each spinning in its own thread.

``RobotFeed`` publishes ``joint_states`` and ``odom`` at about 200 Hz from a state the test
edits, and records ``joint_command`` and the node's ``/diagnostics``. ``Harness`` starts a feed,
then a :class:`~humanoid_rl_ros.ros.policy_node.PolicyNode` (autostart). ``wait_for`` polls a
condition with a generous deadline (tests make no timed assertions).

The fixtures a node test module needs (``policy_path``, ``contract``, ``ros_context``
(autouse), ``harness_factory``) are defined here once; a module takes them with
``policy_path, contract, ros_context, harness_factory = node_fixtures()``.
"""

from contextlib import contextmanager
import gc
import threading
import time
from typing import Callable, Iterator, List, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from humanoid_rl_ros.ros.policy_node import PolicyNode
from humanoid_rl_ros.ros.ros_conversions import make_joint_state, make_odometry, make_twist
import numpy as np
from policy_fixtures import make_random_policy
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

DEADLINE_S = 20.0


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after a generous deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError(f'timed out waiting for {what}')


class RobotFeed(Node):
    """Publishes a robot state at ~200 Hz and records commands and diagnostics."""

    def __init__(self, contract, name: str, *, output_array: bool = False,
                 cmd_stamped: bool = False, cmd_vel: bool = True) -> None:
        """
        Create publishers/subscribers for a robot with the contract's joints.

        ``cmd_vel``: also publish ``cmd_vel`` (``send_cmd_vel``), as TwistStamped with
        ``cmd_stamped``.
        """
        # Each test gets its own namespace: one DDS participant per process keeps a topic's
        # type, and cmd_vel is Twist in one test and TwistStamped in another.
        super().__init__(f'{name}_feed', namespace=f'/{name}')
        self.target = name
        self.lock = threading.Lock()
        self.names = list(contract.joint_names)
        rng = np.random.default_rng(1)
        self.q = np.asarray(contract.default_pos_rad) + 0.05 * rng.standard_normal(len(self.names))
        self.qd = 0.2 * rng.standard_normal(len(self.names))
        self.publish_joint_states = True
        self.publish_odom = True
        self.js_stamp = None  # header stamp of joint_states (builtin_interfaces/Time; None: 0)
        self.quat_wxyz = (1.0, 0.0, 0.0, 0.0)  # base orientation sent on odom
        self.commands: List = []
        self.status = None
        self.level = None  # diagnostic level and message of the newest status
        self.message = ''
        self.js_pub = self.create_publisher(JointState, 'joint_states', qos_profile_sensor_data)
        self.odom_pub = self.create_publisher(type(make_odometry([0, 0, 0], [1, 0, 0, 0],
                                                                 [0, 0, 0], [0, 0, 0])),
                                              'odom', qos_profile_sensor_data)
        self.cmd_pub = (self.create_publisher(type(make_twist(0, 0, 0, stamped=cmd_stamped)),
                                              'cmd_vel', 10) if cmd_vel else None)
        self.cmd_stamped = cmd_stamped
        self.create_subscription(Float64MultiArray if output_array else JointState,
                                 'joint_command', self._on_command, 10)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.create_timer(0.005, self._publish)

    def _publish(self) -> None:
        with self.lock:
            names, q, qd = list(self.names), self.q.copy(), self.qd.copy()
            js, odom = self.publish_joint_states, self.publish_odom
            stamp, quat = self.js_stamp, list(self.quat_wxyz)
        if js:
            self.js_pub.publish(make_joint_state(names, q, qd, stamp=stamp))
        if odom:
            self.odom_pub.publish(make_odometry([0.0, 0.0, 0.8], quat,
                                                [0.1, 0.0, 0.0], [0.0, 0.0, 0.0]))

    def _on_command(self, msg) -> None:
        with self.lock:
            self.commands.append(msg)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(f'{self.target}:'):
                with self.lock:
                    self.status = {kv.key: kv.value for kv in status.values}
                    self.level, self.message = status.level, status.message

    def value(self, key: str) -> str:
        """Return the newest diagnostic value for ``key`` ('' if none yet)."""
        with self.lock:
            return (self.status or {}).get(key, '')

    def last_command(self):
        """Return the newest command message (None if none)."""
        with self.lock:
            return self.commands[-1] if self.commands else None

    def send_cmd_vel(self, vx: float, vy: float, wz: float) -> None:
        """Publish one velocity command."""
        self.cmd_pub.publish(make_twist(vx, vy, wz, stamped=self.cmd_stamped,
                                        stamp=self.get_clock().now().to_msg()))

    def call(self, service: str, timeout_s: float = DEADLINE_S) -> Trigger.Response:
        """Call a Trigger service of the policy node and return the response."""
        client = self.create_client(Trigger, f'/{self.target}/{self.target}/{service}')
        assert client.wait_for_service(timeout_sec=timeout_s), f'no service {service}'
        future = client.call_async(Trigger.Request())
        wait_for(future.done, f'{service} response', timeout_s)
        self.destroy_client(client)
        return future.result()


class Harness:
    """A policy node and a robot feed, each spinning in its own thread."""

    def __init__(self, contract, name: str, params: dict, feed_names=None,
                 output_array: bool = False, cmd_stamped: bool = False,
                 params_file: Optional[str] = None, cmd_vel: bool = True) -> None:
        """
        Start the feed first, then the policy node (with autostart).

        ``params_file`` is passed as ``--params-file`` (as the launch files pass a preset);
        ``params`` override it.
        """
        self.feed = RobotFeed(contract, name, output_array=output_array,
                              cmd_stamped=cmd_stamped, cmd_vel=cmd_vel)
        if feed_names is not None:
            feed_names(self.feed)
        self.executors = []
        self._spin(self.feed)
        # Generous staleness timeouts (wall time here): a loaded 2-core CI box can stall the
        # feed thread for tens of ms; the staleness tests set their own shorter timeouts.
        values = {'autostart': True, 'joint_state_wait_s': 5.0, 'diagnostics_period_s': 0.05,
                  'joint_state_timeout_s': 1.0, 'odom_timeout_s': 1.0}
        values.update(params)
        overrides = [Parameter(k, value=v) for k, v in values.items()]
        cli_args = ['--ros-args', '--params-file', str(params_file)] if params_file else None
        self.node = PolicyNode(name, namespace=f'/{name}', parameter_overrides=overrides,
                               cli_args=cli_args)
        self._spin(self.node)

    def _spin(self, node) -> None:
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        self.executors.append((executor, thread, node))

    def close(self) -> None:
        """Stop the executors and destroy the nodes."""
        for executor, thread, node in self.executors:
            executor.shutdown()
            thread.join(timeout=5.0)
            node.destroy_node()


@contextmanager
def harnesses() -> Iterator[Callable[..., Harness]]:
    """Yield a builder of :class:`Harness`; close every harness built on exit."""
    made: List[Harness] = []

    def make(*args, **kwargs) -> Harness:
        made.append(Harness(*args, **kwargs))
        return made[-1]

    try:
        yield make
    finally:
        for harness in made:
            harness.close()
        made.clear()
        gc.collect()


@pytest.fixture(scope='module')
def policy_path(tmp_path_factory):
    """Return the contract path of a random Kestrel policy."""
    return make_random_policy(tmp_path_factory.mktemp('policy'))


@pytest.fixture(scope='module')
def contract(policy_path):
    """Return the policy contract."""
    return PolicyRuntime.load(policy_path).contract


@pytest.fixture(scope='module', autouse=True)
def ros_context():
    """Initialize rclpy once for the module."""
    rclpy.init()
    yield
    rclpy.shutdown()
    # Collect rclpy garbage now: collected later inside a forked child (flake8's worker pool
    # in the same pytest process) it would call into rcl there and crash the child.
    gc.collect()


@pytest.fixture
def harness_factory():
    """Build harnesses (policy node + robot feed); close them after the test."""
    with harnesses() as make:
        yield make


def node_fixtures() -> Tuple:
    """
    Return the fixtures ``policy_path, contract, ros_context, harness_factory``.

    A test module assigns them to those names at module level, where pytest finds them
    (an import of the names would shadow them in the tests' arguments).
    """
    return policy_path, contract, ros_context, harness_factory
