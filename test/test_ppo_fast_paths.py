"""
The sync-free PPO and runner paths, checked on the CPU.

The functions that run once per step or minibatch (the PPO minibatch step, the runner's policy
step, rollout bookkeeping and GAE) must never read a tensor back to the host (a GPU sync each);
here that is enforced by making every host read raise.  The device-side
learning-rate rule must equal the float rule, the device-indexed storage writes must equal
``add``, and an optimizer state saved by the earlier (float lr, non-fused) Adam must load.
"""

import copy
import math

import pytest
import torch

from training.ppo import ActorCritic, PolicyConfig, PPO, PPOConfig
from training.ppo.ppo import adapt_learning_rate, adapt_learning_rate_tensor
from training.ppo.storage import RolloutStorage
from training.runner import OnPolicyRunner, RunnerConfig, set_seed
from training.vec_env import VecEnv

HOST_READS = ('__bool__', 'item', 'tolist', 'nonzero', '__float__', '__int__', '__index__',
              'numpy', 'cpu')


def _forbid_host_reads(m, calls):
    def forbid(name):
        def hook(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f'host read {name} inside a per-step function')
        return hook
    for name in HOST_READS:
        m.setattr(torch.Tensor, name, forbid(name))
    m.setattr(torch, 'nonzero', forbid('torch.nonzero'))


class _ToyEnv(VecEnv):
    """Sync-free toy env: reward for actions near the first observation."""

    def __init__(self, num_envs: int = 16) -> None:
        """Create the batch."""
        self.num_envs, self.num_obs, self.num_critic_obs, self.num_actions = num_envs, 3, 4, 2
        self.device = torch.device('cpu')
        self.t = torch.zeros(num_envs)

    def _obs(self):
        obs = torch.stack([torch.sin(self.t), torch.cos(self.t), self.t / 10.0], -1)
        return obs, torch.cat([obs, (self.t > 5).float()[:, None]], -1)

    def reset(self):
        """Reset all envs."""
        self.t.zero_()
        return self._obs()

    def step(self, actions):
        """Advance time; done at t=8 (time-out) or when the action is huge (termination)."""
        self.t += 1.0
        rewards = -(actions[:, 0] - torch.sin(self.t)).square()
        fell = actions.abs().sum(-1) > 6.0
        time_outs = self.t >= 8
        dones = fell | time_outs
        self.t = torch.where(dones, torch.zeros_like(self.t), self.t)
        obs, cobs = self._obs()
        return obs, cobs, rewards, dones, {'time_outs': time_outs, 'log': {'r': rewards.mean()}}


@pytest.mark.parametrize('lr', [1e-5, 1e-3, 1e-2])
@pytest.mark.parametrize('kl', [0.0, 1e-4, 0.004, 0.01, 0.03, 1.0, float('nan')])
def test_device_lr_rule_equals_float_rule(lr, kl):
    cfg = PPOConfig()
    got = adapt_learning_rate_tensor(torch.tensor(lr, dtype=torch.float64),
                                     torch.tensor(kl, dtype=torch.float32), cfg)
    want = adapt_learning_rate(lr, float(torch.tensor(kl, dtype=torch.float32)), cfg)
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_device_indexed_writes_equal_add():
    torch.manual_seed(0)
    a = RolloutStorage(5, 3, 4, 6, 2, 'cpu')
    b = RolloutStorage(5, 3, 4, 6, 2, 'cpu')
    for _ in range(3):
        fields = [torch.randn(5, 4), torch.randn(5, 6), torch.randn(5, 2), torch.randn(5),
                  torch.randn(5, 2), torch.rand(5, 2), torch.randn(5)]
        env = [torch.randn(5), torch.rand(5) > 0.5, torch.rand(5) > 0.5]
        a.add(*fields, rewards=env[0], dones=env[1], time_outs=env[2])
        b.commit_step()
        b.write_policy_part(*fields)
        b.write_env_part(*env)
    for name in ('obs', 'critic_obs', 'actions', 'log_probs', 'mu', 'sigma', 'values',
                 'rewards', 'dones', 'time_outs'):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    with pytest.raises(RuntimeError, match='full'):
        b.commit_step()
    b.clear()
    assert b.step == 0 and int(b._step_t) == 0


