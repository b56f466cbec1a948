"""
The closed-loop walking demo (``walk_demo``): sim node + policy node over real rclpy/DDS.

It starts two processes, the MuJoCo sim node (lock-step mode) and the policy node (on the sim's
``/clock`` with ``use_sim_time``). Like Nav2's lifecycle manager, it configures and activates the
policy node itself (``~/change_state``), once its own subscriptions match the node's publishers,
so nothing the node publishes is lost to DDS discovery. It drives them as Nav2's controller would:
a scripted sequence of ``cmd_vel`` commands (:data:`~humanoid_rl_ros.demo.scenario.
DEFAULT_SCENARIO`: stand, forward, turn, sideways, stop) published at 20 Hz of sim time.

The scenario clock starts (t = 0) at the sim time of the policy node's first walking tick
(``state_since_s`` of its ``walking`` status on ``/diagnostics``). While it runs the demo
prints progress (sim time, real-time factor, ETA).
At the end it prints distance, per-segment velocity tracking error and falls, and writes to
``--out`` (default ``demo_output/``): ``demo.png`` (commanded vs measured velocity, top-down
trajectory), ``metrics.json``, ``trajectory.npz`` and the two nodes' logs.

Policy: ``--policy <contract.yaml>``; default the shipped ``models/humanoid_walk.yaml``. When
neither exists the demo stops with a message that says how to get one. A contract whose
provenance says it is randomly initialized is run, and labelled UNTRAINED.

Ctrl-C stops the run; the child processes are always stopped (SIGINT, then SIGTERM, then
SIGKILL to their process groups).
"""

import argparse
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
import json
import math
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from geometry_msgs.msg import TwistStamped
from humanoid_rl_ros.core.contract import read_contract
from humanoid_rl_ros.core.timebase import stamp_to_ns
from humanoid_rl_ros.demo.scenario import command_at
from humanoid_rl_ros.demo.scenario import compute_metrics
from humanoid_rl_ros.demo.scenario import DEFAULT_SCENARIO
from humanoid_rl_ros.demo.scenario import DemoLog
from humanoid_rl_ros.demo.scenario import DemoMetrics
from humanoid_rl_ros.demo.scenario import format_summary
from humanoid_rl_ros.demo.scenario import parse_time_ns
from humanoid_rl_ros.demo.scenario import plot_demo
from humanoid_rl_ros.demo.scenario import scenario_duration_s
from humanoid_rl_ros.demo.scenario import Segment
from humanoid_rl_ros.demo.scenario import segment_index_at
from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.robot.description import models_dir
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from nav_msgs.msg import Odometry
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState

PACKAGE = 'humanoid_rl_ros'
SHIPPED_POLICY = 'humanoid_walk.yaml'
CMD_VEL_PERIOD_NS = 50_000_000
"""cmd_vel every 50 ms of sim time: Nav2's default controller_frequency is 20 Hz."""


class DemoError(RuntimeError):
    """The demo cannot run or a node failed; the message says what and where to look."""


@dataclass
class ClosedLoopConfig:
    """Settings of one closed-loop run (the demo's and the closed-loop tests')."""

    policy: Path
    """Policy contract (``<policy>.yaml`` beside its ``.onnx``)."""
    out_dir: Path
    """Folder for node logs and results."""
    segments: Tuple[Segment, ...] = DEFAULT_SCENARIO
    """The scripted command sequence."""
    cmd_vel_stamped: bool = True
    """Publish ``geometry_msgs/TwistStamped`` (Nav2 Kilted) instead of ``Twist``."""
    lockstep_idle_timeout_s: float = 1.0
    """The sim's lock-step idle timeout [s wall] (pre-roll tick period)."""
    lockstep_idle_advance: bool = True
    """Let the sim step without a command after the idle timeout (False: strict lock-step)."""
    walk_wait_s: float = 120.0
    """Most wall time to wait for the nodes to come up and start walking [s]."""
    run_timeout_s: float = 1800.0
    """Most wall time for the scenario itself [s]."""
    progress_period_s: float = 2.0
    """Wall time between progress lines [s]; 0 disables them."""
    label: str = ''
    """Shown in the summary and plot title (e.g. UNTRAINED)."""
    rise_time_s: float = 1.0
    """Samples this long after a segment starts are not scored for tracking [s]."""
    command_before_start: bool = False
    """Send the first segment's command already while standing (instead of zero), so a
    constant-command run does not depend on when the first non-zero command arrives."""
    extra_policy_params: Dict[str, str] = field(default_factory=dict)
    """Extra ``-p name:=value`` for the policy node."""


