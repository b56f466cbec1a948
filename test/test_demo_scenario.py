"""Tests of the walking demo: scenario, metrics (hand-computed numbers), policy choice."""

import math

from humanoid_rl_ros.demo import runner
from humanoid_rl_ros.demo.scenario import command_at
from humanoid_rl_ros.demo.scenario import compute_metrics
from humanoid_rl_ros.demo.scenario import count_falls
from humanoid_rl_ros.demo.scenario import DEFAULT_SCENARIO
from humanoid_rl_ros.demo.scenario import DemoLog
from humanoid_rl_ros.demo.scenario import format_summary
from humanoid_rl_ros.demo.scenario import parse_time_ns
from humanoid_rl_ros.demo.scenario import plot_demo
from humanoid_rl_ros.demo.scenario import scenario_duration_s
from humanoid_rl_ros.demo.scenario import Segment
from humanoid_rl_ros.demo.scenario import segment_index_at
from humanoid_rl_ros.demo.scenario import tilt_rad
from humanoid_rl_ros.demo.scenario import validate_segments
import numpy as np
import pytest

TWO = (Segment('fwd', 2.0, vx_m_s=0.5), Segment('turn', 1.0, wz_rad_s=1.0))
UPRIGHT = (1.0, 0.0, 0.0, 0.0)


def _log(t, pos, vel, quat=UPRIGHT):
    n = len(t)
    return DemoLog(np.array(t, float), np.array(pos, float), np.tile(quat, (n, 1)),
                   np.array(vel, float))


def test_default_scenario_is_forward_turn_sideways_stop():
    validate_segments(DEFAULT_SCENARIO)
    names = [s.name for s in DEFAULT_SCENARIO]
    assert names[1:] == ['forward', 'turn', 'sideways', 'stop']
    assert scenario_duration_s(DEFAULT_SCENARIO) == pytest.approx(18.0)


def test_command_lookup_boundaries():
    assert command_at(TWO, -0.1) == (0.0, 0.0, 0.0)
    assert command_at(TWO, 0.0) == (0.5, 0.0, 0.0)
    assert command_at(TWO, 1.999) == (0.5, 0.0, 0.0)
    # The boundary instant belongs to the next segment.
    assert command_at(TWO, 2.0) == (0.0, 0.0, 1.0)
    assert segment_index_at(TWO, 2.5) == 1
    # After the end: stop.
    assert command_at(TWO, 3.0) == (0.0, 0.0, 0.0)
    assert segment_index_at(TWO, 3.0) is None


def test_bad_segments_are_named():
    with pytest.raises(ValueError, match='segment 1 \\(b\\).*duration_s'):
        validate_segments((Segment('a', 1.0), Segment('b', 0.0)))
    with pytest.raises(ValueError, match='vy_m_s'):
        validate_segments((Segment('a', 1.0, vy_m_s=math.nan),))
    with pytest.raises(ValueError, match='at least one'):
        validate_segments(())


def test_metrics_hand_computed():
    # Samples every 0.5 s. Rise time 1.0 s: fwd scores t=1.0, 1.5; turn scores nothing
    # (starts at 2.0, so t >= 3.0 but < 3.0 is empty).
    t = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    # A 3-4-5 walk: (0,0) -> (3,0) -> (3,4), path 7 m, displacement 5 m.
    pos = [[0, 0, 0.9], [1, 0, 0.9], [2, 0, 0.9], [3, 0, 0.9], [3, 2, 0.9], [3, 4, 0.9]]
    vel = [[0.0, 0, 0], [0.2, 0, 0], [0.4, 0.1, 0.0], [0.7, -0.1, 0.2], [0, 0, 0.5], [0, 0, 1]]
    m = compute_metrics(_log(t, pos, vel), TWO, rise_time_s=1.0)
    assert m.path_length_m == pytest.approx(7.0)
    assert m.displacement_m == pytest.approx(5.0)
    assert m.duration_s == pytest.approx(2.5)
    fwd, turn = m.segments
    assert fwd.num_samples == 2
    # |0.4-0.5|, |0.7-0.5| -> 0.15; |0.1|, |-0.1| -> 0.1; |0|, |0.2| -> 0.1.
    assert fwd.mean_abs_error == pytest.approx((0.15, 0.1, 0.1))
    assert fwd.mean_measured == pytest.approx((0.55, 0.0, 0.1))
    assert turn.num_samples == 0
    assert all(math.isnan(v) for v in turn.mean_abs_error)
    assert m.falls == 0 and m.first_fall_t_s is None
    text = format_summary(m)
    assert 'path 7.00 m' in text and 'fwd' in text and 'falls: 0' in text


