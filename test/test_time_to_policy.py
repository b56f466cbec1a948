"""
Time to policy: every snapshot of a run through the robustness suite, the earliest that passes.

The shipped base-velocity policy stands in for a run's snapshots: it is exported again as
``<run>_it<iteration>`` with a training wall time in its provenance (what training's
``--snapshot-interval-min`` writes), and the ci suite runs on it for real. It misses some
targets, so the report must name them.
"""

import dataclasses
import json
import os
from pathlib import Path
import shutil
import threading
import time
from typing import Optional

from humanoid_rl_ros.core.contract import read_contract
from humanoid_rl_ros.robot.description import models_dir
import pytest
from training.export import write_policy_contract
from training.robustness import time_to_policy as ttp
from training.robustness.report import targets_met
from training.robustness.scenarios import ci_suite
import yaml

SHIPPED = models_dir() / 'humanoid_walk_base_vel.yaml'
"""The snapshots' policy: the shipped one trained on flat ground with its base velocity, whose
suite results are known (it falls at 40 ms of latency and steps in place at a zero command)."""
pytestmark = pytest.mark.skipif(not SHIPPED.is_file(), reason=f'no {SHIPPED.name} in models/')
ENV_STEPS_PER_ITERATION = 98304


def make_snapshot(folder: Path, iteration: int, wall_s: float, run: str = 'fake',
                  startup_s: Optional[float] = None) -> Path:
    """Export the base-velocity policy as snapshot ``<run>_it<iteration>`` trained ``wall_s``."""
    contract = read_contract(SHIPPED)
    folder.mkdir(parents=True, exist_ok=True)
    name = f'{run}_it{iteration:05d}'
    shutil.copy(contract.onnx_path(SHIPPED), folder / f'{name}.onnx')
    provenance = {**contract.provenance, 'iterations': iteration, 'train_wall_time_s': wall_s,
                  'env_steps': iteration * ENV_STEPS_PER_ITERATION,
                  **({} if startup_s is None else {'train_startup_s': startup_s})}
    write_policy_contract(dataclasses.replace(contract, onnx_file=f'{name}.onnx',
                                              provenance=provenance),
                          folder / f'{name}.onnx', folder / f'{name}.yaml')
    return folder / f'{name}.yaml'


@pytest.fixture(scope='module')
def ci_run(tmp_path_factory):
    """Two snapshots (1 and 2 min) of a run folder through the ci suite, as on the command line."""
    run = tmp_path_factory.mktemp('ttp') / 'runs' / 'fake'
    make_snapshot(run / 'snapshots', 200, 120.0, startup_s=6.0)
    make_snapshot(run / 'snapshots', 100, 60.0, startup_s=6.0)
    status = ttp.main([str(run), '--suite', 'ci', '--workers', '2'])
    return run, status


