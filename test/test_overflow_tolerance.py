"""A tolerated buffer overflow cuts the affected episodes; beyond the tolerance it raises."""

import pytest
import torch
from training.backends.base import SimOverflowError
from training.config import DomainRandConfig, EnvConfig

pytest.importorskip('mujoco_warp')
from training.env import LocomotionEnv  # noqa: E402


def _env(tolerance):
    cfg = EnvConfig(num_envs=4, overflow_tolerance=tolerance,
                    randomization=DomainRandConfig(pushes=False, obs_noise=False))
    return LocomotionEnv(cfg, 'mjwarp', 'cpu')


def _overflow_in(env, monkeypatch, worlds):
    """Make the backend report a constraint-row overflow in ``worlds`` at the next check."""
    mask = torch.zeros(env.num_envs, dtype=torch.bool)
    mask[list(worlds)] = True
    report = {'overflow': True, 'worlds_overflowed': len(worlds), 'flags': {'NEFC': 1},
              'invalid_inputs': []}
    monkeypatch.setattr(env.backend, 'overflowed_worlds', lambda: mask.clone())
    monkeypatch.setattr(env.backend, 'check_overflow', lambda clear=True: dict(report))


def test_within_the_tolerance_the_overflowed_worlds_end_their_episode_as_time_outs(
        monkeypatch, capsys):
    env = _env(0.5)  # up to 2 of 4 worlds
    env.reset()
    zeros = torch.zeros(env.num_envs, env.num_actions)
    for _ in range(3):
        env.step(zeros)
    lengths = env.episode_length.clone()
    _overflow_in(env, monkeypatch, [1])
    report = env.check_overflow()
    assert report['cut_worlds'] == 1 and env.overflow_cut_worlds == 1
    assert 'worlds overflowed' in capsys.readouterr().out
    _, _, _, dones, extras = env.step(zeros)
    assert dones.tolist() == [False, True, False, False]
    assert extras['time_outs'].tolist() == [False, True, False, False]  # cut, not failed
    assert int(env.episode_length[1]) == 0 and bool((env.episode_length[[0, 2, 3]]
                                                     == lengths[[0, 2, 3]] + 1).all())
    _, _, _, dones, _ = env.step(zeros)  # a cut happens once
    assert not bool(dones.any())


def test_more_worlds_than_the_tolerance_or_no_tolerance_raise(monkeypatch):
    env = _env(0.3)  # 1 of 4 worlds
    _overflow_in(env, monkeypatch, [0, 3])
    with pytest.raises(SimOverflowError):
        env.check_overflow()
    strict = _env(0.0)
    _overflow_in(strict, monkeypatch, [2])
    with pytest.raises(SimOverflowError):
        strict.check_overflow()
    assert not bool(strict._cut_episodes.any())


@pytest.mark.parametrize('bad', [-0.1, 1.0, float('nan')])
def test_a_tolerance_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match='overflow_tolerance'):
        _env(bad)