@dataclass
class ClosedLoopResult:
    """What a closed-loop run recorded."""

    log: DemoLog
    """Ground truth from /odom during the scenario (scenario time)."""
    metrics: DemoMetrics
    """Distance, tracking and falls."""
    effort_messages: int
    """Effort commands seen on /joint_command during the scenario."""
    max_effort_ratio: float
    """Largest |effort| / effort limit seen (<= 1 when within limits)."""
    all_efforts_finite: bool
    """Whether every effort seen was finite."""
    walk_start_sim_s: float
    """Sim time at which the policy reported walking [s]."""
    wall_s: float
    """Wall time of the scenario part [s]."""
    sim_ticks: int = 0
    """Odometry samples received during the scenario."""


def config_file(name: str) -> Path:
    """Return ``config/<name>``: the source checkout's, else the installed share folder's."""
    source = Path(__file__).resolve().parents[2] / 'config' / name
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = Path(get_package_share_directory(PACKAGE)) / 'config' / name
    except Exception:  # noqa: B902 - ament index missing or package not installed
        installed = None
    if installed is not None and installed.is_file():
        return installed
    raise DemoError(f'config file {name} not found (looked in {source.parent} and the '
                    f'installed share folder)')


def shipped_policy() -> Optional[Path]:
    """Return ``models/humanoid_walk.yaml`` if a trained policy ships, else None."""
    path = models_dir() / SHIPPED_POLICY
    return path if path.is_file() and path.with_suffix('.onnx').is_file() else None


def missing_policy_message() -> str:
    """Return what to do when no policy was given and the shipped one is missing."""
    path = models_dir() / SHIPPED_POLICY
    return (f'no policy: {path} (and its .onnx) is missing and --policy was not given. '
            'Pass --policy <contract.yaml> (an exported <policy>.yaml beside its .onnx), or, '
            'from the source checkout, train and export one: python -m training.train '
            '--run-name humanoid_walk writes models/humanoid_walk.onnx + .yaml (see the '
            'README, "Training").')


