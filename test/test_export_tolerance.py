"""
``python -m training.export record-tolerance``: a robustness report's delays into the contract.

The policies live in a throw-away git repository, because a report names its policy by path
and commit only: the writer reads that policy from git and compares graphs. A report that
records the fingerprint of the contract fields its policy ran with must match the model's
contract in them too.
"""

import dataclasses
import json
from pathlib import Path
import shutil
import subprocess

from humanoid_rl_ros.core.contract import (ONNX_METADATA_KEY, PolicyContract, read_contract,
                                           YAML_HEADER)
import numpy as np
import onnx
import onnxruntime as ort
from policy_fixtures import make_random_policy
import pytest
from training.export import record_delay_tolerance, write_policy_contract
from training.export_tolerance import (contract_fingerprint, FINGERPRINT_FIELDS,
                                       FINGERPRINT_KEY, graph_sha256, ReportMismatch)
from training.robustness import cli as robustness_cli

pytestmark = pytest.mark.skipif(shutil.which('git') is None, reason='needs git')


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(['git', '-C', str(repo), '-c', 'user.name=test', '-c',
                           'user.email=test@example.invalid', '-c', 'commit.gpgsign=false',
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def _scenario(family: str, latency_s: float, drive: str, runs: int, falls: int) -> dict:
    return {'family': family, 'runs': runs, 'falls': falls,
            'config': {'loop': {'latency_s': latency_s, 'drive': drive}}}


def _report(policy: str, commit: str, robot: str = 'kestrel') -> dict:
    """Return a report in the suite's layout: node 5 ms passes, 10 ms has a fall, drive 20 ms."""
    return {
        'policy': policy, 'robot': robot, 'suite': 'quick', 'commit': commit,
        'created_utc': '2026-01-02T03:04:05+00:00',
        'command_line': f'python -m training.robustness {policy} --suite quick',
        'scenarios': {
            'nominal': _scenario('nominal', 0.0, 'node', 2, 0),  # not a latency scenario
            'latency_10ms': _scenario('latency', 0.01, 'node', 2, 1),
            'latency_5ms': _scenario('latency', 0.005, 'node', 2, 0),
            'latency_joint_pd_20ms': _scenario('latency', 0.02, 'joint', 2, 0),
        }}


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """Return a git repository with two committed random policies, walk (seed 0) and other."""
    root = tmp_path / 'repo'
    make_random_policy(root / 'models', name='walk', seed=0)
    make_random_policy(root / 'models', name='other', seed=1)
    _git(root.parent, 'init', '-q', str(root))
    _git(root, 'add', 'models')
    _git(root, 'commit', '-q', '-m', 'policies')
    return root


def _write_report(repo: Path, report: dict) -> Path:
    path = repo / 'benchmarks' / 'robustness_report.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))
    return path


def test_the_measured_delays_go_into_both_copies_and_the_graph_stays(repo: Path):
    yaml_path, onnx_path = repo / 'models' / 'walk.yaml', repo / 'models' / 'walk.onnx'
    commit = _git(repo, 'rev-parse', 'HEAD')
    report = _write_report(repo, _report('models/walk.yaml', commit))
    graph_before = onnx.load(str(onnx_path)).graph.SerializeToString()
    obs = np.random.default_rng(0).normal(0.0, 2.0, (8, read_contract(yaml_path).obs_dim))
    actions_before = ort.InferenceSession(str(onnx_path)).run(
        None, {'obs': obs.astype(np.float32)})[0]
    assert 'training.tolerated_action_delay_s' in read_contract(yaml_path).unknown_fields()

    contract = record_delay_tolerance(yaml_path, report, repo_root=repo)

    assert onnx.load(str(onnx_path)).graph.SerializeToString() == graph_before
    np.testing.assert_array_equal(ort.InferenceSession(str(onnx_path)).run(
        None, {'obs': obs.astype(np.float32)})[0], actions_before)
    metadata = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert yaml_path.read_text() == YAML_HEADER + metadata[ONNX_METADATA_KEY]
    assert contract == read_contract(onnx_path) == read_contract(yaml_path)
    measured = contract.training.action_delay_tolerance
    node, drive = measured.pd_in_node, measured.pd_in_drive
    tried = [(t.delay_s, t.episodes, t.falls) for t in node.tried]
    assert tried == [(0.005, 2, 0), (0.01, 2, 1)]  # sorted; the nominal scenario left out
    assert (node.tolerated_s, node.first_failed_s) == (0.005, 0.01)
    assert (drive.tolerated_s, drive.first_failed_s) == (0.02, None)
    assert contract.training.tolerated_action_delay_s == 0.005  # min(5 ms, 20 ms)
    assert 'training.tolerated_action_delay_s' not in contract.unknown_fields()
    source = measured.source
    assert (source.suite, source.commit, source.created_utc) == (
        'quick', commit, '2026-01-02T03:04:05+00:00')
    assert source.report == 'benchmarks/robustness_report.json'  # relative to the repository
    assert source.policy_graph_sha256 == graph_sha256(onnx_path)
    # the same report again changes nothing
    text = yaml_path.read_text()
    assert record_delay_tolerance(yaml_path, report, repo_root=repo) == contract
    assert yaml_path.read_text() == text


@pytest.mark.parametrize('make_report, match', [
    (lambda commit: _report('models/other.yaml', commit),
     r'measured models/other\.yaml at commit .*: another policy'),
    (lambda commit: _report('models/walk.yaml', commit + '-dirty'),
     r'uncommitted changes, so the policy it measured cannot be identified'),
    (lambda commit: _report('models/walk.yaml', 'unknown'), r'outside git'),
    (lambda commit: _report('models/walk.yaml', '0' * 40), r'cannot read models/walk\.yaml'),
    (lambda commit: _report('models/walk.yaml', commit, robot='g1'),
     r"ran robot 'g1', the contract is for 'kestrel'"),
    (lambda commit: {**_report('models/walk.yaml', commit), 'scenarios': {}},
     r'no scenario of family .latency.'),
    (lambda commit: {**_report('models/walk.yaml', commit), FINGERPRINT_KEY: 'ab' * 32},
     r'policy_contract_fingerprint .* is not a mapping'),
    (lambda commit: {**_report('models/walk.yaml', commit), FINGERPRINT_KEY: {'kp': 'ab' * 32}},
     r"names 'kp', not a field of the policy contract"),
    (lambda commit: {**_report('models/walk.yaml', commit),
                     FINGERPRINT_KEY: {'kp_nm_per_rad': 'AB' * 32}},
     r'policy_contract_fingerprint\.kp_nm_per_rad .* is not a SHA-256'),
])
def test_a_report_of_another_policy_is_refused_and_nothing_written(repo: Path, make_report,
                                                                   match):
    yaml_path, onnx_path = repo / 'models' / 'walk.yaml', repo / 'models' / 'walk.onnx'
    report = _write_report(repo, make_report(_git(repo, 'rev-parse', 'HEAD')))
    text, data = yaml_path.read_text(), onnx_path.read_bytes()
    with pytest.raises(ReportMismatch, match=match):
        record_delay_tolerance(yaml_path, report, repo_root=repo)
    assert yaml_path.read_text() == text and onnx_path.read_bytes() == data


def test_the_report_may_name_the_onnx_and_a_later_commit_of_the_same_graph(repo: Path):
    """The graph decides: a later commit with the same graph (say, a new contract) matches."""
    first = _git(repo, 'rev-parse', 'HEAD')
    (repo / 'notes.txt').write_text('a later commit\n')
    _git(repo, 'add', 'notes.txt')
    _git(repo, 'commit', '-q', '-m', 'later')
    report = _write_report(repo, _report('models/walk.onnx', first))
    contract = record_delay_tolerance(repo / 'models' / 'walk.yaml', report, repo_root=repo)
    assert contract.training.action_delay_tolerance.source.commit == first


def test_a_report_that_records_its_graph_needs_no_git_history(repo: Path, tmp_path: Path):
    """A run made outside git (a fresh training run) is matched by the graph it records."""
    report = _report('/elsewhere/runs/walk.yaml', 'unknown')
    report['policy_graph_sha256'] = graph_sha256(repo / 'models' / 'walk.onnx')
    contract = record_delay_tolerance(repo / 'models' / 'walk.yaml', _write_report(repo, report),
                                      repo_root=tmp_path)
    assert contract.training.action_delay_tolerance.source.policy_graph_sha256 == \
        report['policy_graph_sha256']
    assert contract.training.tolerated_action_delay_s == pytest.approx(0.005)
    other = _report('/elsewhere/runs/walk.yaml', 'unknown')
    other['policy_graph_sha256'] = graph_sha256(repo / 'models' / 'other.onnx')
    with pytest.raises(ReportMismatch, match='another policy'):
        record_delay_tolerance(repo / 'models' / 'walk.yaml', _write_report(repo, other),
                               repo_root=tmp_path)
    other['policy_graph_sha256'] = 'not-a-hash'
    with pytest.raises(ReportMismatch, match='not a SHA-256'):
        record_delay_tolerance(repo / 'models' / 'walk.yaml', _write_report(repo, other),
                               repo_root=tmp_path)


# ------------------------------------------------------------------ the contract's fingerprint
def _changed(contract, field: str):
    """Return ``contract`` with one deployment-relevant ``field`` changed."""
    if field == 'kp_nm_per_rad':
        return dataclasses.replace(contract, kp_nm_per_rad=tuple(
            2.0 * kp for kp in contract.kp_nm_per_rad))
    if field == 'obs_terms':  # the first term's scale, its order and sizes kept
        first = contract.obs_terms[0]
        return dataclasses.replace(contract, obs_terms=(
            dataclasses.replace(first, scale=tuple(0.5 * v for v in first.scale)),
            *contract.obs_terms[1:]))
    assert field == 'decimation'
    return dataclasses.replace(contract, decimation=contract.decimation + 1)


def _fingerprinted_report(repo: Path, contract) -> dict:
    """Return a report made outside git that records its graph and ``contract``'s fingerprint."""
    report = _report('/elsewhere/runs/walk.yaml', 'unknown')
    report['policy_graph_sha256'] = graph_sha256(repo / 'models' / 'walk.onnx')
    report[FINGERPRINT_KEY] = contract_fingerprint(contract)
    return report


def test_the_fingerprint_covers_contract_fields_that_exist():
    fields = {f.name for f in dataclasses.fields(PolicyContract)}
    assert set(FINGERPRINT_FIELDS) <= fields
    assert {'kp_nm_per_rad', 'kd_nms_per_rad', 'effort_limit_nm', 'action_scale_rad',
            'default_pos_rad', 'obs_terms', 'obs_clip', 'physics_dt_s', 'decimation',
            'joint_names'} <= set(FINGERPRINT_FIELDS)
    assert 'training' not in FINGERPRINT_FIELDS  # record-tolerance writes into it


@pytest.mark.parametrize('field', ['kp_nm_per_rad', 'obs_terms', 'decimation'])
def test_a_report_of_the_same_graph_run_with_other_contract_fields_is_refused(
        repo: Path, tmp_path: Path, field: str):
    yaml_path, onnx_path = repo / 'models' / 'walk.yaml', repo / 'models' / 'walk.onnx'
    measured = _changed(read_contract(yaml_path), field)
    report = _write_report(repo, _fingerprinted_report(repo, measured))
    text, data = yaml_path.read_text(), onnx_path.read_bytes()
    with pytest.raises(ReportMismatch,
                       match=rf'under a contract that differs from .* in {field}, on which'):
        record_delay_tolerance(yaml_path, report, repo_root=tmp_path)
    assert yaml_path.read_text() == text and onnx_path.read_bytes() == data


def test_a_report_with_the_models_fingerprint_is_recorded_and_again_after_recording(
        repo: Path, tmp_path: Path):
    yaml_path = repo / 'models' / 'walk.yaml'
    report = _write_report(repo, _fingerprinted_report(repo, read_contract(yaml_path)))
    notes = []
    contract = record_delay_tolerance(yaml_path, report, repo_root=tmp_path, note=notes.append)
    assert notes == []
    assert contract.training.tolerated_action_delay_s == pytest.approx(0.005)
    # the recorded tolerance is in the training section, outside the fingerprint
    assert record_delay_tolerance(yaml_path, report, repo_root=tmp_path,
                                  note=notes.append) == contract


def test_a_report_without_the_fingerprint_is_matched_by_its_graph_alone_and_says_so(
        repo: Path):
    commit = _git(repo, 'rev-parse', 'HEAD')
    report = _write_report(repo, _report('models/walk.yaml', commit))
    notes = []
    contract = record_delay_tolerance(repo / 'models' / 'walk.yaml', report, repo_root=repo,
                                      note=notes.append)
    assert contract.training.tolerated_action_delay_s == pytest.approx(0.005)
    assert len(notes) == 1
    assert f'records no {FINGERPRINT_KEY}' in notes[0]
    assert 'matched by its graph alone' in notes[0]


def test_the_suite_records_the_fingerprint_and_a_later_gain_change_is_refused(
        repo: Path, tmp_path: Path, monkeypatch):
    """The report's meta, as the suite writes it; then kp changes in the model's contract."""
    yaml_path, onnx_path = repo / 'models' / 'walk.yaml', repo / 'models' / 'walk.onnx'
    monkeypatch.setattr(robustness_cli, 'run_scenarios', lambda *args, **kwargs: [])
    monkeypatch.setattr(robustness_cli, 'build_report',
                        lambda scenarios, records, targets, skipped, meta: dict(meta))
    meta = robustness_cli.run_robustness(yaml_path, None, 'ci', workers=1, progress=None)
    assert meta[FINGERPRINT_KEY] == contract_fingerprint(read_contract(yaml_path))
    assert meta['policy_graph_sha256'] == graph_sha256(onnx_path)
    report = {**_report('/elsewhere/runs/walk.yaml', 'unknown'), **meta}
    path = _write_report(repo, report)
    assert record_delay_tolerance(yaml_path, path, repo_root=tmp_path, note=None) \
        .training.tolerated_action_delay_s == pytest.approx(0.005)

    contract = read_contract(yaml_path)
    write_policy_contract(_changed(contract, 'kp_nm_per_rad'), onnx_path, yaml_path)
    assert graph_sha256(onnx_path) == meta['policy_graph_sha256']  # the graph is the same
    text, data = yaml_path.read_text(), onnx_path.read_bytes()
    with pytest.raises(ReportMismatch, match=r'walk\.yaml in kp_nm_per_rad, on which'):
        record_delay_tolerance(yaml_path, path, repo_root=tmp_path, note=None)
    assert yaml_path.read_text() == text and onnx_path.read_bytes() == data
