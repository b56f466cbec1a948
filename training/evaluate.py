"""
Sim-to-sim evaluation of an exported policy: ONNX + contract in CPU MuJoCo.

The policy runs through the deployment code path:
:class:`humanoid_rl_ros.core.controller.Controller` (the policy node's pure core) with
:class:`humanoid_rl_ros.core.policy_runtime.PolicyRuntime`
(onnxruntime), on :class:`humanoid_rl_ros.sim.mujoco_sim.MujocoRobotSim` (the sim node's model).
Only the contract says how to build observations and efforts.

Usage (``--help`` lists every option)::

    python -m training.evaluate models/humanoid_walk.yaml --out benchmarks/eval
    python -m training.evaluate models/humanoid_walk.yaml --quick   # a few seconds per command
    python -m training.evaluate models/humanoid_walk.yaml --seeds 1 --pushes False

Tracking errors are measured after a rise time, on the base velocity averaged over one gait
period (walking speed is a per-stride quantity: the pelvis speeds up and slows down within a
stride). The instantaneous errors are reported too.
"""

from dataclasses import asdict, dataclass, field
import json
import math
from pathlib import Path
import sys
import time
from typing import Annotated, Any, Dict, List, Optional, Sequence, Tuple

from humanoid_rl_ros.core.controller import Controller, ControllerConfig
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.sim.mujoco_sim import MujocoRobotSim
import numpy as np
from training.robustness.episode import (EpisodeSpec, periodic_pushes, run_episode,
                                         STAND_RAMP_S)
from training.robustness.metrics import aggregate, episode_metrics
import tyro


@dataclass(frozen=True)
class CommandCase:
    """One command of the suite: body-frame (vx [m/s], vy [m/s], yaw rate [rad/s])."""

    name: str
    vx_m_s: float
    vy_m_s: float
    wz_rad_s: float


SUITE: Tuple[CommandCase, ...] = (
    CommandCase('stand', 0.0, 0.0, 0.0),
    CommandCase('forward_0.5', 0.5, 0.0, 0.0),
    CommandCase('forward_1.0', 1.0, 0.0, 0.0),
    CommandCase('backward_0.3', -0.3, 0.0, 0.0),
    CommandCase('sideways_0.3', 0.0, 0.3, 0.0),
    CommandCase('turn_0.8', 0.0, 0.0, 0.8),
    CommandCase('walk_and_turn', 0.5, 0.0, 0.5),
)
"""The fixed command suite of the evaluator."""


@dataclass
class EvalConfig:
    """How the suite is run."""

    duration_s: float = 20.0
    """Time each command is held [s]."""
    settle_s: float = 1.0
    """Zero-command walking time before the command starts [s]."""
    rise_s: float = 2.0
    """Time after the command starts that is excluded from the errors [s]."""
    seeds: int = 3
    """Seeds per command (each perturbs the initial pose and the push directions)."""
    pushes: Tuple[bool, ...] = (False, True)
    """Run each seed without and with pushes."""
    push_interval_s: float = 4.0
    """Time between pushes [s]."""
    push_velocity_m_s: float = 0.5
    """Planar base velocity impulse of each push [m/s]."""
    init_joint_noise_rad: float = 0.05
    """Uniform noise on the initial joint positions [rad]."""
    fall_height_fraction: float = 0.5
    """A base below this share of its nominal height counts as a fall."""


@dataclass
class RunResult:
    """Metrics of one command, seed and push setting."""

    command: str
    seed: int
    pushes: bool
    fell: bool
    fall_time_s: Optional[float]
    vx_mae_m_s: float
    vy_mae_m_s: float
    yaw_rate_mae_rad_s: float
    lin_vel_error_m_s: float
    vx_mae_instant_m_s: float
    vy_mae_instant_m_s: float
    yaw_rate_mae_instant_rad_s: float
    planar_drift_m_s: float
    effort_share_mean: float
    effort_share_max: float
    foot_slip_m_s: float
    trace: Dict[str, List[float]] = field(default_factory=dict, repr=False)


RESULT_METRICS = ('vx_mae_m_s', 'vy_mae_m_s', 'yaw_rate_mae_rad_s', 'lin_vel_error_m_s',
                  'vx_mae_instant_m_s', 'vy_mae_instant_m_s', 'yaw_rate_mae_instant_rad_s',
                  'planar_drift_m_s', 'effort_share_mean', 'effort_share_max', 'foot_slip_m_s')