class _Child:
    """A node process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: List[str], log_path: Path, env: Dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def check(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise DemoError(f'{self.name} exited with code {code}; last lines of '
                            f'{self.log_path}:\n{self.tail()}')

    def tail(self, lines: int = 25) -> str:
        self._log.flush()
        try:
            return '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-lines:])
        except OSError:
            return ''

    def stop(self, grace_s: float = 5.0) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


def _child_env() -> Dict[str, str]:
    env = dict(os.environ)
    pkg_parent = str(Path(__file__).resolve().parents[2])
    env['PYTHONPATH'] = os.pathsep.join(
        [pkg_parent] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env['PYTHONUNBUFFERED'] = '1'
    return env


def node_commands(cfg: ClosedLoopConfig, robot: str) -> Dict[str, List[str]]:
    """Return the argv of the sim node and the policy node for a run."""
    sim = [sys.executable, '-m', f'{PACKAGE}.ros.sim_node', '--ros-args',
           '--params-file', str(config_file('sim_node.yaml')),
           '-p', 'mode:=lockstep', '-p', f'robot:={robot}',
           '-p', f'lockstep_idle_timeout_s:={cfg.lockstep_idle_timeout_s}',
           '-p', f'lockstep_idle_advance:={str(cfg.lockstep_idle_advance).lower()}']
    policy = [sys.executable, '-m', f'{PACKAGE}.ros.policy_node', '--ros-args']
    try:
        policy += ['--params-file', str(config_file('policy_mujoco_sim.yaml'))]
    except DemoError:
        pass  # the preset is optional: the parameters below are all the demo needs
    # No autostart: the demo configures and activates the node (as Nav2's lifecycle manager
    # would) once its own subscriptions have matched the node's publishers (_Driver.manage).
    params = {'policy': str(cfg.policy), 'use_sim_time': 'true', 'autostart': 'false',
              'start_walking_on_activate': 'true', 'output_type': 'joint_state',
              'cmd_vel_stamped': 'true' if cfg.cmd_vel_stamped else 'false',
              # The demo's cmd_vel publisher is not part of the lock-step: on a loaded machine
              # it may lag the sim by many ticks. A longer timeout keeps such a lag from
              # looking like a lost Nav2 (the default 0.5 s is meant for real time).
              'cmd_vel_timeout_s': '2.0'}
    params.update(cfg.extra_policy_params)
    for key, value in params.items():
        policy += ['-p', f'{key}:={value}']
    return {'sim_node': sim, 'policy_node': policy}


class _Driver:
    """The demo's own rclpy node: cmd_vel out; odom, efforts and diagnostics in."""

    def __init__(self, cfg: ClosedLoopConfig, effort_limit_nm: np.ndarray,
                 joint_names: Sequence[str]) -> None:
        self.cfg = cfg
        self.node = rclpy.create_node('walk_demo')
        self.effort_limit = {n: float(v) for n, v in zip(joint_names, effort_limit_nm)}
        self._limit_cache: Tuple[Tuple[str, ...], np.ndarray] = ((), np.zeros(0))
        msg_type = TwistStamped if cfg.cmd_vel_stamped else Twist
        self.cmd_pub = self.node.create_publisher(msg_type, 'cmd_vel', 10)
        self.node.create_subscription(Odometry, 'odom', self._on_odom, 1000)
        self.effort_sub = self.node.create_subscription(JointState, 'joint_command',
                                                        self._on_effort, 1000)
        self.diag_sub = self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                                      self._on_diag, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.t0_ns: Optional[int] = None
        self.last_odom_ns: Optional[int] = None
        self.next_cmd_ns = 0
        self.samples: List[Tuple[float, ...]] = []
        # Per effort command: (stamp [ns sim time], all finite, max |effort| / limit). Kept
        # from the start and counted from t0 at the end, so a late t0 loses none of them.
        self.efforts: List[Tuple[int, bool, float]] = []
        self.policy_state = ''
        self.policy_status = ''

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if 'state' not in values:
                continue
            self.policy_state = values['state']
            self.policy_status = status.message
            if self.t0_ns is None and values['state'] == 'walking':
                # The sim time of the node's first walking tick (state_since_s), not this
                # message's stamp: this process may match the node's /diagnostics publisher
                # only seconds after the node started walking (DDS discovery on a loaded
                # machine), and the first status it sees is then a later periodic one.
                since_ns = parse_time_ns(values.get('state_since_s', ''))
                self.t0_ns = (since_ns if since_ns is not None else
                              stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec))

    def _on_effort(self, msg: JointState) -> None:
        names = tuple(msg.name)
        if self._limit_cache[0] != names:
            # 0 for joints without a known limit: their ratio is not scored.
            self._limit_cache = (names, np.array([self.effort_limit.get(n, 0.0) for n in names]))
        limit = self._limit_cache[1]
        effort = np.asarray(msg.effort, dtype=np.float64)
        finite = bool(np.all(np.isfinite(effort))) and effort.shape == limit.shape
        scored = limit > 0.0
        ratio = (float(np.max(np.abs(effort[scored]) / limit[scored]))
                 if finite and np.any(scored) else 0.0)
        stamp_ns = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
        self.efforts.append((stamp_ns, finite, ratio))

    def scenario_efforts(self) -> Tuple[int, bool, float]:
        """Return (count, all finite, max ratio) of the effort commands stamped from t0 on."""
        rows = [e for e in self.efforts if self.t0_ns is not None and e[0] >= self.t0_ns]
        return (len(rows), all(e[1] for e in rows),
                max((e[2] for e in rows), default=0.0))

    def _on_odom(self, msg: Odometry) -> None:
        t_ns = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
        self.last_odom_ns = t_ns
        t_s = (t_ns - self.t0_ns) * 1e-9 if self.t0_ns is not None else -1.0
        if t_ns >= self.next_cmd_ns:
            self.next_cmd_ns = t_ns - t_ns % CMD_VEL_PERIOD_NS + CMD_VEL_PERIOD_NS
            if t_s < 0.0 and self.cfg.command_before_start:
                command = self.cfg.segments[0].command()
            else:
                command = command_at(self.cfg.segments, t_s)
            self._publish_cmd(command, msg.header.stamp)
        # Every sample is kept with its sim time: the walking diagnostics may arrive after the
        # first walking ticks' odometry, and the log must not depend on that timing.
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        v, w = msg.twist.twist.linear, msg.twist.twist.angular
        self.samples.append((t_ns, p.x, p.y, p.z, q.w, q.x, q.y, q.z, v.x, v.y, w.z))

    def _publish_cmd(self, command: Tuple[float, float, float], stamp) -> None:
        twist = Twist()
        twist.linear.x, twist.linear.y, twist.angular.z = (float(c) for c in command)
        if self.cfg.cmd_vel_stamped:
            msg = TwistStamped()
            msg.header.stamp = stamp
            msg.header.frame_id = 'base_link'
            msg.twist = twist
            self.cmd_pub.publish(msg)
        else:
            self.cmd_pub.publish(twist)

    def matched(self, node_name: str, subs: Sequence) -> bool:
        """Return whether the subscriptions ``subs`` match ``node_name``'s publishers."""
        for sub in subs:
            publishers = self.node.get_publishers_info_by_topic(sub.topic_name)
            if not any(info.node_name == node_name for info in publishers):
                return False
            if sub.get_publisher_count() < len(publishers):
                return False
        return True

    def change_state(self, node_name: str, transition: int, label: str,
                     deadline: float, check) -> None:
        """Request a lifecycle transition of ``node_name``; raise DemoError if it fails."""
        client = self.node.create_client(ChangeState, f'/{node_name}/change_state')
        try:
            while not client.service_is_ready():
                self.executor.spin_once(timeout_sec=0.05)
                check()
                if time.monotonic() > deadline:
                    raise DemoError(f'{node_name}/change_state not available')
            future = client.call_async(ChangeState.Request(
                transition=Transition(id=transition)))
            while not future.done():
                self.executor.spin_once(timeout_sec=0.05)
                check()
                if time.monotonic() > deadline:
                    raise DemoError(f'{node_name} did not answer the {label} request')
            if not future.result().success:
                raise DemoError(f'{node_name} refused to {label} ({self.policy_status})')
        finally:
            self.node.destroy_client(client)

    def scenario_t_s(self) -> float:
        if self.t0_ns is None or self.last_odom_ns is None:
            return -1.0
        return (self.last_odom_ns - self.t0_ns) * 1e-9

    def scenario_samples(self) -> List[Tuple[float, ...]]:
        if self.t0_ns is None:
            return []
        return [s for s in self.samples if s[0] >= self.t0_ns]

    def log(self) -> DemoLog:
        rows = self.scenario_samples()
        t_s = np.array([(r[0] - self.t0_ns) * 1e-9 for r in rows], dtype=float)
        a = np.array([r[1:] for r in rows], dtype=float).reshape(-1, 10)
        return DemoLog(t_s, a[:, 0:3], a[:, 3:7], a[:, 7:10])

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def _say(text: str) -> None:
    print(f'[walk_demo] {text}', flush=True)


