"""A tolerated buffer overflow ends the affected episodes; beyond the tolerance it raises."""

import pytest
import torch
from training.backends.base import SimOverflowError
from training.config import DomainRandConfig, EnvConfig

mjw = pytest.importorskip('mujoco_warp')
from training.env import LocomotionEnv  # noqa: E402

NEFC = int(mjw.OverflowType.NEFC)
ITERATIONS = int(mjw.OverflowType.ITERATIONS)


def _env(tolerance, num_envs=4):
    cfg = EnvConfig(num_envs=num_envs, overflow_tolerance=tolerance,
                    randomization=DomainRandConfig(pushes=False, obs_noise=False))
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    env.reset()
    return env


def _step(env):
    return env.step(torch.zeros(env.num_envs, env.num_actions))


def _overflow(env, world, bit=NEFC):
    """Set a sticky overflow bit of ``world`` as MuJoCo Warp does during a physics step."""
    env.backend._overflow[world] |= bit


def test_an_overflow_ends_that_world_s_episode_at_once_and_only_once(capsys):
    env = _env(0.5)  # up to 2 of 4 worlds
    for _ in range(3):
        _step(env)
    lengths = env.episode_length.clone()
    _overflow(env, 1)
    _, _, _, dones, extras = _step(env)
    assert dones.tolist() == [False, True, False, False]
    assert extras['time_outs'].tolist() == [False, True, False, False]  # cut, not failed
    assert int(env.episode_length[1]) == 0
    assert bool((env.episode_length[[0, 2, 3]] == lengths[[0, 2, 3]] + 1).all())
    for _ in range(3):  # the bit stays until the check: the new episode is not cut again
        _, _, _, dones, _ = _step(env)
        assert not bool(dones.any())
    report = env.check_overflow()
    assert report['cut_worlds'] == 1 and env.overflow_cut_worlds == 1
    assert 'worlds overflowed' in capsys.readouterr().out
    assert int(env.backend._overflow.abs().sum()) == 0  # the check cleared the bits
    _overflow(env, 1)  # a new overflow of the same world after the check: cut again
    _, _, _, dones, _ = _step(env)
    assert dones.tolist() == [False, True, False, False]
    assert env.check_overflow()['cut_worlds'] == 1 and env.overflow_cut_worlds == 2


def test_a_solver_iteration_limit_is_not_an_overflow():
    env = _env(0.5)
    _overflow(env, 2, ITERATIONS)
    _, _, _, dones, _ = _step(env)
    assert not bool(dones.any())
    assert 'cut_worlds' not in env.check_overflow()


def test_more_worlds_than_the_tolerance_or_no_tolerance_raise():
    env = _env(0.3)  # 1 of 4 worlds
    _overflow(env, 0)
    _overflow(env, 3)
    with pytest.raises(SimOverflowError):
        env.check_overflow()
    strict = _env(0.0)
    _overflow(strict, 2)
    _, _, _, dones, _ = _step(strict)
    assert not bool(dones.any())  # no tolerance: nothing is cut, the check raises
    with pytest.raises(SimOverflowError):
        strict.check_overflow()


@pytest.mark.parametrize('bad', [-0.1, 1.0, float('nan')])
def test_a_tolerance_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match='overflow_tolerance'):
        LocomotionEnv(EnvConfig(num_envs=2, overflow_tolerance=bad), 'mjwarp', 'cpu')


def test_a_cut_episode_leaves_the_terrain_level_where_it_was():
    from training.config import TerrainConfig
    tiles = TerrainConfig(enabled=True, kinds=('flat',), num_levels=3, tile_size_m=4.0,
                          platform_m=1.6, cell_m=0.2, border_m=1.0, spawn_half_range_m=0.3,
                          height_scan_x_m=(0.0,), height_scan_y_m=(0.0,))
    cfg = EnvConfig(num_envs=2, overflow_tolerance=0.5, terrain=tiles,
                    randomization=DomainRandConfig(pushes=False, obs_noise=False))
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    env.reset()
    env.terrain_level.fill_(1)
    env.commands[:, 0] = 1.0  # asked to walk, will not have: a normal end would demote
    for _ in range(3):
        _step(env)
    _overflow(env, 0)  # world 0 is cut at the next step
    env.episode_length[1] = env.max_episode_length  # world 1 ends by time-out in it
    _, _, _, dones, _ = _step(env)
    assert dones.tolist() == [True, True]
    assert env.terrain_level.tolist() == [1, 0]  # the cut one kept its level
