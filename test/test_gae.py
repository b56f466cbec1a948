"""GAE with terminations and time-outs, checked against hand-computed numbers."""

import pytest
import torch

from training.ppo.storage import compute_gae, RolloutStorage

GAMMA = 0.9
LAM = 0.5


def _episode(dones, time_outs):
    rewards = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    values = torch.tensor([[0.5], [1.0], [1.5], [2.0]])
    d = torch.tensor(dones, dtype=torch.bool).reshape(4, 1)
    to = torch.tensor(time_outs, dtype=torch.bool).reshape(4, 1)
    return compute_gae(rewards, values, d, to, torch.tensor([3.0]), GAMMA, LAM)


def test_gae_without_episode_end_bootstraps_from_last_value():
    adv, ret = _episode([0, 0, 0, 0], [0, 0, 0, 0])
    # By hand, gamma*lam = 0.45:
    # d3 = 4 + 0.9*3.0 - 2.0 = 4.7                      A3 = 4.7
    # d2 = 3 + 0.9*2.0 - 1.5 = 3.3                      A2 = 3.3 + 0.45*4.7   = 5.415
    # d1 = 2 + 0.9*1.5 - 1.0 = 2.35                     A1 = 2.35 + 0.45*5.415 = 4.78675
    # d0 = 1 + 0.9*1.0 - 0.5 = 1.4                      A0 = 1.4 + 0.45*4.78675 = 3.5540375
    expected = torch.tensor([3.5540375, 4.78675, 5.415, 4.7]).reshape(4, 1)
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + torch.tensor([[0.5], [1.0], [1.5], [2.0]]))


def test_gae_terminal_state_cuts_bootstrap():
    adv, ret = _episode([0, 1, 0, 0], [0, 0, 0, 0])
    # Step 1 terminates: d1 = 2 - 1.0 = 1.0 and nothing flows back from steps 2..3.
    # A3 = 4.7, A2 = 5.415 (as above), A1 = 1.0, A0 = 1.4 + 0.45*1.0 = 1.85
    expected = torch.tensor([1.85, 1.0, 5.415, 4.7]).reshape(4, 1)
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, torch.tensor([2.35, 2.0, 6.915, 6.7]).reshape(4, 1))


def test_gae_time_out_is_bootstrapped_with_value():
    adv, _ = _episode([0, 1, 0, 0], [0, 1, 0, 0])
    # Step 1 is truncated: r1 += gamma * V(s1) = 2 + 0.9*1.0 = 2.9, d1 = 2.9 - 1.0 = 1.9.
    # A1 = 1.9, A0 = 1.4 + 0.45*1.9 = 2.255; later steps as before.
    expected = torch.tensor([2.255, 1.9, 5.415, 4.7]).reshape(4, 1)
    torch.testing.assert_close(adv, expected)


def test_gae_last_step_terminal_ignores_last_value():
    adv, _ = _episode([0, 0, 0, 1], [0, 0, 0, 0])
    # d3 = 4 - 2.0 = 2.0, A2 = 3.3 + 0.45*2.0 = 4.2, A1 = 2.35 + 0.45*4.2 = 4.24,
    # A0 = 1.4 + 0.45*4.24 = 3.308
    expected = torch.tensor([3.308, 4.24, 4.2, 2.0]).reshape(4, 1)
    torch.testing.assert_close(adv, expected)


def test_gae_envs_are_independent():
    rewards = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])
    values = torch.tensor([[0.5, 0.0], [1.0, 0.0], [1.5, 0.0], [2.0, 0.0]])
    dones = torch.zeros(4, 2, dtype=torch.bool)
    dones[1, 0] = True
    adv, _ = compute_gae(rewards, values, dones, torch.zeros_like(dones),
                         torch.tensor([3.0, 1.0]), GAMMA, LAM)
    # env 1: only the bootstrap 0.9*1.0 at the last step, decayed by 0.45 per step back.
    torch.testing.assert_close(adv[:, 1], torch.tensor([0.0820125, 0.18225, 0.405, 0.9]))
    torch.testing.assert_close(adv[:, 0], torch.tensor([1.85, 1.0, 5.415, 4.7]))


def test_gae_shape_mismatch_is_named():
    with pytest.raises(ValueError, match='dones'):
        compute_gae(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 1, dtype=torch.bool),
                    torch.zeros(3, 2, dtype=torch.bool), torch.zeros(2), 0.99, 0.95)


def test_storage_runs_gae_and_yields_all_samples():
    st = RolloutStorage(num_envs=3, num_steps=4, num_obs=2, num_critic_obs=5, num_actions=1,
                        device='cpu')
    for t in range(4):
        st.add(obs=torch.full((3, 2), float(t)), critic_obs=torch.zeros(3, 5),
               actions=torch.zeros(3, 1), log_probs=torch.zeros(3), mu=torch.zeros(3, 1),
               sigma=torch.ones(3, 1), values=torch.zeros(3), rewards=torch.ones(3),
               dones=torch.zeros(3, dtype=torch.bool), time_outs=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(RuntimeError, match='full'):
        st.add(*(torch.zeros(3),) * 10)
    st.compute_returns(torch.zeros(3), gamma=1.0, lam=1.0)
    # gamma = lam = 1, V = 0: returns are the rewards-to-go 4, 3, 2, 1.
    torch.testing.assert_close(st.returns[:, 0], torch.tensor([4.0, 3.0, 2.0, 1.0]))
    batches = list(st.minibatches(num_minibatches=2, num_epochs=1))
    assert len(batches) == 2
    seen = torch.cat([b.obs[:, 0] for b in batches]).sort().values
    torch.testing.assert_close(seen, torch.tensor([0.0] * 3 + [1.0] * 3 + [2.0] * 3 + [3.0] * 3))