def run_closed_loop(cfg: ClosedLoopConfig) -> ClosedLoopResult:
    """
    Run the sim node and the policy node in lock-step through ``cfg.segments``.

    rclpy must be initialized by the caller. The node processes are always stopped on return.
    Raises :class:`DemoError` naming the problem (and the log to read) when a node dies or
    the robot never starts walking.
    """
    contract = read_contract(cfg.policy)
    robot = load_robot(contract.robot)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    env = _child_env()
    children: List[_Child] = []
    driver = _Driver(cfg, robot.effort_limit_nm, robot.joint_names)
    duration_s = scenario_duration_s(cfg.segments)
    try:
        commands = node_commands(cfg, contract.robot)
        deadline = time.monotonic() + cfg.walk_wait_s
        # The sim first: it holds physics (lock-step pre-roll) until the policy's first
        # command, so once this process receives its odometry no sample can be missed.
        children.append(_Child('sim_node', commands['sim_node'],
                               cfg.out_dir / 'sim_node.log', env))
        while driver.last_odom_ns is None:
            driver.executor.spin_once(timeout_sec=0.05)
            children[0].check()
            if time.monotonic() > deadline:
                raise DemoError(f'no odometry from the sim node within {cfg.walk_wait_s:.0f} s; '
                                f'sim_node log:\n{children[0].tail()}')
        children.append(_Child('policy_node', commands['policy_node'],
                               cfg.out_dir / 'policy_node.log', env))
        _say(f'started sim_node and policy_node (logs in {cfg.out_dir}); waiting for the '
             'policy to stand up and start walking')

        def check() -> None:
            for child in children:
                child.check()

        # Act as the lifecycle manager, after this process's effort and diagnostics
        # subscriptions have matched the node's publishers: DDS discovery on a loaded machine
        # can take seconds, and what the node publishes before the match never arrives here
        # (its walking start, its first efforts). The sim holds physics until the first command.
        # (The effort publisher is created by configure; efforts flow from activation on.)
        def wait_matched(subs, what: str) -> None:
            while not driver.matched('policy_node', subs):
                driver.executor.spin_once(timeout_sec=0.05)
                check()
                if time.monotonic() > deadline:
                    raise DemoError(f'policy_node {what} publisher not matched within '
                                    f'{cfg.walk_wait_s:.0f} s')

        try:
            wait_matched([driver.diag_sub], '/diagnostics')
            driver.change_state('policy_node', Transition.TRANSITION_CONFIGURE, 'configure',
                                deadline, check)
            wait_matched([driver.effort_sub], 'joint_command')
            driver.change_state('policy_node', Transition.TRANSITION_ACTIVATE, 'activate',
                                deadline, check)
        except DemoError as exc:
            raise DemoError(f'{exc}; policy_node log:\n{children[1].tail()}') from exc
        last_note = time.monotonic()
        while driver.t0_ns is None:
            driver.executor.spin_once(timeout_sec=0.05)
            for child in children:
                child.check()
            if time.monotonic() > deadline:
                raise DemoError(
                    f'the policy did not start walking within {cfg.walk_wait_s:.0f} s '
                    f'(policy state: {driver.policy_status or "no diagnostics yet"}); '
                    f'policy_node log:\n{children[1].tail()}')
            if cfg.progress_period_s and time.monotonic() - last_note > cfg.progress_period_s:
                last_note = time.monotonic()
                sim_s = (driver.last_odom_ns or 0) * 1e-9  # before walking starts
                _say(f'  waiting: sim time {sim_s:.2f} s, policy '
                     f'{driver.policy_status or "starting"}')
        walk_start_s = driver.t0_ns * 1e-9
        _say(f'policy walking at sim time {walk_start_s:.2f} s; running the scenario '
             f'({duration_s:.1f} s of sim time)')
        wall0 = time.monotonic()
        last_note = wall0
        while driver.scenario_t_s() < duration_s:
            driver.executor.spin_once(timeout_sec=0.05)
            now = time.monotonic()
            if cfg.progress_period_s and now - last_note >= cfg.progress_period_s:
                last_note = now
                for child in children:
                    child.check()
                t = max(0.0, driver.scenario_t_s())
                rtf = t / max(now - wall0, 1e-9)
                eta = (duration_s - t) / rtf if rtf > 0 else math.inf
                index = segment_index_at(cfg.segments, t)
                seg = cfg.segments[index].name if index is not None else '-'
                pos = driver.samples[-1][1:3] if driver.samples else (0.0, 0.0)
                _say(f'  t={t:5.1f}/{duration_s:.1f} s sim | {seg:<9} | real-time factor '
                     f'{rtf:4.2f}x | ETA {eta:4.0f} s | x={pos[0]:+.2f} y={pos[1]:+.2f} m | '
                     f'policy {driver.policy_state}')
            if now - wall0 > cfg.run_timeout_s:
                raise DemoError(f'scenario did not finish within {cfg.run_timeout_s:.0f} s wall')
        wall_s = time.monotonic() - wall0
        log = driver.log()
        metrics = compute_metrics(log, cfg.segments, rise_time_s=cfg.rise_time_s,
                                  fall_height_m=0.5 * robot.nominal_base_height_m)
        count, finite, max_ratio = driver.scenario_efforts()
        return ClosedLoopResult(log, metrics, count, max_ratio, finite, walk_start_s, wall_s,
                                len(driver.scenario_samples()))
    finally:
        for child in children:  # the sim first: a stopped controller would idle-step it
            child.stop()
        driver.close()


