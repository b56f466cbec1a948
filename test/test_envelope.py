"""Tests of the command envelope sweep (training.robustness.envelope)."""

import json

from humanoid_rl_ros.core.contract import graph_sha256, read_contract
import pytest
from training.robustness import envelope

CONTRACT = 'models/humanoid_walk.yaml'


def test_sweep_commands_include_zero_both_ends_and_the_step_grid():
    assert envelope.sweep_commands(-0.6, 1.2, 0.5) == [-0.6, -0.5, 0.0, 0.5, 1.0, 1.2]
    assert envelope.sweep_commands(-0.5, 0.5, 0.25) == [-0.5, -0.25, 0.0, 0.25, 0.5]
    assert envelope.sweep_commands(0.0, 0.2, 0.1) == [0.0, 0.1, 0.2]


@pytest.mark.parametrize('low, high, step, match', [
    (-1.0, 1.0, 0.0, 'step must be positive'),
    (0.1, 1.0, 0.1, 'must contain zero')])
def test_sweep_commands_reject_bad_ranges(low, high, step, match):
    with pytest.raises(ValueError, match=match):
        envelope.sweep_commands(low, high, step)


def test_follow_threshold_is_where_every_larger_command_is_followed():
    commands = [-0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6]
    # a dead zone up to 0.2 backward; forward a gap at 0.4 under a followed 0.2
    reached = [-0.58, -0.35, 0.0, 0.0, 0.19, 0.1, 0.55]
    assert envelope.follow_threshold(commands, reached, 0.15, -1.0) == pytest.approx(0.4)
    assert envelope.follow_threshold(commands, reached, 0.15, 1.0) == pytest.approx(0.6)
    # the largest command not followed (or a fall): no threshold
    assert envelope.follow_threshold(commands, reached[:-1] + [0.2], 0.15, 1.0) is None
    assert envelope.follow_threshold(commands, reached[:-1] + [None], 0.15, 1.0) is None
    assert envelope.follow_threshold([0.0, 0.5], [0.0, 0.5], 0.15, -1.0) is None


def test_a_coarse_sweep_of_the_shipped_policy_reports_what_it_measured(tmp_path):
    out = tmp_path / 'envelope'
    status = envelope.main([CONTRACT, '--out', str(out), '--axes', 'vx_m_s', '--lin-step-m-s',
                            '0.5', '--hold-s', '3', '--rise-s', '1'])
    report = json.loads((out / 'envelope.json').read_text())
    assert (out / 'envelope.png').stat().st_size > 10_000
    # the graph it swept, so that a policy retrained under the same name is not mistaken for it
    shipped = read_contract(CONTRACT)
    assert report['policy_graph_sha256'] == graph_sha256(shipped.onnx_path(CONTRACT))
    data = report['axes']['vx_m_s']
    commands = [r['command'] for r in data['runs']]
    assert commands == [-0.6, -0.5, 0.0, 0.5, 1.0, 1.2]
    for row, followed in zip(data['runs'], data['followed']):
        got = row['reached']['vx_m_s']
        assert followed == (got is not None and abs(got - row['command']) <= 0.15)
    # the robot moves the commanded way: forward for forward commands, backward for backward
    by_command = {r['command']: r['reached']['vx_m_s'] for r in data['runs']}
    assert by_command[1.0] > 0.5 and by_command[-0.5] < -0.2 and abs(by_command[0.0]) < 0.1
    assert status == (0 if all(data['followed']) else 1)


def test_an_unknown_axis_is_named():
    with pytest.raises(ValueError, match="'vz_m_s'"):
        envelope.sweep_envelope(CONTRACT, axes=('vz_m_s',))