def test_the_base_velocity_policy_meets_no_full_set_of_targets_and_the_report_says_which(ci_run):
    run, status = ci_run
    out = run / 'time_to_policy'
    assert status == 1  # no snapshot meets every target
    result = json.loads((out / 'time_to_policy.json').read_text())
    assert result['suite'] == 'ci' and result['stopped_by'] == 'all_evaluated'
    rows = result['snapshots']
    assert [r['name'] for r in rows] == ['fake_it00100', 'fake_it00200']  # by iteration
    assert [r['train_wall_time_min'] for r in rows] == [1.0, 2.0]
    assert [r['env_steps'] for r in rows] == [100 * ENV_STEPS_PER_ITERATION,
                                              200 * ENV_STEPS_PER_ITERATION]
    names = [s.name for s in ci_suite()]
    for row in rows:
        assert row['status'] == 'evaluated' and row['all_met'] is False
        assert row['scenarios'] == len(names) and row['passed'] < len(names)
        assert row['passed'] + len(row['failed']) == len(names)
        # this policy was trained without latency: 40 ms round trips fell; it steps in
        # place at zero command
        assert row['failed']['latency_40ms'][0].startswith('falls 1 (target == 0')
        assert row['failed']['standstill'][0].startswith('steps_per_10s')
        assert 'nominal' not in row['failed']
        # the verdict is the suite's own: the saved robustness report gives the same
        report = json.loads((out / row['report']).read_text())
        assert targets_met(report)['failed'] == row['failed']
        assert report['summary']['failed'] == list(row['failed'])
    assert rows[0]['failed'] == rows[1]['failed']  # the same policy twice
    assert result['earliest_all_met'] is None
    assert result['best']['name'] == 'fake_it00100'  # the earliest of the best
    assert (result['evaluated'], result['pending'], result['errors']) == (2, 0, 0)
    text = (out / 'time_to_policy.md').read_text()
    assert '**No snapshot meets every target** (2 evaluated, 0 pending' in text
    assert '- `latency_40ms`: falls 1 (target == 0' in text
    table = [line for line in text.splitlines() if line.startswith('| `fake_it')]
    assert len(table) == 2
    # training time, then the same less the 6 s of first iterations (compilation, capture)
    assert table[0].startswith('| `fake_it00100` | 100 | 1.0 | 0.9 | 9.8 | '
                               f'{rows[0]["passed"]} / {len(names)} |')
    assert 'at 1.0 min (0.9 min after the start-up: the training clock includes 6.0 s' in text
    assert result['best']['after_startup_min'] == 0.9 and result['best']['startup_s'] == 6.0
    assert table[0].endswith('| no |') and '`standstill`' in table[0]
    assert (out / 'time_to_policy.png').stat().st_size > 10_000


def test_a_second_look_reuses_the_saved_reports_unless_the_targets_change(
        ci_run, monkeypatch, tmp_path):
    run, _ = ci_run
    before = json.loads((run / 'time_to_policy' / 'time_to_policy.json').read_text())

    def no_run(*args, **kwargs):
        raise RuntimeError('the suite ran again')

    monkeypatch.setattr(ttp, 'run_robustness', no_run)
    assert ttp.main([str(run / 'snapshots'), '--suite', 'ci', '--out',
                     str(run / 'time_to_policy')]) == 1
    again = json.loads((run / 'time_to_policy' / 'time_to_policy.json').read_text())
    assert again['snapshots'] == before['snapshots']
    # other targets: the saved reports do not apply, so the suite runs (here: fails loudly)
    out = tmp_path / 'other'
    shutil.copytree(run / 'time_to_policy', out)
    ttp.main([str(run), '--suite', 'ci', '--out', str(out),
              '--targets.standstill-steps-per-10s', '100'])
    rows = json.loads((out / 'time_to_policy.json').read_text())['snapshots']
    assert [r['status'] for r in rows] == ['error', 'error']
    assert 'the suite ran again' in rows[0]['error']


def test_previous_reports_of_a_resumed_run_count_and_a_timeout_leaves_snapshots_pending(
        ci_run, tmp_path):
    run, _ = ci_run
    previous = run / 'time_to_policy' / 'time_to_policy.json'
    resumed = tmp_path / 'runs' / 'fake'
    make_snapshot(resumed / 'snapshots', 300, 180.0)
    cmd = ttp.TimeToPolicyCommand(path=resumed, suite='ci', previous=(previous,),
                                  timeout_min=1e-9)
    result = ttp.time_to_policy(cmd, progress=lambda text: None)
    assert result['stopped_by'] == 'timeout'
    assert [(r['name'], r['status']) for r in result['snapshots']] == [
        ('fake_it00100', 'evaluated'), ('fake_it00200', 'evaluated'),
        ('fake_it00300', 'pending')]
    assert (result['evaluated'], result['pending']) == (2, 1)
    text = (resumed / 'time_to_policy' / 'time_to_policy.md').read_text()
    assert '| `fake_it00300` | 300 | 3.0 | n/a | 29.5 | - | - | pending | - |' in text
    with pytest.raises(SystemExit, match='another suite'):
        ttp.time_to_policy(dataclasses.replace(cmd, suite='full'))