def test_minibatch_indices_cover_each_epoch_once():
    st = RolloutStorage(6, 4, 1, 1, 1, 'cpu')
    idx = st.minibatch_indices(num_minibatches=3, num_epochs=2)
    assert idx.shape == (6, 8)
    for epoch in idx.reshape(2, 24):
        assert sorted(epoch.tolist()) == list(range(24))


def test_minibatch_step_has_no_host_reads(monkeypatch):
    torch.manual_seed(0)
    ac = ActorCritic(3, 4, 2, PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)))
    ppo = PPO(ac, PPOConfig())
    ppo.init_storage(8, 4)
    for _ in range(4):
        ppo.act(torch.randn(8, 3), torch.randn(8, 4))
        ppo.process_env_step(torch.randn(8), torch.zeros(8, dtype=torch.bool),
                             torch.zeros(8, dtype=torch.bool))
    ppo.compute_returns(torch.randn(8, 4))
    ppo._flat = ppo.storage.flat()
    ppo._mb_idx = ppo.storage.minibatch_indices(4, 1)[0].clone()
    before = [p.detach().clone() for p in ac.parameters()]
    calls = []
    with monkeypatch.context() as m:
        _forbid_host_reads(m, calls)
        ppo._minibatch_step()
    assert calls == []
    assert any(not torch.equal(p0, p) for p0, p in zip(before, ac.parameters()))
    assert math.isfinite(ppo.learning_rate)


def test_runner_step_functions_have_no_host_reads(monkeypatch):
    set_seed(0)
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)),
                       num_steps_per_env=3, tensorboard=False, plot=False)
    runner = OnPolicyRunner(_ToyEnv(), PPOConfig(), cfg, log_dir=None, device='cpu')
    obs, cobs = runner.env.reset()
    runner._obs_in.copy_(obs)
    runner._critic_obs_in.copy_(cobs)
    calls = []
    for _ in range(3):  # the whole collection step; the toy env is sync-free too
        runner.alg.storage.commit_step()
        runner._noise.normal_()
        with monkeypatch.context() as m:
            _forbid_host_reads(m, calls)
            runner._env_step()
    with monkeypatch.context() as m:
        _forbid_host_reads(m, calls)
        runner._returns_step()
    assert calls == []
    assert torch.isfinite(runner.alg.storage.advantages).all()
    assert runner.obs_normalizer.count.item() == 3 * 16


def test_runner_trains_and_resumes_old_optimizer_state(tmp_path):
    set_seed(0)
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)),
                       num_steps_per_env=4, tensorboard=False, plot=False)
    runner = OnPolicyRunner(_ToyEnv(), PPOConfig(), cfg, log_dir=tmp_path, device='cpu')
    history = runner.learn(num_iterations=2)
    assert all(math.isfinite(row['value_loss']) for row in history)
    ckpt = runner.state_dict()
    # the earlier optimizer: plain Adam, float lr, host step counters
    old_opt = torch.optim.Adam(runner.actor_critic.parameters(), lr=2.5e-4)
    loss = sum(p.sum() for p in runner.actor_critic.parameters())
    loss.backward()
    old_opt.step()
    ckpt['optimizer'] = old_opt.state_dict()
    del ckpt['learning_rate']
    path = tmp_path / 'old.pt'
    torch.save(ckpt, path)
    resumed = OnPolicyRunner(_ToyEnv(), PPOConfig(), cfg, log_dir=tmp_path / 'r', device='cpu')
    resumed.resume(path)
    assert resumed.alg.learning_rate == pytest.approx(2.5e-4)
    group = resumed.alg.optimizer.param_groups[0]
    assert group['lr'] is resumed.alg._lr_opt
    resumed.learn(num_iterations=1)
    assert resumed.current_iteration == 3


def _filled_ppo(compile_setting):
    torch.manual_seed(0)
    ac = ActorCritic(3, 4, 2, PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)))
    ppo = PPO(ac, PPOConfig(), compile_setting=compile_setting)
    ppo.init_storage(8, 4)
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):
        ppo.act(torch.randn(8, 3, generator=gen), torch.randn(8, 4, generator=gen))
        ppo.process_env_step(torch.randn(8, generator=gen), torch.zeros(8, dtype=torch.bool),
                             torch.zeros(8, dtype=torch.bool))
    ppo.compute_returns(torch.randn(8, 4, generator=gen))
    return ppo