def save_results(result: ClosedLoopResult, cfg: ClosedLoopConfig, title: str) -> Dict[str, Path]:
    """Write the plot, the metrics (JSON) and the trajectory (npz) to ``cfg.out_dir``."""
    out = cfg.out_dir
    paths = {'plot': plot_demo(result.log, cfg.segments, out / 'demo.png', title=title)}
    metrics = asdict(result.metrics)
    metrics.update({'label': cfg.label, 'policy': str(cfg.policy),
                    'effort_messages': result.effort_messages,
                    'max_effort_ratio': result.max_effort_ratio,
                    'all_efforts_finite': result.all_efforts_finite,
                    'walk_start_sim_s': result.walk_start_sim_s,
                    'scenario_wall_s': result.wall_s,
                    'real_time_factor': result.metrics.duration_s / max(result.wall_s, 1e-9),
                    'segments_spec': [asdict(s) for s in cfg.segments]})
    paths['metrics'] = out / 'metrics.json'
    paths['metrics'].write_text(json.dumps(metrics, indent=2, default=_json_default) + '\n')
    paths['trajectory'] = out / 'trajectory.npz'
    np.savez(paths['trajectory'], t_s=result.log.t_s, pos_m=result.log.pos_m,
             quat_wxyz=result.log.quat_wxyz, body_vel=result.log.body_vel)
    return paths


