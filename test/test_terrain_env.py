"""The env on terrain (CPU, MuJoCo Warp): the critic sees the terrain, leaving it is a time-out."""

import math

import pytest
import torch
from training.config import DomainRandConfig, EnvConfig, TerrainConfig
from training.env import LocomotionEnv, OUT_OF_BOUNDS_MARGIN_M

FLAT_TILES = TerrainConfig(enabled=True, kinds=('flat',), num_levels=2, tile_size_m=4.0,
                           platform_m=1.6, cell_m=0.2, border_m=1.0, spawn_half_range_m=0.3,
                           height_scan_x_m=(0.0, 0.4), height_scan_y_m=(0.0,))
"""Two flat 4 m tiles in a 1 m border: the grid spans x in [-1, 9] m and y in [-1, 5] m."""


def _env(num_envs, terrain=FLAT_TILES):
    torch.manual_seed(0)
    cfg = EnvConfig(num_envs=num_envs, terrain=terrain,
                    randomization=DomainRandConfig(pushes=False, obs_noise=False))
    return LocomotionEnv(cfg, 'mjwarp', 'cpu')


@pytest.fixture(scope='module')
def terrain_env():
    """Three envs on the flat tiles."""
    return _env(3)


def test_the_critic_sees_the_terrain_heights(terrain_env):
    env = terrain_env
    names = [name for name, _ in env.critic_layout]
    # two feet, then two scan points
    assert ('terrain_heights', 2 + 2) in env.critic_layout
    assert names.index('terrain_heights') == names.index('base_height_error') + 1
    assert sum(width for _, width in env.critic_layout) == env.num_critic_obs
    env.reset()
    _, critic, _, dones, _ = env.step(torch.zeros(3, env.num_actions))
    assert not dones.any()
    parts = dict(zip(names, torch.split(critic, [w for _, w in env.critic_layout], dim=1)))
    torch.testing.assert_close(parts['terrain_heights'], env.terrain_heights)
    # standing on flat ground: each foot at its standing height above the ground, the base at
    # about its nominal height at both scan points
    feet, scan = parts['terrain_heights'][:, :2], parts['terrain_heights'][:, 2:]
    assert torch.all((feet - env.foot_stand_height_m).abs() < 0.03)
    assert torch.all(scan.abs() < 0.03)
    # a base raised by 0.1 m: the critic's scan reads 0.1 m more, its feet heights do not move
    env.backend.base_pos[:, 2] += 0.1
    env._refresh_state()
    env._observations()
    raised = dict(zip(names, torch.split(env._critic_obs_buf,
                                         [w for _, w in env.critic_layout], dim=1)))
    torch.testing.assert_close(raised['terrain_heights'][:, 2:],
                               parts['terrain_heights'][:, 2:] + 0.1, atol=1e-5, rtol=0)
    torch.testing.assert_close(raised['terrain_heights'][:, :2], parts['terrain_heights'][:, :2])


def test_flat_ground_has_no_terrain_part():
    env = _env(1, terrain=TerrainConfig(enabled=False))
    assert 'terrain_heights' not in [name for name, _ in env.critic_layout]
    assert env.terrain_heights.shape == (1, 0)


def test_leaving_the_terrain_ends_the_episode_as_a_time_out(terrain_env):
    env = terrain_env
    env.reset()
    b = env.backend
    x_max = 9.0 - OUT_OF_BOUNDS_MARGIN_M
    # env 0 walks past the bounds near the grid's +x edge, env 1 is just inside them, env 2
    # stays on its tile
    b.base_pos[0, 0] = x_max + 0.2
    b.base_pos[1, 0] = x_max - 0.2
    _, _, _, dones, info = env.step(torch.zeros(3, env.num_actions))
    assert dones.tolist() == [True, False, False]
    assert info['time_outs'].tolist() == [True, False, False]  # bootstrapped, not a fall
    assert not env.terminated.any()
    # the reset put env 0 back on a tile of the grid
    assert float(b.base_pos[0, 0]) < x_max and math.isfinite(float(b.base_pos[0, 2]))


def test_a_resumed_run_goes_on_at_the_terrain_levels_it_had_reached(tmp_path):
    from training.ppo import PolicyConfig, PPOConfig
    from training.runner import OnPolicyRunner, RunnerConfig
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)),
                       num_steps_per_env=2, tensorboard=False, plot=False, torch_compile='off',
                       graph_update=False)
    env = _env(3)
    runner = OnPolicyRunner(env, PPOConfig(), cfg, log_dir=tmp_path, device='cpu')
    env.terrain_level.copy_(torch.tensor([1, 0, 1]))
    saved = runner.save()
    # a new run of four envs: the three saved levels spread over them, kept by the first reset
    fresh = _env(4)
    assert fresh.terrain_level.tolist() == [0, 0, 0, 0]
    resumed = OnPolicyRunner(fresh, PPOConfig(), cfg, log_dir=None, device='cpu')
    resumed.resume(saved)
    assert fresh.terrain_level.tolist() == [1, 1, 0, 1]
    fresh.reset()
    assert fresh.terrain_level.tolist() == [1, 1, 0, 1]
