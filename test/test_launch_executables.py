"""
Start the node executables exactly as the launch files do, without launch_ros.

``launch_ros`` is not installable from PyPI (no wheel exists), so this test takes the node
specs the launch files use (:mod:`humanoid_rl_ros.ros.launch_config`: executable, node name,
parameter files, overrides, remappings), turns them into ``--ros-args`` command lines and runs
them as subprocesses. A test node then checks that they come up and exchange messages.

Which executables run:

* **installed** (under ``colcon test``, or whenever ``ament_index`` finds the package):
  ``<prefix>/lib/humanoid_rl_ros/<executable>`` with the installed ``share/`` config files;
* **checkout** (plain pytest in a source tree that is not installed/sourced):
  ``python -m humanoid_rl_ros.<executable>`` with the checkout's ``config/``.

Set ``HRL_REQUIRE_INSTALLED=1`` to fail instead of falling back to the checkout.
The launch files' policy argument is given as a random exported policy in a temporary folder,
passed as the ``policy`` override just as ``policy:=...`` would be. ``robot_state_publisher``
(started by sim_walk.launch.py) is not on PyPI and is not started here.
"""

import gc
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

from diagnostic_msgs.msg import DiagnosticArray
from humanoid_rl_ros.ros import launch_config
from humanoid_rl_ros.ros.ros_conversions import make_joint_state, make_odometry
from nav_msgs.msg import Odometry
import numpy as np
from policy_fixtures import make_random_policy
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

