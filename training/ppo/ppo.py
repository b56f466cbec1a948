"""
Proximal Policy Optimization (clipped surrogate) with an adaptive learning rate.

This file is longer than 500 lines: the eager update, its CUDA-graph replay and the
multi-process split of that replay (the all-reduce between two graphs) must compute the same
step, so they live beside the one loss they share.

Defaults are the rsl_rl / legged_gym numbers (legged_gym ``LeggedRobotCfgPPO``; also mjlab's G1
``rl_cfg.py``): clip 0.2, value loss coef 1.0 (clipped value loss), entropy coef 0.01,
5 epochs x 4 minibatches, lr 1e-3 adapted from the KL towards 0.01, gamma 0.99, lambda 0.95,
max grad norm 1.0.

Data-parallel (``world_size > 1``, see :mod:`training.distributed`): each process computes the
loss and gradients of its own minibatch; one all-reduce per minibatch step averages the
gradients and the minibatch statistics over the processes, the learning rate is adapted from the
averaged KL, then every process clips and steps Adam identically.  Advantages are normalized
over all processes' rollouts.  With ``graph_update`` on CUDA the update cannot be one CUDA graph
(the all-reduce runs between graphs, not inside one): each minibatch step replays two graphs,
the loss and backward before the all-reduce, the rate, clip and Adam step after it.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple
import warnings

import torch
from torch import nn
import torch.distributed as dist

from .actor_critic import ActorCritic
from .storage import Batch, gather_batch, RolloutStorage
from ..compiling import maybe_compile
from ..symmetry import SignedPermutation


@dataclass
class PPOConfig:
    """PPO hyper-parameters (defaults: rsl_rl / legged_gym)."""

    learning_rate: float = 1e-3
    """Initial Adam learning rate (legged_gym: 1e-3)."""

    schedule: str = 'adaptive'
    """'adaptive' (adjust lr from the KL, rsl_rl) or 'fixed'."""

    desired_kl: float = 0.01
    """Target KL(old || new) per minibatch for the adaptive schedule (legged_gym: 0.01)."""

    lr_min: float = 1e-5
    """Lower bound of the adaptive learning rate (rsl_rl: 1e-5)."""

    lr_max: float = 1e-2
    """Upper bound of the adaptive learning rate (rsl_rl: 1e-2)."""

    clip_param: float = 0.2
    """PPO ratio clip epsilon (legged_gym: 0.2); also the value clip range."""

    value_loss_coef: float = 1.0
    """Weight of the value loss (legged_gym: 1.0)."""

    use_clipped_value_loss: bool = True
    """Clip the value prediction around the old value, as rsl_rl does (legged_gym: True)."""

    entropy_coef: float = 0.01
    """Weight of the entropy bonus (legged_gym: 0.01)."""

    num_learning_epochs: int = 5
    """Passes over the rollout per update (legged_gym: 5)."""

    num_mini_batches: int = 4
    """Minibatches per epoch (legged_gym: 4)."""

    gamma: float = 0.99
    """Discount factor (legged_gym: 0.99)."""

    lam: float = 0.95
    """GAE lambda (legged_gym: 0.95)."""

    max_grad_norm: float = 1.0
    """Global gradient-norm clip (legged_gym: 1.0)."""

    normalize_advantage: bool = True
    """Normalize advantages to zero mean / unit std over the whole rollout before the update."""

    symmetry_augmentation: bool = False
    """Learn from every collected sample and from its left-right mirror (rsl_rl's symmetry
    augmentation for the actor; Mittal et al., ICRA 2024): the mirrored sample joins the
    surrogate loss with the collected sample's advantage and log-probability (its density
    under the mirrored behaviour policy: a signed permutation preserves volume); the critic,
    the KL of the adaptive rate and the clip fraction use the collected samples. The env
    supplies the mirror (``mirror_maps``); :mod:`training.symmetry` refuses a robot that is
    not left-right symmetric."""

    def __post_init__(self) -> None:
        """Validate the fields."""
        if self.schedule not in ('adaptive', 'fixed'):
            raise ValueError(f"ppo.schedule must be 'adaptive' or 'fixed', got {self.schedule!r}")
        positive = ('learning_rate', 'desired_kl', 'lr_min', 'lr_max', 'clip_param',
                    'max_grad_norm', 'num_learning_epochs', 'num_mini_batches')
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f'ppo.{name} must be > 0, got {getattr(self, name)}')
        for name in ('gamma', 'lam'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'ppo.{name} must be in [0, 1], got {getattr(self, name)}')
        for name in ('value_loss_coef', 'entropy_coef'):
            if getattr(self, name) < 0:
                raise ValueError(f'ppo.{name} must be >= 0, got {getattr(self, name)}')


def clipped_surrogate_loss(ratio: torch.Tensor, advantages: torch.Tensor,
                           clip_param: float) -> torch.Tensor:
    """Return the PPO clipped surrogate loss ``mean(max(-A r, -A clip(r, 1-eps, 1+eps)))``."""
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_param, 1.0 + clip_param)
    return torch.max(unclipped, clipped).mean()


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               clip_param: float, use_clipped: bool) -> torch.Tensor:
    """Return the (optionally clipped, rsl_rl style) squared-error value loss."""
    if not use_clipped:
        return (returns - values).square().mean()
    clipped = old_values + (values - old_values).clamp(-clip_param, clip_param)
    return torch.max((values - returns).square(), (clipped - returns).square()).mean()


def gaussian_kl(mu_old: torch.Tensor, sigma_old: torch.Tensor, mu: torch.Tensor,
                sigma: torch.Tensor) -> torch.Tensor:
    """Return KL(old || new) of diagonal Gaussians, summed over the action dim ``[B]``."""
    return (torch.log(sigma / sigma_old)
            + (sigma_old.square() + (mu_old - mu).square()) / (2.0 * sigma.square())
            - 0.5).sum(-1)


def adapt_learning_rate(lr: float, kl: float, cfg: PPOConfig) -> float:
    """Apply rsl_rl's rule: KL > 2x target -> lr / 1.5; KL < target / 2 -> lr * 1.5."""
    if kl > 2.0 * cfg.desired_kl:
        return max(cfg.lr_min, lr / 1.5)
    if 0.0 < kl < 0.5 * cfg.desired_kl:
        return min(cfg.lr_max, lr * 1.5)
    return lr


