"""
The real-world training config: it parses, turns every sim-to-real term on, and trains on CPU.

``training/configs/real_world.yaml`` goes through the training command line's own parser
(``--config``), then two PPO iterations run on a few CPU worlds through the code path the GPU
uses (MuJoCo Warp, terrain, every randomization term, latency), and the exported contract says
what the policy was trained under.
"""

import dataclasses
from pathlib import Path

from humanoid_rl_ros.core.contract import read_contract
import numpy as np
import pytest
from training.train import parse_config, train, TrainConfig
import yaml

REPO = Path(__file__).resolve().parents[1]
REAL_WORLD = REPO / 'training' / 'configs' / 'real_world.yaml'
TINY = ['--device', 'cpu', '--num-envs', '4', '--iterations', '2',
        '--runner.num-steps-per-env', '8', '--runner.no-tensorboard', '--runner.no-plot',
        '--runner.policy.actor-hidden-dims', '32', '32',
        '--runner.policy.critic-hidden-dims', '32', '32']


def _leaves(mapping, prefix=()):
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def _field(obj, path):
    for name in path:
        obj = getattr(obj, name)
    return obj


def test_every_real_world_term_is_on():
    cfg = parse_config(['--config', str(REAL_WORLD)])
    r, env = cfg.env.randomization, cfg.env
    switches = ('friction', 'added_base_mass', 'link_mass', 'base_com', 'motor_strength',
                'pd_gain_scale', 'kd_scale', 'armature', 'joint_friction', 'joint_damping',
                'latency', 'imu_bias', 'encoder_bias', 'obs_noise', 'pushes')
    assert {name: getattr(r, name) for name in switches} == dict.fromkeys(switches, True)
    assert r.action_delay_ms == (0.0, 40.0) and r.obs_delay_ms == (0.0, 40.0)
    assert not r.action_latency  # the older fixed one-step delay stays off: latency replaces it
    assert r.push_lin_vel_m_s == 1.0 and r.push_lin_vel_z_m_s == 0.4
    assert r.push_ang_vel_rad_s == (0.52, 0.52, 0.78)
    assert env.terrain.enabled and env.terrain.curriculum and env.terrain.max_init_level == 0
    assert env.terrain.max_slope_deg == 15.0 and env.terrain.num_levels == 10
    # what a real robot measures: no base velocity in the actor
    assert not env.observations.use_base_lin_vel
    # a quiet stance at zero command: standing commands and the stand terms are rewarded
    assert env.commands.standing_fraction > 0
    assert env.rewards.stand_pose > 0 and env.rewards.stand_still < 0
    # every sample also teaches its left-right mirror
    assert cfg.ppo.symmetry_augmentation
    # options given on the command line still override the file
    fast = parse_config(['--config', str(REAL_WORLD), '--env.terrain.no-enabled'])
    assert not fast.env.terrain.enabled and fast.env.randomization.latency


def test_the_file_lists_only_what_differs_from_the_defaults():
    data = yaml.safe_load(REAL_WORLD.read_text())
    default = TrainConfig()
    listed = list(_leaves(data))
    assert listed
    for path, value in listed:
        default_value = _field(default, path)
        if isinstance(default_value, tuple):
            value = tuple(value)
        assert value != default_value, f'{".".join(path)} repeats its default {default_value}'


def test_two_cpu_iterations_with_every_term_export_a_contract_that_says_so(tmp_path):
    cfg = parse_config(['--config', str(REAL_WORLD), *TINY, '--run-name', 'real_world',
                        '--log-root', str(tmp_path / 'runs'),
                        '--export-dir', str(tmp_path / 'models')])
    result = train(cfg, command_line=['pytest'])
    history = result['history']
    assert len(history) == 2
    assert all(np.isfinite([row['value_loss'], row['surrogate_loss']]).all() for row in history)
    assert result['provenance']['overflow']['overflow'] is False
    # the run folder's config is the file's (a --config input for the next run)
    saved = parse_config(['--config', str(tmp_path / 'runs' / 'real_world' / 'config.yaml')])
    assert dataclasses.asdict(saved.env) == dataclasses.asdict(cfg.env)
    training = read_contract(result['contract']).training
    rand = training.randomization
    assert rand.latency.action_delay_physics_steps == (0, 8)  # 0-40 ms at 5 ms
    assert rand.latency.obs_delay_physics_steps == (0, 8)
    assert rand.link_mass_scale_range == (0.9, 1.1) and rand.kd_scale_range == (0.95, 1.05)
    assert rand.armature_scale_range == (0.9, 1.1)
    assert rand.joint_friction_nm == (0.0, 1.0) and rand.joint_damping_nms_per_rad == (0.0, 0.3)
    assert rand.base_com_offset_m == (0.025, 0.025, 0.03)
    assert rand.encoder_bias_rad == pytest.approx(0.015)
    assert rand.push_lin_vel_m_s == 1.0
    assert training.terrain is not None and training.terrain.curriculum
    assert training.terrain.max_slope_deg == 15.0
    assert training.command_sampling.single_axis_fraction == 0.3


def _sampled_commands(fraction, n=600):
    from training.config import CommandConfig, DomainRandConfig, EnvConfig
    from training.env import LocomotionEnv
    import torch
    off = DomainRandConfig(friction=False, added_base_mass=False, motor_strength=False,
                           pd_gain_scale=False, pushes=False, obs_noise=False,
                           action_latency=False)
    cfg = EnvConfig(num_envs=n, randomization=off,
                    commands=CommandConfig(standing_fraction=0.0, small_command_m_s=0.0,
                                           single_axis_fraction=fraction))
    torch.manual_seed(0)
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    try:
        env._rand.uniform_()
        cmd, _ = env._sample_commands('')
        return cmd
    finally:
        env.close()


def test_single_axis_commands_keep_one_axis_drawn_over_all_three():
    cmd = _sampled_commands(0.5)
    nonzero = (cmd != 0).sum(dim=1)
    single = nonzero == 1
    # about half the commands keep one axis; the others keep all three
    assert 0.4 < float(single.float().mean()) < 0.6
    assert bool(((nonzero == 1) | (nonzero == 3)).all())
    # each axis is the kept one about a third of the time
    kept = (cmd[single] != 0).float().mean(dim=0)
    assert all(0.2 < float(k) < 0.47 for k in kept)
    # off: every command keeps its three independent draws
    assert bool(((_sampled_commands(0.0) != 0).sum(dim=1) == 3).all())


def test_a_single_axis_fraction_outside_0_1_is_refused():
    with pytest.raises(ValueError, match=r'commands.single_axis_fraction must be in \[0, 1\]'):
        _sampled_commands(1.5, n=1)
