"""The GPU throughput benchmark on the CPU: its code path at a tiny size; the scaling mode."""

import importlib.util
import json
import math
from pathlib import Path
import sys

import pytest
import tyro

pytest.importorskip('mujoco_warp')
REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('gpu_throughput',
                                               REPO / 'benchmarks' / 'gpu_throughput.py')
gpu_throughput = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_throughput)

FIGURES = ('backend_step', 'env_step', 'backend_step_on_training_states', 'rollout_collection',
           'end_to_end_training')


def test_every_measurement_reports_a_rate_and_its_ratio(tmp_path):
    out = tmp_path / 'bench.json'
    assert gpu_throughput.main(['--device', 'cpu', '--num-envs', '4', '--policy-steps', '2',
                                '--train-iterations', '1', '--reset-every', '1',
                                '--compile', 'off', '--out', str(out)]) == 0
    results = json.loads(out.read_text())
    assert results['git_commit']
    (row,) = results['results']
    assert row['num_envs'] == 4
    assert (row['nconmax'], row['njmax']) == (24, 128)  # the env config's buffers
    raw = row['raw_physics']['physics_steps_per_s']
    assert raw > 0 and math.isfinite(raw)
    ceiling = row['raw_physics_env_steps_per_s']
    assert ceiling == pytest.approx(raw / results['decimation'])
    for name in FIGURES:
        part = row[name]
        assert 'error' not in part, part
        assert part['env_steps_per_s'] > 0 and math.isfinite(part['env_steps_per_s'])
        assert part['ratio_to_raw_over_decimation'] == pytest.approx(
            part['env_steps_per_s'] / ceiling)
    assert row['end_to_end_training']['iterations'] == 1
    assert row['end_to_end_training']['env_steps_per_s'] <= \
        row['rollout_collection']['env_steps_per_s']
    assert row['training_overflow']['overflow'] is False
    # the env trained with the same buffers as the raw measurement
    physics = row['backend_step_on_training_states']
    assert (physics['nconmax'], physics['njmax']) == (row['nconmax'], row['njmax'])
    # judged apart from training: its own overflow report and verdict
    assert physics['overflow']['overflow'] is False and physics['valid'] is True


# ---------------------------------------------------------------------- multi-GPU scaling
def test_scaling_efficiency_is_the_rate_over_n_times_the_one_gpu_rate():
    eff = gpu_throughput.scaling_efficiency({4: 340e3, 1: 100e3, 2: 190e3})
    assert eff == pytest.approx({1: 1.0, 2: 0.95, 4: 0.85})
    assert list(eff) == [1, 2, 4]
    with pytest.raises(ValueError, match='1-GPU rate'):
        gpu_throughput.scaling_efficiency({2: 190e3})


def test_the_gpu_counts_default_to_the_gpus_present_and_more_than_present_is_an_error():
    counts = gpu_throughput.scaling_gpu_counts
    assert counts((), 8) == (1, 2, 4, 8)
    assert counts((), 6) == (1, 2, 4)
    assert counts((), 1) == (1,)
    assert counts((4, 2), 4) == (1, 2, 4)  # 1 GPU is always measured: the reference
    with pytest.raises(SystemExit, match=r'asks for 8 GPUs \(--gpus 1 2 4 8\) but this machine '
                                         r'has 2 .*at most 2'):
        counts((1, 2, 4, 8), 2)
    with pytest.raises(SystemExit, match='needs CUDA GPUs'):
        counts((), 0)
    with pytest.raises(SystemExit, match='>= 1'):
        counts((0, 2), 4)


