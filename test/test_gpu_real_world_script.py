"""
scripts/gpu_real_world.sh: its plan and checks, and a dry run of train then resume on the CPU.

The dry run is the GPU command at a tiny size (4 CPU worlds, small nets, seconds of training, the
ci suite on one scenario): training and the snapshot watcher run side by side, and what comes
back is a handful of files, a checkpoint among them that the resume mode continues from. SIGTERM
to the script stops both (training with a checkpoint) and leaves nothing running.
"""

import json
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / 'scripts' / 'gpu_real_world.sh'
TINY = {
    'DEVICE': 'cpu', 'NUM_ENVS': '4', 'STARTUP_S': '20', 'EVAL_S': '30', 'WORKERS': '2',
    'SUITE': 'ci', 'WATCH_ARGS': '--only nominal', 'SNAPSHOT_MIN': '0.1',
    'TRAIN_ARGS': ('--runner.num-steps-per-env 8 --runner.policy.actor-hidden-dims 32 32 '
                   '--runner.policy.critic-hidden-dims 32 32 --runner.save-interval 5 '
                   '--runner.no-tensorboard')}


def _run(args, **env):
    full = {k: v for k, v in os.environ.items() if k != 'OUT'}
    full.update(env)
    return subprocess.run(['bash', str(SCRIPT), *args], cwd=REPO, env=full, text=True,
                          capture_output=True, timeout=900)


def test_the_plan_fits_the_training_budget_into_the_command_limit(tmp_path):
    done = _run(['train'], PLAN_ONLY='1', OUT=str(tmp_path / 'out'))
    assert done.returncode == 0, done.stderr
    # (560 s - 40 s start-up - 30 s final snapshot - 60 s last evaluation - 20 s packing) / 60
    assert 'training: 6.83 min budget, snapshot every 1 min' in done.stdout
    assert '--config training/configs/real_world.yaml --device cuda:0 --num-envs 4096' \
        in done.stdout
    assert '--runner.keep-checkpoints 1' in done.stdout
    assert '--watch --stop-file' in done.stdout and '--suite full --workers 12' in done.stdout
    assert not (tmp_path / 'out').exists()
    done = _run(['train'], PLAN_ONLY='1', TOTAL_S='300', STARTUP_S='100', EVAL_S='20')
    assert 'training: 2.17 min budget' in done.stdout  # (300 - 100 - 30 - 20 - 20) / 60
    done = _run(['train'], PLAN_ONLY='1', TOTAL_S='300', STARTUP_S='100', EVAL_S='20',
                FINAL_S='10')
    assert 'training: 2.50 min budget' in done.stdout
    bench = _run(['throughput'], PLAN_ONLY='1')
    assert 'benchmarks/gpu_throughput.py --config training/configs/real_world.yaml' in bench.stdout
    assert '--num-envs 4096 8192' in bench.stdout


def test_a_dry_run_of_the_breakdown_writes_its_figures_and_log(tmp_path):
    out = tmp_path / 'out'
    done = _run(['breakdown'], DEVICE='cpu', NUM_ENVS='4', OUT=str(out), TOTAL_S='600',
                BREAKDOWN_ARGS=('--policy-steps 2 --profile-steps 1 --top-kernels 3 '
                                '--compile-setting off --terms terrain --ccd 12:1e-4'))
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'benchmarks/env_step_breakdown.py --config training/configs/real_world.yaml' \
        in done.stdout
    results = json.loads((out / 'env_step_breakdown.json').read_text())
    # the config caps the solver at 4: the breakdown also measures the robot model's 10
    assert list(results['variants']) == ['full', 'without_all', 'solver_iterations_10',
                                         'ccd_12_0.0001', 'ground_contact_feet',
                                         'foot_collision_model', 'without_terrain']
    assert 'without_terrain' in (out / 'env_step_breakdown.log').read_text()


def test_wrong_use_says_what_is_missing(tmp_path):
    done = _run([])
    assert done.returncode == 2 and 'scripts/gpu_real_world.sh resume CHECKPOINT.pt' in done.stderr
    done = _run(['resume', str(tmp_path / 'model_9.pt')])
    assert done.returncode == 2 and 'no checkpoint file at' in done.stderr
    done = _run(['resume', 'last'], RUN_NAME='no_such_run')
    assert done.returncode == 2 and 'give the path of the one a previous job wrote' in done.stderr
    (tmp_path / 'model_9.pt').write_bytes(b'')
    done = _run(['resume', str(tmp_path / 'model_9.pt'), str(tmp_path / 'nope.json')])
    assert done.returncode == 2 and 'no time_to_policy.json at' in done.stderr


def test_resume_last_takes_the_newest_checkpoint_of_this_machines_newest_run(tmp_path):
    scratch = Path(tempfile.mkdtemp(prefix='gpu_real_world.', dir='/tmp'))
    try:
        run = scratch / 'runs' / 'real_world'
        run.mkdir(parents=True)
        for name in ('model_50.pt', 'model_120_interrupted.pt', 'model_99.pt'):
            (run / name).write_bytes(b'')
        (scratch / 'time_to_policy').mkdir()
        (scratch / 'time_to_policy' / 'time_to_policy.json').write_text('{}')
        done = _run(['resume', 'last'], PLAN_ONLY='1')
        assert done.returncode == 0, done.stderr
        assert f'--resume {run}/model_120_interrupted.pt' in done.stdout
        assert f'--previous {scratch}/time_to_policy/time_to_policy.json' in done.stdout
    finally:
        shutil.rmtree(scratch)


def _snapshot_iterations(result):
    return [row['iteration'] for row in result['snapshots']]


