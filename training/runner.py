"""
On-policy runner: collect rollouts from a :class:`~training.vec_env.VecEnv`, update with PPO, log.

This file is longer than 500 lines: the collection loop, its fused CUDA-graph step and the
per-iteration bookkeeping across processes work on one set of buffers and counters; files,
checkpoints and logs are already in :mod:`training.run_files`.

The runner is simulator-agnostic.  Per iteration it collects ``num_steps_per_env`` steps from
every env (observations normalized by running statistics that update during collection only),
runs GAE and the PPO update, then logs:

- a progress line (iteration, env-steps/s, collection vs learning time, mean episode return and
  length, selected env scalars such as tracking errors, elapsed time and ETA);
- TensorBoard scalars namespaced ``losses/...``, ``charts/...`` and ``env/...``;
- one history row (also with the wall time since the start of training, so the time to reach a
  given return can be read off), saved at the end as ``history.csv`` / ``history.json`` together
  with ``learning_curves.png`` (metrics vs iteration and vs wall time).

Checkpoints (``model_<iteration>.pt``, the newest ``keep_checkpoints`` kept) hold the model,
optimizer, normalizers, iteration counters, history and the configs;
:meth:`OnPolicyRunner.resume` continues from one.  The files are written by
:mod:`training.run_files`.

Data-parallel training (a :class:`~training.distributed.DistContext` with several processes,
see :mod:`training.distributed`): every process collects from its own envs; after each rollout
the observation normalizers are merged over the processes, the PPO update averages gradients
every minibatch, and the episode statistics and env-steps/s count all processes.  Only rank 0
prints, writes files (its ``log_dir``; the other ranks' is ignored) and decides when a time
budget is used up (its wall time is every rank's).  The ``env/...`` scalars are rank 0's own
envs.
"""

from dataclasses import asdict, dataclass, field
import math
from pathlib import Path
import random
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from .compiling import maybe_compile
from .distributed import (all_reduce_min_, all_reduce_sum_, broadcast_values, DistContext,
                          require_process_group, sync_normalizers_)
from .ppo import ActorCritic, EmpiricalNormalizer, PolicyConfig, PPO, PPOConfig
from .run_files import (checkpoint_path, prune_checkpoints, write_checkpoint, write_history,
                        write_scalars)
from .symmetry import SignedPermutation
from .vec_env import VecEnv


@dataclass
class RunnerConfig:
    """Settings of the on-policy runner."""

    num_steps_per_env: int = 24
    """Policy steps collected per env per iteration (legged_gym / rsl_rl: 24)."""

    save_interval: int = 50
    """Write a checkpoint every this many iterations (and always at the end)."""

    keep_checkpoints: int = 3
    """Keep the newest this many checkpoints (model_<iteration>.pt) in the run folder and
    delete the older ones as training goes; 0 keeps all."""

    log_interval: int = 1
    """Print a progress line every this many iterations."""

    empirical_normalization: bool = True
    """Normalize actor and critic observations with running statistics (mjlab G1: on)."""

    normalizer_clip: float = 5.0
    """Normalized observations are clipped to +-this many std; <= 0 disables the clip."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Actor-critic architecture."""

    progress_keys: Tuple[str, ...] = ('err', 'episode_length', 'level', 'disturbance')
    """Env log scalars whose name contains one of these substrings go in the progress line."""

    tensorboard: bool = True
    """Write TensorBoard event files into the log dir."""

    plot: bool = True
    """Write learning_curves.png at each checkpoint and at the end."""

    fused_step: bool = True
    """Run the policy and the rollout storage inside the env's step graph where the env
    offers ``step_fused`` (LocomotionEnv); otherwise call ``env.step``."""

    torch_compile: str = 'auto'
    """torch.compile the collection step and the PPO loss: 'auto' (inductor on CUDA), 'off'."""

    graph_update: bool = True
    """On CUDA, replay each PPO update (all its minibatch steps) as one CUDA graph; with
    several processes (torchrun), two graphs per minibatch step around the all-reduce."""

    tf32_matmul: bool = True
    """On CUDA, let float32 matmuls use TF32 tensor cores (torch precision 'high')."""

    def __post_init__(self) -> None:
        """Validate the fields."""
        for name in ('num_steps_per_env', 'save_interval', 'log_interval'):
            if int(getattr(self, name)) < 1:
                raise ValueError(f'runner.{name} must be >= 1, got {getattr(self, name)}')
        if int(self.keep_checkpoints) < 0:
            raise ValueError(f'runner.keep_checkpoints must be >= 0, got {self.keep_checkpoints}')