def adapt_learning_rate_tensor(lr: torch.Tensor, kl: torch.Tensor,
                               cfg: PPOConfig) -> torch.Tensor:
    """
    Return :func:`adapt_learning_rate` computed on the device (no host read of the KL).

    ``lr`` and ``kl`` are 0-dim tensors; the result has ``lr``'s dtype.  A NaN KL leaves the
    rate unchanged, as in the float version.
    """
    kl = kl.to(lr.dtype)
    down = (lr / 1.5).clamp(min=cfg.lr_min)
    up = (lr * 1.5).clamp(max=cfg.lr_max)
    grow = (kl > 0.0) & (kl < 0.5 * cfg.desired_kl)
    return torch.where(kl > 2.0 * cfg.desired_kl, down, torch.where(grow, up, lr))


def _make_adam(params: List[nn.Parameter], lr: torch.Tensor, device: torch.device,
               capturable: bool = False) -> torch.optim.Optimizer:
    """
    Build Adam with a tensor learning rate (so the adaptive rule never reads the KL back).

    The fused implementation (one kernel family for all parameters) is used where torch has
    it; if this torch build refuses it, the single-tensor implementation (which also takes a
    tensor learning rate) is used, with a warning.  ``capturable``: the step may be captured
    in a CUDA graph (step counters on the device).
    """
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, capturable=capturable)
    except (RuntimeError, ValueError) as exc:
        warnings.warn(f'fused Adam unavailable on {device} ({exc!r}); using the single-tensor '
                      'implementation', RuntimeWarning)
        return torch.optim.Adam(params, lr=lr, foreach=False, capturable=capturable)


