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

This module is the command line and the results files. The run itself is
:mod:`humanoid_rl_ros.demo.closed_loop`, with the demo's rclpy node in
:mod:`humanoid_rl_ros.demo.driver` and the node processes in
:mod:`humanoid_rl_ros.demo.processes`; the names other code imports from here are re-exported.
"""

import argparse
from dataclasses import asdict
import json
import math
import os
from pathlib import Path
import signal
import sys
from typing import Dict, Optional, Sequence

from humanoid_rl_ros.core.contract import read_contract
from humanoid_rl_ros.demo.closed_loop import ClosedLoopConfig, ClosedLoopResult, node_commands
from humanoid_rl_ros.demo.closed_loop import run_closed_loop, say
from humanoid_rl_ros.demo.processes import config_file, DemoError
from humanoid_rl_ros.demo.scenario import DEFAULT_SCENARIO
from humanoid_rl_ros.demo.scenario import format_summary
from humanoid_rl_ros.demo.scenario import plot_demo
from humanoid_rl_ros.demo.scenario import Segment
from humanoid_rl_ros.robot.description import models_dir
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.signals import SignalHandlerOptions

__all__ = ['ClosedLoopConfig', 'ClosedLoopResult', 'config_file', 'DemoError', 'main',
           'missing_policy_message', 'node_commands', 'parse_args', 'run_closed_loop',
           'save_results', 'shipped_policy']

SHIPPED_POLICY = 'humanoid_walk.yaml'


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
                    'idle_stand_at_end': result.idle_stand, 'idle_note': result.idle_note,
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
        say(f'error: --time-scale must be a finite number > 0, got {args.time_scale}')
        return 2
    out = args.out.resolve()  # created by run_closed_loop
    label = ''
    if args.policy is not None:
        policy = args.policy.resolve()
        if not policy.is_file():
            say(f'error: policy contract {policy} does not exist')
            return 2
    elif shipped_policy() is not None:
        policy = shipped_policy()
    else:
        say(f'error: {missing_policy_message()}')
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
    say(f'policy: {policy}' + (f'  [{label}]' if label else ''))
    say('scenario: ' + ', '.join(
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
        say('interrupted: nodes stopped')
        return 130
    except DemoError as exc:
        say(f'error: {exc}')
        return 1
    finally:
        if rclpy.ok():
            rclpy.shutdown()
    print(format_summary(result.metrics, title=title))
    print(f'  efforts: {result.effort_messages} commands, all finite: '
          f'{result.all_efforts_finite}, max |effort|/limit {result.max_effort_ratio:.2f}')
    if result.idle_stand:
        print(f'  at the end: idle stand {result.idle_stand}'
              + (f' ({result.idle_note})' if result.idle_note else ''))
    print(f'  wall time {result.wall_s:.1f} s for {result.metrics.duration_s:.1f} s of sim '
          f'time (real-time factor {result.metrics.duration_s / max(result.wall_s, 1e-9):.2f}x)')
    for what, path in paths.items():
        print(f'  {what}: {path}')
    if label:
        print(f'  NOTE: {label}: falls and tracking errors are expected.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