def test_targets_met_lists_each_missed_check_and_ignores_skipped_scenarios():
    def check(name, value, target, passed, note=''):
        return {'check': name, 'value': value, 'target': target, 'passed': passed,
                'note': note}

    report = {'summary': {'skipped': {'lin_vel_zero': 'the policy does not observe it'}},
              'scenarios': {
                  'nominal': {'passed': True, 'checks': [check('falls', 0, '== 0', True)]},
                  'latency_40ms': {'passed': False, 'checks': [
                      check('falls', 2, '== 0', False, 'of 2 episodes')]},
                  'standstill': {'passed': False, 'checks': [
                      check('falls', 0, '== 0', True),
                      check('steps_per_10s', 2.5, '<= 0', False),
                      check('drift_m_s', None, '<= 0.02', False)]}}}
    verdict = targets_met(report)
    assert verdict == {
        'all_met': False, 'passed': 1, 'scenarios': 3,
        'failed': {'latency_40ms': ['falls 2 (target == 0, of 2 episodes)'],
                   'standstill': ['steps_per_10s 2.5 (target <= 0)',
                                  'drift_m_s n/a (target <= 0.02)']},
        'skipped': {'lin_vel_zero': 'the policy does not observe it'}}
    report['scenarios'] = {'nominal': report['scenarios']['nominal']}
    assert targets_met(report)['all_met'] is True
    report['scenarios'] = {}
    assert targets_met(report)['all_met'] is False  # nothing run meets nothing


def test_snapshots_still_being_written_wait_for_a_later_look(tmp_path):
    folder = tmp_path / 'snapshots'
    good = make_snapshot(folder, 100, 60.0)
    cut = make_snapshot(folder, 200, 120.0)
    cut.write_text(cut.read_text()[:2000])  # its YAML copy half written
    make_snapshot(folder, 300, 180.0).with_suffix('.onnx').unlink()  # no ONNX beside it
    assert [s.name for s in ttp.find_snapshots(folder)] == [good.stem]
    assert ttp.find_snapshots(folder, settle_s=3600.0) == []  # all written just now
    assert ttp.snapshot_folder(tmp_path) == folder
    assert ttp.snapshot_folder(folder) == folder
    assert ttp.snapshot_folder(tmp_path / 'not_yet') == tmp_path / 'not_yet' / 'snapshots'
    with pytest.raises(SystemExit, match='no snapshots folder'):
        ttp.time_to_policy(ttp.TimeToPolicyCommand(path=tmp_path / 'not_yet'))


def _wait_for(predicate, what: str, limit_s: float = 300.0) -> None:
    end = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < end, f'gave up waiting for {what}'
        time.sleep(0.05)


def test_watching_a_run_evaluates_snapshots_as_they_come_until_the_final_export(tmp_path):
    run, models = tmp_path / 'runs' / 'fake', tmp_path / 'models'
    final = models / 'fake.yaml'
    models.mkdir()
    final.write_text('an export of an earlier run\n')
    hour_ago = time.time() - 3600.0
    os.utime(final, (hour_ago, hour_ago))  # there before the watch: no reason to stop
    cmd = ttp.TimeToPolicyCommand(path=run, suite='ci', only=('nominal',), workers=1,
                                  watch=True, poll_s=0.05, settle_s=0.0, timeout_min=10.0)
    results, lines = [], []
    watcher = threading.Thread(target=lambda: results.append(
        ttp.time_to_policy(cmd, progress=lines.append)))
    watcher.start()  # before training has made its run folder
    report = run / 'time_to_policy' / 'time_to_policy.json'
    run.mkdir(parents=True)
    (run / 'config.yaml').write_text(yaml.safe_dump({'run_name': 'fake',
                                                     'export_dir': str(models)}))
    make_snapshot(run / 'snapshots', 100, 60.0)
    _wait_for(report.is_file, 'the first snapshot to be evaluated')
    assert watcher.is_alive()
    make_snapshot(run / 'snapshots', 200, 120.0)
    final.write_text('the final export\n')  # training ends
    watcher.join(timeout=300.0)
    assert not watcher.is_alive()
    (result,) = results
    assert result['stopped_by'] == 'stop_file'
    assert [(r['name'], r['status'], r['scenarios']) for r in result['snapshots']] == [
        ('fake_it00100', 'evaluated', 1), ('fake_it00200', 'evaluated', 1)]
    assert result['earliest_all_met']['name'] == 'fake_it00100'  # nominal alone: it passes
    assert result['earliest_all_met']['train_wall_time_min'] == 1.0
    assert any('written: evaluating what is left' in line for line in lines)
    assert json.loads(report.read_text())['earliest_all_met']['iteration'] == 100
    assert '**Earliest snapshot meeting every target:** `fake_it00100` (iteration 100) after ' \
           '**1.0 min** of training.' in (run / 'time_to_policy' / 'time_to_policy.md').read_text()