class PPO:
    """
    PPO learner: owns the actor-critic's optimizer and the rollout storage.

    The learning rate lives on the device (a 0-dim tensor that Adam reads), so the adaptive
    schedule runs without a host sync per minibatch; :attr:`learning_rate` reads it back.
    Every minibatch step (loss, backward, rate adaptation, gradient clip, Adam) reads and
    writes only persistent tensors, so on CUDA a whole update can be replayed as one graph.
    """

    def __init__(self, actor_critic: ActorCritic, cfg: PPOConfig,
                 device: torch.device = 'cpu', compile_setting: str = 'off',
                 graph_update: bool = False, world_size: int = 1,
                 mirror: Optional[Tuple[SignedPermutation, SignedPermutation]] = None
                 ) -> None:
        """
        Wrap ``actor_critic`` (moved to ``device``) with an Adam optimizer.

        ``mirror``: ``(observation mirror, action mirror)`` of the actor's (normalized) input
        and output, needed by ``cfg.symmetry_augmentation`` (and used only then). The
        normalized observation mirrors like the raw one only if the normalizer's statistics
        are mirror-symmetric: the runner feeds it every observation and its mirror.

        ``compile_setting`` selects ``torch.compile`` for the minibatch loss (forward and
        backward; with ``'auto'`` on CUDA and no ``graph_update`` also replayed as CUDA
        graphs), see :mod:`training.compiling`.  ``graph_update`` (CUDA only): all
        ``num_learning_epochs x num_mini_batches`` steps of an update run as one CUDA graph,
        captured at the second update (the first runs eagerly, as its warm-up); if the capture
        fails, updates run eagerly, with a warning.  The graph holds ``cfg``'s values as they
        were at capture: change the config before training, not during it.

        ``world_size > 1``: data-parallel over the initialized default process group (module
        doc); the parameters are overwritten with rank 0's here.
        """
        self.cfg = cfg
        self.device = torch.device(device)
        self.actor_critic = actor_critic.to(self.device)
        self._lr = torch.tensor(float(cfg.learning_rate), dtype=torch.float64,
                                device=self.device)
        self._lr_opt = torch.tensor(float(cfg.learning_rate), dtype=torch.float32,
                                    device=self.device)
        self._graph_update = bool(graph_update) and self.device.type == 'cuda'
        self.optimizer = _make_adam(list(self.actor_critic.parameters()), self._lr_opt,
                                    self.device, capturable=self._graph_update)
        self.storage: Optional[RolloutStorage] = None
        self._pending = None
        self._stats = torch.zeros(5, device=self.device)
        self._mb_indices: Optional[torch.Tensor] = None
        """Sample indices of every minibatch step of the update ``[steps, B]`` (fixed address)."""
        self._mb_idx: Optional[torch.Tensor] = None
        """The current minibatch's indices ``[B]``: the compiled loss's only input."""
        self._flat: Optional[Batch] = None
        self._update_graph: Optional[Any] = None
        self._eager_updates = 0
        self._loss_fn = maybe_compile(self._minibatch_loss, compile_setting, self.device,
                                      cuda_graphs=not self._graph_update)
        self._mirror: Optional[Tuple[torch.Tensor, ...]] = None
        """(obs perm, obs sign, action perm, action sign) with symmetry augmentation."""
        if cfg.symmetry_augmentation:
            self._mirror = self._mirror_tensors(mirror)
        self.world_size = int(world_size)
        self._sync_buf: Optional[torch.Tensor] = None
        """Data-parallel: every parameter's gradient (the ``.grad`` are views of it) followed
        by the minibatch statistics; what the all-reduce sums."""
        if self.world_size > 1:
            self._init_data_parallel()

    def _mirror_tensors(self, mirror: Optional[Tuple[SignedPermutation, SignedPermutation]]
                        ) -> Tuple[torch.Tensor, ...]:
        """Check the mirror maps against the actor's sizes; return them as device tensors."""
        ac = self.actor_critic
        if mirror is None:
            raise ValueError('ppo.symmetry_augmentation needs the observation and action '
                             'mirrors (an env with mirror_maps())')
        obs_mirror, action_mirror = mirror
        if obs_mirror.size != ac.num_obs or action_mirror.size != ac.num_actions:
            raise ValueError(f'ppo.symmetry_augmentation: mirrors of {obs_mirror.size} '
                             f'observations and {action_mirror.size} actions for an actor of '
                             f'{ac.num_obs} and {ac.num_actions}')
        return (*obs_mirror.tensors(self.device), *action_mirror.tensors(self.device))

    # ------------------------------------------------------------------ data parallel
    def _init_data_parallel(self) -> None:
        """Check the process group, take rank 0's parameters, point the grads into one buffer."""
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(f'PPO: world_size {self.world_size} needs an initialized '
                               'process group (training.distributed.init_distributed)')
        if dist.get_world_size() != self.world_size:
            raise RuntimeError(f'PPO: world_size {self.world_size} but the process group has '
                               f'{dist.get_world_size()} processes')
        params = list(self.actor_critic.parameters())
        with torch.no_grad():
            for tensor in [*params, *self.actor_critic.buffers()]:
                dist.broadcast(tensor.data, src=0)
        total = sum(p.numel() for p in params)
        self._sync_buf = torch.zeros(total + self._stats.numel(), dtype=torch.float32,
                                     device=self.device)
        self._grad_views = []
        start = 0
        for p in params:
            if p.dtype != torch.float32:
                raise TypeError(f'PPO data-parallel: parameters must be float32, got {p.dtype}')
            self._grad_views.append(self._sync_buf[start:start + p.numel()].view_as(p))
            start += p.numel()
        self._attach_grad_views()

    def _attach_grad_views(self) -> None:
        """Make every parameter's ``.grad`` its view of the sync buffer (host-side only)."""
        for p, view in zip(self.actor_critic.parameters(), self._grad_views):
            if p.grad is not view:
                p.grad = view

    def _local_gradients(self) -> None:
        """
        Write this process's gradient and statistics of minibatch ``_mb_idx`` into the buffer.

        The first half of a data-parallel minibatch step (a CUDA graph of its own).
        """
        loss, stats = self._loss_fn(self._mb_idx)
        self._sync_buf.zero_()
        loss.backward()  # accumulates into the zeroed grad views
        self._sync_buf[-stats.numel():].copy_(stats)

    def _all_reduce_gradients(self) -> None:
        """Sum the gradient and statistics buffer over the processes (in place)."""
        dist.all_reduce(self._sync_buf, op=dist.ReduceOp.SUM)

    def _apply_averaged_gradients(self) -> None:
        """
        Average the summed buffer, adapt the rate from the mean KL, clip, step Adam.

        The second half of a data-parallel minibatch step (a CUDA graph of its own).
        """
        cfg = self.cfg
        self._sync_buf.mul_(1.0 / self.world_size)
        stats = self._sync_buf[-self._stats.numel():]
        if cfg.schedule == 'adaptive':
            with torch.no_grad():
                new_lr = adapt_learning_rate_tensor(self._lr, stats[3], cfg)
                self._lr.copy_(new_lr)
                self._lr_opt.copy_(new_lr)
        nn.utils.clip_grad_norm_(self.actor_critic.parameters(), cfg.max_grad_norm,
                                 foreach=True)
        self.optimizer.step()
        self._stats += stats

    def _data_parallel_step(self) -> None:
        """Run one data-parallel minibatch step eagerly (no host reads)."""
        if not self._graph_update:
            torch.compiler.cudagraph_mark_step_begin()
        self._attach_grad_views()
        self._local_gradients()
        self._all_reduce_gradients()
        self._apply_averaged_gradients()

    # ------------------------------------------------------------------ learning rate
    @property
    def learning_rate(self) -> float:
        """Return the current learning rate (a host read of the device value)."""
        return float(self._lr)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        value = float(value)
        if not value > 0.0:
            raise ValueError(f'learning_rate must be > 0, got {value}')
        self._lr.fill_(value)
        self._lr_opt.fill_(value)

    def load_optimizer_state(self, state_dict: Dict[str, Any],
                             learning_rate: Optional[float] = None) -> None:
        """
        Load an Adam state dict (from this or an older version) and keep this learner's setup.

        The saved param-group flags (fused, capturable, a float lr) are replaced by ours, the
        step counters moved to where our Adam keeps them.
        """
        first = self.optimizer.param_groups[0]
        flags = {k: first[k] for k in ('fused', 'capturable', 'foreach')}
        self.optimizer.load_state_dict(state_dict)
        for group in self.optimizer.param_groups:
            group.update(flags)
            group['lr'] = self._lr_opt
        self._drop_update_graph()  # it captured the replaced state tensors
        on_device = bool(flags['fused'] or flags['capturable'])
        for state in self.optimizer.state.values():
            step = state.get('step')
            if isinstance(step, torch.Tensor) and on_device:
                state['step'] = step.to(dtype=torch.float32, device=self.device)
        if learning_rate is None:
            saved = state_dict['param_groups'][0].get('lr', None)
            learning_rate = None if saved is None else float(saved)
        if learning_rate is not None:
            self.learning_rate = learning_rate

    # ------------------------------------------------------------------ collection
    def init_storage(self, num_envs: int, num_steps: int) -> None:
        """Allocate the rollout storage for ``num_envs`` x ``num_steps`` transitions."""
        ac = self.actor_critic
        self.storage = RolloutStorage(num_envs, num_steps, ac.num_obs, ac.num_critic_obs,
                                      ac.num_actions, self.device)
        self._flat = None
        self._drop_update_graph()

    @torch.no_grad()
    def act(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> torch.Tensor:
        """Sample actions for (normalized) observations and remember the transition's start."""
        actions, log_probs, mu, sigma = self.actor_critic.act(obs)
        values = self.actor_critic.evaluate(critic_obs)
        self._pending = (obs, critic_obs, actions, log_probs, mu, sigma, values)
        return actions

    def process_env_step(self, rewards: torch.Tensor, dones: torch.Tensor,
                         time_outs: torch.Tensor) -> None:
        """Store the transition started by ``act`` with the env's reward/done/time-out."""
        if self._pending is None:
            raise RuntimeError('process_env_step called without a preceding act()')
        self.storage.add(*self._pending, rewards=rewards, dones=dones, time_outs=time_outs)
        self._pending = None

    @torch.no_grad()
    def act_and_store(self, obs: torch.Tensor, critic_obs: torch.Tensor,
                      noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Sample actions and write the policy's part of the transition into the storage.

        Sync-free split of ``act`` + ``process_env_step``: no host reads, the storage row is
        the device-side step index.  Follow with :meth:`store_env_step` (and the host-side
        ``storage.commit_step()``).  ``noise``: the sampling draws (see ``ActorCritic.act``).
        """
        actions, log_probs, mu, sigma = self.actor_critic.act(obs, noise)
        values = self.actor_critic.evaluate(critic_obs)
        self.storage.write_policy_part(obs, critic_obs, actions, log_probs, mu, sigma, values)
        return actions

    @torch.no_grad()
    def store_env_step(self, rewards: torch.Tensor, dones: torch.Tensor,
                       time_outs: torch.Tensor) -> None:
        """Write the env's reply for the step begun by :meth:`act_and_store` (no host reads)."""
        self.storage.write_env_part(rewards, dones, time_outs)

    @torch.no_grad()
    def compute_returns(self, last_critic_obs: torch.Tensor) -> None:
        """Bootstrap from the critic's value of the last observation and run GAE."""
        last_values = self.actor_critic.evaluate(last_critic_obs)
        self.storage.compute_returns(last_values, self.cfg.gamma, self.cfg.lam)
        if self.cfg.normalize_advantage:
            adv = self.storage.advantages
            if self.world_size > 1:
                mean, std = self._global_mean_std(adv)
                adv.copy_((adv - mean) / (std + 1e-8))
            else:
                adv.copy_((adv - adv.mean()) / (adv.std() + 1e-8))

    def _global_mean_std(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return the mean and (unbiased) std of ``x`` over all processes (two all-reduces)."""
        x64 = x.double().reshape(-1)
        sums = torch.stack([torch.full_like(x64[0], x64.numel()), x64.sum()])
        dist.all_reduce(sums, op=dist.ReduceOp.SUM)
        count, mean = sums[0], sums[1] / sums[0]
        m2 = (x64 - mean).square().sum()
        dist.all_reduce(m2, op=dist.ReduceOp.SUM)
        std = (m2 / (count - 1.0).clamp(min=1.0)).sqrt()
        return mean.to(x.dtype), std.to(x.dtype)

    # ------------------------------------------------------------------ update
    def _minibatch_loss(self, idx: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Return the PPO loss of the rollout rows ``idx`` and its detached statistics.

        Statistics: ``[surrogate, value loss, entropy, KL(old || new), clip fraction]``.
        With symmetry augmentation the actor's rows are the minibatch followed by its mirror
        (``cfg.symmetry_augmentation``). Pure tensor code without host reads (what
        ``compile_setting`` compiles).
        """
        cfg = self.cfg
        ac = self.actor_critic
        batch = gather_batch(self._flat, idx)
        obs, actions = batch.obs, batch.actions
        old_log_probs, advantages = batch.log_probs, batch.advantages
        if self._mirror is not None:
            obs_perm, obs_sign, act_perm, act_sign = self._mirror
            obs = torch.cat([obs, obs.index_select(-1, obs_perm) * obs_sign])
            actions = torch.cat([actions, actions.index_select(-1, act_perm) * act_sign])
            old_log_probs = torch.cat([old_log_probs, old_log_probs])
            advantages = torch.cat([advantages, advantages])
        dist = ac.distribution(obs)
        log_probs = dist.log_prob(actions).sum(-1)
        values = ac.evaluate(batch.critic_obs)
        entropy = dist.entropy().sum(-1).mean()
        ratio = torch.exp(log_probs - old_log_probs)
        surrogate = clipped_surrogate_loss(ratio, advantages, cfg.clip_param)
        v_loss = value_loss(values, batch.values, batch.returns, cfg.clip_param,
                            cfg.use_clipped_value_loss)
        loss = surrogate + cfg.value_loss_coef * v_loss - cfg.entropy_coef * entropy
        with torch.no_grad():
            rows = batch.mu.shape[0]  # the collected rows: the KL of the adaptive rate
            kl = gaussian_kl(batch.mu, batch.sigma, dist.mean[:rows],
                             dist.stddev[:rows]).mean()
            clip_frac = ((ratio[:rows] - 1.0).abs() > cfg.clip_param).float().mean()
            stats = torch.stack([surrogate.detach(), v_loss.detach(), entropy.detach(), kl,
                                 clip_frac])
        return loss, stats

    def _minibatch_step(self) -> None:
        """
        Run one gradient step on the minibatch ``self._mb_idx`` of the flattened rollout.

        Reads and writes only persistent tensors (storage, parameters, Adam state, the
        device learning rate, the stats accumulator) and never reads a value back to the
        host.
        """
        cfg = self.cfg
        if not self._graph_update:
            torch.compiler.cudagraph_mark_step_begin()  # the last minibatch's outputs are used
        loss, stats = self._loss_fn(self._mb_idx)
        if cfg.schedule == 'adaptive':
            # rsl_rl adapts the rate from this minibatch's KL before the step; on the
            # device (Adam reads the tensor) instead of a host read per minibatch.
            with torch.no_grad():
                new_lr = adapt_learning_rate_tensor(self._lr, stats[3], cfg)
                self._lr.copy_(new_lr)
                self._lr_opt.copy_(new_lr)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.actor_critic.parameters(), cfg.max_grad_norm,
                                 foreach=True)
        self.optimizer.step()
        self._stats += stats

    def _minibatch_steps(self) -> None:
        """Run the minibatch steps of ``self._mb_indices`` in order (what a graph captures)."""
        step = self._data_parallel_step if self.world_size > 1 else self._minibatch_step
        for idx in self._mb_indices:
            self._mb_idx.copy_(idx)
            step()

    def _drop_update_graph(self) -> None:
        """Forget the captured update (its tensors were replaced); warm up and capture anew."""
        self._update_graph = None
        self._eager_updates = 0

    def _run_update_graph(self) -> bool:
        """
        Replay the captured update, capturing it first; return False where it cannot run.

        The first call after construction (or after the storage or the optimizer state were
        replaced) runs the steps eagerly on a side stream as the capture's warm-up (compiling
        the loss, creating Adam's state) and returns True.
        """
        if not self._graph_update:
            return False
        if self._eager_updates == 0:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self._minibatch_steps()
            torch.cuda.current_stream(self.device).wait_stream(side)
            self._eager_updates += 1
            return True
        if self._update_graph is None:
            try:
                self._update_graph = self._capture_update()
            except RuntimeError as exc:
                warnings.warn(f'CUDA graph capture of the PPO update failed ({exc}); updates '
                              'run eagerly', RuntimeWarning)
                self._graph_update = False
                return False
        if self.world_size > 1:
            local, apply = self._update_graph
            for idx in self._mb_indices:
                self._mb_idx.copy_(idx)
                local.replay()
                self._all_reduce_gradients()  # between the graphs, on the host's order
                apply.replay()
        else:
            self._update_graph.replay()
        return True

    def _capture_update(self) -> Any:
        """
        Capture the update: one graph of all minibatch steps, or, data-parallel, two graphs.

        Data-parallel: ``(local, apply)``, the graphs of :meth:`_local_gradients` and
        :meth:`_apply_averaged_gradients`; the caller replays them around the all-reduce.
        """
        if self.world_size <= 1:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._minibatch_steps()
            return graph
        self._attach_grad_views()
        torch.cuda.synchronize(self.device)  # no collective in flight while capturing
        local, apply = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(local):
            self._local_gradients()
        with torch.cuda.graph(apply):
            self._apply_averaged_gradients()
        return local, apply

    def update(self) -> Dict[str, float]:
        """Run ``num_learning_epochs x num_mini_batches`` gradient steps; return mean stats."""
        cfg = self.cfg
        st = self.storage
        indices = st.minibatch_indices(cfg.num_mini_batches, cfg.num_learning_epochs)
        if self._flat is None:
            self._flat = st.flat()
        if self._mb_indices is None or self._mb_indices.shape != indices.shape:
            self._mb_indices = torch.empty_like(indices)
            self._mb_idx = torch.empty(indices.shape[1:], dtype=torch.long, device=self.device)
            self._drop_update_graph()
        self._mb_indices.copy_(indices)
        self._stats.zero_()
        if not self._run_update_graph():
            self._minibatch_steps()
        n = indices.shape[0]
        st.clear()
        # one host read for all stats
        values = torch.cat([(self._stats / max(n, 1)).double(), self._lr.reshape(1),
                            self.actor_critic.action_std.detach().mean().double().reshape(1)])
        keys = ('surrogate_loss', 'value_loss', 'entropy', 'approx_kl', 'clip_fraction',
                'learning_rate', 'action_std')
        return dict(zip(keys, values.tolist()))
