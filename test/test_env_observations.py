"""
Tests of the env's observations: the actor's history, the base velocity error, the critic.

CPU, a few envs, every randomization off unless a test switches it on.  The newest frame of
the actor's input is checked against :mod:`humanoid_rl_ros.core.policy_math` (what the node
builds), the stack against the policy_math history functions.
"""

import dataclasses

from humanoid_rl_ros.core.policy_math import (build_observation, flatten_history,
                                              init_history, observation_inputs, push_history)
import pytest
import torch
from training.config import DomainRandConfig, EnvConfig, ObservationConfig
from training.env import LocomotionEnv

NUM_ENVS = 3


def _cfg(obs_noise=False, **observations):
    off = DomainRandConfig(friction=False, added_base_mass=False, motor_strength=False,
                           pd_gain_scale=False, pushes=False, obs_noise=obs_noise,
                           action_latency=False)
    return dataclasses.replace(EnvConfig(num_envs=NUM_ENVS), randomization=off,
                               observations=ObservationConfig(**observations))


def _node_frame(env):
    """Return the current frame [N, F] as policy_math builds it from the simulator state."""
    b = env.backend
    inputs = observation_inputs(
        base_quat_wxyz=b.base_quat, base_lin_vel_body_m_s=env.base_lin_vel_b,
        base_ang_vel_body_rad_s=b.base_ang_vel_body, command=env.commands,
        joint_pos_rad=b.joint_pos, default_joint_pos_rad=env.default_joint_pos,
        joint_vel_rad_s=b.joint_vel, last_action=env.actions, gait_phase=env.gait_phase)
    return build_observation(env.obs_terms, inputs, env.cfg.observations.clip)


def test_the_actor_input_stacks_frames_oldest_first_and_restarts_with_each_episode():
    # 0.1 s episodes: every env is reset every 5 steps, so restarts happen mid-run
    cfg = dataclasses.replace(_cfg(history_length=3), episode_length_s=0.1)
    torch.manual_seed(0)
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    frame_dim = env.frame_dim
    assert env.num_obs == 3 * frame_dim == env.contract().obs_dim
    obs, _ = env.reset()
    history = init_history(_node_frame(env), 3)
    torch.testing.assert_close(obs, flatten_history(history), rtol=0, atol=1e-5)
    generator = torch.Generator().manual_seed(1)
    restarts = 0
    for _ in range(8):
        obs, _, _, dones, _ = env.step(0.3 * torch.randn(NUM_ENVS, env.num_actions,
                                                         generator=generator))
        history = push_history(history, _node_frame(env), dones)
        torch.testing.assert_close(obs, flatten_history(history), rtol=0, atol=1e-5)
        restarts += int(dones.sum())
    assert restarts > 0
    # right after a reset every slot holds the new episode's first frame
    restarted = obs[dones].view(-1, 3, frame_dim)
    torch.testing.assert_close(restarted[:, 0], restarted[:, 2])


def test_an_observed_base_velocity_is_the_true_one_two_policy_steps_late():
    cfg = _cfg(obs_noise=True, use_base_lin_vel=True, lin_vel_bias_m_s=0.0,
               lin_vel_scale_error=0.0, lin_vel_lag_steps=(2, 2),
               noise={'base_lin_vel': 0.0})
    torch.manual_seed(2)
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    assert env.obs_terms[0].name == 'base_lin_vel'
    scale = cfg.observations.lin_vel_scale
    obs, critic = env.reset()
    true = [env.base_lin_vel_b.clone()]
    torch.testing.assert_close(obs[:, :3] / scale, true[0])  # a new episode: no past yet
    for k in range(1, 6):
        obs, critic, _, dones, _ = env.step(torch.zeros(NUM_ENVS, env.num_actions))
        assert not dones.any()
        true.append(env.base_lin_vel_b.clone())
        torch.testing.assert_close(obs[:, :3] / scale, true[max(k - 2, 0)], rtol=0, atol=1e-6)
        torch.testing.assert_close(critic[:, :3] / scale, true[k], rtol=0, atol=1e-6)
    assert not torch.allclose(true[-1], true[-3])  # the lag is visible


