"""
The Gymnasium and Stable-Baselines3 adapters of the training env (CPU, MuJoCo Warp, 3 robots).

Episodes are made to end on purpose: a time-out by shortening the episode to 5 policy steps,
a fall by raising the fall height above the standing robot.  The finished episode's last
observation is checked against the observation the same seeded run gives when its episode
goes on.
"""

import numpy as np
import pytest
import torch
from training.config import DomainRandConfig
from training.interop import GymnasiumVecEnv, make_env, SB3VecEnv

NUM_ENVS = 3
STEPS = 5
"""Policy steps of the shortened episodes."""


@pytest.fixture(scope='module')
def env():
    """Return one 3-robot CPU env without randomization, shared by the tests (slow to build)."""
    quiet = DomainRandConfig(friction=False, added_base_mass=False, motor_strength=False,
                             pd_gain_scale=False, pushes=False, obs_noise=False,
                             action_latency=False)
    environment = make_env(num_envs=NUM_ENVS, device='cpu', randomization=quiet)
    yield environment
    environment.close()


@pytest.fixture()
def episodes(env):
    """Restore the episode length and fall height that a test changes."""
    length, fall = env.max_episode_length, env.cfg.fall_height_fraction
    yield env
    env.max_episode_length, env.cfg.fall_height_fraction = length, fall


def _zero_actions(env) -> np.ndarray:
    return np.zeros((NUM_ENVS, env.num_actions), dtype=np.float32)


def _uninterrupted_obs(env, seed: int) -> np.ndarray:
    """Return the observations after STEPS zero-action steps of an episode that goes on."""
    venv = SB3VecEnv(env)
    venv.seed(seed)
    venv.reset()
    for _ in range(STEPS):
        obs, _, dones, _ = venv.step(_zero_actions(env))
        assert not dones.any()
    return obs


def test_spaces_come_from_the_policy_contract(env):
    contract = env.contract()
    venv = SB3VecEnv(env)
    assert venv.num_envs == NUM_ENVS
    assert venv.observation_space.shape == (contract.obs_dim,)
    assert venv.observation_space.dtype == np.float32
    assert (venv.observation_space.high == contract.obs_clip).all()
    assert (venv.observation_space.low == -contract.obs_clip).all()
    assert venv.action_space.shape == (contract.action_dim,) == (env.num_actions,)
    assert (venv.action_space.high == contract.action_clip).all()
    gym_env = GymnasiumVecEnv(env)
    assert gym_env.single_observation_space == venv.observation_space
    assert gym_env.observation_space.shape == (NUM_ENVS, contract.obs_dim)
    assert gym_env.action_space.shape == (NUM_ENVS, contract.action_dim)
    obs = venv.reset()
    assert isinstance(obs, np.ndarray) and obs.dtype == np.float32
    assert obs.shape == (NUM_ENVS, contract.obs_dim)


def test_sb3_time_outs_are_truncations_with_the_episodes_last_observation(episodes):
    env = episodes
    expected_last = _uninterrupted_obs(env, seed=7)
    env.max_episode_length = STEPS
    venv = SB3VecEnv(env)
    venv.seed(7)
    venv.reset()
    for step in range(1, STEPS + 1):
        obs, rewards, dones, infos = venv.step(_zero_actions(env))
        assert rewards.shape == (NUM_ENVS,) and dones.dtype == bool
        assert dones.all() == (step == STEPS) and dones.any() == (step == STEPS)
    for i in range(NUM_ENVS):
        assert infos[i]['TimeLimit.truncated'] is True
        np.testing.assert_allclose(infos[i]['terminal_observation'], expected_last[i],
                                   atol=1e-5)
    # the returned observation starts the next episode
    assert not np.allclose(obs, expected_last, atol=1e-3)


def test_sb3_falls_are_terminations_not_truncations(episodes):
    env = episodes
    env.cfg.fall_height_fraction = 10.0  # every robot is "too low" after its first step
    venv = SB3VecEnv(env)
    venv.reset()
    obs, _, dones, infos = venv.step(_zero_actions(env))
    assert dones.all()
    for i in range(NUM_ENVS):
        assert infos[i]['TimeLimit.truncated'] is False
        assert infos[i]['terminal_observation'].shape == obs[i].shape


def test_gymnasium_same_step_autoreset_reports_the_final_observation(episodes):
    env = episodes
    expected_last = _uninterrupted_obs(env, seed=3)
    env.max_episode_length = STEPS
    gym_env = GymnasiumVecEnv(env)
    assert gym_env.metadata['autoreset_mode'].value == 'SameStep'
    gym_env.reset(seed=3)
    for step in range(1, STEPS + 1):
        obs, rewards, terminations, truncations, infos = gym_env.step(_zero_actions(env))
        assert not terminations.any()
        assert truncations.all() == (step == STEPS) and truncations.any() == (step == STEPS)
        assert ('final_obs' in infos) == (step == STEPS)
    assert infos['_final_obs'].tolist() == [True] * NUM_ENVS
    np.testing.assert_allclose(np.stack(infos['final_obs']), expected_last, atol=1e-5)
    assert gym_env.observation_space.contains(obs)


def test_gymnasium_next_step_autoreset_reports_the_end_then_the_reset(episodes):
    env = episodes
    expected_last = _uninterrupted_obs(env, seed=3)
    env.max_episode_length = STEPS
    gym_env = GymnasiumVecEnv(env, autoreset_mode='NextStep')
    gym_env.reset(seed=3)
    for _ in range(STEPS):
        obs, _, terminations, truncations, infos = gym_env.step(_zero_actions(env))
    assert truncations.all() and not terminations.any() and infos == {}
    np.testing.assert_allclose(obs, expected_last, atol=1e-5)  # the episode's end
    obs, rewards, terminations, truncations, _ = gym_env.step(_zero_actions(env))
    assert (rewards == 0.0).all() and not terminations.any() and not truncations.any()
    assert not np.allclose(obs, expected_last, atol=1e-3)  # a new episode
    _, rewards, _, _, _ = gym_env.step(_zero_actions(env))
    assert (rewards != 0.0).all()


def test_wrongly_shaped_actions_are_refused_with_the_expected_shape(env):
    venv = SB3VecEnv(env)
    venv.reset()
    with pytest.raises(ValueError, match=rf'actions must have shape \({NUM_ENVS}, '
                                         rf'{env.num_actions}\), got \(2, {env.num_actions}\)'):
        venv.step(np.zeros((2, env.num_actions), dtype=np.float32))


@pytest.mark.slow
def test_sb3_ppo_trains_through_the_adapter_and_its_export_runs_in_the_policy_runtime(
        env, tmp_path):
    from humanoid_rl_ros.core.contract import read_contract
    from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor
    from training.interop import export_sb3_policy

    venv = VecMonitor(SB3VecEnv(env))
    model = PPO('MlpPolicy', venv, n_steps=32, batch_size=48, n_epochs=2, seed=0,
                policy_kwargs={'net_arch': [32, 32]}, device='cpu')
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=192)
    assert model.num_timesteps == 192
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))

    onnx_path, contract_path = export_sb3_policy(model, env, tmp_path, 'sb3_walk')
    contract = read_contract(contract_path)
    assert contract.obs_dim == env.num_obs and contract.action_dim == env.num_actions
    assert contract.provenance['trainer'].startswith('stable-baselines3 ')
    runtime = PolicyRuntime.load(contract_path)
    obs = venv.reset()
    deterministic, _ = model.predict(obs, deterministic=True)
    for i in range(NUM_ENVS):
        np.testing.assert_allclose(runtime.act(obs[i]), deterministic[i], atol=1e-5)