def test_a_stop_file_counts_when_it_appears_changes_or_was_written_after_the_process_began(
        tmp_path):
    stop = tmp_path / 'train.done'
    assert ttp.file_state(stop) is None
    assert not ttp.stop_file_written(stop, None, since_wall_s=0.0)  # not there
    stop.write_text('')
    hour_ago = time.time() - 3600.0
    os.utime(stop, (hour_ago, hour_ago))
    at_start = ttp.file_state(stop)
    started = time.time() - 10.0  # the process began 10 s ago; the file is an hour old
    assert ttp.stop_file_written(stop, None, started)  # appeared during the watch
    assert not ttp.stop_file_written(stop, at_start, started)  # stale, unchanged
    two_hours_ago = hour_ago - 3600.0
    os.utime(stop, (two_hours_ago, two_hours_ago))  # e.g. a copy keeping an older time
    assert ttp.stop_file_written(stop, at_start, started)
    # there when the watch began, written after the process started: the training it waits
    # for ended while the watcher was still starting up
    os.utime(stop, (started + 5.0, started + 5.0))
    assert ttp.stop_file_written(stop, ttp.file_state(stop), started)
    assert ttp.stop_file_written(stop, ttp.file_state(stop), started + 5.5)  # 1 s resolution
    assert not ttp.stop_file_written(stop, ttp.file_state(stop), started + 7.0)
    start = ttp.process_start_wall_s()
    assert start is None or time.time() - 86400.0 * 365 < start <= time.time()


def test_a_training_that_ended_while_the_watcher_started_up_stops_the_watch(
        tmp_path, monkeypatch):
    stop = tmp_path / 'train.done'
    began = time.time() - 20.0
    monkeypatch.setattr(ttp, 'process_start_wall_s', lambda: began)
    stop.write_text('')
    os.utime(stop, (began + 2.0, began + 2.0))  # while the heavy imports ran
    cmd = ttp.TimeToPolicyCommand(path=tmp_path / 'runs' / 'fake', suite='ci', watch=True,
                                  stop_file=stop, poll_s=0.05, timeout_min=0.05)
    result = ttp.time_to_policy(cmd, progress=lambda text: None)
    assert result['stopped_by'] == 'stop_file' and result['snapshots'] == []
    # a stop file older than the process is of an earlier run: the watch goes on (here, to
    # its timeout)
    os.utime(stop, (began - 60.0, began - 60.0))
    result = ttp.time_to_policy(dataclasses.replace(cmd, timeout_min=0.01),
                                progress=lambda text: None)
    assert result['stopped_by'] == 'timeout'


def _entry(name, iteration, status='evaluated', all_met=False, skipped=None, **extra):
    entry = {'name': name, 'iteration': iteration, 'train_wall_time_s': 60.0 * iteration,
             'train_wall_time_min': float(iteration), 'env_steps': None, 'status': status,
             **extra}
    if status == 'evaluated':
        entry.update(all_met=all_met, passed=3 if all_met else 2, scenarios=3,
                     failed={} if all_met else {'standstill': ['steps_per_10s 2 (target <= 0)']},
                     skipped=skipped or {}, falls=0, episodes=3)
    return entry