def test_an_observed_base_velocity_carries_one_bias_per_episode():
    cfg = _cfg(obs_noise=True, use_base_lin_vel=True, lin_vel_bias_m_s=0.2,
               lin_vel_scale_error=0.0, lin_vel_lag_steps=(0, 0), noise={})
    torch.manual_seed(3)
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    scale = cfg.observations.lin_vel_scale
    obs, _ = env.reset()
    biases = [obs[:, :3] / scale - env.base_lin_vel_b]
    for _ in range(4):
        obs, _, _, dones, _ = env.step(torch.zeros(NUM_ENVS, env.num_actions))
        assert not dones.any()
        biases.append(obs[:, :3] / scale - env.base_lin_vel_b)
    for bias in biases[1:]:
        torch.testing.assert_close(bias, biases[0], rtol=0, atol=1e-6)
    assert biases[0].abs().max() <= 0.2 and biases[0].abs().max() > 0.01
    assert not torch.allclose(biases[0][0], biases[0][1])  # drawn per env


def test_without_observation_noise_the_velocity_error_is_off():
    cfg = _cfg(obs_noise=False, use_base_lin_vel=True, lin_vel_bias_m_s=0.5,
               lin_vel_lag_steps=(3, 3))
    torch.manual_seed(4)
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    env.reset()
    for _ in range(3):
        obs, _, _, _, _ = env.step(torch.zeros(NUM_ENVS, env.num_actions))
    torch.testing.assert_close(obs[:, :3] / cfg.observations.lin_vel_scale, env.base_lin_vel_b)


def test_the_critic_sees_true_state_privileged_state_and_the_declared_parameters():
    torch.manual_seed(5)
    cfg = _cfg()
    cfg.randomization.friction = cfg.randomization.added_base_mass = True
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    names = [name for name, _ in env.critic_layout]
    assert names == ['terms', 'feet_height', 'feet_contact', 'feet_air_time',
                     'base_height_error', 'kp_kd_scale', 'motor_strength', 'privileged_params']
    assert sum(width for _, width in env.critic_layout) == env.num_critic_obs
    # the privileged parameters' width is what the randomization declares
    k = len(env.privileged_param_names)
    assert env.privileged_params.shape == (NUM_ENVS, k) == (NUM_ENVS, env.critic_layout[-1][1])
    env.reset()
    values = torch.arange(NUM_ENVS * k, dtype=torch.float32).view(NUM_ENVS, k) / 10.0
    env.privileged_params.copy_(values)  # as the randomization writes it (here: no resets)
    _, critic, _, dones, _ = env.step(torch.zeros(NUM_ENVS, env.num_actions))
    assert not dones.any()
    parts = dict(zip(names, torch.split(critic, [w for _, w in env.critic_layout], dim=1)))
    torch.testing.assert_close(parts['privileged_params'], values)
    # the critic's terms start with the true base velocity, which the actor does not see
    assert env.critic_terms[0].name == 'base_lin_vel'
    assert 'base_lin_vel' not in [t.name for t in env.obs_terms]
    torch.testing.assert_close(parts['terms'][:, :3] / 2.0, env.base_lin_vel_b)
    torch.testing.assert_close(parts['feet_contact'], env.feet_contact)
    torch.testing.assert_close(parts['base_height_error'][:, 0],
                               env.base_height - env.robot.nominal_base_height_m)
    torch.testing.assert_close(parts['kp_kd_scale'], env.gain_scale)


def test_the_randomized_parameters_reach_the_critic():
    """With the default randomization, the critic's tail is the env's privileged_params."""
    torch.manual_seed(6)
    env = LocomotionEnv(EnvConfig(num_envs=NUM_ENVS), 'mjwarp', 'cpu')
    k = len(env.privileged_param_names)
    quiet = LocomotionEnv(_cfg(), 'mjwarp', 'cpu')
    assert env.num_critic_obs - k == quiet.num_critic_obs - len(quiet.privileged_param_names)
    _, critic = env.reset()
    assert torch.isfinite(critic).all()
    torch.testing.assert_close(critic[:, critic.shape[1] - k:], env.privileged_params)


@pytest.mark.parametrize('bad, named', [
    ({'history_length': 0}, 'history_length must be >= 1'),
    ({'lin_vel_lag_steps': (2, 1)}, 'lin_vel_lag_steps must be 0 <= low <= high'),
])
def test_a_bad_observation_setting_is_named(bad, named):
    with pytest.raises(ValueError, match=named):
        LocomotionEnv(_cfg(**bad), 'mjwarp', 'cpu')
