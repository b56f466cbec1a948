"""Typed dataclass configs from defaults, YAML and --set overrides (training/cli.py)."""

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Literal, Optional, Tuple

import pytest

from training.cli import (add_config_arguments, apply_overrides, build_config, ConfigError,
                          describe_config, dump_config, load_config)
from training.ppo import PPOConfig
from training.runner import RunnerConfig


@dataclass
class RewardsCfg:
    """Reward scales."""

    tracking_lin_vel: float = 1.0
    """Linear velocity tracking scale."""
    torques: float = -1e-5
    """Effort penalty scale."""


@dataclass
class EnvCfg:
    """Env settings."""

    num_envs: int = 16
    """Parallel environments."""
    rewards: RewardsCfg = field(default_factory=RewardsCfg)
    """Reward scales."""
    noise: Dict[str, float] = field(default_factory=lambda: {'joint_vel': 1.5})
    """Noise per term."""
    vx_range_m_s: Tuple[float, float] = (-1.0, 1.0)
    """Forward command range [m/s]."""
    backend: Literal['mjwarp', 'isaacgym'] = 'mjwarp'
    """Simulator."""
    robot_path: Optional[Path] = None
    """Robot folder."""
    name: str = 'run'
    """Run name."""
    push: bool = True
    """Random pushes."""

    def __post_init__(self):
        """Validate."""
        if self.num_envs < 1:
            raise ValueError(f'num_envs must be >= 1, got {self.num_envs}')


@dataclass(frozen=True)
class TopCfg:
    """Top-level config."""

    env: EnvCfg = field(default_factory=EnvCfg)
    """Environment."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO."""
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    """Runner."""
    seed: int = 1
    """Seed."""


def test_overrides_are_typed_and_nested():
    cfg = apply_overrides(TopCfg(), [
        'ppo.learning_rate=3e-4', 'env.rewards.tracking_lin_vel=2', 'seed=7',
        'runner.policy.actor_hidden_dims=[256,128]', 'runner.policy.critic_hidden_dims=64,32',
        'env.noise.joint_vel=0.5', 'env.vx_range_m_s=[-0.5, 1.5]', 'env.backend=isaacgym',
        'env.robot_path=models/robots/kestrel', 'env.name=123', 'env.push=false',
        'ppo.use_clipped_value_loss=False'])
    assert cfg.ppo.learning_rate == 3e-4 and isinstance(cfg.ppo.learning_rate, float)
    assert cfg.env.rewards.tracking_lin_vel == 2.0
    assert isinstance(cfg.env.rewards.tracking_lin_vel, float)
    assert cfg.seed == 7
    assert cfg.runner.policy.actor_hidden_dims == (256, 128)
    assert cfg.runner.policy.critic_hidden_dims == (64, 32)
    assert cfg.env.noise == {'joint_vel': 0.5}
    assert cfg.env.vx_range_m_s == (-0.5, 1.5)
    assert cfg.env.backend == 'isaacgym'
    assert cfg.env.robot_path == Path('models/robots/kestrel')
    assert cfg.env.name == '123'
    assert cfg.env.push is False and cfg.ppo.use_clipped_value_loss is False
    # Defaults are not mutated.
    assert TopCfg().ppo.learning_rate == 1e-3 and EnvCfg().noise == {'joint_vel': 1.5}


@pytest.mark.parametrize('override, message', [
    ('ppo.learnin_rate=1', "ppo.learnin_rate: unknown key 'learnin_rate'"),
    ('envv.num_envs=1', "unknown key 'envv'"),
    ('env.noise.joint_pos=1', "env.noise.joint_pos: unknown key 'joint_pos'"),
    ('seed=1.5', 'seed: expected an int'),
    ('ppo.gamma=fast', 'ppo.gamma: expected a float'),
    ('env.push=maybe', 'env.push: expected a bool'),
    ('env.backend=bullet', 'env.backend: expected one of'),
    ('env.vx_range_m_s=[1, 2, 3]', 'env.vx_range_m_s: expected 2 values'),
    ('env.num_envs=0', 'env.num_envs: rejected by EnvCfg: num_envs must be >= 1'),
    ('ppo.clip_param=-1', 'ppo.clip_param'),
    ('seed.x=1', "seed.x: 'seed' holds a int value, not a section"),
    ('seed', 'KEY=VALUE'),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace('[', r'\[')):
        apply_overrides(TopCfg(), [override])


def test_yaml_round_trip_and_file_layering(tmp_path):
    cfg = apply_overrides(TopCfg(), ['env.rewards.torques=-2e-5', 'runner.save_interval=10'])
    path = dump_config(cfg, tmp_path / 'run' / 'config.yaml')
    assert load_config(TopCfg, path) == cfg
    (tmp_path / 'partial.yaml').write_text('env:\n  num_envs: 4096\nppo:\n  gamma: 0.98\n')
    built = build_config(TopCfg, ['ppo.gamma=0.97'], config_file=tmp_path / 'partial.yaml')
    assert built.env.num_envs == 4096 and built.ppo.gamma == 0.97
    assert built.env.rewards == RewardsCfg()
    (tmp_path / 'bad.yaml').write_text('env:\n  num_env: 3\n')
    with pytest.raises(ConfigError, match="env.num_env: unknown key 'num_env'"):
        load_config(TopCfg, tmp_path / 'bad.yaml')


def test_argparse_helper_and_description():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(['--set', 'seed=3', 'ppo.lam=0.9', '--set', 'env.num_envs=2'])
    cfg = build_config(TopCfg, args.overrides, args.config_file)
    assert (cfg.seed, cfg.ppo.lam, cfg.env.num_envs) == (3, 0.9, 2)
    lines = describe_config(TopCfg())
    assert any(line.startswith('ppo.learning_rate = 0.001  # Initial Adam') for line in lines)
    assert any(line.startswith('env.rewards.torques = ') for line in lines)