"""The metrics of :func:`training.robustness.metrics.episode_metrics` kept in a RunResult."""
SUMMARY_METRICS = ('lin_vel_error_m_s', 'vx_mae_m_s', 'vy_mae_m_s', 'yaw_rate_mae_rad_s',
                   'lin_vel_error_instant_m_s', 'yaw_rate_mae_instant_rad_s', 'planar_drift_m_s',
                   'effort_share_mean', 'effort_share_max', 'foot_slip_m_s')
"""The metrics of each command in the summary (means over the runs without a fall)."""
TRACE_KEYS = ('t', 'vx', 'vy', 'wz', 'x', 'y', 'cvx', 'cvy', 'cwz', 'effort_share', 'slip')
"""The trace kept in a :class:`RunResult` (for the plots)."""


def run_case(runtime: PolicyRuntime, sim: MujocoRobotSim, case: CommandCase, seed: int,
             pushes: bool, cfg: EvalConfig) -> RunResult:
    """
    Run one command for one seed and return its metrics.

    The episode loop is :func:`training.robustness.episode.run_episode` and the metrics are
    :func:`training.robustness.metrics.episode_metrics`, shared with the robustness suite. With
    ``pushes`` the base gets a push of ``cfg.push_velocity_m_s`` in a random horizontal direction
    every ``cfg.push_interval_s`` after the command starts.
    """
    contract = runtime.contract
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-cfg.init_joint_noise_rad, cfg.init_joint_noise_rad, contract.num_joints)
    start_walk_s = STAND_RAMP_S + cfg.settle_s
    end_s = start_walk_s + cfg.duration_s
    events = periodic_pushes(rng, start_walk_s + cfg.push_interval_s, end_s,
                             cfg.push_interval_s, cfg.push_velocity_m_s) if pushes else ()
    command = (case.vx_m_s, case.vy_m_s, case.wz_rad_s)
    episode = run_episode(runtime, sim, EpisodeSpec(
        command=command, start_walk_s=start_walk_s, end_s=end_s,
        init_joint_pos_rad=tuple(np.asarray(contract.default_pos_rad) + noise), pushes=events,
        fall_height_fraction=cfg.fall_height_fraction))
    if episode.fault:
        raise RuntimeError(f'{case.name}: controller left walking: {episode.fault}')
    metrics = episode_metrics(
        episode.trace, start_walk_s=start_walk_s, rise_s=cfg.rise_s, command=command,
        sample_dt_s=episode.sample_dt_s, gait_period_s=contract.gait_period_s,
        joint_names=contract.joint_names, total_mass_kg=episode.total_mass_kg,
        fell=episode.fell)
    return RunResult(
        command=case.name, seed=seed, pushes=pushes, fell=episode.fell,
        fall_time_s=episode.fall_time_s, **{k: metrics[k] for k in RESULT_METRICS},
        trace={k: episode.trace[k].tolist() for k in TRACE_KEYS})


def summarize(results: Sequence[RunResult]) -> Dict[str, Any]:
    """Aggregate per command and overall; return the report's summary section."""
    per_command: Dict[str, Dict[str, Any]] = {}
    for case in dict.fromkeys(r.command for r in results):
        runs = [r for r in results if r.command == case]
        ok = [{**{k: getattr(r, k) for k in RESULT_METRICS},
               'lin_vel_error_instant_m_s': math.hypot(r.vx_mae_instant_m_s,
                                                       r.vy_mae_instant_m_s)}
              for r in runs if not r.fell]
        per_command[case] = {'runs': len(runs), 'falls': sum(r.fell for r in runs),
                             **aggregate(ok, SUMMARY_METRICS)}
    lin = [c['lin_vel_error_m_s'] for c in per_command.values()]
    yaw = [c['yaw_rate_mae_rad_s'] for c in per_command.values()]
    falls = sum(c['falls'] for c in per_command.values())
    stand = per_command.get('stand', {}).get('planar_drift_m_s', float('nan'))
    overall = {
        'falls': falls, 'runs': len(results),
        'lin_vel_error_mean_m_s': float(np.mean(lin)), 'lin_vel_error_worst_m_s': float(max(lin)),
        'yaw_rate_error_mean_rad_s': float(np.mean(yaw)),
        'yaw_rate_error_worst_rad_s': float(max(yaw)), 'stand_drift_m_s': stand,
    }
    overall['meets_targets'] = bool(
        falls == 0 and overall['lin_vel_error_mean_m_s'] <= 0.10
        and overall['lin_vel_error_worst_m_s'] <= 0.15
        and overall['yaw_rate_error_worst_rad_s'] <= 0.15 and stand <= 0.05)
    return {'per_command': per_command, 'overall': overall}


