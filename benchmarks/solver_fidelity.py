#!/usr/bin/env python3
r"""
A policy's robustness scenarios with the robot model's solver limits and with capped ones.

Is a capped constraint solver still the same robot?  Both run in CPU MuJoCo, side by side.

MuJoCo Warp iterates its constraint solver until every one of thousands of worlds has
converged, so with joint dry friction and rough ground the slowest world sets 8-10 iterations
per physics step for all of them (flat ground without randomization: 2).  Training can cap the
solver (``EnvConfig.solver_iterations``); this script measures what the cap changes in the
closed loop: the same exported policy, through the policy node's controller, in the
robustness suite's scenarios (same seeds, pushes and terrain), once with the reference limits
and once capped, both with the same dry friction on every joint (the frictionloss rows that
make the solver iterate; training randomizes 0-1 N*m)::

    python benchmarks/solver_fidelity.py --out benchmarks/solver_fidelity.json

Per scenario and setting: falls, mean and worst tracking error, and the figures of the
scenario's checks (slope speed error, push fall rate, ...); the JSON has both settings' full
scenario summaries.  Also, for the nominal scenario, the share of physics steps that took
each number of solver iterations under both settings (how often the cap binds).  The two runs
differ only in the solver, so differences are the cap's, amplified by the chaos of a walking
robot (a different contact force at one step gives a different trajectory).

With ``--sole-spheres`` a third setting runs the reference solver with the feet touching the
ground through spheres on their soles (training's ``env.foot_collision='sole_spheres'``, which
spares MuJoCo Warp its box-against-heightfield collision test): is that still the same robot?
With ``--ccd ITERATIONS:TOLERANCE_M`` another setting runs the reference solver with the
convex collision test (GJK/EPA, also MuJoCo's test of a foot box against a heightfield)
limited so (training's ``env.ccd_iterations`` / ``env.ccd_tolerance``).
"""

from collections import Counter
from dataclasses import dataclass, replace
import datetime
import json
import os
from pathlib import Path
import platform
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from humanoid_rl_ros.core.policy_runtime import PolicyRuntime  # noqa: E402
from humanoid_rl_ros.core.provenance import git_commit  # noqa: E402
from humanoid_rl_ros.robot.description import load_robot  # noqa: E402
from humanoid_rl_ros.robot.mujoco_model import (parse_collision_accuracy,  # noqa: E402
                                                SOLVER_ITERATIONS, SOLVER_LS_ITERATIONS)
from training.robustness.episode import run_episode  # noqa: E402
from training.robustness.perturbations import build_sim  # noqa: E402
from training.robustness.report import scenario_summary  # noqa: E402
from training.robustness.runner import job_spec, jobs_of, run_scenarios  # noqa: E402
from training.robustness.scenarios import Scenario, suite, Targets  # noqa: E402
import tyro  # noqa: E402


@dataclass
class FidelityConfig:
    """What the comparison runs, and where it writes the figures."""

    out: Path
    """Path of the JSON results file."""
    policy: Path = REPO_ROOT / 'models' / 'humanoid_walk.yaml'
    """Exported policy: contract YAML (its ONNX beside it)."""
    scenarios: Tuple[str, ...] = ('nominal', 'push_stand_1.0', 'push_walk_1.0',
                                  'slope_up_5deg', 'rough_4cm')
    """Scenarios of the full robustness suite to run under both settings."""
    joint_friction_nm: float = 0.7
    """Dry friction of every joint in both settings [N*m] (0: none)."""
    capped: Tuple[int, int] = (4, 8)
    """Solver iterations and line search iterations of the capped setting."""
    reference: Tuple[int, int] = (SOLVER_ITERATIONS, SOLVER_LS_ITERATIONS)
    """Solver iterations and line search iterations of the reference (the robot model's)."""
    sole_spheres: bool = False
    """Also run a third setting, ``sole_spheres``: the reference solver with the feet touching
    the ground through spheres on their soles (``env.foot_collision='sole_spheres'``)."""
    ccd: Optional[str] = None
    """Also run a setting ``ccd``: the reference solver with the convex collision test
    limited to ``ITERATIONS:TOLERANCE_M`` (training's ``env.ccd_iterations`` /
    ``env.ccd_tolerance``); None: not run."""
    workers: int = 2
    """Processes running the episodes."""


def with_solver(scenarios: Sequence[Scenario], iterations: int, ls_iterations: int,
                joint_friction_nm: float, sole_spheres: bool = False,
                ccd: Tuple[Optional[int], Optional[float]] = (None, None)) -> List[Scenario]:
    """
    Return ``scenarios`` with the solver limits, joint friction and feet set in their model.

    ``ccd``: the convex collision test's iterations and tolerance [m] (None: the model's).
    """
    return [replace(s, model=replace(s.model, solver_iterations=iterations,
                                     solver_ls_iterations=ls_iterations,
                                     joint_friction_nm=joint_friction_nm,
                                     sole_spheres=sole_spheres, ccd_iterations=ccd[0],
                                     ccd_tolerance=ccd[1]))
            for s in scenarios]