def set_seed(seed: int) -> None:
    """Seed python, numpy (if present) and torch (all devices) in one place."""
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed % (2 ** 32))
    except ImportError:  # pragma: no cover - numpy is a project dependency
        pass
    torch.manual_seed(seed)


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return '--:--:--'
    seconds = int(max(seconds, 0.0))
    return f'{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def _scalar(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean())
    return float(value)


class OnPolicyRunner:
    """Train an :class:`ActorCritic` with :class:`PPO` on a :class:`VecEnv`."""

    def __init__(self, env: VecEnv, ppo_cfg: PPOConfig, runner_cfg: RunnerConfig,
                 log_dir: Optional[Union[str, Path]] = None,
                 device: Union[str, torch.device] = 'cpu',
                 distributed: Optional[DistContext] = None) -> None:
        """
        Build the actor-critic, normalizers and PPO learner for ``env``'s dimensions.

        ``log_dir`` receives checkpoints, TensorBoard files, history and plots; ``None`` keeps
        everything in memory (no files).  ``distributed``: this process's place in a
        data-parallel group whose process group is initialized (module doc); None: alone.
        """
        self.env = env
        self.ppo_cfg = ppo_cfg
        self.cfg = runner_cfg
        self.device = torch.device(device)
        self.dist = distributed if distributed is not None else DistContext()
        """This process's rank and the number of processes training together."""
        require_process_group(self.dist, 'OnPolicyRunner')
        if not self.dist.is_main:
            log_dir = None  # rank 0 alone writes files
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.actor_critic = ActorCritic(env.num_obs, env.num_critic_obs, env.num_actions,
                                        runner_cfg.policy).to(self.device)
        if self.device.type == 'cuda':
            torch.set_float32_matmul_precision('high' if runner_cfg.tf32_matmul else 'highest')
        mirror = self._mirror_maps(env) if ppo_cfg.symmetry_augmentation else None
        self._obs_mirror = None if mirror is None else mirror[0].tensors(self.device)
        """The actor observation's mirror ``(perm, sign)`` with symmetry augmentation: the
        normalizer learns from every observation and its mirror, so normalizing commutes with
        mirroring (device tensors made here: the step may run inside a CUDA graph)."""
        self.alg = PPO(self.actor_critic, ppo_cfg, self.device,
                       compile_setting=runner_cfg.torch_compile,
                       graph_update=runner_cfg.graph_update,
                       world_size=self.dist.world_size, mirror=mirror)
        self.alg.init_storage(env.num_envs, runner_cfg.num_steps_per_env)
        if runner_cfg.empirical_normalization:
            clip = runner_cfg.normalizer_clip if runner_cfg.normalizer_clip > 0 else None
            self.obs_normalizer: nn.Module = EmpiricalNormalizer(env.num_obs, clip=clip)
            self.critic_obs_normalizer: nn.Module = EmpiricalNormalizer(env.num_critic_obs,
                                                                        clip=clip)
        else:
            self.obs_normalizer = nn.Identity()
            self.critic_obs_normalizer = nn.Identity()
        self.obs_normalizer.to(self.device)
        self.critic_obs_normalizer.to(self.device)
        self._sync_normalizers = self.dist.enabled and runner_cfg.empirical_normalization
        if self._sync_normalizers:
            self.obs_normalizer.enable_sync()
            self.critic_obs_normalizer.enable_sync()

        self.current_iteration = 0
        """Number of completed iterations (continues across :meth:`resume`)."""
        self.total_env_steps = 0
        """Env steps collected so far by all processes (continues across :meth:`resume`)."""
        self.wall_time_s = 0.0
        """Training wall time so far [s] (rank 0's; continues across :meth:`resume`)."""
        self.startup_s = 0.0
        """The part of :attr:`wall_time_s` spent in each process's first iteration [s], summed
        over resumed runs: kernel compilation, torch.compile and the env step's CUDA graph
        capture (minutes on an empty kernel cache, seconds on a warm one), plus that
        iteration's own work; the PPO update's graph, captured in the second iteration, is
        not counted."""
        self.stop_requested = False
        """Set (e.g. by a signal handler) to end :meth:`learn` before its next iteration (rank
        0's flag decides for every process)."""
        self.history: List[Dict[str, float]] = []
        """One row of scalars per iteration."""
        self.last_checkpoint: Optional[Path] = None
        """Path of the most recent checkpoint written."""
        self._writer = None
        self._env_started = False
        """Whether the env was reset by a :meth:`learn` call: later calls go on from its state
        (a run in chunks, e.g. between snapshot exports, keeps its episodes)."""
        self._last_mean_return = float('nan')
        self._last_mean_length = float('nan')
        self._init_step_buffers()
        compile_setting = runner_cfg.torch_compile
        self._policy_step_fn = maybe_compile(self._policy_step, compile_setting, self.device)
        self._record_step_fn = maybe_compile(self._record_step, compile_setting, self.device)

    @staticmethod
    def _mirror_maps(env: VecEnv) -> Tuple[SignedPermutation, SignedPermutation]:
        """Return the env's ``(observation mirror, action mirror)`` for symmetry augmentation."""
        maps = getattr(env, 'mirror_maps', None)
        if not callable(maps):
            raise ValueError(f'ppo.symmetry_augmentation: {type(env).__name__} has no '
                             'mirror_maps() giving the mirror of its observations and actions')
        return maps()

    def _init_step_buffers(self) -> None:
        """
        Allocate the persistent per-step tensors of the collection loop.

        The loop copies the env's outputs into these fixed buffers and runs ``_policy_step`` /
        ``_record_step`` on them: no per-step allocation and no host read inside the loop.
        """
        env, dev, n = self.env, self.device, self.env.num_envs
        self._fused = bool(self.cfg.fused_step) and callable(getattr(env, 'step_fused', None))
        if self._fused:  # read and write the env's own persistent buffers
            out = env.outputs
            self._obs_in, self._critic_obs_in = out['obs'], out['critic_obs']
            self._rewards_in, self._dones_in = out['rewards'], out['dones']
            self._time_outs_in, self._actions_out = out['time_outs'], env.actions_in
        else:
            self._obs_in = torch.zeros(n, env.num_obs, device=dev)
            self._critic_obs_in = torch.zeros(n, env.num_critic_obs, device=dev)
            self._actions_out = torch.zeros(n, env.num_actions, device=dev)
            self._rewards_in = torch.zeros(n, device=dev)
            self._dones_in = torch.zeros(n, dtype=torch.bool, device=dev)
            self._time_outs_in = torch.zeros(n, dtype=torch.bool, device=dev)
        self._noise = torch.zeros(n, env.num_actions, device=dev)
        """Standard normal draws of the policy step, refilled before each step (outside any
        graph: torch RNG inside a captured graph would replay the same numbers)."""
        self._cur_return = torch.zeros(n, device=dev)
        self._cur_length = torch.zeros(n, device=dev)
        self._ep_stats = torch.zeros(3, device=dev)  # sum return, sum length, count
        self._step_reward_sum = torch.zeros((), device=dev)

    @torch.no_grad()
    def _policy_step(self) -> None:
        """Normalize (and learn stats of) the static obs, act, store the policy part."""
        if self.cfg.empirical_normalization:
            if self._obs_mirror is None:
                self.obs_normalizer.update(self._obs_in)
            else:
                perm, sign = self._obs_mirror
                self.obs_normalizer.update(torch.cat(
                    [self._obs_in, self._obs_in.index_select(-1, perm) * sign]))
            self.critic_obs_normalizer.update(self._critic_obs_in)
        actions = self.alg.act_and_store(self.obs_normalizer(self._obs_in),
                                         self.critic_obs_normalizer(self._critic_obs_in),
                                         noise=self._noise)
        self._actions_out.copy_(actions)

    @torch.no_grad()
    def _record_step(self) -> None:
        """Store the env's reply and update the episode return/length statistics."""
        rewards, dones = self._rewards_in, self._dones_in
        self.alg.store_env_step(rewards, dones, self._time_outs_in & dones)
        self._cur_return += rewards
        self._cur_length += 1.0
        done_f = dones.float()
        self._ep_stats += torch.stack([(self._cur_return * done_f).sum(),
                                       (self._cur_length * done_f).sum(), done_f.sum()])
        self._cur_return *= 1.0 - done_f
        self._cur_length *= 1.0 - done_f
        self._step_reward_sum += rewards.mean()

    @torch.no_grad()
    def _env_step(self) -> Dict[str, Any]:
        """Run one collection step through ``env.step``; return the env's step log."""
        self._policy_step_fn()
        obs, critic_obs, rewards, dones, extras = self.env.step(self._actions_out.clone())
        self._obs_in.copy_(obs)
        self._critic_obs_in.copy_(critic_obs)
        self._rewards_in.copy_(rewards)
        self._dones_in.copy_(dones)
        time_outs = extras.get('time_outs')
        if time_outs is None:
            self._time_outs_in.zero_()
        else:
            self._time_outs_in.copy_(time_outs)
        self._record_step_fn()
        return extras.get('log', {})

    @torch.no_grad()
    def _returns_step(self) -> None:
        """Run GAE from the critic's value of the static last critic observation."""
        self.alg.compute_returns(self.critic_obs_normalizer(self._critic_obs_in))

    # ------------------------------------------------------------------ policy access
    @property
    def actor(self) -> nn.Module:
        """Return the actor MLP (input: normalized obs, output: action mean)."""
        return self.actor_critic.actor

    def inference_policy(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Return ``f(obs) -> deterministic actions`` that applies the obs normalizer."""
        def policy(obs: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self.actor_critic.act_inference(self.obs_normalizer(obs))
        return policy

    # ------------------------------------------------------------------ training
    def learn(self, num_iterations: Optional[int] = None,
              time_budget_s: Optional[float] = None) -> List[Dict[str, float]]:
        """
        Run ``num_iterations`` more iterations and/or until ``time_budget_s`` is used up.

        With a time budget, training stops before an iteration that would likely overrun it
        (estimated from the previous iteration's duration), after at least one iteration.
        The first call resets the env; later calls go on with its episodes where the previous
        call left them.  Returns the history rows (all of them, including those restored by
        :meth:`resume`).
        """
        if num_iterations is None and time_budget_s is None:
            raise ValueError('learn: give num_iterations and/or time_budget_s')
        if num_iterations is not None and int(num_iterations) < 0:
            raise ValueError(f'learn: num_iterations must be >= 0, got {num_iterations}')
        if time_budget_s is not None and not time_budget_s > 0:
            raise ValueError(f'learn: time_budget_s must be > 0, got {time_budget_s}')
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            if self.cfg.tensorboard and self._writer is None:
                from torch.utils.tensorboard import SummaryWriter
                self._writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=10)

        env, alg, n_env = self.env, self.alg, self.env.num_envs
        on_iteration = getattr(env, 'on_iteration', None)  # disturbance curriculum
        startup_pending = not self._env_started  # this process's first iteration is start-up
        if not self._env_started:  # the first call; later ones continue the episodes
            if on_iteration is not None:  # the first episodes' draws follow the curriculum too
                on_iteration(self.current_iteration)
            obs, critic_obs = env.reset()
            self._obs_in.copy_(obs)
            self._critic_obs_in.copy_(critic_obs)
            self._cur_return.zero_()
            self._cur_length.zero_()
            self._env_started = True

        start_iteration = self.current_iteration
        target = None if num_iterations is None else start_iteration + int(num_iterations)
        start_wall = time.perf_counter()
        wall_offset = self.wall_time_s
        last_iter_s = 0.0
        self.actor_critic.train()
        while True:
            elapsed = time.perf_counter() - start_wall
            if target is not None and self.current_iteration >= target:
                break
            over_budget = (time_budget_s is not None and self.current_iteration > start_iteration
                           and elapsed + last_iter_s > time_budget_s)
            stop = self.stop_requested
            if self.dist.enabled:  # rank 0's clock and stop request decide
                over_budget, stop = (v > 0.5 for v in broadcast_values(
                    [float(over_budget), float(stop)], self.device))
                self.stop_requested = stop
            if over_budget or stop:
                break
            t0 = time.perf_counter()
            disturbance = on_iteration(self.current_iteration) if on_iteration else None
            self._ep_stats.zero_()
            self._step_reward_sum.zero_()
            log_sums: Dict[str, Any] = {}
            log_counts: Dict[str, int] = {}
            with torch.no_grad():
                for _ in range(self.cfg.num_steps_per_env):
                    alg.storage.commit_step()
                    self._noise.normal_()
                    if self._fused:
                        step_log = env.step_fused(self._policy_step_fn, self._record_step_fn)
                    else:
                        step_log = self._env_step()
                    for key, value in step_log.items():
                        if isinstance(value, torch.Tensor):
                            value = value.detach()
                            if value.dim() != 0 or value.dtype != torch.float32:
                                value = value.float().mean()
                        else:
                            value = float(value)
                        if key in log_sums:
                            log_sums[key] = log_sums[key] + value
                        else:  # a copy: the env may reuse the tensor it returned
                            log_sums[key] = (value.clone() if isinstance(value, torch.Tensor)
                                             else value)
                        log_counts[key] = log_counts.get(key, 0) + 1
                self._check_rollout_finite()
                if self._sync_normalizers:
                    sync_normalizers_(self.obs_normalizer, self.critic_obs_normalizer)
                t1 = time.perf_counter()
                self._returns_step()
            losses = alg.update()
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                raise FloatingPointError(
                    f'PPO update at iteration {self.current_iteration} produced non-finite '
                    f'{", ".join(bad)}: {losses}')
            t2 = time.perf_counter()

            self.current_iteration += 1
            steps = n_env * self.cfg.num_steps_per_env * self.dist.world_size
            self.total_env_steps += steps
            last_iter_s = t2 - t0
            elapsed = t2 - start_wall
            ep_sum, len_sum, count, step_reward_sum = torch.cat(
                [self._ep_stats, self._step_reward_sum.reshape(1)]).tolist()
            if self.dist.enabled:  # all ranks' episodes; rank 0's clock
                ep_sum, len_sum, count, step_reward_sum, elapsed, last_iter_s = \
                    self._summed_over_ranks(ep_sum, len_sum, count, step_reward_sum, elapsed,
                                            last_iter_s)
            self.wall_time_s = wall_offset + elapsed
            if startup_pending:
                self.startup_s += last_iter_s
                startup_pending = False
            if count > 0:
                self._last_mean_return = ep_sum / count
                self._last_mean_length = len_sum / count
            row: Dict[str, float] = {
                'iteration': float(self.current_iteration),
                'wall_time_s': self.wall_time_s,
                'env_steps': float(self.total_env_steps),
                'sps': steps / max(last_iter_s, 1e-9),
                'collection_time_s': t1 - t0,
                'learn_time_s': t2 - t1,
                'mean_reward': self._last_mean_return,
                'mean_episode_length': self._last_mean_length,
                'mean_step_reward': (step_reward_sum / self.dist.world_size
                                     / self.cfg.num_steps_per_env),
                'episodes_completed': count,
            }
            row.update(losses)
            if disturbance is not None:
                row['env/disturbance_scale'] = float(disturbance)
            for key, total in log_sums.items():
                row[f'env/{key}'] = _scalar(total) / log_counts[key]
            self.history.append(row)
            self._write_tensorboard(row)

            done_iters = self.current_iteration - start_iteration
            eta = float('inf')
            mean_iter_s = (t2 - start_wall) / max(done_iters, 1)
            if target is not None:
                eta = (target - self.current_iteration) * mean_iter_s
            if time_budget_s is not None:
                eta = min(eta, max(time_budget_s - (t2 - start_wall), 0.0))
            if self.dist.is_main and (done_iters % self.cfg.log_interval == 0 or (
                    target is not None and self.current_iteration >= target)):
                print(self._progress_line(row, target, eta), flush=True)
            if self.log_dir is not None and self.current_iteration % self.cfg.save_interval == 0:
                self.save()
                self.save_history()

        if self.log_dir is not None and self.current_iteration > start_iteration:
            if self.last_checkpoint is None or not self.last_checkpoint.name.endswith(
                    f'_{self.current_iteration}.pt'):
                self.save()
            self.save_history()
        if self._writer is not None:
            self._writer.flush()
        return self.history

    def _summed_over_ranks(self, ep_sum: float, len_sum: float, count: float,
                           step_reward_sum: float, elapsed_s: float, iteration_s: float
                           ) -> Tuple[float, ...]:
        """
        Return the episode sums over all ranks and rank 0's clock readings (one all-reduce).

        Ranks other than 0 add zero clock readings, so the sums are rank 0's.
        """
        main = 1.0 if self.dist.is_main else 0.0
        values = torch.tensor([ep_sum, len_sum, count, step_reward_sum, main * elapsed_s,
                               main * iteration_s], dtype=torch.float64, device=self.device)
        return tuple(all_reduce_sum_(values).tolist())

    def _check_rollout_finite(self) -> None:
        st = self.alg.storage
        flags = torch.stack([torch.isfinite(st.obs).all(), torch.isfinite(st.critic_obs).all(),
                             torch.isfinite(st.rewards).all()]).float()
        if self.dist.enabled:  # every rank raises together instead of the others waiting
            flags = all_reduce_min_(flags)
        names = ('observations', 'critic observations', 'rewards')
        bad = [n for n, ok in zip(names, flags.tolist()) if ok < 1.0]
        if bad:
            raise FloatingPointError(
                f'env returned non-finite {", ".join(bad)} during iteration '
                f'{self.current_iteration + 1}'
                + (' (on at least one process)' if self.dist.enabled else ''))

    def _progress_line(self, row: Dict[str, float], target: Optional[int], eta: float) -> str:
        total = f'/{target}' if target is not None else ''
        parts = [
            f'it {self.current_iteration}{total}',
            f'{self.total_env_steps / 1e6:.2f}M steps',
            f'{row["sps"] / 1e3:.1f}k steps/s (collect {row["collection_time_s"]:.2f}s '
            f'learn {row["learn_time_s"]:.2f}s)',
            # before the first episode ends there is no return to show
            (f'return {row["mean_reward"]:.3f}' if math.isfinite(row['mean_reward'])
             else 'return - (no episode ended yet)'),
            (f'ep_len {row["mean_episode_length"]:.1f}'
             if math.isfinite(row['mean_episode_length']) else 'ep_len -'),
            f'step_rew {row["mean_step_reward"]:.4f}',
            f'v_loss {row["value_loss"]:.4f} kl {row["approx_kl"]:.4f} '
            f'lr {row["learning_rate"]:.1e} std {row["action_std"]:.3f}',
        ]
        for key, value in row.items():
            if key.startswith('env/') and any(s in key for s in self.cfg.progress_keys):
                parts.append(f'{key[4:]} {value:.3f}')
        parts.append(f'time {_fmt_duration(row["wall_time_s"])} ETA {_fmt_duration(eta)}')
        return ' | '.join(parts)

    def _write_tensorboard(self, row: Dict[str, float]) -> None:
        if self._writer is not None:
            write_scalars(self._writer, row, self.current_iteration)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> Dict[str, Any]:
        """Return everything needed to resume training."""
        return {
            'model': self.actor_critic.state_dict(),
            'optimizer': self.alg.optimizer.state_dict(),
            'learning_rate': self.alg.learning_rate,
            'obs_normalizer': self.obs_normalizer.state_dict(),
            'critic_obs_normalizer': self.critic_obs_normalizer.state_dict(),
            'iteration': self.current_iteration,
            'total_env_steps': self.total_env_steps,
            'wall_time_s': self.wall_time_s,
            'startup_s': self.startup_s,
            'history': self.history,
            'dims': {'num_obs': self.env.num_obs, 'num_critic_obs': self.env.num_critic_obs,
                     'num_actions': self.env.num_actions},
            'config': {'ppo': asdict(self.ppo_cfg), 'runner': asdict(self.cfg)},
            'env_state': (self.env.curriculum_state()
                          if callable(getattr(self.env, 'curriculum_state', None)) else {}),
        }

    def save(self, path: Optional[Union[str, Path]] = None) -> Path:
        """
        Write a checkpoint (default ``<log_dir>/model_<iteration>.pt``); return its path.

        After a default-path checkpoint, only the newest ``keep_checkpoints`` of them stay in
        ``log_dir``; the older ones are deleted, and a line says which.
        """
        periodic = path is None
        if periodic:
            if self.log_dir is None:
                raise ValueError('save: no path given and the runner has no log_dir')
            path = checkpoint_path(self.log_dir, self.current_iteration)
        self.last_checkpoint = write_checkpoint(self.state_dict(), path)
        if periodic:
            deleted = prune_checkpoints(self.log_dir, self.cfg.keep_checkpoints,
                                        newest_iteration=self.current_iteration)
            if deleted:
                print(f'[runner] saved {self.last_checkpoint.name}; deleted '
                      f'{", ".join(p.name for p in deleted)} (keeping the last '
                      f'{self.cfg.keep_checkpoints} checkpoints)', flush=True)
        return self.last_checkpoint

    def resume(self, path: Union[str, Path], load_optimizer: bool = True) -> None:
        """Load a checkpoint written by :meth:`save`; training continues its iteration count."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'resume: no checkpoint at {path}')
        ckpt = torch.load(path, map_location=self.device, weights_only=False)
        dims = ckpt.get('dims', {})
        for key in ('num_obs', 'num_critic_obs', 'num_actions'):
            if key in dims and dims[key] != getattr(self.env, key):
                raise ValueError(f'resume: checkpoint {path} has {key}={dims[key]} but the env '
                                 f'has {getattr(self.env, key)}')
        self.actor_critic.load_state_dict(ckpt['model'])
        self.obs_normalizer.load_state_dict(ckpt['obs_normalizer'])
        if self._obs_mirror is not None and self.cfg.empirical_normalization:
            # a checkpoint of a run without mirrors: symmetric statistics from now on
            self.obs_normalizer.symmetrize_(*self._obs_mirror)
        self.critic_obs_normalizer.load_state_dict(ckpt['critic_obs_normalizer'])
        if load_optimizer:
            lr = ckpt.get('learning_rate')
            self.alg.load_optimizer_state(ckpt['optimizer'],
                                          None if lr is None else float(lr))
        self.current_iteration = int(ckpt['iteration'])
        self.total_env_steps = int(ckpt.get('total_env_steps', 0))
        self.wall_time_s = float(ckpt.get('wall_time_s', 0.0))
        self.startup_s = float(ckpt.get('startup_s', 0.0))
        self.history = list(ckpt.get('history', []))
        load_env_state = getattr(self.env, 'load_curriculum_state', None)
        if ckpt.get('env_state') and callable(load_env_state):
            load_env_state(ckpt['env_state'])  # e.g. the terrain levels reached
        self.last_checkpoint = path

    def save_history(self) -> Optional[Path]:
        """Write history.csv, history.json and (if enabled) learning_curves.png to log_dir."""
        if self.log_dir is None:
            return None
        return write_history(self.history, self.log_dir, plot=self.cfg.plot)

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