def test_compiled_loss_updates_like_eager():
    """compile_setting='aot_eager' (the traced path of CUDA's inductor) == eager update."""
    params, stats = {}, {}
    for setting in ('off', 'aot_eager'):
        ppo = _filled_ppo(setting)
        torch.manual_seed(5)  # same minibatch permutation
        stats[setting] = ppo.update()
        params[setting] = [p.detach().clone() for p in ppo.actor_critic.parameters()]
    for eager, compiled in zip(params['off'], params['aot_eager']):
        torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-6)
    assert stats['aot_eager'] == pytest.approx(stats['off'], rel=1e-5, abs=1e-7)


def test_compiled_runner_trains():
    """The compiled collection step (its own random draws) and loss train with finite losses."""
    set_seed(0)
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)),
                       num_steps_per_env=4, tensorboard=False, plot=False,
                       torch_compile='aot_eager')
    runner = OnPolicyRunner(_ToyEnv(), PPOConfig(), cfg, log_dir=None, device='cpu')
    history = runner.learn(num_iterations=2)
    for key in ('surrogate_loss', 'value_loss', 'entropy', 'approx_kl'):
        assert all(math.isfinite(row[key]) for row in history), key
    assert runner.obs_normalizer.count.item() == 2 * 4 * 16
    assert runner.alg.storage.step == 0  # both rollouts were consumed by updates


def _filled_cuda_ppo(graph_update, compile_setting):
    torch.manual_seed(0)
    ac = ActorCritic(3, 4, 2, PolicyConfig(actor_hidden_dims=(32, 16),
                                           critic_hidden_dims=(32, 16)))
    ppo = PPO(ac, PPOConfig(), 'cuda:0', compile_setting=compile_setting,
              graph_update=graph_update)
    ppo.init_storage(64, 6)
    gen = torch.Generator(device='cuda:0').manual_seed(1)
    for _ in range(6):
        ppo.act(torch.randn(64, 3, generator=gen, device='cuda:0'),
                torch.randn(64, 4, generator=gen, device='cuda:0'))
        ppo.process_env_step(torch.randn(64, generator=gen, device='cuda:0'),
                             torch.rand(64, generator=gen, device='cuda:0') < 0.1,
                             torch.zeros(64, dtype=torch.bool, device='cuda:0'))
    return ppo


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA (graph capture)')
@pytest.mark.parametrize('compile_setting', ['off', 'auto'])
def test_graph_captured_update_matches_eager_steps(compile_setting):
    """
    Graph-captured updates == eager minibatch steps, also across a replaced optimizer state.

    Three updates (eager warm-up, capture + replay, replay), then the optimizer state is
    loaded anew (new state tensors: the graph must be dropped and captured again) and the
    learning rate set, then three more updates.
    """
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision('highest')  # no TF32: both paths in full float32
    try:
        _compare_graph_captured_and_eager_updates(compile_setting)
    finally:
        torch.set_float32_matmul_precision(precision)


def _compare_graph_captured_and_eager_updates(compile_setting):
    last_critic_obs = torch.randn(64, 4, generator=torch.Generator().manual_seed(2))
    params, stats = {}, {}
    for graph_update in (False, True):
        ppo = _filled_cuda_ppo(graph_update, compile_setting)
        stats[graph_update] = []
        torch.manual_seed(5)  # the same minibatch permutations

        def updates():
            for _ in range(3):
                ppo.storage.step = ppo.storage.num_steps  # refill: the same rollout again
                ppo.compute_returns(last_critic_obs.cuda())
                stats[graph_update].append(ppo.update())

        updates()
        first_graph = ppo._update_graph
        assert (first_graph is not None) == graph_update
        ppo.load_optimizer_state(copy.deepcopy(ppo.optimizer.state_dict()), learning_rate=3e-4)
        updates()
        assert (ppo._update_graph is not None) == graph_update
        assert ppo._update_graph is not first_graph or not graph_update  # captured anew
        params[graph_update] = [p.detach().cpu() for p in ppo.actor_critic.parameters()]
    for eager, graphed in zip(params[False], params[True]):
        torch.testing.assert_close(graphed, eager, rtol=1e-5, atol=1e-6)
    for eager, graphed in zip(stats[False], stats[True]):
        assert graphed == pytest.approx(eager, rel=1e-4, abs=1e-6)
