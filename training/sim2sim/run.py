r"""
Sim-to-sim in a second physics engine: ONNX + contract on PyBullet (or MuJoCo, for reference).

Usage::

    python -m training.sim2sim models/humanoid_walk.yaml --engine pybullet --out sim2sim_out
    python -m training.sim2sim models/humanoid_walk.yaml --engine mujoco --out sim2sim_mujoco
    python -m training.sim2sim models/humanoid_walk.yaml --pybullet.substeps 4 \
        --pybullet.solver-iterations 200 --seeds 2 --pushes False

Each run goes through the deployment code path and the evaluator's own functions: the policy
node's :class:`~humanoid_rl_ros.core.controller.Controller` with the onnxruntime policy, the
command cases of :data:`training.evaluate.SUITE`, one run per command, seed and push setting by
:func:`training.evaluate.run_case` (which only needs a simulator with MujocoRobotSim's
interface), and the metrics and plots of :func:`training.evaluate.summarize` and
:func:`training.evaluate.plot_report`. Only the engine differs: PyBullet's rigid contacts and
sequential-impulse solver instead of MuJoCo's soft convex contacts (see
:mod:`training.sim2sim.pybullet_sim` for the model and how rotor inertia is carried over).

Writes ``sim2sim_report.json``, ``tracking.png`` and ``trajectories.png`` into ``--out``. The
exit status is 0 when the policy meets the sim-to-sim target: no fall, and on every command a
planar velocity error and a yaw rate error of at most 0.15 (m/s, rad/s).
"""

from dataclasses import asdict, dataclass, field
import importlib.metadata
import json
import os
from pathlib import Path
import platform
import shlex
import sys
import time
from typing import Annotated, Any, Dict, List, Literal, Optional, Sequence, Tuple

from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.sim.mujoco_sim import MujocoRobotSim
from training.evaluate import (CommandCase, EvalConfig, plot_report, run_case, RunResult,
                               SUITE, summarize)
from training.sim2sim.pybullet_sim import PyBulletConfig, PyBulletRobotSim
import tyro

TARGET_LIN_VEL_ERROR_M_S = 0.15
"""Sim-to-sim target: largest per-command planar velocity error [m/s]."""
TARGET_YAW_RATE_ERROR_RAD_S = 0.15
"""Sim-to-sim target: largest per-command yaw rate error [rad/s]."""
DEFAULT_COMMANDS = ('stand', 'forward_0.5', 'turn_0.8')
"""The nominal commands of the sim-to-sim check (names from :data:`training.evaluate.SUITE`)."""


def _default_eval_config() -> EvalConfig:
    return EvalConfig(duration_s=15.0, seeds=3, pushes=(False, True))


@dataclass
class Sim2SimArgs:
    """Run the policy through its contract on a second physics engine."""

    contract: tyro.conf.Positional[Path]
    """Policy contract (models/<name>.yaml)."""
    engine: Literal['pybullet', 'mujoco'] = 'pybullet'
    """Physics engine (mujoco runs the same cases on CPU MuJoCo, for reference)."""
    out: Optional[Path] = Path('sim2sim_output')
    """Folder for sim2sim_report.json and the plots (None: write nothing)."""
    robot: Optional[Path] = None
    """Robot folder or robot.yaml (default: the contract's robot under models/robots/)."""
    commands: Tuple[str, ...] = DEFAULT_COMMANDS
    """Command cases to run, by name from the evaluator's suite."""
    suite: Annotated[EvalConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=_default_eval_config)
    """Durations, seeds, pushes and fall threshold (the evaluator's settings)."""
    pybullet: PyBulletConfig = field(default_factory=PyBulletConfig)
    """PyBullet engine settings (ignored with --engine mujoco)."""


def select_cases(names: Sequence[str]) -> Tuple[CommandCase, ...]:
    """Return the suite's cases named ``names`` (in that order); ValueError names unknown ones."""
    by_name = {case.name: case for case in SUITE}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f'unknown commands {unknown}; the suite has {list(by_name)}')
    return tuple(by_name[n] for n in names)


def sim2sim_target(summary: Dict[str, Any]) -> Dict[str, Any]:
    """Return the sim-to-sim target, the worst figures and whether they meet it."""
    rows = summary['per_command'].values()
    lin = max(row['lin_vel_error_m_s'] for row in rows)
    yaw = max(row['yaw_rate_mae_rad_s'] for row in rows)
    falls = summary['overall']['falls']
    return {
        'lin_vel_error_max_m_s': TARGET_LIN_VEL_ERROR_M_S,
        'yaw_rate_error_max_rad_s': TARGET_YAW_RATE_ERROR_RAD_S,
        'falls': falls, 'worst_lin_vel_error_m_s': lin, 'worst_yaw_rate_error_rad_s': yaw,
        # NaN errors (a fall) compare False, so they fail the target
        'met': bool(falls == 0 and lin <= TARGET_LIN_VEL_ERROR_M_S
                    and yaw <= TARGET_YAW_RATE_ERROR_RAD_S),
    }


def _engine_info(engine: str, sim: Any, settings: PyBulletConfig) -> Dict[str, Any]:
    if engine == 'mujoco':
        return {'name': 'mujoco', 'version': importlib.metadata.version('mujoco'),
                'timestep_s': sim.timestep_s}
    return {'name': 'pybullet', 'version': importlib.metadata.version('pybullet'),
            'timestep_s': sim.timestep_s, 'settings': asdict(settings),
            'parameters': sim.engine_parameters(), 'rotor_joints': list(sim.rotor_joints)}