def headline(summary: Dict[str, Any]) -> Dict[str, Any]:
    """Return the figures compared side by side from a scenario summary."""
    row = {'falls': summary['falls'], 'runs': summary['runs'],
           'lin_vel_error_mean_m_s': summary['tracking']['lin_vel_error_mean_m_s'],
           'lin_vel_error_worst_m_s': summary['tracking']['lin_vel_error_worst_m_s'],
           'yaw_rate_error_worst_rad_s': summary['tracking']['yaw_rate_error_worst_rad_s']}
    for check in summary['checks']:  # the suite's own figures (slope speed, follow ratio...)
        if check['check'] not in row and check['value'] is not None:
            row[check['check']] = check['value']
    return row


class _CountingSim:
    """A simulator that counts the solver iterations of every physics step it takes."""

    def __init__(self, sim: Any, counts: Counter) -> None:
        self._sim, self._counts = sim, counts

    def step(self, effort_nm: Any) -> None:
        self._sim.step(effort_nm)
        self._counts[int(self._sim.data.solver_niter[0])] += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sim, name)


def solver_iteration_shares(policy: Path, scenario: Scenario) -> Dict[int, float]:
    """
    Return the share of physics steps that took each number of solver iterations.

    Every command of ``scenario`` with its first seed, in this process; a share at the
    scenario's cap is how often the cap stopped the solver.
    """
    runtime = PolicyRuntime.load(policy)
    robot = load_robot(runtime.contract.robot)
    counts: Counter = Counter()
    for job in jobs_of([replace(scenario, seeds=1)]):
        sim = build_sim(robot, runtime.contract.physics_dt_s, scenario.model)
        run_episode(runtime, _CountingSim(sim, counts), job_spec(job, runtime.contract))
    total = sum(counts.values())
    return {n: round(c / total, 4) for n, c in sorted(counts.items())}


def run(args: FidelityConfig, progress=print) -> Dict[str, Any]:
    """Run both settings; return (and write) the comparison."""
    known = {s.name: s for s in suite('full')}
    unknown = [n for n in args.scenarios if n not in known]
    if unknown:
        raise ValueError(f'unknown scenarios {unknown}; the full suite has {sorted(known)}')
    chosen = [known[n] for n in args.scenarios]
    none = (None, None)
    settings = {'reference': (*args.reference, False, none),
                'capped': (*args.capped, False, none)}
    if args.sole_spheres:
        settings['sole_spheres'] = (*args.reference, True, none)
    if args.ccd is not None:
        settings['ccd'] = (*args.reference, False, parse_collision_accuracy(args.ccd))
    out: Dict[str, Any] = {
        'policy': os.path.relpath(args.policy, REPO_ROOT)
        if Path(args.policy).resolve().is_relative_to(REPO_ROOT) else str(args.policy),
        'joint_friction_nm': args.joint_friction_nm,
        'settings': {k: {'iterations': v[0], 'ls_iterations': v[1], 'sole_spheres': v[2],
                         'ccd_iterations': v[3][0], 'ccd_tolerance': v[3][1]}
                     for k, v in settings.items()},
        'commit': git_commit(REPO_ROOT),
        'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'machine': {'platform': platform.platform(), 'cpus': os.cpu_count()},
        'command_line': ' '.join(['python benchmarks/solver_fidelity.py'] + sys.argv[1:]),
        'scenarios': {}, 'summaries': {}}
    for label, (iterations, ls_iterations, spheres, ccd) in settings.items():
        scenarios = with_solver(chosen, iterations, ls_iterations, args.joint_friction_nm,
                                spheres, ccd)
        start = time.perf_counter()
        records = run_scenarios(Path(args.policy), scenarios, workers=args.workers,
                                progress=progress)
        out[f'{label}_wall_s'] = round(time.perf_counter() - start, 1)
        for scenario in scenarios:
            mine = [r for r in records if r.scenario == scenario.name]
            summary = scenario_summary(scenario, mine, Targets())
            out['summaries'].setdefault(scenario.name, {})[label] = summary
            out['scenarios'].setdefault(scenario.name, {})[label] = headline(summary)
        nominal = with_solver([known['nominal']], iterations, ls_iterations,
                              args.joint_friction_nm, spheres, ccd)[0]
        out['settings'][label]['iteration_shares_nominal'] = solver_iteration_shares(
            Path(args.policy), nominal)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=float))
    return out


def table(result: Dict[str, Any]) -> str:
    """Return the comparison as a Markdown table."""
    labels = list(result['settings'])
    lines = ['| scenario | figure | ' + ' | '.join(labels) + ' |',
             '|---|---|' + '---|' * len(labels)]
    for name, row in result['scenarios'].items():
        for key in row['reference']:
            if key == 'runs':
                continue
            values = ' | '.join(_fmt(row[label].get(key)) for label in labels)
            lines.append(f'| {name} | {key} | {values} |')
    return '\n'.join(lines)


def _fmt(value: Any) -> str:
    return f'{value:.3f}' if isinstance(value, float) else f'{value}'


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the options, run the comparison and print its table."""
    args = tyro.cli(FidelityConfig, args=argv, prog='python benchmarks/solver_fidelity.py',
                    description=__doc__.split('\n\n')[0].strip())
    result = run(args)
    ref, cap = args.reference, args.capped
    print(f'solver {ref[0]}/{ref[1]} (reference) vs {cap[0]}/{cap[1]} (capped), joint '
          f'friction {args.joint_friction_nm} N*m:')
    print(table(result))
    for label, setting in result['settings'].items():
        print(f'{label}: share of physics steps by solver iterations (nominal, first seed): '
              f'{setting["iteration_shares_nominal"]}')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
