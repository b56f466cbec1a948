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

The graph alone does not decide what was measured: the contract fields the controller runs the
graph with (joints, default pose, action scale and clip, PD gains, effort limits, observation
terms with their scales, clip and history, the gait period, physics period and decimation, the
command ranges) can change without touching it. The suite records their fingerprint
(:func:`contract_fingerprint`: a SHA-256 per field) in its report, and
:func:`fingerprint_difference` names the fields in which a model's contract differs from it.
Used by ``python -m training.export record-tolerance`` (:mod:`training.export`).
"""

import dataclasses
import hashlib
import json
from pathlib import Path
import re
import subprocess
from typing import Any, Dict, List, Mapping, Sequence, Union

from humanoid_rl_ros.core.contract import (ActionDelayTolerance, contract_from_dict,
                                           DelaySource, DelayTolerance, DelayTrial,
                                           graph_sha256, PD_IN_DRIVE, PD_IN_NODE, plain_data,
                                           PolicyContract)
import yaml

LATENCY_FAMILY = 'latency'
"""The report's scenario family whose scenarios vary the delay."""

DRIVE_TO_PD_LOCATION = {'node': PD_IN_NODE, 'joint': PD_IN_DRIVE}
"""A latency scenario's ``config.loop.drive`` and where it puts the PD law."""

FINGERPRINT_KEY = 'policy_contract_fingerprint'
"""The report's field holding :func:`contract_fingerprint` of the policy it measured."""

FINGERPRINT_FIELDS = (
    'robot', 'joint_names', 'default_pos_rad', 'action_scale_rad', 'action_clip',
    'kp_nm_per_rad', 'kd_nms_per_rad', 'effort_limit_nm', 'obs_terms', 'obs_clip',
    'history_length', 'gait_period_s', 'physics_dt_s', 'decimation', 'commands')
"""
The :class:`PolicyContract` fields that decide how the graph is run (observation built, action
applied, PD law, timing, command clamp): what the measured behaviour depends on besides the
graph. Left out: the training section (``record-tolerance`` writes into it), provenance, file
and tensor names, and the facts the controller does not run on (limits, armature, the training
physics).
"""


class ReportMismatch(ValueError):
    """A robustness report that cannot be applied to the model (another policy, no latency)."""


def contract_fingerprint(contract: PolicyContract,
                         fields: Sequence[str] = FINGERPRINT_FIELDS) -> Dict[str, str]:
    """
    Return the SHA-256 of each of ``fields`` of ``contract``, by field name.

    A field's value is hashed as its canonical JSON (the contract's own plain data: tuples as
    lists, sections as mappings, floats as Python writes them, which reads back exactly).
    """
    return {name: hashlib.sha256(json.dumps(plain_data(getattr(contract, name)), sort_keys=True,
                                            separators=(',', ':')).encode()).hexdigest()
            for name in fields}


def fingerprint_difference(recorded: Any, contract: PolicyContract) -> List[str]:
    """
    Return the fields in which ``contract`` differs from a recorded fingerprint (empty: none).

    Compared over the fields the fingerprint records (a report of other code may record
    fewer or more of them). Raise :class:`ReportMismatch` for a fingerprint that is not a
    mapping of contract field names to SHA-256 hex digests.
    """
    known = {f.name for f in dataclasses.fields(PolicyContract)}
    if not isinstance(recorded, Mapping) or not recorded:
        raise ReportMismatch(f'{FINGERPRINT_KEY} {recorded!r} of the report is not a mapping of '
                             'contract fields to SHA-256 digests')
    for name, digest in recorded.items():
        if name not in known:
            raise ReportMismatch(f'{FINGERPRINT_KEY} of the report names {name!r}, not a field '
                                 'of the policy contract')
        if not (isinstance(digest, str) and re.fullmatch('[0-9a-f]{64}', digest)):
            raise ReportMismatch(f'{FINGERPRINT_KEY}.{name} {digest!r} of the report is not a '
                                 'SHA-256 in hex')
    mine = contract_fingerprint(contract, tuple(recorded))
    return [name for name, digest in recorded.items() if mine[name] != digest]


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