def test_each_gpu_count_is_one_torchrun_of_the_worker_mode(tmp_path):
    args = gpu_throughput.BenchConfig(out='x.json', train_iterations=7, compile_setting='off')
    cmd = gpu_throughput.torchrun_command(4, args, 8192, tmp_path / 'part.json')
    assert cmd[:3] == [sys.executable, '-m', 'torch.distributed.run']
    assert cmd[cmd.index('--nproc-per-node') + 1] == '4'
    assert cmd[cmd.index('--num-envs') + 1] == '8192'
    assert cmd[cmd.index('--train-iterations') + 1] == '7'
    assert cmd[cmd.index('--compile') + 1] == 'off'
    assert cmd[cmd.index('--out') + 1] == str(tmp_path / 'part.json')
    assert cmd[cmd.index('--device') + 1] == 'cuda:0'  # each process takes cuda:LOCAL_RANK
    assert '--scaling-worker' in cmd and '--standalone' in cmd
    script = Path(cmd[cmd.index('--nproc-per-node') + 2])
    assert script == REPO / 'benchmarks' / 'gpu_throughput.py'
    # the worker's options parse back into the same measurement
    parsed = tyro.cli(gpu_throughput.BenchConfig, args=cmd[cmd.index(str(script)) + 1:])
    assert parsed.scaling_worker and parsed.num_envs == (8192,) and parsed.train_iterations == 7


def _fake_gpus(monkeypatch, count):
    monkeypatch.setattr(gpu_throughput.torch.cuda, 'is_available', lambda: count > 0)
    monkeypatch.setattr(gpu_throughput.torch.cuda, 'device_count', lambda: count)
    monkeypatch.setattr(gpu_throughput.torch.cuda, 'get_device_name', lambda *a: 'fake GPU')


def test_scaling_with_fewer_gpus_than_asked_stops_before_starting_anything(
        tmp_path, monkeypatch, capsys):
    _fake_gpus(monkeypatch, 2)

    def no_launch(cmd):
        raise AssertionError('nothing may start')

    monkeypatch.setattr(gpu_throughput, 'launch', no_launch)
    with pytest.raises(SystemExit, match='asks for 4 GPUs .* this machine has 2'):
        gpu_throughput.main(['--scaling', '--gpus', '1', '2', '4', '--out',
                             str(tmp_path / 'scaling.json')])
    assert not (tmp_path / 'scaling.json').exists()


def test_scaling_reports_each_count_its_efficiency_and_the_target(tmp_path, monkeypatch, capsys):
    _fake_gpus(monkeypatch, 8)
    rates = {1: 100e3, 2: 190e3, 4: 340e3}
    launched = []

    def fake_torchrun(cmd):
        gpus = int(cmd[cmd.index('--nproc-per-node') + 1])
        launched.append(gpus)
        if gpus == 8:  # a failed run is reported, not fatal
            return 1
        Path(cmd[cmd.index('--out') + 1]).write_text(json.dumps({
            'gpus': gpus, 'num_envs_per_gpu': int(cmd[cmd.index('--num-envs') + 1]),
            'env_steps_per_s': rates[gpus]}))
        return 0

    monkeypatch.setattr(gpu_throughput, 'launch', fake_torchrun)
    out = tmp_path / 'scaling.json'
    assert gpu_throughput.main(['--scaling', '--num-envs', '4096', '--out', str(out)]) == 0
    assert launched == [1, 2, 4, 8]
    results = json.loads(out.read_text())
    assert results['mode'] == 'scaling' and results['target_efficiency'] == 0.9
    (size,) = results['results']
    rows = {row['gpus']: row for row in size['by_gpus']}
    assert size['num_envs_per_gpu'] == 4096
    assert rows[2]['efficiency'] == pytest.approx(0.95) and rows[2]['meets_target']
    assert rows[4]['efficiency'] == pytest.approx(0.85) and not rows[4]['meets_target']
    assert 'exited with status 1' in rows[8]['error'] and 'efficiency' not in rows[8]
    text = capsys.readouterr().out
    assert 'efficiency  95.0 %' in text and '8 GPU(s): ERROR' in text


def test_the_scaling_worker_measures_training_on_one_cpu_process(tmp_path, monkeypatch):
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / 'worker.json'
    assert gpu_throughput.main(['--scaling-worker', '--device', 'cpu', '--num-envs', '4',
                                '--train-iterations', '1', '--compile', 'off',
                                '--out', str(out)]) == 0
    result = json.loads(out.read_text())
    assert (result['gpus'], result['num_envs_per_gpu'], result['iterations']) == (1, 4, 1)
    steps = 4 * 24  # envs x steps per env (the runner default) x 1 iteration
    assert result['env_steps_per_s'] == pytest.approx(steps / result['seconds'])
    assert result['rank0_overflow']['overflow'] is False
