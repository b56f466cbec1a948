"""
Tests of PPO's symmetry augmentation (``ppo.symmetry_augmentation``) and its runner wiring.

The loss learns from each collected sample and its mirror, so what the policy learns on one
side it also learns, mirrored, on the other; the runner's observation normalizer sees every
observation and its mirror, so its statistics are symmetric and normalizing commutes with
mirroring.
"""

import pytest
from test_ppo_fast_paths import _forbid_host_reads, _ToyEnv
from test_runner import PointMassEnv
import torch
from training.ppo import ActorCritic, PolicyConfig, PPO, PPOConfig
from training.runner import OnPolicyRunner, RunnerConfig, set_seed
from training.symmetry import SignedPermutation

OBS_MIRROR = SignedPermutation((0, 1), (1.0, -1.0))
"""A 2-D observation (x, y) mirrored to (x, -y)."""
ACTION_MIRROR = SignedPermutation((1, 0), (1.0, 1.0))
"""Two actions (left, right) that trade places."""


def _trained_means(symmetry: bool):
    """Train on observation (0, 1) only, rewarding a high first action; return the means."""
    torch.manual_seed(0)
    ac = ActorCritic(2, 2, 2, PolicyConfig(actor_hidden_dims=(16,), critic_hidden_dims=(16,)))
    ppo = PPO(ac, PPOConfig(schedule='fixed', learning_rate=1e-2, entropy_coef=0.0,
                            symmetry_augmentation=symmetry),
              mirror=(OBS_MIRROR, ACTION_MIRROR))
    ppo.init_storage(num_envs=64, num_steps=4)
    obs = torch.tensor([[0.0, 1.0]]).expand(64, 2)
    mirrored = OBS_MIRROR.apply(obs[:1])
    before = ac.act_inference(torch.cat([obs[:1], mirrored])).detach()
    for _ in range(4):
        actions = ppo.act(obs, obs)
        ppo.process_env_step((actions[:, 0] > 0).float(), torch.ones(64, dtype=torch.bool),
                             torch.zeros(64, dtype=torch.bool))
    ppo.compute_returns(obs)
    stats = ppo.update()
    after = ac.act_inference(torch.cat([obs[:1], mirrored])).detach()
    return before, after, stats


def test_what_is_learned_on_one_side_is_learned_mirrored_on_the_other():
    before, after, stats = _trained_means(symmetry=True)
    plain_before, plain_after, _ = _trained_means(symmetry=False)
    torch.testing.assert_close(before, plain_before)  # same start
    # at the collected observation the rewarded first action rises with or without mirrors
    assert after[0, 0] > before[0, 0] + 0.05
    assert plain_after[0, 0] > plain_before[0, 0] + 0.05
    # at the mirrored observation the mirrored action (the second) rises with mirrors only
    gain = float(after[1, 1] - before[1, 1])
    plain_gain = float(plain_after[1, 1] - plain_before[1, 1])
    assert gain > 0.05 and gain > plain_gain + 0.05, (gain, plain_gain)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())


def test_augmentation_without_mirrors_of_the_actor_sizes_is_refused():
    ac = ActorCritic(2, 2, 2, PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)))
    cfg = PPOConfig(symmetry_augmentation=True)
    with pytest.raises(ValueError, match='mirror_maps'):
        PPO(ac, cfg)
    with pytest.raises(ValueError, match='3 observations'):
        PPO(ac, cfg, mirror=(SignedPermutation.identity(3), ACTION_MIRROR))


class MirroredPointMass(PointMassEnv):
    """The 1-D point mass, symmetric about 0: error, position and action change sign."""

    def mirror_maps(self):
        """Return the observation and action mirrors."""
        return SignedPermutation.signs((-1.0, -1.0)), SignedPermutation.signs((-1.0,))


def _runner(env, symmetry: bool) -> OnPolicyRunner:
    set_seed(0)
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(32, 32),
                                           critic_hidden_dims=(32, 32)),
                       tensorboard=False, plot=False)
    return OnPolicyRunner(env, PPOConfig(symmetry_augmentation=symmetry), cfg, log_dir=None,
                          device='cpu')


def test_the_runner_learns_with_mirrors_and_its_normalizer_is_symmetric():
    runner = _runner(MirroredPointMass(seed=4), symmetry=True)
    history = runner.learn(num_iterations=30)
    first = sum(r['mean_reward'] for r in history[1:4]) / 3
    last = sum(r['mean_reward'] for r in history[-3:]) / 3
    assert last > first + 6.0, (first, last)
    norm = runner.obs_normalizer
    assert float(norm.count) == 2 * 64 * 24 * 30  # every observation and its mirror
    torch.testing.assert_close(norm.mean, torch.zeros(2), rtol=0, atol=1e-6)
    # the learned policy is (nearly) odd: pi(-o) = -pi(o)
    obs = torch.randn(256, 2, generator=torch.Generator().manual_seed(1))
    policy = runner.inference_policy()
    asymmetry = (policy(-obs) + policy(obs)).abs().mean() / policy(obs).abs().mean()
    assert asymmetry < 0.2, float(asymmetry)