pytestmark = [pytest.mark.ros, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 60.0
MODULE_FOR = {'policy_node': 'humanoid_rl_ros.ros.policy_node',
              'sim_node': 'humanoid_rl_ros.ros.sim_node'}


def _installed_prefix() -> Optional[Path]:
    try:
        from ament_index_python.packages import get_package_prefix, PackageNotFoundError
    except ImportError:
        return None
    try:
        return Path(get_package_prefix(launch_config.PACKAGE))
    except (PackageNotFoundError, KeyError, OSError, ValueError):
        return None


class Executables:
    """Where the node executables and the share folder come from (installed or checkout)."""

    def __init__(self) -> None:
        """Prefer the installed package; fall back to the checkout unless told not to."""
        prefix = _installed_prefix()
        lib = prefix / 'lib' / launch_config.PACKAGE if prefix else None
        if lib is not None and (lib / launch_config.POLICY_NODE_EXECUTABLE).exists():
            self.mode = 'installed'
            self.share = prefix / 'share' / launch_config.PACKAGE
            self.lib = lib
        else:
            if os.environ.get('HRL_REQUIRE_INSTALLED') == '1':
                pytest.fail('HRL_REQUIRE_INSTALLED=1 but the installed humanoid_rl_ros '
                            'executables were not found (source install/setup.bash)')
            self.mode = 'checkout'
            self.share = REPO_ROOT
            self.lib = None

    def command(self, executable: str) -> List[str]:
        """Return the command that runs ``executable``."""
        if self.mode == 'installed':
            return [str(self.lib / executable)]
        return [sys.executable, '-m', MODULE_FOR[executable]]

    def available(self, executable: str) -> bool:
        """Return whether ``executable`` exists in this mode."""
        if self.mode == 'installed':
            return (self.lib / executable).exists()
        return (REPO_ROOT / f'{MODULE_FOR[executable].replace(".", "/")}.py').exists()


class Process:
    """One node executable run as a subprocess, its output kept in a log file."""

    def __init__(self, exe: Executables, spec: launch_config.NodeSpec, log_dir: Path) -> None:
        """Start ``spec`` with exactly its ``--ros-args``."""
        self.spec = spec
        self.log_path = log_dir / f'{spec.name}.log'
        self.log = open(self.log_path, 'w')
        env = dict(os.environ)
        env['PYTHONUNBUFFERED'] = '1'
        if exe.mode == 'checkout':
            env['PYTHONPATH'] = os.pathsep.join([str(REPO_ROOT), env.get('PYTHONPATH', '')])
        self.args = spec.prefix + exe.command(spec.executable) + spec.ros_args()
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, cwd=str(log_dir))

    def output(self) -> str:
        """Return the process output so far."""
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        """Stop with SIGINT (as launch does), then kill if needed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10.0)
        self.log.close()


class Probe:
    """A test node that plays the robot (optionally) and records what the nodes publish."""

    def __init__(self, command_type, command_topic: str, feed_names=None) -> None:
        """Subscribe to the effort topic and /diagnostics; publish a robot state if asked."""
        self.node = rclpy.create_node('launch_probe')
        self.lock = threading.Lock()
        self.commands: List = []
        self.clock_s: List[float] = []
        self.states: Dict[str, str] = {}
        self.node.create_subscription(command_type, command_topic, self._on_command, 10)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.node.create_subscription(Clock, '/clock', self._on_clock, 10)
        self.feed_names = feed_names
        if feed_names is not None:
            self.js_pub = self.node.create_publisher(JointState, '/joint_states',
                                                     qos_profile_sensor_data)
            self.odom_pub = self.node.create_publisher(Odometry, '/odom',
                                                       qos_profile_sensor_data)
            self.node.create_timer(0.005, self._feed)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        n = len(self.feed_names)
        self.js_pub.publish(make_joint_state(self.feed_names, np.zeros(n), np.zeros(n)))
        self.odom_pub.publish(make_odometry([0.0, 0.0, 0.8], [1.0, 0.0, 0.0, 0.0],
                                            [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]))

    def _on_command(self, msg) -> None:
        with self.lock:
            self.commands.append(msg)

    def _on_clock(self, msg: Clock) -> None:
        with self.lock:
            self.clock_s.append(msg.clock.sec + 1e-9 * msg.clock.nanosec)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if 'state' in values:
                    self.states[status.name] = (f'{values.get("lifecycle_state")}/'
                                                f'{values["state"]}')

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self.executor.shutdown()
        self.thread.join(timeout=5.0)
        self.node.destroy_node()


@pytest.fixture(scope='module')
def exe():
    """Return the executables to run (installed or checkout)."""
    return Executables()


@pytest.fixture(scope='module')
def policy_path(tmp_path_factory):
    """Return a random exported policy (the launch files' ``policy`` argument)."""
    return make_random_policy(tmp_path_factory.mktemp('policy'))


@pytest.fixture
def ros(tmp_path):
    """Initialize rclpy for one test; stop every process and probe started in it."""
    rclpy.init()
    started: Dict[str, list] = {'procs': [], 'probes': []}
    yield started
    for probe in started['probes']:
        probe.close()
    for proc in started['procs']:
        proc.stop()
    started.clear()
    rclpy.shutdown()
    gc.collect()  # see test_policy_node.py: no rclpy garbage left for a forked child


def _wait(condition, what: str, procs: List[Process]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if condition():
            return
        for proc in procs:
            if proc.proc.poll() is not None:
                raise AssertionError(f'{proc.spec.name} exited with {proc.proc.returncode} '
                                     f'while waiting for {what}:\n{proc.output()[-4000:]}')
        time.sleep(0.02)
    logs = '\n'.join(f'--- {p.spec.name} ({" ".join(p.args)}):\n{p.output()[-3000:]}'
                     for p in procs)
    raise AssertionError(f'timed out waiting for {what}\n{logs}')


def _policy_state(probe: Probe) -> str:
    with probe.lock:
        return probe.states.get(f'{launch_config.POLICY_NODE_NAME}: policy', '')


def test_walk_launch_isaac_sim_preset(exe, policy_path, ros, tmp_path):
    spec = launch_config.policy_node_spec(exe.share, preset='isaac_sim',
                                          policy=str(policy_path), use_sim_time=False)
    assert Path(spec.params_files[0]).is_file(), spec.params_files
    names = list(launch_config_joint_names(policy_path))
    probe = Probe(JointState, '/joint_command', feed_names=names)
    ros['probes'].append(probe)
    proc = Process(exe, spec, tmp_path)
    ros['procs'].append(proc)
    # The preset's 0.1 s staleness timeout is in wall time here; on a loaded machine a stalled
    # feed may legitimately end in damping, which still publishes efforts: accept any active state.
    _wait(lambda: _policy_state(probe).startswith('active/'), 'the policy node to activate',
          [proc])
    _wait(lambda: len(probe.commands) > 5, 'effort commands on /joint_command', [proc])
    msg = probe.commands[-1]
    assert list(msg.name) == names
    assert np.all(np.isfinite(msg.effort))


def test_walk_launch_ros2_control_preset(exe, policy_path, ros, tmp_path):
    spec = launch_config.policy_node_spec(exe.share, preset='ros2_control',
                                          policy=str(policy_path), use_sim_time=False,
                                          cmd_vel_topic='/nav/cmd_vel', cmd_vel_stamped=True)
    target = dict(spec.remappings)['joint_command']
    names = list(launch_config_joint_names(policy_path))
    probe = Probe(Float64MultiArray, target, feed_names=names)
    ros['probes'].append(probe)
    proc = Process(exe, spec, tmp_path)
    ros['procs'].append(proc)
    _wait(lambda: len(probe.commands) > 5, f'effort arrays on {target}', [proc])
    data = np.asarray(probe.commands[-1].data)
    assert data.shape == (len(names),)
    assert np.all(np.isfinite(data))


def test_sim_walk_launch_sim_and_policy_exchange_messages(exe, policy_path, ros, tmp_path):
    if not exe.available(launch_config.SIM_NODE_EXECUTABLE):
        pytest.skip('the sim_node executable does not exist yet (humanoid_rl_ros/ros/sim_node.py)')
    specs = launch_config.sim_walk_specs(exe.share, policy=str(policy_path))
    probe = Probe(JointState, '/joint_command')
    ros['probes'].append(probe)
    procs = [Process(exe, spec, tmp_path) for spec in specs]
    ros['procs'].extend(procs)
    _wait(lambda: _policy_state(probe) == 'active/walking', 'the policy node to walk', procs)
    _wait(lambda: bool(probe.clock_s), '/clock at the probe', procs)
    count = len(probe.commands)
    clock = probe.clock_s[-1]
    _wait(lambda: len(probe.commands) > count + 50 and probe.clock_s[-1] > clock + 0.1,
          'the lock-step loop to advance sim time', procs)
    for msg in probe.commands[-50:]:
        assert np.all(np.isfinite(msg.effort))


def launch_config_joint_names(policy_path: Path):
    """Return the policy's joint names from its contract."""
    from humanoid_rl_ros.core.contract import read_contract
    return read_contract(policy_path).joint_names


def _preset_params(filename: str) -> dict:
    import yaml
    return yaml.safe_load((REPO_ROOT / 'config' / filename).read_text())['/**']['ros__parameters']


def test_presets_set_only_declared_parameters_with_valid_values():
    from humanoid_rl_ros.ros.policy_params import CONTROL_TRIGGERS, OUTPUT_TYPES
    from humanoid_rl_ros.ros.policy_params import PARAMS as _PARAMS
    defaults = {name: spec[1] for name, spec in _PARAMS.items()}
    for preset, filename in launch_config.PRESETS.items():
        params = _preset_params(filename)
        unknown = set(params) - set(_PARAMS) - {'use_sim_time'}
        assert not unknown, f'{filename} sets undeclared parameters {unknown}'
        effective = dict(defaults, **params)  # what the node runs with
        assert effective['output_type'] in OUTPUT_TYPES
        assert effective['control_trigger'] in CONTROL_TRIGGERS
        assert effective['policy'] == launch_config.DEFAULT_POLICY
        for name, value in params.items():
            float_range = _PARAMS.get(name, (None,) * 5)[4]
            if float_range is not None:
                assert float_range[0] <= value <= float_range[1], (filename, name, value)


def test_presets_list_only_what_differs_from_the_node_defaults():
    from humanoid_rl_ros.ros.policy_params import PARAMS
    for filename in launch_config.PRESETS.values():
        repeated = {name: value for name, value in _preset_params(filename).items()
                    if name in PARAMS and value == PARAMS[name][1]}
        assert not repeated, f'{filename} repeats defaults {repeated}'


@pytest.mark.parametrize('preset', sorted(launch_config.PRESETS))
def test_node_takes_the_preset_file_and_its_defaults_for_the_rest(ros, preset):
    """The node started with a preset file as the launch files pass it: file value or default."""
    from humanoid_rl_ros.ros.policy_node import PolicyNode
    from humanoid_rl_ros.ros.policy_params import PARAMS
    from rclpy.parameter import Parameter
    spec = launch_config.policy_node_spec(REPO_ROOT, preset=preset)
    given = _preset_params(launch_config.PRESETS[preset])
    assert given, preset
    node = PolicyNode(launch_config.POLICY_NODE_NAME,
                      cli_args=['--ros-args', '--params-file', spec.params_files[0]],
                      parameter_overrides=[Parameter('autostart', value=False)])
    try:
        for name, (_, default, _, _, _) in PARAMS.items():
            value = node.get_parameter(name).value
            if name == 'autostart':
                continue
            expected = given.get(name, default)
            assert (list(value) if isinstance(value, (list, tuple)) else value) == expected, (
                preset, name)
    finally:
        node.destroy_node()


def test_node_spec_command_line_matches_launch_arguments(tmp_path):
    spec = launch_config.policy_node_spec(tmp_path, preset='ros2_control', policy='p.yaml',
                                          use_sim_time=True, cmd_vel_topic='/nav/cmd_vel',
                                          cmd_vel_stamped=False)
    assert spec.ros_args() == [
        '--ros-args', '-r', '__node:=policy_node',
        '--params-file', str(tmp_path / 'config' / 'policy_ros2_control.yaml'),
        '-p', 'use_sim_time:=true', '-p', 'policy:=p.yaml', '-p', 'cmd_vel_stamped:=false',
        '-r', 'joint_command:=/effort_controller/commands', '-r', 'cmd_vel:=/nav/cmd_vel']
    assert spec.launch_parameters()[1] == {'use_sim_time': True, 'policy': 'p.yaml',
                                           'cmd_vel_stamped': False}
    with pytest.raises(ValueError, match='isaac_sim'):
        launch_config.policy_node_spec(tmp_path, preset='gazebo')


def test_realtime_priority_runs_the_policy_node_under_chrt(tmp_path):
    plain = launch_config.policy_node_spec(tmp_path)
    assert plain.prefix == [] and plain.launch_prefix() is None
    spec = launch_config.policy_node_spec(tmp_path, realtime_priority='50')
    assert spec.prefix == ['chrt', '--fifo', '50']
    assert spec.launch_prefix() == 'chrt --fifo 50'
    sim, policy = launch_config.sim_walk_specs(tmp_path, realtime_priority=50)
    assert sim.prefix == [] and policy.prefix == ['chrt', '--fifo', '50']
    for bad in ('100', '-1', 'high', '5.5'):
        with pytest.raises(ValueError, match='realtime_priority'):
            launch_config.policy_node_spec(tmp_path, realtime_priority=bad)


def _sched_fifo_permitted() -> bool:
    try:
        return subprocess.run(['chrt', '--fifo', '1', 'true'], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_walk_launch_with_realtime_priority_runs_sched_fifo(exe, policy_path, ros, tmp_path):
    if not _sched_fifo_permitted():
        pytest.skip('chrt --fifo is missing or not permitted here (needs CAP_SYS_NICE or an '
                    'rtprio limit)')
    spec = launch_config.policy_node_spec(exe.share, preset='isaac_sim',
                                          policy=str(policy_path), realtime_priority=5)
    names = list(launch_config_joint_names(policy_path))
    probe = Probe(JointState, '/joint_command', feed_names=names)
    ros['probes'].append(probe)
    proc = Process(exe, spec, tmp_path)
    ros['procs'].append(proc)
    _wait(lambda: len(probe.commands) > 5, 'effort commands on /joint_command', [proc])
    # chrt execs the node: the process started is the node, every thread of it SCHED_FIFO 5
    threads = list(Path(f'/proc/{proc.proc.pid}/task').iterdir())
    assert len(threads) > 1
    for task in threads:
        assert os.sched_getscheduler(int(task.name)) == os.SCHED_FIFO, task
        assert os.sched_getparam(int(task.name)).sched_priority == 5, task


def test_shared_launch_arguments_are_arguments_of_both_node_specs():
    import inspect
    for make_specs in (launch_config.policy_node_spec, launch_config.sim_walk_specs):
        accepted = inspect.signature(make_specs).parameters
        for arg in launch_config.POLICY_ARGUMENTS:
            assert arg.name in accepted, (make_specs.__name__, arg.name)
            assert arg.choices is None or arg.default in arg.choices
    assert launch_config.parse_optional_bool('') is None
    assert launch_config.parse_optional_bool('True') is True
    with pytest.raises(ValueError, match='maybe'):
        launch_config.parse_optional_bool('maybe')


def test_launch_argument_values_are_parsed_once_for_both_launch_files(tmp_path):
    defaults = {arg.name: arg.default for arg in launch_config.POLICY_ARGUMENTS}
    assert launch_config.policy_argument_values(defaults.__getitem__) == {
        'policy': '', 'cmd_vel_topic': 'cmd_vel', 'cmd_vel_type': '', 'cmd_vel_stamped': None,
        'realtime_priority': 0}
    given = dict(defaults, policy='p.yaml', cmd_vel_topic='/nav/cmd_vel',
                 cmd_vel_stamped='true', realtime_priority='50')
    values = launch_config.policy_argument_values(given.__getitem__)
    spec = launch_config.policy_node_spec(tmp_path, **values)
    assert spec.parameters['policy'] == 'p.yaml' and spec.parameters['cmd_vel_stamped'] is True
    assert ('cmd_vel', '/nav/cmd_vel') in spec.remappings
    assert spec.prefix == ['chrt', '--fifo', '50']
    assert launch_config.sim_walk_specs(tmp_path, **values)[1].prefix == spec.prefix
    for name, bad in (('cmd_vel_stamped', 'maybe'), ('realtime_priority', '100')):
        with pytest.raises(ValueError):
            launch_config.policy_argument_values(dict(defaults, **{name: bad}).__getitem__)


@pytest.mark.parametrize('launch_file', ['walk.launch.py', 'sim_walk.launch.py'])
def test_launch_files_declare_the_shared_arguments(launch_file):
    """Both launch files declare launch_config.POLICY_ARGUMENTS (read, not run: no launch_ros)."""
    import ast
    tree = ast.parse((REPO_ROOT / 'launch' / launch_file).read_text())
    declares = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, 'id', '') == 'DeclareLaunchArgument']
    shared = [node for node in ast.walk(tree) if isinstance(node, ast.comprehension)
              and isinstance(node.iter, ast.Attribute) and node.iter.attr == 'POLICY_ARGUMENTS']
    assert len(shared) == 1
    literal = {node.args[0].value for node in declares
               if node.args and isinstance(node.args[0], ast.Constant)}
    assert not literal & {arg.name for arg in launch_config.POLICY_ARGUMENTS}


def test_robot_state_publisher_completes_the_tf_tree_below_the_odometry_child_frame():
    """sim_walk starts robot_state_publisher on the URDF whose root is the sim's odom child."""
    import ast
    import xml.etree.ElementTree as ElementTree
    from humanoid_rl_ros.robot.description import load_robot
    urdf = ElementTree.parse(launch_config.robot_description_path(REPO_ROOT)).getroot()
    children = {joint.find('child').get('link') for joint in urdf.iter('joint')}
    roots = [link.get('name') for link in urdf.iter('link') if link.get('name') not in children]
    # the sim node's odometry child frame (and TF child) is the robot's base link
    assert roots == [load_robot('kestrel').base_link]
    tree = ast.parse((REPO_ROOT / 'launch' / 'sim_walk.launch.py').read_text())
    executables = {kw.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
                   for kw in node.keywords
                   if kw.arg == 'executable' and isinstance(kw.value, ast.Constant)}
    assert 'robot_state_publisher' in executables