def _json_default(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the demo's command line."""
    parser = argparse.ArgumentParser(
        prog='walk_demo', description=__doc__.split('\n\n')[0].strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--policy', type=Path, default=None,
                        help='policy contract (<policy>.yaml beside <policy>.onnx); default: '
                             'the shipped models/humanoid_walk.yaml')
    parser.add_argument('--out', type=Path, default=Path('demo_output'),
                        help='output folder for the plot, metrics and node logs '
                             '(default: demo_output/)')
    parser.add_argument('--cmd-vel', choices=('stamped', 'twist'), default='stamped',
                        help='cmd_vel message type: TwistStamped (Nav2 Kilted+) or Twist')
    parser.add_argument('--time-scale', type=float, default=1.0,
                        help='multiply every segment duration (e.g. 0.5 for a quick run)')
    parser.add_argument('--no-progress', action='store_true', help='no progress lines')
    return parser.parse_args(list(argv) if argv is not None else None)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the walking demo; return 0 when the scenario completed (falls are reported)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not (math.isfinite(args.time_scale) and args.time_scale > 0.0):
        _say(f'error: --time-scale must be a finite number > 0, got {args.time_scale}')
        return 2
    out = args.out.resolve()  # created by run_closed_loop
    label = ''
    if args.policy is not None:
        policy = args.policy.resolve()
        if not policy.is_file():
            _say(f'error: policy contract {policy} does not exist')
            return 2
    elif shipped_policy() is not None:
        policy = shipped_policy()
    else:
        _say(f'error: {missing_policy_message()}')
        return 2
    contract = read_contract(policy)
    if contract.provenance.get('kind') == 'random_init':
        label = 'UNTRAINED random policy'
    segments = tuple(Segment(s.name, s.duration_s * args.time_scale, s.vx_m_s, s.vy_m_s,
                             s.wz_rad_s) for s in DEFAULT_SCENARIO)
    cfg = ClosedLoopConfig(policy=policy, out_dir=out, segments=segments,
                           cmd_vel_stamped=args.cmd_vel == 'stamped',
                           progress_period_s=0.0 if args.no_progress else 2.0, label=label,
                           rise_time_s=1.0 * min(1.0, args.time_scale),
                           lockstep_idle_timeout_s=0.5)
    title = f'Walking demo: {policy.stem}' + (f' [{label}]' if label else '')
    _say(f'policy: {policy}' + (f'  [{label}]' if label else ''))
    _say('scenario: ' + ', '.join(
        f'{s.name} {s.duration_s:g}s (vx {s.vx_m_s:g}, vy {s.vy_m_s:g}, wz {s.wz_rad_s:g})'
        for s in segments))
    # Keep the demo's DDS traffic on this machine unless the caller chose otherwise.
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    # Python's own SIGINT handling (KeyboardInterrupt) instead of rclpy's, which would shut the
    # context down under the running loop; also when started with SIGINT ignored (nohup, &).
    # SIGTERM (e.g. from a CI runner) unwinds the same way. The loop's finally-block stops the
    # node processes.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    try:
        result = run_closed_loop(cfg)
        paths = save_results(result, cfg, title)
    except (KeyboardInterrupt, ExternalShutdownException):
        _say('interrupted: nodes stopped')
        return 130
    except DemoError as exc:
        _say(f'error: {exc}')
        return 1
    finally:
        if rclpy.ok():
            rclpy.shutdown()
    print(format_summary(result.metrics, title=title))
    print(f'  efforts: {result.effort_messages} commands, all finite: '
          f'{result.all_efforts_finite}, max |effort|/limit {result.max_effort_ratio:.2f}')
    print(f'  wall time {result.wall_s:.1f} s for {result.metrics.duration_s:.1f} s of sim '
          f'time (real-time factor {result.metrics.duration_s / max(result.wall_s, 1e-9):.2f}x)')
    for what, path in paths.items():
        print(f'  {what}: {path}')
    if label:
        print(f'  NOTE: {label}: falls and tracking errors are expected.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