def test_the_runner_refuses_augmentation_with_an_env_that_has_no_mirror():
    with pytest.raises(ValueError, match='PointMassEnv has no mirror_maps'):
        _runner(PointMassEnv(), symmetry=True)


def test_a_run_resumed_with_mirrors_normalizes_symmetrically_from_the_start(tmp_path):
    plain = _runner(MirroredPointMass(seed=2), symmetry=False)
    plain.log_dir = tmp_path
    plain.learn(num_iterations=2)
    checkpoint = plain.last_checkpoint
    assert float(plain.obs_normalizer.mean.abs().max()) > 1e-3  # not symmetric by chance
    resumed = _runner(MirroredPointMass(seed=2), symmetry=True)
    resumed.resume(checkpoint)
    norm = resumed.obs_normalizer
    torch.testing.assert_close(norm.mean, torch.zeros(2), rtol=0, atol=1e-7)
    obs = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(norm(-obs), -norm(obs))
    # the mixture's variance: the old spread plus the squared half-gap of the means
    old_mean, old_var = plain.obs_normalizer.mean, plain.obs_normalizer.var
    torch.testing.assert_close(norm.var, old_var + old_mean.square())


# ------------------------------------------------------------------ the fast paths, with mirrors
TOY_OBS_MIRROR = SignedPermutation((0, 1, 2), (1.0, -1.0, 1.0))
TOY_ACTION_MIRROR = SignedPermutation((1, 0), (-1.0, -1.0))


class _MirroredToy(_ToyEnv):
    """The sync-free toy env of the fast-path tests, with mirrors of its sizes."""

    def mirror_maps(self):
        """Return the observation and action mirrors."""
        return TOY_OBS_MIRROR, TOY_ACTION_MIRROR


def _filled_ppo(compile_setting='off', n=8, steps=4):
    torch.manual_seed(0)
    ac = ActorCritic(3, 4, 2, PolicyConfig(actor_hidden_dims=(32, 16),
                                           critic_hidden_dims=(32, 16)))
    ppo = PPO(ac, PPOConfig(symmetry_augmentation=True), 'cpu',
              compile_setting=compile_setting, mirror=(TOY_OBS_MIRROR, TOY_ACTION_MIRROR))
    ppo.init_storage(n, steps)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ppo.act(torch.randn(n, 3, generator=gen), torch.randn(n, 4, generator=gen))
        ppo.process_env_step(torch.randn(n, generator=gen), torch.rand(n, generator=gen) < 0.1,
                             torch.zeros(n, dtype=torch.bool))
    return ppo


def test_a_mirrored_minibatch_step_and_collection_step_read_nothing_back(monkeypatch):
    ppo = _filled_ppo()
    ppo.compute_returns(torch.randn(8, 4))
    ppo._flat = ppo.storage.flat()
    ppo._mb_idx = ppo.storage.minibatch_indices(4, 1)[0].clone()
    calls = []
    with monkeypatch.context() as m:
        _forbid_host_reads(m, calls)
        ppo._minibatch_step()
    set_seed(0)
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)),
                       num_steps_per_env=3, tensorboard=False, plot=False)
    runner = OnPolicyRunner(_MirroredToy(), PPOConfig(symmetry_augmentation=True), cfg,
                            log_dir=None, device='cpu')
    obs, critic_obs = runner.env.reset()
    runner._obs_in.copy_(obs)
    runner._critic_obs_in.copy_(critic_obs)
    for _ in range(3):
        runner.alg.storage.commit_step()
        runner._noise.normal_()
        with monkeypatch.context() as m:
            _forbid_host_reads(m, calls)
            runner._env_step()
    assert calls == []
    assert float(runner.obs_normalizer.count) == 2 * 3 * 16
    assert abs(float(runner.obs_normalizer.mean[1])) < 1e-6  # the mirrored component


def test_the_compiled_mirrored_update_equals_the_eager_one():
    params, stats = {}, {}
    for setting in ('off', 'aot_eager'):
        ppo = _filled_ppo(setting)
        ppo.compute_returns(torch.randn(8, 4, generator=torch.Generator().manual_seed(3)))
        torch.manual_seed(5)
        stats[setting] = ppo.update()
        params[setting] = [p.detach().clone() for p in ppo.actor_critic.parameters()]
    for eager, compiled in zip(params['off'], params['aot_eager']):
        torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-6)
    assert stats['aot_eager'] == pytest.approx(stats['off'], rel=1e-5, abs=1e-7)