def run_sim2sim(contract_path: Path, engine: str = 'pybullet',
                cfg: Optional[EvalConfig] = None,
                cases: Sequence[CommandCase] = select_cases(DEFAULT_COMMANDS),
                out_dir: Optional[Path] = None, robot_path: Optional[Path] = None,
                pybullet_cfg: PyBulletConfig = PyBulletConfig()) -> Dict[str, Any]:
    """
    Run ``cases`` on ``engine`` through the deployment path; return (and save) the report.

    With ``out_dir`` the report is written to ``sim2sim_report.json`` beside the evaluator's
    tracking and trajectory plots.
    """
    cfg = _default_eval_config() if cfg is None else cfg
    runtime = PolicyRuntime.load(contract_path)
    contract = runtime.contract
    robot = load_robot(robot_path if robot_path is not None else contract.robot)
    if robot.name != contract.robot:
        raise ValueError(f'the policy was trained for robot {contract.robot!r}, '
                         f'but {robot_path} describes {robot.name!r}')
    if tuple(robot.joint_names) != tuple(contract.joint_names):
        raise ValueError(f'robot {robot.name!r} joints {list(robot.joint_names)} differ from '
                         f'the joints of the contract {list(contract.joint_names)}')
    if engine == 'pybullet':
        sim: Any = PyBulletRobotSim(robot, contract.physics_dt_s, pybullet_cfg)
    elif engine == 'mujoco':
        sim = MujocoRobotSim(robot, contract.physics_dt_s)
    else:
        raise ValueError(f"engine must be 'pybullet' or 'mujoco', got {engine!r}")
    results: List[RunResult] = []
    extras: List[Dict[str, Any]] = []
    jobs = [(c, s, p) for c in cases for s in range(cfg.seeds) for p in cfg.pushes]
    start = time.perf_counter()
    try:
        for k, (case, seed, pushes) in enumerate(jobs, 1):
            began = time.perf_counter()
            r = run_case(runtime, sim, case, seed, pushes, cfg)
            results.append(r)
            extra = {'wall_time_s': time.perf_counter() - began}
            if engine == 'pybullet' and sim.rotor_joints:
                extra['max_gear_slip_rad_s'] = sim.max_gear_slip_rad_s
            extras.append(extra)
            print(f'[sim2sim {engine} {k}/{len(jobs)}] {case.name:12s} seed {seed} push '
                  f'{int(pushes)}: {"FELL at %.2f s" % r.fall_time_s if r.fell else "ok"} | '
                  f'lin err {r.lin_vel_error_m_s:.3f} m/s | yaw err '
                  f'{r.yaw_rate_mae_rad_s:.3f} rad/s | {extra["wall_time_s"]:.1f} s',
                  flush=True)
        info = _engine_info(engine, sim, pybullet_cfg)
    finally:
        if hasattr(sim, 'close'):
            sim.close()
    summary = summarize(results)
    report: Dict[str, Any] = {
        'policy': str(contract_path), 'robot': robot.name, 'engine': info,
        'physics_dt_s': contract.physics_dt_s, 'config': asdict(cfg),
        'suite': [asdict(c) for c in cases],
        'metric_note': ('Metrics of training.evaluate: errors are mean absolute errors after '
                        'the rise time on the base velocity averaged over one gait period; '
                        'lin_vel_error is the planar norm of the vx and vy errors. The '
                        "overall 'meets_targets' is the evaluator's stricter MuJoCo target; "
                        "'sim2sim_target' is this check's."),
        'sim2sim_target': sim2sim_target(summary),
        **summary,
        'runs': [{**{k: v for k, v in asdict(r).items() if k != 'trace'}, **e}
                 for r, e in zip(results, extras)],
        'wall_time_s': time.perf_counter() - start,
        'machine': {'python': platform.python_version(), 'platform': platform.platform(),
                    'processor': platform.processor() or platform.machine(),
                    'cpu_count': os.cpu_count()},
        'command': 'python -m training.sim2sim ' + ' '.join(shlex.quote(a)
                                                            for a in sys.argv[1:]),
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / 'sim2sim_report.json').write_text(json.dumps(report, indent=1))
        report['plots'] = [str(p) for p in plot_report(results, out_dir)]
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; exit status 0 when the policy meets the sim-to-sim target."""
    args = tyro.cli(Sim2SimArgs, args=argv, prog='python -m training.sim2sim',
                    description=__doc__)
    report = run_sim2sim(args.contract, args.engine, args.suite,
                         select_cases(args.commands), args.out, args.robot, args.pybullet)
    for name, row in report['per_command'].items():
        print(f'{name:12s} falls {row["falls"]}/{row["runs"]} lin {row["lin_vel_error_m_s"]:.3f}'
              f' m/s yaw {row["yaw_rate_mae_rad_s"]:.3f} rad/s drift '
              f'{row["planar_drift_m_s"]:.3f} m/s effort {row["effort_share_mean"]:.2f}')
    target = report['sim2sim_target']
    print(json.dumps(target, indent=1))
    return 0 if target['met'] else 1
