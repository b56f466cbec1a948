"""
Data-parallel training on the CPU: two gloo processes started the way torchrun starts them.

Each multi-process test starts ``test/distributed_worker.py`` (or ``python -m training.train``
under torchrun) twice with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR=127.0.0.1`` and
a free ``MASTER_PORT``; a process that does not finish within the time limit fails the test
(and every started process is killed) instead of blocking it.
"""

import os
from pathlib import Path
import socket
import subprocess
import sys
from typing import Any, Dict, List, Optional

from distributed_worker import (fixed_data_update, normalizer_samples, RUNNER_ENVS,
                                RUNNER_ITERATIONS, RUNNER_STEPS)
import numpy as np
import pytest
from test_runner import PointMassEnv
import torch
from training.distributed import context_from_env, DistContext, rank_device, rank_seed
from training.ppo import ActorCritic, EmpiricalNormalizer, PolicyConfig, PPO, PPOConfig
from training.ppo.normalizer import merge_moments
from training.runner import OnPolicyRunner, RunnerConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / 'distributed_worker.py'
TIMEOUT_S = 240.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _process_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK')}
    env.update({'MASTER_ADDR': '127.0.0.1', 'GLOO_SOCKET_IFNAME': 'lo',
                'PYTHONPATH': str(REPO_ROOT), 'OMP_NUM_THREADS': '1'}, **extra)
    return env


def _wait_all(procs: List[subprocess.Popen], what: str) -> List[str]:
    """Wait for ``procs`` (killing all of them past the time limit); return their outputs."""
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=TIMEOUT_S)
            outputs.append(out)
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.communicate()
        pytest.fail(f'{what} did not finish within {TIMEOUT_S:.0f} s (a hang)')
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, f'{what} failed:\n{out}'
    return outputs


def _run_ranks(scenario: str, out_dir: Path, *args: str, world_size: int = 2
               ) -> List[Dict[str, Any]]:
    """Run the worker ``scenario`` as ``world_size`` ranks; return each rank's result."""
    port = str(_free_port())
    procs = [subprocess.Popen(
        [sys.executable, str(WORKER), scenario, str(out_dir), *args],
        env=_process_env(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                         MASTER_PORT=port),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in range(world_size)]
    outputs = _wait_all(procs, f'the {scenario} scenario')
    results = [torch.load(out_dir / f'rank{rank}.pt', weights_only=False)
               for rank in range(world_size)]
    for result, out in zip(results, outputs):
        result['stdout'] = out
    return results


@pytest.fixture(scope='module')
def fixed_results(tmp_path_factory) -> List[Dict[str, Any]]:
    """Return both ranks' results of the ``fixed`` scenario."""
    return _run_ranks('fixed', tmp_path_factory.mktemp('fixed'))


# ---------------------------------------------------------------------- no process group
def test_the_environment_places_the_process():
    assert context_from_env({}) == DistContext(rank=0, world_size=1, local_rank=0)
    ctx = context_from_env({'RANK': '3', 'WORLD_SIZE': '4', 'LOCAL_RANK': '1'})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.enabled, ctx.is_main) == (
        3, 4, 1, True, False)
    assert context_from_env({'RANK': '0', 'WORLD_SIZE': '1'}).enabled is False
    with pytest.raises(ValueError, match='WORLD_SIZE is not set'):
        context_from_env({'RANK': '1', 'LOCAL_RANK': '1'})
    with pytest.raises(ValueError, match='RANK must be in'):
        context_from_env({'RANK': '2', 'WORLD_SIZE': '2'})
    with pytest.raises(ValueError, match="LOCAL_RANK='x'"):
        context_from_env({'RANK': '0', 'WORLD_SIZE': '2', 'LOCAL_RANK': 'x'})


def test_each_process_gets_its_own_gpu_and_seed(monkeypatch):
    ctx = DistContext(rank=5, world_size=8, local_rank=1)
    assert rank_seed(7, ctx) == 12 and rank_seed(7, DistContext()) == 7
    assert rank_device('cpu', ctx) == torch.device('cpu')
    assert rank_device('cuda:0', DistContext()) == torch.device('cuda:0')  # alone: as given
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    assert rank_device('cuda:0', ctx) == torch.device('cuda:1')
    assert rank_device('cuda', ctx) == torch.device('cuda:1')
    with pytest.raises(RuntimeError, match='LOCAL_RANK 2 needs GPU cuda:2 but this machine '
                                           'has 2 GPU'):
        rank_device('cuda', DistContext(rank=2, world_size=4, local_rank=2))


