"""
Stopping a node process (Ctrl-C, ``ros2 launch``'s SIGINT then SIGTERM) ends it cleanly.

The policy node runs as its executable (installed, or ``python -m`` from the checkout; see
``test_launch_executables``), standing on a fake robot whose joints move (so every state's
effort is non-zero), and a probe records its effort commands. After SIGINT or SIGTERM the last
command it published must be all zeros (an effort controller that holds its last command then
leaves the robot limp instead of pushing on), and the process must exit with status 0.
:func:`humanoid_rl_ros.ros.node_main.run_node` itself (custom ``spin``, an external shutdown,
a lifecycle node's shutdown transition) is run in small scripts.
"""

import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import List

from diagnostic_msgs.msg import DiagnosticArray
from humanoid_rl_ros.ros import launch_config
from humanoid_rl_ros.ros.ros_conversions import make_joint_state, make_odometry
import numpy as np
import pytest
from sensor_msgs.msg import JointState
import test_launch_executables as launch_tests

pytestmark = [pytest.mark.ros, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
EXIT_TIMEOUT_S = 60.0  # [s wall] generous: a stop takes well under a second when idle
JOINT_VEL_RAD_S = 0.5  # the fake robot's joints move: standing and damping efforts are non-zero

# The launch tests' fixtures: the executables, a random exported policy, rclpy for the probes.
exe = launch_tests.exe
policy_path = launch_tests.policy_path
ros = launch_tests.ros


class MovingRobot(launch_tests.Probe):
    """The probe of ``test_launch_executables``, its robot's joints moving at a constant speed."""

    def _feed(self) -> None:
        n = len(self.feed_names)
        self.js_pub.publish(make_joint_state(self.feed_names, np.zeros(n),
                                             np.full(n, JOINT_VEL_RAD_S)))
        self.odom_pub.publish(make_odometry([0.0, 0.0, 0.8], [1.0, 0.0, 0.0, 0.0],
                                            [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]))

    def efforts(self) -> List[np.ndarray]:
        """Return the efforts [N*m] received so far, oldest first."""
        with self.lock:
            return [np.asarray(msg.effort) for msg in self.commands]


def _exit_status(proc: launch_tests.Process) -> int:
    try:
        return proc.proc.wait(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f'{proc.spec.name} still runs {EXIT_TIMEOUT_S} s after the signal:'
                             f'\n{proc.output()[-4000:]}')


@pytest.mark.parametrize('signals', [(signal.SIGINT,), (signal.SIGTERM,),
                                     (signal.SIGINT, signal.SIGINT)],
                         ids=['sigint', 'sigterm', 'sigint_twice'])
def test_stopping_the_policy_node_process_sends_zero_effort_last(
        exe, policy_path, ros, tmp_path, signals):
    spec = launch_config.policy_node_spec(exe.share, preset='isaac_sim',
                                          policy=str(policy_path), use_sim_time=False)
    names = list(launch_tests.launch_config_joint_names(policy_path))
    robot = MovingRobot(JointState, '/joint_command', feed_names=names)
    ros['probes'].append(robot)
    proc = launch_tests.Process(exe, spec, tmp_path)
    ros['procs'].append(proc)

    # The fix-point: the node publishes non-zero efforts (standing PD against moving joints).
    launch_tests._wait(lambda: any(np.any(e != 0.0) for e in robot.efforts()[-5:]),
                       'non-zero effort commands on /joint_command', [proc])
    for sig in signals:
        proc.proc.send_signal(sig)
    assert _exit_status(proc) == 0, proc.output()[-4000:]

    def last_is_zero() -> bool:
        efforts = robot.efforts()
        return bool(efforts) and not np.any(efforts[-1])

    try:
        launch_tests._wait(last_is_zero, 'an all-zero effort as the last command', [])
    except AssertionError:
        raise AssertionError(f'the last command after {[s.name for s in signals]} was '
                             f'{robot.efforts()[-1].tolist()}, not zero:\n'
                             f'{proc.output()[-4000:]}') from None
    with robot.lock:
        last = robot.commands[-1]
    assert list(last.name) == names
    assert len(last.effort) == len(names)


class Diagnostics(launch_tests.Probe):
    """A probe that also keeps the policy node's newest ``waiting_for``."""

    def __init__(self) -> None:
        """Subscribe to /diagnostics (and the effort topic, unused)."""
        self.waiting_for = ''
        super().__init__(JointState, '/joint_command')
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_waiting, 10)

    def _on_waiting(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if 'waiting_for' in values:
                with self.lock:
                    self.waiting_for = values['waiting_for']


def test_ctrl_c_while_configure_waits_for_joint_states_stops_the_node(
        exe, policy_path, ros, tmp_path):
    spec = launch_config.policy_node_spec(exe.share, preset='isaac_sim',
                                          policy=str(policy_path), use_sim_time=False)
    spec.parameters['joint_state_wait_s'] = 600.0  # configure would wait 10 minutes
    probe = Diagnostics()
    ros['probes'].append(probe)
    proc = launch_tests.Process(exe, spec, tmp_path)
    ros['procs'].append(proc)
    launch_tests._wait(lambda: 'joint_states on' in probe.waiting_for,
                       'configure to wait for joint_states', [proc])
    proc.proc.send_signal(signal.SIGINT)
    assert _exit_status(proc) == 0, proc.output()[-4000:]


# ------------------------------------------------------------------------- run_node in scripts
SCRIPT_HEAD = """
import sys
import rclpy
from humanoid_rl_ros.ros.node_main import run_node
"""

CUSTOM_SPIN = SCRIPT_HEAD + """
def spin(node):
    print('spinning', flush=True)
    while rclpy.ok():
        rclpy.spin_once(node, timeout_sec=0.05)

run_node(lambda: rclpy.create_node('custom_spin'), spin=spin)
print('returned', flush=True)
"""

EXTERNAL_SHUTDOWN = SCRIPT_HEAD + """
def make_node():
    node = rclpy.create_node('external_shutdown')
    node.create_timer(0.05, lambda: rclpy.shutdown())
    return node

run_node(make_node)
print('returned', flush=True)
"""

LIFECYCLE = SCRIPT_HEAD + """
from rclpy.lifecycle import Node, TransitionCallbackReturn

class Managed(Node):
    def on_shutdown(self, state):
        print(f'on_shutdown from {state.label}, context ok {self.context.ok()}', flush=True)
        return TransitionCallbackReturn.SUCCESS

def make_node():
    node = Managed('managed')
    node.trigger_configure()
    node.trigger_activate()
    node.create_timer(0.05, lambda: print('spinning', flush=True))
    return node

run_node(make_node)
print('returned', flush=True)
"""

RUN_TWICE = SCRIPT_HEAD + """
import os
import signal
from humanoid_rl_ros.ros.node_main import stop_requested

def make_node():
    node = rclpy.create_node('stopped_by_itself')
    node.create_timer(0.05, lambda: os.kill(os.getpid(), signal.SIGTERM))
    return node

run_node(make_node)
print(f'after the first run: stop requested {stop_requested()}', flush=True)
run_node(make_node)
print(f'after the second run: stop requested {stop_requested()}', flush=True)
"""


def _script(code: str, tmp_path: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get('PYTHONPATH', '')]))
    return subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=str(tmp_path))


