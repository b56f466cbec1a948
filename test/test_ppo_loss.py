"""PPO losses and learning-rate rule at hand-computed points, plus one update's direction."""

import pytest
import torch

from training.ppo import ActorCritic, PolicyConfig, PPO, PPOConfig
from training.ppo import clipped_surrogate_loss, value_loss
from training.ppo.ppo import adapt_learning_rate, gaussian_kl


@pytest.mark.parametrize('ratio, adv, expected', [
    (1.5, 1.0, -1.2),   # gain capped at 1 + clip
    (1.5, -1.0, 1.5),   # pessimistic: the unclipped, larger penalty
    (0.5, 1.0, -0.5),   # pessimistic: the unclipped, smaller gain
    (0.5, -1.0, 0.8),   # penalty capped at 1 - clip
    (1.1, 1.0, -1.1),   # inside the clip range: plain -A r
])
def test_clipped_surrogate_at_known_ratios(ratio, adv, expected):
    loss = clipped_surrogate_loss(torch.tensor([ratio]), torch.tensor([adv]), 0.2)
    assert loss.item() == pytest.approx(expected)


def test_clipped_surrogate_is_the_batch_mean():
    loss = clipped_surrogate_loss(torch.tensor([1.5, 1.5, 0.5, 0.5]),
                                  torch.tensor([1.0, -1.0, 1.0, -1.0]), 0.2)
    assert loss.item() == pytest.approx((-1.2 + 1.5 - 0.5 + 0.8) / 4)


def test_value_loss_clipped_and_unclipped():
    v, old, ret = torch.tensor([1.5]), torch.tensor([1.0]), torch.tensor([2.0])
    # Unclipped: (2 - 1.5)^2 = 0.25.  Clipped: 1 + clamp(0.5, +-0.2) = 1.2 -> (2 - 1.2)^2 = 0.64,
    # and the loss takes the max of both.
    assert value_loss(v, old, ret, 0.2, use_clipped=False).item() == pytest.approx(0.25)
    assert value_loss(v, old, ret, 0.2, use_clipped=True).item() == pytest.approx(0.64)


def test_adaptive_lr_rule():
    cfg = PPOConfig()
    assert adapt_learning_rate(1e-3, 0.03, cfg) == pytest.approx(1e-3 / 1.5)
    assert adapt_learning_rate(1e-3, 0.001, cfg) == pytest.approx(1.5e-3)
    assert adapt_learning_rate(1e-3, 0.01, cfg) == pytest.approx(1e-3)
    assert adapt_learning_rate(1e-5, 1.0, cfg) == pytest.approx(1e-5)
    assert adapt_learning_rate(1e-2, 0.0001, cfg) == pytest.approx(1e-2)


def test_gaussian_kl_matches_torch():
    mu0, s0 = torch.tensor([[0.1, -0.3]]), torch.tensor([[1.0, 0.5]])
    mu1, s1 = torch.tensor([[0.4, 0.2]]), torch.tensor([[0.8, 0.7]])
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu0, s0),
                                            torch.distributions.Normal(mu1, s1)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu0, s0, mu1, s1), ref)


def test_config_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match='clip_param'):
        PPOConfig(clip_param=0.0)
    with pytest.raises(ValueError, match='schedule'):
        PPOConfig(schedule='cosine')
    with pytest.raises(ValueError, match='activation'):
        PolicyConfig(activation='gelu2')


def test_update_moves_policy_towards_positive_advantage_actions():
    torch.manual_seed(0)
    ac = ActorCritic(2, 3, 1, PolicyConfig(actor_hidden_dims=(16,), critic_hidden_dims=(16,)))
    ppo = PPO(ac, PPOConfig(schedule='fixed', learning_rate=1e-2, entropy_coef=0.0))
    ppo.init_storage(num_envs=64, num_steps=4)
    obs = torch.zeros(64, 2)
    for _ in range(4):
        actions = ppo.act(obs, torch.zeros(64, 3))
        # Reward actions above zero: the mean action should rise after the update.
        ppo.process_env_step((actions[:, 0] > 0).float(), torch.ones(64, dtype=torch.bool),
                             torch.zeros(64, dtype=torch.bool))
    before = ac.act_inference(obs[:1]).item()
    ppo.compute_returns(torch.zeros(64, 3))
    stats = ppo.update()
    after = ac.act_inference(obs[:1]).item()
    assert after > before + 0.05
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert stats['approx_kl'] >= 0.0