@pytest.mark.slow
def test_a_dry_run_trains_watches_packs_and_resumes(tmp_path):
    out1 = tmp_path / 'out1'
    done = _run(['train'], **TINY, TOTAL_S='400', TRAIN_MIN='0.3', OUT=str(out1),
                WORK=str(tmp_path / 'work1'))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    files = sorted(p.name for p in out1.iterdir())
    (checkpoint,) = [name for name in files if name.endswith('.pt')]
    assert sorted(set(files) - {checkpoint}) == [
        'results.tar.gz', 'summary.txt', 'time_to_policy.json', 'time_to_policy.md',
        'time_to_policy.png', 'train.log']
    first = json.loads((out1 / 'time_to_policy.json').read_text())
    assert first['stopped_by'] == 'stop_file' and first['pending'] == 0
    assert first['evaluated'] >= 2 and first['suite'] == 'ci' and first['only'] == ['nominal']
    with tarfile.open(out1 / 'results.tar.gz') as tar:
        names = tar.getnames()
    assert not [n for n in names if n.endswith('.pt')]
    for row in first['snapshots']:
        assert f'./runs/real_world/snapshots/{row["name"]}.onnx' in names
        assert f'./time_to_policy/reports/{row["name"]}.json' in names
    assert './models/real_world.yaml' in names and './runs/real_world/config.yaml' in names
    assert 'training exit status 0' in (out1 / 'summary.txt').read_text()
    assert '--stop-at-unix-s; stopped after' in done.stdout  # it stops itself before the limit

    # the next command: the checkpoint and the report carried back into the checkout
    carried = tmp_path / 'carry'
    carried.mkdir()
    for name in (checkpoint, 'time_to_policy.json'):
        (carried / name).write_bytes((out1 / name).read_bytes())
    out2 = tmp_path / 'out2'
    done = _run(['resume', str(carried / checkpoint), str(carried / 'time_to_policy.json')],
                **TINY, TOTAL_S='400', TRAIN_MIN='0.2', OUT=str(out2),
                WORK=str(tmp_path / 'work2'))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    second = json.loads((out2 / 'time_to_policy.json').read_text())
    old = _snapshot_iterations(first)
    new = [i for i in _snapshot_iterations(second) if i not in old]
    assert _snapshot_iterations(second)[:len(old)] == old  # the earlier command's, counted
    assert new and min(new) > max(old)  # training went on from the checkpoint
    times = [row['train_wall_time_s'] for row in second['snapshots']]
    assert times == sorted(times)  # and so did its training clock
    # each command's first iteration (compilation, capture) is counted as start-up
    startups = [row['startup_s'] for row in second['snapshots']]
    assert all(s > 0 for s in startups) and startups == sorted(startups)
    assert max(startups) > min(startups)  # the resumed command added its own
    assert all(row['after_startup_min'] < row['train_wall_time_min']
               for row in second['snapshots'])
    train_log = (out2 / 'train.log').read_text()
    assert f'resumed from {carried / checkpoint}' in train_log
    assert [p.name for p in out2.iterdir() if p.suffix == '.pt']


def _descendants(pid):
    """Return the process ids below ``pid``, children first (none once it has gone)."""
    found = []
    for task in Path(f'/proc/{pid}/task').glob('*'):
        try:
            found += [int(c) for c in (task / 'children').read_text().split()]
        except OSError:
            pass
    return found + [d for c in found for d in _descendants(c)]


def _alive(pid):
    """Return whether process ``pid`` runs (a zombie has ended)."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return False
    return stat.rsplit(')', 1)[1].split()[0] != 'Z'


def _poll(predicate, what, limit_s=600.0):
    end = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < end, f'gave up waiting for {what}'
        time.sleep(0.2)


@pytest.mark.slow
def test_sigterm_to_the_script_stops_training_with_a_checkpoint_and_the_watcher(tmp_path):
    work, out, printed = tmp_path / 'work', tmp_path / 'out', tmp_path / 'printed.txt'
    env = {k: v for k, v in os.environ.items() if k != 'OUT'}
    # a training of 10 minutes: anything still running when the test looks was left behind
    env.update(TINY, TOTAL_S='1200', TRAIN_MIN='10', OUT=str(out), WORK=str(work))
    with printed.open('w') as stdout:
        script = subprocess.Popen(['bash', str(SCRIPT), 'train'], cwd=REPO, env=env,
                                  stdout=stdout, stderr=subprocess.STDOUT)
    processes = []
    try:
        _poll(lambda: 'the watcher (pid' in printed.read_text() or script.poll() is not None,
              'the script to start training and the watcher')
        started = [int(pid) for pid in re.search(
            r'training \(pid (\d+),.* the watcher \(pid (\d+)\)', printed.read_text()).groups()]
        log = work / 'train.log'
        _poll(lambda: log.is_file() and re.search(r'^it +\d+', log.read_text(), re.M),
              'the first training iteration')
        processes = _descendants(script.pid)
        assert set(started) < set(processes) and len(processes) >= 4  # each timeout's python
        script.send_signal(signal.SIGTERM)
        script.wait(timeout=600)
        text = printed.read_text()
        assert script.returncode == 128 + signal.SIGTERM, text[-3000:]
        _poll(lambda: not any(_alive(pid) for pid in processes), 'every process to end')
        assert 'SIGTERM: stopping' in text
        # training stopped as at its deadline: a checkpoint to resume from, and the files
        assert list((work / 'runs' / 'real_world').glob('model_*_interrupted.pt'))
        assert (out / 'summary.txt').is_file() and (out / 'results.tar.gz').is_file()
        assert 'saved' in (out / 'train.log').read_text()
    finally:
        if script.poll() is None:
            script.kill()
        for pid in reversed(processes):  # whatever of this test is left behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
