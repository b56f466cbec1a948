"""The reward-terms benchmark: a policy's reward term by term, with and without action noise."""

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('reward_terms',
                                               REPO / 'benchmarks' / 'reward_terms.py')
reward_terms = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reward_terms)
SNAPSHOT = (REPO / 'benchmarks' / 'time_to_policy_real_world' / 'first_run' / 'snapshot_it01318'
            / 'real_world_it01318.onnx')
REAL_WORLD = REPO / 'training' / 'configs' / 'real_world.yaml'


def test_the_terms_add_up_to_the_reward_and_noise_costs_action_rate(tmp_path):
    out = tmp_path / 'terms.json'
    assert reward_terms.main(['--policy', str(SNAPSHOT), '--config', str(REAL_WORLD),
                              '--action-std', '0', '1.5', '--num-envs', '3', '--steps', '6',
                              '--out', str(out)]) == 0
    record = json.loads(out.read_text())
    calm, noisy = record['results']
    for row in (calm, noisy):
        assert row['env_steps'] == 18
        assert sum(row['terms_per_step'].values()) == pytest.approx(row['reward_per_step'],
                                                                    abs=1e-5)
        assert row['terms_per_step']['track_lin_vel'] > 0.0
    assert noisy['terms_per_step']['action_rate'] < 5.0 * calm['terms_per_step']['action_rate']
    assert noisy['reward_per_step'] < calm['reward_per_step']
    assert out.with_suffix('.png').stat().st_size > 5000
    assert record['command'].startswith('python benchmarks/reward_terms.py --policy')


def test_a_policy_of_another_observation_is_refused_with_both_sizes(tmp_path):
    shipped = REPO / 'models' / 'humanoid_walk_base_vel.onnx'  # it observes its base velocity
    with pytest.raises(SystemExit, match='takes 77 observations, the env .* gives 74'):
        reward_terms.main(['--policy', str(shipped), '--config', str(REAL_WORLD),
                           '--action-std', '0', '--num-envs', '2', '--steps', '1',
                           '--out', str(tmp_path / 'x.json')])


def test_held_commands_on_nominal_ground_report_each_command_and_its_velocity(tmp_path):
    out = tmp_path / 'by_command.json'
    assert reward_terms.main(['--policy', str(SNAPSHOT), '--config', str(REAL_WORLD),
                              '--action-std', '0', '--nominal', '--commands', '0.5', '0', '0',
                              '0', '0', '0', '--num-envs', '2', '--steps', '8',
                              '--skip-steps', '3', '--out', str(out)]) == 0
    record = json.loads(out.read_text())
    walk, stand = record['results']
    assert walk['command'] == [0.5, 0.0, 0.0] and stand['command'] == [0.0, 0.0, 0.0]
    assert record['skip_steps'] == 3 and record['nominal'] is True
    for row in (walk, stand):
        assert len(row['velocity_reached']) == 3
        assert sum(row['terms_per_step'].values()) == pytest.approx(row['reward_per_step'],
                                                                    abs=1e-5)
    # the held command decides the gates: the stand terms pay only at the zero command
    assert stand['terms_per_step']['stand_pose'] > 0.0
    assert walk['terms_per_step']['stand_pose'] == 0.0


def test_commands_must_come_in_triples(tmp_path):
    with pytest.raises(SystemExit, match='triples, got 2 numbers'):
        reward_terms.main(['--policy', str(SNAPSHOT), '--config', str(REAL_WORLD),
                           '--commands', '0.5', '0', '--out', str(tmp_path / 'x.json')])