def plot_report(results: Sequence[RunResult], out_dir: Path) -> List[Path]:
    """Save commanded-vs-actual velocity plots and top-down trajectories; return the paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    shown = [r for r in results if r.seed == 0 and not r.pushes] or list(results)
    cases = list(dict.fromkeys(r.command for r in shown))
    fig, axes = plt.subplots(len(cases), 3, figsize=(13, 2.2 * len(cases)), squeeze=False)
    for row, case in zip(axes, cases):
        r = next(x for x in shown if x.command == case)
        t = np.asarray(r.trace['t'])
        for ax, (key, ckey, label) in zip(row, (('vx', 'cvx', 'vx [m/s]'),
                                                ('vy', 'cvy', 'vy [m/s]'),
                                                ('wz', 'cwz', 'yaw rate [rad/s]'))):
            ax.plot(t, r.trace[key], lw=0.8, label='measured (body frame)')
            ax.plot(t, r.trace[ckey], 'k--', lw=1.0, label='command')
            ax.set_ylabel(label)
            ax.set_title(f'{case}' + (' (fell)' if r.fell else ''), fontsize=9)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel('time [s]')
    fig.tight_layout()
    tracking = out_dir / 'tracking.png'
    fig.savefig(tracking, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 7))
    for r in results:
        style = '-' if not r.pushes else ':'
        ax.plot(r.trace['x'], r.trace['y'], style, lw=0.8,
                label=f'{r.command} s{r.seed}{" push" if r.pushes else ""}'
                if r.seed == 0 else None)
    ax.set_aspect('equal')
    ax.set_xlabel('x [m]')
    ax.set_ylabel('y [m]')
    ax.set_title('Top-down base trajectories (dotted: with pushes)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    traj = out_dir / 'trajectories.png'
    fig.savefig(traj, dpi=110)
    plt.close(fig)
    return [tracking, traj]


def record_video(runtime: PolicyRuntime, sim: MujocoRobotSim, out_path: Path,
                 case: CommandCase, seconds: float = 6.0, fps: int = 15) -> Path:
    """Render ``case`` offscreen to an animated GIF (needs MUJOCO_GL=egl or osmesa)."""
    from PIL import Image

    contract = runtime.contract
    sim.reset()
    controller = Controller(contract, runtime.act, ControllerConfig(stand_ramp_s=0.2))
    frames = []
    every = max(1, int(round(1.0 / (fps * contract.physics_dt_s))))
    for i in range(int(seconds / contract.physics_dt_s)):
        now = i * contract.physics_dt_s
        controller.update_joint_state(contract.joint_names, sim.joint_pos_rad,
                                      sim.joint_vel_rad_s, now)
        controller.update_odom(sim.base_quat_wxyz, sim.base_lin_vel_body_m_s,
                               sim.base_ang_vel_body_rad_s, now)
        if i == 0:
            controller.activate(now)
            controller.request_walk(now)
        controller.update_cmd_vel(case.vx_m_s, case.vy_m_s, case.wz_rad_s, now)
        sim.step(controller.step(now))
        if i % every == 0:
            frames.append(Image.fromarray(sim.render_rgb(360, 270)))
    frames[0].save(out_path, save_all=True, append_images=frames[1:],
                   duration=int(1000 / fps), loop=0)
    return out_path


def evaluate(contract_path: Path, cfg: EvalConfig, out_dir: Optional[Path],
             cases: Sequence[CommandCase] = SUITE, video: bool = False,
             robot_path: Optional[Path] = None) -> Dict[str, Any]:
    """
    Run the suite; write the JSON report and plots into ``out_dir``; return the report.

    The robot is the contract's, looked up under ``models/robots/``, unless ``robot_path``
    (a robot folder or robot.yaml) names one elsewhere.
    """
    runtime = PolicyRuntime.load(contract_path)
    robot = load_robot(robot_path if robot_path is not None else runtime.contract.robot)
    if robot.name != runtime.contract.robot:
        raise ValueError(f'the policy was trained for robot {runtime.contract.robot!r}, '
                         f'but {robot_path} describes {robot.name!r}')
    if tuple(robot.joint_names) != tuple(runtime.contract.joint_names):
        raise ValueError(f'robot {robot.name!r} joints {list(robot.joint_names)} differ from '
                         f'the joints of the contract {list(runtime.contract.joint_names)}')
    sim = MujocoRobotSim(robot, runtime.contract.physics_dt_s)
    results: List[RunResult] = []
    jobs = [(c, s, p) for c in cases for s in range(cfg.seeds) for p in cfg.pushes]
    start = time.perf_counter()
    for k, (case, seed, pushes) in enumerate(jobs, 1):
        r = run_case(runtime, sim, case, seed, pushes, cfg)
        results.append(r)
        elapsed = time.perf_counter() - start
        eta = elapsed / k * (len(jobs) - k)
        print(f'[eval {k}/{len(jobs)}] {case.name:14s} seed {seed} push {int(pushes)}: '
              f'{"FELL at %.1f s" % r.fall_time_s if r.fell else "ok"} | lin err '
              f'{r.lin_vel_error_m_s:.3f} m/s | yaw err {r.yaw_rate_mae_rad_s:.3f} rad/s | '
              f'effort {r.effort_share_mean:.2f} | ETA {eta:.0f} s', flush=True)
    report = {
        'policy': str(contract_path), 'robot': robot.name,
        'config': asdict(cfg), 'suite': [asdict(c) for c in cases],
        'metric_note': ('Errors are mean absolute errors after the rise time on the base '
                        'velocity averaged over one gait period; *_instant_* use raw '
                        'samples. lin_vel_error is the planar norm of the vx and vy errors.'),
        **summarize(results),
        'runs': [{k: v for k, v in asdict(r).items() if k != 'trace'} for r in results],
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / 'eval_report.json').write_text(json.dumps(report, indent=1))
        report['plots'] = [str(p) for p in plot_report(results, out_dir)]
        if video:
            report['video'] = str(record_video(runtime, sim, out_dir / 'walk.gif', SUITE[6]))
    return report


QUICK = EvalConfig(duration_s=3.0, seeds=1, pushes=(False,), rise_s=1.0)
"""The suite settings of ``--quick``."""


@dataclass
class EvalCommand:
    """Command line of ``python -m training.evaluate``."""

    contract: tyro.conf.Positional[Path]
    """Policy contract (models/<name>.yaml); its ONNX file is named inside."""
    out: Path = Path('eval_output')
    """Folder receiving eval_report.json, tracking.png and trajectories.png."""
    robot: Optional[Path] = None
    """Robot folder or robot.yaml; None: the contract's robot, under models/robots/."""
    quick: bool = False
    """Smoke run (CI): 3 s per command, 1 seed, no pushes, 1 s rise; replaces the suite options."""
    video: bool = False
    """Also write walk.gif (headless rendering needs MUJOCO_GL=egl or osmesa)."""
    suite: Annotated[EvalConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=EvalConfig)
    """How the suite is run."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; exit status 0 when the policy meets the targets."""
    args = tyro.cli(EvalCommand, args=argv, prog='python -m training.evaluate',
                    description='Sim-to-sim evaluation of an exported policy (ONNX + contract) '
                                'in CPU MuJoCo, through the controller code of the policy node.')
    cfg = QUICK if args.quick else args.suite
    report = evaluate(args.contract, cfg, args.out, video=args.video, robot_path=args.robot)
    print(json.dumps(report['overall'], indent=1))
    for name, row in report['per_command'].items():
        print(f'{name:14s} falls {row["falls"]}/{row["runs"]} lin {row["lin_vel_error_m_s"]:.3f}'
              f' m/s yaw {row["yaw_rate_mae_rad_s"]:.3f} rad/s drift '
              f'{row["planar_drift_m_s"]:.3f} m/s effort {row["effort_share_mean"]:.2f}')
    return 0 if report['overall']['meets_targets'] else 1


if __name__ == '__main__':
    sys.exit(main())