def test_merging_moments_equals_the_moments_of_the_union():
    a = torch.tensor([[1.0], [2.0], [6.0]], dtype=torch.float64)  # mean 3, M2 4 + 1 + 9 = 14
    b = torch.tensor([[7.0]], dtype=torch.float64)                 # mean 7, M2 0
    count, mean, m2 = merge_moments(torch.tensor([3.0]), torch.tensor([3.0]), torch.tensor([14.0]),
                                    torch.tensor([1.0]), torch.tensor([7.0]), torch.tensor([0.0]))
    # union 1, 2, 6, 7: mean 4, M2 9 + 4 + 4 + 9 = 26
    assert (float(count), float(mean), float(m2)) == (4.0, 4.0, 26.0)
    union = torch.cat([a, b])
    assert float(m2) == pytest.approx(float(((union - union.mean()) ** 2).sum()))
    empty = merge_moments(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0.0]),
                          torch.tensor([1.0]), torch.tensor([7.0]), torch.tensor([0.0]))
    assert [float(x) for x in empty] == [1.0, 7.0, 0.0]


def test_a_normalizer_merges_the_other_processes_samples_it_is_handed():
    """One process, the other process's additions given by hand: the union's statistics."""
    mine, theirs = torch.tensor([[1.0], [3.0]]), torch.tensor([[10.0], [20.0], [30.0]])
    norm = EmpiricalNormalizer(1, clip=None)
    norm.enable_sync()
    norm.update(mine)
    assert float(norm.mean) == pytest.approx(2.0)  # its own samples, before the merge
    other = torch.tensor([3.0, 20.0, 200.0], dtype=torch.float64)  # count, mean, M2
    norm.merge_synced_(torch.stack([norm.pending_moments(), other]))
    union = torch.cat([mine, theirs]).double()
    assert float(norm.count) == 5.0
    assert float(norm.mean) == pytest.approx(float(union.mean()))
    assert float(norm.var) == pytest.approx(float(union.var(unbiased=False)))
    assert norm.pending_moments().tolist() == [0.0, 0.0, 0.0]  # a new base
    norm.update(torch.tensor([[4.0]]))
    assert norm.pending_moments().tolist() == [1.0, 4.0, 0.0]
    assert set(norm.state_dict()) == {'mean', 'var', 'std', 'count'}  # checkpoints unchanged


def test_a_group_without_a_process_group_is_a_clear_error():
    ac = ActorCritic(3, 4, 2, PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)))
    with pytest.raises(RuntimeError, match='world_size 2 needs an initialized process group'):
        PPO(ac, PPOConfig(), world_size=2)
    with pytest.raises(RuntimeError, match='world_size 2 needs an initialized process group'):
        OnPolicyRunner(PointMassEnv(), PPOConfig(), RunnerConfig(),
                       distributed=DistContext(rank=0, world_size=2))


# ---------------------------------------------------------------------- two processes
@pytest.mark.slow
def test_two_ranks_hold_the_normalizer_statistics_of_all_samples(fixed_results):
    for round_index, _ in enumerate(fixed_results[0]['normalizer']):
        seen = np.concatenate([torch.cat(normalizer_samples(r, rank)).numpy()
                               for r in range(round_index + 1) for rank in (0, 1)])
        synced = [res['normalizer'][round_index]['synced'] for res in fixed_results]
        for name in ('mean', 'var', 'std', 'count'):
            assert torch.equal(synced[0][name], synced[1][name]), (round_index, name)
        assert float(synced[0]['count']) == len(seen)
        np.testing.assert_allclose(synced[0]['mean'].numpy(), seen.mean(0), rtol=1e-6,
                                   atol=1e-6)
        np.testing.assert_allclose(synced[0]['var'].numpy(), seen.var(0), rtol=1e-5,
                                   atol=1e-7)
        # before the merge each rank had added only its own samples
        local = [res['normalizer'][round_index]['local'] for res in fixed_results]
        assert float(local[0]['count']) != float(local[1]['count'])