def test_falls_from_height_and_tilt():
    # Height drops below 0.4 m at t=1 (fall 1), recovers, then tilts 90 deg about x at t=3.
    half = math.sqrt(0.5)
    quats = np.array([UPRIGHT, UPRIGHT, UPRIGHT, (half, half, 0, 0), (half, half, 0, 0)])
    pos = [[0, 0, 0.9], [0, 0, 0.3], [0, 0, 0.9], [0, 0, 0.9], [0, 0, 0.9]]
    log = DemoLog(np.arange(5.0), np.array(pos, float), quats, np.zeros((5, 3)))
    m = compute_metrics(log, (Segment('s', 5.0),), fall_height_m=0.4)
    assert m.falls == 2
    assert m.first_fall_t_s == pytest.approx(1.0)
    assert tilt_rad(quats)[3] == pytest.approx(math.pi / 2)
    assert tilt_rad(quats)[0] == pytest.approx(0.0)


def test_count_falls_edges():
    assert count_falls(np.array([], bool)) == 0
    assert count_falls(np.array([True, True, False, True])) == 2
    assert count_falls(np.array([False, False])) == 0


def test_plot_writes_png(tmp_path):
    t = np.linspace(0.0, 3.0, 31)
    pos = np.stack([0.5 * t, 0 * t, 0.9 + 0 * t], axis=1)
    vel = np.stack([0.5 + 0 * t, 0 * t, 0 * t], axis=1)
    out = plot_demo(_log(t, pos, vel), TWO, tmp_path / 'sub' / 'demo.png')
    assert out.is_file() and out.read_bytes()[:4] == b'\x89PNG'


def test_parse_time_ns_is_exact():
    assert parse_time_ns('1.010000000') == 1_010_000_000
    assert parse_time_ns('3') == 3_000_000_000
    assert parse_time_ns('0.5') == 500_000_000
    assert parse_time_ns('-0.000000001') == -1
    assert parse_time_ns('') is None
    # 1e9 s + 1 ns is not representable as a float; the parser keeps it
    assert parse_time_ns('1000000000.000000001') == 1_000_000_000_000_000_001
    for bad in ('abc', '1.2.3', '1.0000000001', '1e3'):
        with pytest.raises(ValueError, match='decimal seconds'):
            parse_time_ns(bad)


def test_demo_without_a_policy_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    # No shipped policy (an empty models folder) and no --policy: exit 2 before any node
    # starts, with a message naming the missing file and both ways to get a policy.
    monkeypatch.setattr(runner, 'models_dir', lambda: tmp_path)
    assert runner.shipped_policy() is None
    assert runner.main(['--out', str(tmp_path / 'out')]) == 2
    said = capsys.readouterr().out
    assert str(tmp_path / 'humanoid_walk.yaml') in said
    assert '--policy <contract.yaml>' in said and 'python -m training.train' in said
    assert not (tmp_path / 'out').exists()


def test_demo_with_a_missing_policy_file_fails(tmp_path, capsys):
    assert runner.main(['--policy', str(tmp_path / 'nope.yaml')]) == 2
    assert 'nope.yaml does not exist' in capsys.readouterr().out
