"""
Command line of the robustness suite: ``python -m training.robustness <contract>``.

Usage (``--help`` lists every option)::

    python -m training.robustness models/humanoid_walk.yaml --out benchmarks/robustness
    python -m training.robustness models/humanoid_walk.yaml --suite ci --out /tmp/robustness
    python -m training.robustness models/humanoid_walk.yaml --only push_walk_1.5 slope_up_10deg

Writes ``robustness_report.json`` and the figures of :mod:`training.robustness.plots` into
``--out``. The exit status is 0 when every scenario passes its checks, 1 otherwise.
"""

from dataclasses import dataclass, field
import datetime
import importlib.metadata
import os
from pathlib import Path
import platform
import shlex
import sys
import time
from typing import Any, Dict, Literal, Optional, Sequence, Tuple

from humanoid_rl_ros.core.contract import read_contract
from humanoid_rl_ros.core.policy_runtime import resolve_policy_path
from humanoid_rl_ros.core.provenance import git_commit
from training.export_tolerance import contract_fingerprint, FINGERPRINT_KEY, graph_sha256
from training.robustness.plots import plot_report
from training.robustness.report import build_report, dumps_report
from training.robustness.runner import run_scenarios
from training.robustness.scenarios import Scenario, suite, Targets
import tyro

__all__ = ['main', 'RobustnessCommand', 'run_robustness']

REPO_ROOT = Path(__file__).resolve().parents[2]
REPORT_NAME = 'robustness_report.json'


@dataclass
class RobustnessCommand:
    """Command line of ``python -m training.robustness``."""

    contract: tyro.conf.Positional[Path]
    """Policy contract (models/<name>.yaml); its ONNX file is named inside."""
    out: Path = Path('robustness_output')
    """Folder receiving robustness_report.json and the figures."""
    suite: Literal['full', 'ci', 'idle_stand'] = 'full'
    """full: every scenario (a few minutes on 2 cores); ci: a couple per family, seconds each;
    idle_stand: standing and pushes with the controller's idle stand on (a controller option,
    not the policy alone)."""
    workers: int = 2
    """Worker processes (each runs whole episodes on one core); 1: in this process."""
    only: Tuple[str, ...] = ()
    """Run only these scenarios of the suite (by name); empty: all."""
    robot: Optional[Path] = None
    """Robot folder or robot.yaml; None: the contract's robot, under models/robots/."""
    plots: bool = True
    """Write the figures."""
    targets: Targets = field(default_factory=Targets)
    """What a robust policy achieves."""


def _versions() -> Dict[str, str]:
    out = {'python': platform.python_version()}
    for package in ('mujoco', 'onnxruntime', 'numpy'):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = 'missing'
    return out


def select(scenarios: Sequence[Scenario], only: Sequence[str],
           obs_terms: Sequence[str]) -> Tuple[Tuple[Scenario, ...], Dict[str, str]]:
    """Return the scenarios to run (``only``, if given) and the skipped ones with why."""
    names = [s.name for s in scenarios]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ValueError(f'unknown scenarios {unknown}; this suite has {names}')
    chosen = [s for s in scenarios if not only or s.name in only]
    skipped = {s.name: f'the policy does not observe {s.requires_term}' for s in chosen
               if s.requires_term and s.requires_term not in obs_terms}
    return tuple(s for s in chosen if s.name not in skipped), skipped


def run_robustness(contract_path: Path, out_dir: Optional[Path], suite_name: str = 'full',
                   workers: int = 2, only: Sequence[str] = (), robot_path: Optional[Path] = None,
                   targets: Targets = Targets(), plots: bool = True,
                   progress=print) -> Dict[str, Any]:
    """Run a suite on a policy; write the report (and figures) into ``out_dir``; return it."""
    contract_path = resolve_policy_path(contract_path)
    contract = read_contract(contract_path)
    scenarios, skipped = select(suite(suite_name), only, contract.term_names())
    start = time.perf_counter()
    records = run_scenarios(contract_path, scenarios, workers=workers, robot_path=robot_path,
                            progress=progress)
    meta = {
        'policy': os.path.relpath(contract_path, REPO_ROOT)
        if contract_path.is_relative_to(REPO_ROOT) else str(contract_path),
        'policy_graph_sha256': graph_sha256(contract.onnx_path(contract_path)),
        FINGERPRINT_KEY: contract_fingerprint(contract),
        'robot': contract.robot, 'suite': suite_name,
        'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        'commit': git_commit(REPO_ROOT),
        'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                    'cpus': os.cpu_count(), **_versions()},
        'command_line': ' '.join(['python -m training.robustness']
                                 + [shlex.quote(a) for a in sys.argv[1:]]),
        'workers': workers, 'wall_time_s': round(time.perf_counter() - start, 1),
    }
    report = build_report(scenarios, records, targets, skipped, meta)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if plots:
            report['plots'] = plot_report(report, records, out_dir)
        (out_dir / REPORT_NAME).write_text(dumps_report(report))
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; exit status 0 when every scenario passes."""
    args = tyro.cli(RobustnessCommand, args=argv, prog='python -m training.robustness',
                    description='Robustness suite of an exported policy (ONNX + contract) in '
                                'CPU MuJoCo, through the controller code of the policy node.')
    report = run_robustness(args.contract, args.out, args.suite, args.workers, args.only,
                            args.robot, args.targets, args.plots)
    for name, row in report['scenarios'].items():
        figures = ', '.join(f'{c["check"]} {c["value"] if c["value"] is not None else "n/a"}'
                            for c in row['checks'])
        print(f'{"PASS" if row["passed"] else "FAIL"} {name:24s} {figures}')
    summary = report['summary']
    print(f'{summary["passed"]}/{summary["scenarios"]} scenarios pass; report in '
          f'{args.out / REPORT_NAME}')
    return 0 if not summary['failed'] else 1


if __name__ == '__main__':
    sys.exit(main())
