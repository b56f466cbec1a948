"""
One process of the CPU data-parallel tests (test_distributed.py), started like torchrun does.

``python test/distributed_worker.py SCENARIO OUT_DIR [LOG_DIR]`` with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in the environment joins a
gloo process group and writes what it ends with to ``OUT_DIR/rank<RANK>.pt``:

- ``fixed``: two rounds of normalizer samples of different sizes per rank, merged over the
  ranks; then one PPO update (3 epochs of 1 minibatch) on this rank's columns of a fixed
  rollout (:func:`fixed_data_update`, which the test also runs on one process with all columns);
  then a runner with a time budget that rank 1 starts 1 s late (so rank 0's clock, which
  decides for all, reads 1 s more than rank 1's);
- ``runner``: :class:`OnPolicyRunner` on the point-mass env of test_runner.py, each rank with its
  own env seed, 4 iterations (checkpoints every 2 into LOG_DIR); then, on every rank, a new
  runner (new seed) resumes rank 0's last checkpoint and trains 1 more iteration into
  LOG_DIR/resumed.
"""

from pathlib import Path
import sys
import time
from typing import Any, Dict, List, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (str(REPO_ROOT), str(Path(__file__).resolve().parent)):
    if path not in sys.path:
        sys.path.insert(0, path)

import torch  # noqa: E402
from training.distributed import (  # noqa: E402
    init_distributed, rank_seed, shutdown_distributed, sync_normalizers_)
from training.ppo import ActorCritic, EmpiricalNormalizer, PolicyConfig, PPO, PPOConfig  # noqa
from training.runner import OnPolicyRunner, RunnerConfig, set_seed  # noqa: E402

NUM_ENVS, NUM_STEPS = 16, 4
"""Columns (envs) and rows (steps) of the fixed rollout of :func:`fixed_data_update`."""
NORMALIZER_ROUNDS = ((5, 7), (11,)), ((3,), (2, 9))
"""Batch sizes each rank merges before each of the two synchronizations: [round][rank]."""
RUNNER_ENVS, RUNNER_STEPS, RUNNER_ITERATIONS = 16, 8, 4
"""Point-mass envs per rank, steps per env and iterations of the ``runner`` scenario."""


def normalizer_samples(round_index: int, rank: int) -> List[torch.Tensor]:
    """Return the batches ``[n, 3]`` that ``rank`` merges before sync number ``round_index``."""
    gen = torch.Generator().manual_seed(100 * round_index + rank)
    scale, offset = torch.tensor([3.0, 0.1, 1.0]), torch.tensor([10.0, -2.0, float(rank)])
    return [torch.randn(n, 3, generator=gen) * scale + offset
            for n in NORMALIZER_ROUNDS[round_index][rank]]


def fixed_data_update(rank: int, world_size: int) -> Dict[str, Any]:
    """
    Fill PPO's storage with this rank's share of a fixed rollout, update once, return the result.

    The rollout has ``NUM_ENVS`` envs; rank ``r`` of ``world_size`` takes an equal block of
    them.  Actions come from fixed standard normal draws; rewards and dones are fixed too.
    """
    torch.manual_seed(0)
    ac = ActorCritic(3, 4, 2, PolicyConfig(actor_hidden_dims=(16,), critic_hidden_dims=(16,)))
    cfg = PPOConfig(num_learning_epochs=3, num_mini_batches=1, learning_rate=3e-3)
    ppo = PPO(ac, cfg, world_size=world_size)
    gen = torch.Generator().manual_seed(1)
    obs = torch.randn(NUM_STEPS, NUM_ENVS, 3, generator=gen)
    critic_obs = torch.randn(NUM_STEPS, NUM_ENVS, 4, generator=gen)
    noise = torch.randn(NUM_STEPS, NUM_ENVS, 2, generator=gen)
    rewards = torch.randn(NUM_STEPS, NUM_ENVS, generator=gen)
    dones = torch.rand(NUM_STEPS, NUM_ENVS, generator=gen) < 0.2
    time_outs = dones & (torch.rand(NUM_STEPS, NUM_ENVS, generator=gen) < 0.5)
    last_critic_obs = torch.randn(NUM_ENVS, 4, generator=gen)
    share = NUM_ENVS // world_size
    cols = slice(rank * share, (rank + 1) * share)
    ppo.init_storage(share, NUM_STEPS)
    with torch.no_grad():
        for t in range(NUM_STEPS):
            actions, log_probs, mu, sigma = ac.act(obs[t, cols], noise[t, cols])
            ppo.storage.add(obs[t, cols], critic_obs[t, cols], actions, log_probs, mu, sigma,
                            ac.evaluate(critic_obs[t, cols]), rewards[t, cols], dones[t, cols],
                            time_outs[t, cols])
    ppo.compute_returns(last_critic_obs[cols])
    advantages = ppo.storage.advantages.clone()
    stats = ppo.update()
    return {'params': [p.detach().clone() for p in ac.parameters()], 'stats': stats,
            'learning_rate': ppo.learning_rate, 'advantages': advantages}


