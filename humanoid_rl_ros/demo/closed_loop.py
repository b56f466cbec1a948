"""
One closed-loop run: the sim node and the policy node in lock-step, driven through a scenario.

:func:`run_closed_loop` starts the MuJoCo sim node (lock-step mode) and then the policy node (on
the sim's ``/clock`` with ``use_sim_time``), configures and activates the policy node once the
driver's subscriptions match its publishers (:class:`~humanoid_rl_ros.demo.driver.
ScenarioDriver`), runs the scenario and returns what it recorded. The walking demo
(:mod:`humanoid_rl_ros.demo.runner`) and the closed-loop tests run it.
"""

from dataclasses import dataclass
from dataclasses import field
import math
from pathlib import Path
import sys
import time
from typing import Dict, List, Tuple

from humanoid_rl_ros.core.contract import read_contract
from humanoid_rl_ros.demo.driver import ScenarioDriver
from humanoid_rl_ros.demo.processes import (child_env, config_file, DemoError, NodeProcess,
                                            PACKAGE)
from humanoid_rl_ros.demo.scenario import compute_metrics
from humanoid_rl_ros.demo.scenario import DEFAULT_SCENARIO
from humanoid_rl_ros.demo.scenario import DemoLog
from humanoid_rl_ros.demo.scenario import DemoMetrics
from humanoid_rl_ros.demo.scenario import scenario_duration_s
from humanoid_rl_ros.demo.scenario import Segment
from humanoid_rl_ros.demo.scenario import segment_index_at
from humanoid_rl_ros.robot.description import load_robot
from lifecycle_msgs.msg import Transition


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
    idle_stand: str = ''
    """The policy node's idle stand at the end (off, ready, holding; '' if not reported)."""
    idle_note: str = ''
    """Why the node's newest idle stand started or ended, with its sim time ('' if none)."""


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
    # would) once its own subscriptions have matched the node's publishers (run_closed_loop).
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


def say(text: str) -> None:
    """Print ``text`` as the demo's progress line."""
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
    env = child_env()
    children: List[NodeProcess] = []
    driver = ScenarioDriver(cfg.segments, cfg.cmd_vel_stamped, cfg.command_before_start,
                            robot.effort_limit_nm, robot.joint_names)
    duration_s = scenario_duration_s(cfg.segments)
    try:
        commands = node_commands(cfg, contract.robot)
        deadline = time.monotonic() + cfg.walk_wait_s
        # The sim first: it holds physics (lock-step pre-roll) until the policy's first
        # command, so once this process receives its odometry no sample can be missed.
        children.append(NodeProcess('sim_node', commands['sim_node'],
                                    cfg.out_dir / 'sim_node.log', env))
        while driver.last_odom_ns is None:
            driver.executor.spin_once(timeout_sec=0.05)
            children[0].check()
            if time.monotonic() > deadline:
                raise DemoError(f'no odometry from the sim node within {cfg.walk_wait_s:.0f} s; '
                                f'sim_node log:\n{children[0].tail()}')
        children.append(NodeProcess('policy_node', commands['policy_node'],
                                    cfg.out_dir / 'policy_node.log', env))
        say(f'started sim_node and policy_node (logs in {cfg.out_dir}); waiting for the '
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
                say(f'  waiting: sim time {sim_s:.2f} s, policy '
                    f'{driver.policy_status or "starting"}')
        walk_start_s = driver.t0_ns * 1e-9
        say(f'policy walking at sim time {walk_start_s:.2f} s; running the scenario '
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
                say(f'  t={t:5.1f}/{duration_s:.1f} s sim | {seg:<9} | real-time factor '
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
                                len(driver.scenario_samples()), driver.idle_stand,
                                driver.idle_note)
    finally:
        for child in children:  # the sim first: a stopped controller would idle-step it
            child.stop()
        driver.close()