def _signal_when_spinning(proc: subprocess.Popen, sig: int) -> str:
    """Send ``sig`` once the script printed 'spinning'; return its whole output."""
    lines = []
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    for line in proc.stdout:
        lines.append(line)
        if 'spinning' in line or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    try:
        rest, _ = proc.communicate(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, _ = proc.communicate()
        raise AssertionError('still running after the signal:\n' + ''.join(lines) + rest)
    return ''.join(lines) + rest


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['sigint', 'sigterm'])
@pytest.mark.parametrize('script, expected', [
    (CUSTOM_SPIN, ()),  # a custom spin is interrupted and run_node returns
    (LIFECYCLE, ('on_shutdown from active, context ok True',)),  # shut down with ROS still up
], ids=['custom_spin', 'lifecycle'])
def test_run_node_stops_on_a_signal(tmp_path, sig, script, expected):
    proc = _script(script, tmp_path)
    out = _signal_when_spinning(proc, sig)
    assert proc.returncode == 0, out
    for line in (*expected, 'returned'):
        assert line in out, out


def _output_of(proc, what: str) -> str:
    """Return the output of ``proc`` once it exits with status 0 (``what`` ended it)."""
    try:
        out, _ = proc.communicate(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f'run_node did not return after {what}')
    assert proc.returncode == 0, out
    return out


def test_an_external_shutdown_ends_run_node(tmp_path):
    out = _output_of(_script(EXTERNAL_SHUTDOWN, tmp_path), 'rclpy.shutdown()')
    assert 'returned' in out, out


def test_a_stop_request_ends_with_run_node(tmp_path):
    """A later wait in the same process (e.g. a second run's configure) must not end at once."""
    out = _output_of(_script(RUN_TWICE, tmp_path), 'SIGTERM')
    assert 'after the first run: stop requested False' in out, out
    assert 'after the second run: stop requested False' in out, out
