"""The GPU throughput benchmark's code path, run on the CPU at a tiny size."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

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
