"""The sim-to-sim evaluator on the shipped policy (reduced suite) and on an untrained one."""

import json
from pathlib import Path

from humanoid_rl_ros.robot.description import models_dir
import pytest
from training.evaluate import EvalConfig, evaluate, SUITE
from training.export import export_random_policy

SHIPPED = models_dir() / 'humanoid_walk.yaml'
REDUCED = tuple(case for case in SUITE if case.name in ('stand', 'forward_0.5', 'turn_0.8'))


@pytest.mark.skipif(not SHIPPED.is_file(), reason='no trained policy ships in models/')
def test_shipped_policy_tracks_commands_in_cpu_mujoco(tmp_path: Path):
    # 4 s measured after the 2 s rise: five whole 0.8 s gait periods, so the yaw and speed
    # that swing within every stride average out as in the full suite's 20 s runs
    cfg = EvalConfig(duration_s=6.0, settle_s=0.5, rise_s=2.0, seeds=1, pushes=(False,))
    report = evaluate(SHIPPED, cfg, tmp_path, cases=REDUCED)
    rows = report['per_command']
    assert report['overall']['falls'] == 0
    for name, row in rows.items():
        assert row['lin_vel_error_m_s'] <= 0.15, (name, row)
        assert row['yaw_rate_mae_rad_s'] <= 0.15, (name, row)
    assert rows['stand']['planar_drift_m_s'] <= 0.05
    saved = json.loads((tmp_path / 'eval_report.json').read_text())
    assert saved['overall']['falls'] == 0
    assert (tmp_path / 'tracking.png').stat().st_size > 0
    assert (tmp_path / 'trajectories.png').stat().st_size > 0


def test_untrained_policy_is_evaluated_and_reported_not_hidden(tmp_path: Path):
    template = SHIPPED if SHIPPED.is_file() else None
    if template is None:
        pytest.skip('needs a contract template from models/')
    contract_path = export_random_policy(template, tmp_path, 'untrained', seed=0)[1]
    cfg = EvalConfig(duration_s=2.0, settle_s=0.2, rise_s=0.5, seeds=1, pushes=(False,))
    report = evaluate(contract_path, cfg, None, cases=REDUCED[1:2])
    row = report['per_command']['forward_0.5']
    assert row['runs'] == 1
    assert report['overall']['meets_targets'] is False
