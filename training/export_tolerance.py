"""
The action delay a policy tolerates, read from a robustness report of that very policy.

:func:`delay_tolerance_from_report` turns the latency scenarios of a ``python -m
training.robustness`` report into the contract's ``training.action_delay_tolerance``: the
delays tried with the PD law in the node (``latency_<ms>ms``, ``drive`` ``node``) and in the
joint drive (``latency_joint_pd_<ms>ms``, ``drive`` ``joint``), with the episodes and falls at
each, and where the figures came from. The suite records the SHA-256 of the measured policy's
graph (weights included; the metadata, where the contract lives, left out) in its report; for
an older report that names its policy by path and code commit only,
:func:`report_policy_graph_sha256` reads that policy's ONNX at that commit from git and hashes
its graph. A report of another policy cannot be matched to a model.
Used by ``python -m training.export record-tolerance`` (:mod:`training.export`).
"""

import hashlib
from pathlib import Path
import re
import subprocess
from typing import Any, Dict, List, Mapping, Union

from humanoid_rl_ros.core.contract import (ActionDelayTolerance, contract_from_dict,
                                           DelaySource, DelayTolerance, DelayTrial, PD_IN_DRIVE,
                                           PD_IN_NODE)
import yaml

LATENCY_FAMILY = 'latency'
"""The report's scenario family whose scenarios vary the delay."""

DRIVE_TO_PD_LOCATION = {'node': PD_IN_NODE, 'joint': PD_IN_DRIVE}
"""A latency scenario's ``config.loop.drive`` and where it puts the PD law."""


class ReportMismatch(ValueError):
    """A robustness report that cannot be applied to the model (another policy, no latency)."""


def graph_sha256(onnx_model: Union[bytes, str, Path]) -> str:
    """Return the SHA-256 of an ONNX model's serialized graph (file path or file bytes)."""
    import onnx
    model = (onnx.load_from_string(onnx_model) if isinstance(onnx_model, bytes)
             else onnx.load(str(onnx_model)))
    return hashlib.sha256(model.graph.SerializeToString()).hexdigest()


def _git_show(repo_root: Path, commit: str, path: str) -> bytes:
    done = subprocess.run(['git', '-C', str(repo_root), 'show', f'{commit}:{path}'],
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise ReportMismatch(f'cannot read {path} at commit {commit} from the git history of '
                             f'{repo_root}: {done.stderr.decode(errors="replace").strip()}')
    return done.stdout


def report_policy_graph_sha256(report: Mapping[str, Any], repo_root: Union[str, Path]) -> str:
    """
    Return the graph SHA-256 of the policy a report measured.

    A report that records it (``policy_graph_sha256``, written by the suite) gives it; an
    older report names only its policy and commit, so the graph is read from git: the
    report's ``policy`` (its contract YAML or ONNX, relative to the checkout) at its
    ``commit``; refused (:class:`ReportMismatch`) for a report made outside git or from a
    checkout with changes (``-dirty``), where the file measured is not in the history.
    """
    recorded = report.get('policy_graph_sha256')
    if recorded is not None:
        if not (isinstance(recorded, str) and re.fullmatch('[0-9a-f]{64}', recorded)):
            raise ReportMismatch(f'policy_graph_sha256 {recorded!r} of the report is not a '
                                 'SHA-256 in hex')
        return recorded
    repo_root = Path(repo_root).resolve()
    commit, policy = str(report.get('commit', '')), str(report.get('policy', ''))
    if not commit or commit == 'unknown' or commit.endswith('-dirty'):
        raise ReportMismatch(f'the report was made at commit {commit!r}: outside git or with '
                             'uncommitted changes, so the policy it measured cannot be '
                             'identified; run the suite again from a clean checkout')
    if not policy:
        raise ReportMismatch('the report does not name the policy it measured')
    path = Path(policy)
    if path.is_absolute():
        if not path.is_relative_to(repo_root):
            raise ReportMismatch(f'the report measured {policy}, outside {repo_root}: its '
                                 'file cannot be read from this git history')
        path = path.relative_to(repo_root)
    if path.suffix != '.onnx':
        document = yaml.safe_load(_git_show(repo_root, commit, path.as_posix()))
        path = path.parent / contract_from_dict(document).onnx_file
    return graph_sha256(_git_show(repo_root, commit, path.as_posix()))


def delay_tolerance_from_report(report: Mapping[str, Any], policy_graph_sha256: str,
                                report_name: str) -> ActionDelayTolerance:
    """
    Return the measured delay tolerance of the report's latency scenarios.

    Each scenario of family ``latency`` gives one delay tried (``config.loop.latency_s``)
    with the PD law where its ``config.loop.drive`` runs it, with its episodes and falls.
    ``policy_graph_sha256`` and ``report_name`` go into the source. Raise
    :class:`ReportMismatch` for a report without latency scenarios, with an unknown drive,
    with a delay tried twice, or with a scenario that ran no episode.
    """
    tried: Dict[str, List[DelayTrial]] = {PD_IN_NODE: [], PD_IN_DRIVE: []}
    for name, row in report.get('scenarios', {}).items():
        if row.get('family') != LATENCY_FAMILY:
            continue
        loop = row['config']['loop']
        drive = loop['drive']
        if drive not in DRIVE_TO_PD_LOCATION:
            raise ReportMismatch(f'scenario {name}: unknown drive {drive!r} (this code knows '
                                 f'{sorted(DRIVE_TO_PD_LOCATION)})')
        if not row['runs']:
            raise ReportMismatch(f'scenario {name} ran no episode')
        tried[DRIVE_TO_PD_LOCATION[drive]].append(DelayTrial(
            delay_s=float(loop['latency_s']), episodes=int(row['runs']),
            falls=int(row['falls'])))
    places = {}
    for place, trials in tried.items():
        trials.sort(key=lambda t: t.delay_s)
        delays = [t.delay_s for t in trials]
        if len(set(delays)) != len(delays):
            raise ReportMismatch(f'the report tries a delay twice with the PD law {place}: '
                                 f'{delays}')
        places[place] = DelayTolerance(tried=tuple(trials)) if trials else None
    if all(p is None for p in places.values()):
        raise ReportMismatch(f'the report has no scenario of family {LATENCY_FAMILY!r}: run the '
                             'suite with its latency scenarios')
    return ActionDelayTolerance(
        pd_in_node=places[PD_IN_NODE], pd_in_drive=places[PD_IN_DRIVE],
        source=DelaySource(
            suite=str(report['suite']), created_utc=str(report['created_utc']),
            commit=str(report['commit']), command_line=str(report['command_line']),
            report=report_name, policy_graph_sha256=policy_graph_sha256))