class RecordingPointMassEnv:
    """Wrap test_runner's point-mass env and keep every observation it hands out."""

    def __init__(self, seed: int) -> None:
        """Create the env with its own seed."""
        from test_runner import PointMassEnv
        self.inner = PointMassEnv(num_envs=RUNNER_ENVS, seed=seed)
        self.seen: List[torch.Tensor] = []

    def __getattr__(self, name: str) -> Any:
        """Forward the VecEnv attributes (num_envs, num_obs, device, ...)."""
        return getattr(self.inner, name)

    def reset(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Reset and record the observation."""
        obs, critic_obs = self.inner.reset()
        self.seen.append(obs.clone())
        return obs, critic_obs

    def step(self, actions: torch.Tensor) -> Tuple[Any, ...]:
        """Step and record the observation."""
        out = self.inner.step(actions)
        self.seen.append(out[0].clone())
        return out


def _normalizer_stats(norm: EmpiricalNormalizer) -> Dict[str, torch.Tensor]:
    return {name: getattr(norm, name).clone() for name in ('mean', 'var', 'std', 'count')}


def run_fixed(ctx: Any) -> Dict[str, Any]:
    """Run the ``fixed`` scenario (module doc)."""
    norm = EmpiricalNormalizer(3, clip=None)
    norm.enable_sync()
    rounds = []
    for round_index in range(len(NORMALIZER_ROUNDS)):
        for batch in normalizer_samples(round_index, ctx.rank):
            norm.update(batch)
        local = _normalizer_stats(norm)  # this rank's own view before the merge
        sync_normalizers_(norm)
        rounds.append({'local': local, 'synced': _normalizer_stats(norm)})
    return {'normalizer': rounds, 'update': fixed_data_update(ctx.rank, ctx.world_size),
            'budget': run_budget(ctx)}


def run_budget(ctx: Any) -> Dict[str, Any]:
    """Train with a 1.5 s time budget, rank 1 starting 1 s after rank 0; return the counts."""
    from test_runner import PointMassEnv
    set_seed(rank_seed(0, ctx))
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(8,), critic_hidden_dims=(8,)),
                       num_steps_per_env=RUNNER_STEPS, tensorboard=False, plot=False)
    runner = OnPolicyRunner(PointMassEnv(num_envs=RUNNER_ENVS, seed=ctx.rank), PPOConfig(),
                            cfg, log_dir=None, device='cpu', distributed=ctx)
    if ctx.rank == 1:
        time.sleep(1.0)
    runner.learn(time_budget_s=1.5)
    return {'iteration': runner.current_iteration, 'wall_time_s': runner.wall_time_s}


def run_runner(ctx: Any, device: torch.device, log_dir: str) -> Dict[str, Any]:
    """Run the ``runner`` scenario (module doc)."""
    import torch.distributed as dist
    first = _train_point_mass(ctx, device, log_dir, '', seed=0)
    dist.barrier()  # rank 0 has written its checkpoints
    resumed = _train_point_mass(ctx, device, str(Path(log_dir) / 'resumed'),
                                str(Path(log_dir) / f'model_{RUNNER_ITERATIONS}.pt'), seed=50)
    return {'first': first, 'resumed': resumed}


def _train_point_mass(ctx: Any, device: torch.device, log_dir: str, resume: str,
                      seed: int) -> Dict[str, Any]:
    """Train the point mass (resuming ``resume`` if given); return what the tests check."""
    set_seed(rank_seed(seed, ctx))
    env = RecordingPointMassEnv(seed=100 + seed + ctx.rank)
    cfg = RunnerConfig(policy=PolicyConfig(actor_hidden_dims=(32, 32),
                                           critic_hidden_dims=(32, 32)),
                       num_steps_per_env=RUNNER_STEPS, save_interval=2, tensorboard=False,
                       plot=False)
    runner = OnPolicyRunner(env, PPOConfig(), cfg, log_dir=log_dir, device=device,
                            distributed=ctx)
    initial = [p.detach().clone() for p in runner.actor_critic.parameters()]
    if resume:
        runner.resume(resume)
    history = runner.learn(num_iterations=1 if resume else RUNNER_ITERATIONS)
    return {
        'initial_params': initial,
        'params': [p.detach().clone() for p in runner.actor_critic.parameters()],
        'obs_normalizer': _normalizer_stats(runner.obs_normalizer),
        'critic_obs_normalizer': _normalizer_stats(runner.critic_obs_normalizer),
        'learning_rate': runner.alg.learning_rate,
        'history': history,
        'iteration': runner.current_iteration,
        'total_env_steps': runner.total_env_steps,
        'wall_time_s': runner.wall_time_s,
        # what went into the normalizer: every observation handed out but the last
        'normalized_obs': torch.cat(env.seen[:-1]),
    }


def main(argv: List[str]) -> int:
    """Run one scenario in this process and save its result."""
    scenario, out_dir = argv[0], Path(argv[1])
    ctx, device, joined = init_distributed('cpu', timeout_s=60.0)
    try:
        if scenario == 'fixed':
            result = run_fixed(ctx)
        elif scenario == 'runner':
            result = run_runner(ctx, device, argv[2])
        else:
            raise SystemExit(f'unknown scenario {scenario!r}')
        result['world_size'] = ctx.world_size
        torch.save(result, out_dir / f'rank{ctx.rank}.pt')
    finally:
        if joined:
            shutdown_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