@pytest.mark.slow
def test_two_ranks_with_half_the_batch_each_update_like_one_process_with_all(fixed_results):
    """Gradient all-reduce, the mean KL's learning rate, global advantage normalization."""
    single = fixed_data_update(rank=0, world_size=1)
    ranks = [res['update'] for res in fixed_results]
    assert [res['world_size'] for res in fixed_results] == [2, 2]
    for p0, p1 in zip(ranks[0]['params'], ranks[1]['params']):
        assert torch.equal(p0, p1)
    for ps, p0 in zip(single['params'], ranks[0]['params']):
        torch.testing.assert_close(p0, ps, rtol=0, atol=1e-6)
    assert ranks[0]['learning_rate'] == ranks[1]['learning_rate']
    assert ranks[0]['learning_rate'] == pytest.approx(single['learning_rate'], rel=1e-9)
    assert single['learning_rate'] != 3e-3, 'the KL should have adapted the learning rate'
    assert ranks[0]['stats'] == pytest.approx(single['stats'], rel=1e-5, abs=1e-7)
    assert ranks[0]['stats'] == ranks[1]['stats']
    # each rank normalized its advantages with the mean and std over both ranks
    both = torch.cat([ranks[0]['advantages'], ranks[1]['advantages']], dim=1)
    torch.testing.assert_close(both, single['advantages'], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_rank_zero_decides_when_a_time_budget_is_used_up(fixed_results):
    """Rank 0's clock, 1 s ahead of rank 1's, stops both ranks at the same iteration."""
    budget = [res['budget'] for res in fixed_results]
    assert budget[0]['iteration'] == budget[1]['iteration'] >= 1
    assert budget[0]['wall_time_s'] == budget[1]['wall_time_s']
    assert budget[0]['wall_time_s'] > 1.0  # rank 0 waited for rank 1's late start


@pytest.fixture(scope='module')
def runner_results(tmp_path_factory) -> Dict[str, Any]:
    """Run the ``runner`` scenario: training, then resuming from the last checkpoint."""
    root = tmp_path_factory.mktemp('runner')
    log_dir = root / 'logs'
    ranks = _run_ranks('runner', root, str(log_dir))
    return {'first': [res['first'] for res in ranks],
            'resumed': [res['resumed'] for res in ranks],
            'stdout': [res['stdout'] for res in ranks],
            'log_dir': log_dir, 'resumed_log_dir': log_dir / 'resumed'}


@pytest.mark.slow
def test_two_runner_ranks_stay_identical_and_count_both_ranks(runner_results):
    ranks = runner_results['first']
    initial = [res['initial_params'] for res in ranks]
    # different seeds would give different initial networks: rank 0's were broadcast
    for p0, p1 in zip(*initial):
        assert torch.equal(p0, p1)
    for p0, p1, start in zip(ranks[0]['params'], ranks[1]['params'], initial[0]):
        assert torch.equal(p0, p1)
        assert not torch.equal(p0, start)
    assert ranks[0]['learning_rate'] == ranks[1]['learning_rate']
    for name in ('obs_normalizer', 'critic_obs_normalizer'):
        for key, value in ranks[0][name].items():
            assert torch.equal(value, ranks[1][name][key]), (name, key)
    # the ranks simulated different envs, and the normalizer holds both ranks' observations
    seen = [res['normalized_obs'] for res in ranks]
    assert not torch.equal(seen[0], seen[1])
    steps_per_rank = RUNNER_ENVS * RUNNER_STEPS * RUNNER_ITERATIONS
    assert seen[0].shape[0] == steps_per_rank
    both = torch.cat(seen).double().numpy()
    norm = ranks[0]['obs_normalizer']
    assert float(norm['count']) == 2 * steps_per_rank
    np.testing.assert_allclose(norm['mean'].numpy(), both.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm['var'].numpy(), both.var(0), rtol=1e-4, atol=1e-7)
    for res in ranks:
        assert res['total_env_steps'] == 2 * steps_per_rank
        assert res['iteration'] == RUNNER_ITERATIONS
    assert ranks[0]['wall_time_s'] == ranks[1]['wall_time_s']  # rank 0's clock
    rows = [res['history'] for res in ranks]
    assert np.isfinite(rows[0][-1]['mean_reward'])  # episodes of 20 steps have ended
    for row0, row1 in zip(*rows):
        for key in ('env_steps', 'episodes_completed', 'mean_reward', 'mean_episode_length',
                    'value_loss', 'approx_kl', 'learning_rate'):
            # both ranks' episodes, the averaged minibatch statistics (NaN before any episode)
            np.testing.assert_equal(row0[key], row1[key], err_msg=key)


@pytest.mark.slow
def test_rank_zero_alone_prints_and_writes_and_every_rank_resumes(runner_results):
    ranks = runner_results['first']
    stdout = runner_results['stdout']
    assert f'it {RUNNER_ITERATIONS}/{RUNNER_ITERATIONS}' in stdout[0]
    assert 'steps/s' not in stdout[1]
    names = sorted(path.name for path in runner_results['log_dir'].glob('model_*.pt'))
    assert names == ['model_2.pt', 'model_4.pt']
    ckpt = torch.load(runner_results['log_dir'] / 'model_4.pt', weights_only=False)
    for saved, trained in zip(ckpt['model'].values(), ranks[0]['params']):
        assert torch.equal(saved, trained)
    assert ckpt['total_env_steps'] == 2 * RUNNER_ENVS * RUNNER_STEPS * RUNNER_ITERATIONS
    resumed = runner_results['resumed']
    for res in resumed:
        assert res['iteration'] == RUNNER_ITERATIONS + 1
        assert [row['iteration'] for row in res['history']] == [1.0, 2.0, 3.0, 4.0, 5.0]
    for p0, p1 in zip(resumed[0]['params'], resumed[1]['params']):
        assert torch.equal(p0, p1)
    for key, value in resumed[0]['obs_normalizer'].items():
        assert torch.equal(value, resumed[1]['obs_normalizer'][key]), key
    assert float(resumed[0]['obs_normalizer']['count']) == float(
        ckpt['obs_normalizer']['count']) + 2 * RUNNER_ENVS * RUNNER_STEPS
    assert sorted(p.name for p in runner_results['resumed_log_dir'].glob('model_*.pt')) == [
        f'model_{RUNNER_ITERATIONS + 1}.pt']


# ---------------------------------------------------------------------- the command line
def _torchrun(args: List[str], port: Optional[int] = None) -> str:
    port = port or _free_port()
    proc = subprocess.Popen(
        [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1', '--nproc-per-node', '2',
         '--master-addr', '127.0.0.1', '--master-port', str(port), '-m', 'training.train',
         *args],
        cwd=str(REPO_ROOT), env=_process_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    return _wait_all([proc], 'torchrun -m training.train')[0]


@pytest.mark.slow
def test_torchrun_trains_on_two_cpu_processes(tmp_path):
    from humanoid_rl_ros.core.contract import read_contract
    common = ['--device', 'cpu', '--num-envs', '2', '--runner.num-steps-per-env', '4',
              '--runner.no-tensorboard', '--runner.no-plot',
              '--runner.policy.actor-hidden-dims', '16', '--runner.policy.critic-hidden-dims',
              '16', '--log-root', str(tmp_path / 'runs'), '--export-dir', str(tmp_path / 'models')]
    out = _torchrun([*common, '--iterations', '2', '--run-name', 'ddp'])
    assert out.count('[train] exported') == 1, out  # rank 0 alone exports and prints
    assert '2 processes (cpu), 2 envs each' in out
    contract = read_contract(tmp_path / 'models' / 'ddp.yaml')
    assert contract.provenance['world_size'] == 2
    assert contract.provenance['env_steps'] == 2 * 2 * 4 * 2  # ranks x envs x steps x iterations
    run_dir = tmp_path / 'runs' / 'ddp'
    assert sorted(path.name for path in run_dir.glob('model_*.pt')) == ['model_2.pt']
    assert [path.name for path in tmp_path.glob('runs/*/config.yaml')] == ['config.yaml']