def test_the_summary_names_skipped_scenarios_and_earlier_snapshots_that_did_not_run():
    no_vel = {'velocity_estimate_x0.7': 'the policy does not observe the base velocity',
              'velocity_estimate_missing': 'the policy does not observe the base velocity'}
    entries = [_entry('r_it3', 3, all_met=True, skipped=no_vel),
               _entry('r_it1', 1, skipped=no_vel),
               _entry('r_it2', 2, status='error', error='RuntimeError: boom'),
               _entry('r_it4', 4, status='pending')]
    summary = ttp.summarize(entries)
    assert summary['earliest_all_met']['name'] == 'r_it3'
    assert summary['earlier_not_evaluated'] == [
        {'name': 'r_it2', 'iteration': 2, 'status': 'error'}]  # it4 comes after: no matter
    assert summary['skipped'] == dict(sorted(no_vel.items()))
    assert (summary['evaluated'], summary['pending'], summary['errors']) == (2, 1, 1)
    result = {'source': 'runs/r/snapshots', 'suite': 'full', 'only': [], 'commit': 'abc',
              'snapshots': sorted(entries, key=lambda e: e['iteration']), **summary}
    text = ttp.markdown(result)
    assert 'Not proven the earliest: 1 earlier snapshot(s) not evaluated (`r_it2`: error).' \
        in text
    assert ('2 scenario(s) skipped (do not apply): `velocity_estimate_missing` (the policy does '
            'not observe the base velocity); `velocity_estimate_x0.7` (the policy') in text
    # every snapshot before the earliest evaluated, nothing skipped: neither line
    plain = ttp.summarize([_entry('r_it1', 1), _entry('r_it3', 3, all_met=True)])
    assert plain['earlier_not_evaluated'] == [] and plain['skipped'] == {}
    text = ttp.markdown({**result, 'snapshots': [], **plain})
    assert 'Not proven' not in text and 'skipped' not in text


def test_a_resume_from_an_older_checkpoint_gets_its_same_named_snapshots_evaluated(
        ci_run, tmp_path, monkeypatch):
    run, _ = ci_run
    previous = run / 'time_to_policy' / 'time_to_policy.json'
    saved = json.loads((run / 'time_to_policy' / 'reports' / 'fake_it00200.json').read_text())
    ran = []

    def fake_suite(contract_path, *args, **kwargs):  # the saved report stands in for a run
        ran.append(Path(contract_path).stem)
        return json.loads(json.dumps(saved))

    monkeypatch.setattr(ttp, 'run_robustness', fake_suite)
    resumed = tmp_path / 'runs' / 'fake'
    make_snapshot(resumed / 'snapshots', 100, 60.0, startup_s=6.0)  # the same policy: counted
    make_snapshot(resumed / 'snapshots', 200, 90.0)  # the same name, another policy
    lines = []
    result = ttp.time_to_policy(ttp.TimeToPolicyCommand(path=resumed, suite='ci',
                                                        previous=(previous,)),
                                progress=lines.append)
    assert ran == ['fake_it00200']
    rows = [(r['name'], r['train_wall_time_min'], 'from' in r) for r in result['snapshots']]
    assert rows == [('fake_it00100', 1.0, True), ('fake_it00200', 2.0, True),
                    ('fake_it00200', 1.5, False)]
    old, new = result['snapshots'][1:]
    assert old['onnx_sha256'] != new['onnx_sha256'] and new['status'] == 'evaluated'
    assert new['report'] == f'reports/fake_it00200_{new["onnx_sha256"][:12]}.json'
    assert (resumed / 'time_to_policy' / new['report']).is_file()
    assert any('another ONNX file' in line for line in lines)
    table = [line for line in (resumed / 'time_to_policy' / 'time_to_policy.md').read_text()
             .splitlines() if line.startswith('| `fake_it00200`')]
    assert table == [
        f'| `fake_it00200` (ONNX {old["onnx_sha256"][:8]}, earlier command) | 200 | 2.0 |'
        + table[0].split(' | 2.0 |', 1)[1],
        f'| `fake_it00200` (ONNX {new["onnx_sha256"][:8]}) | 200 | 1.5 |'
        + table[1].split(' | 1.5 |', 1)[1]]
