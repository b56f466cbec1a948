"""
GPU-resident rollout storage and generalized advantage estimation (GAE).

Everything PPO needs later is stored *at collection time*: the observations the policy saw
(already normalized), the sampled actions, their log-probabilities under the behaviour policy,
the behaviour policy's mean and std (for the KL used by the adaptive learning rate) and the
critic's values.  Nothing is recomputed from a policy that has since changed.
"""

from typing import Iterator, NamedTuple, Tuple

import torch


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor,
                time_outs: torch.Tensor, last_values: torch.Tensor, gamma: float,
                lam: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Compute GAE(gamma, lambda) advantages and value targets over a rollout.

    Shapes: ``rewards``, ``values``, ``dones``, ``time_outs`` are ``[T, N]``; ``last_values``
    ``[N]`` is the critic's value of the observation that follows the last step.
    ``dones[t]`` says the episode ended at step t (termination or time-out); ``time_outs[t]``
    (a subset of dones) says it was truncated.

    Time-outs are bootstrapped the rsl_rl way: since the env auto-resets, the true final
    observation is gone, so the value of the last stored state stands in for it and
    ``gamma * V(s_t)`` is added to the reward of a truncated step.  A termination cuts the
    bootstrap: nothing flows back across ``dones``.  The final step bootstraps from
    ``last_values`` unless it is done.

    Returns ``(advantages [T, N], returns [T, N])`` with ``returns = advantages + values``.
    """
    if rewards.dim() != 2:
        raise ValueError(f'compute_gae: rewards must be [T, N], got shape {tuple(rewards.shape)}')
    for name, t in (('values', values), ('dones', dones), ('time_outs', time_outs)):
        if t.shape != rewards.shape:
            raise ValueError(f'compute_gae: {name} shape {tuple(t.shape)} != rewards shape '
                             f'{tuple(rewards.shape)}')
    if last_values.shape != rewards.shape[1:]:
        raise ValueError(f'compute_gae: last_values shape {tuple(last_values.shape)} != '
                         f'[N]={tuple(rewards.shape[1:])}')
    num_steps = rewards.shape[0]
    not_done = 1.0 - dones.to(values.dtype)
    rewards = rewards + gamma * values * time_outs.to(values.dtype)
    advantages = torch.zeros_like(values)
    next_adv = torch.zeros_like(last_values)
    next_values = last_values
    for t in reversed(range(num_steps)):
        delta = rewards[t] + gamma * next_values * not_done[t] - values[t]
        next_adv = delta + gamma * lam * not_done[t] * next_adv
        advantages[t] = next_adv
        next_values = values[t]
    return advantages, advantages + values


class Batch(NamedTuple):
    """One minibatch of flattened transitions (leading dim B)."""

    obs: torch.Tensor
    critic_obs: torch.Tensor
    actions: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    log_probs: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor


class RolloutStorage:
    """Fixed-size ``[num_steps, num_envs, ...]`` buffers on one device."""

    def __init__(self, num_envs: int, num_steps: int, num_obs: int, num_critic_obs: int,
                 num_actions: int, device: torch.device) -> None:
        """Allocate all buffers on ``device``."""
        self.num_envs = int(num_envs)
        self.num_steps = int(num_steps)
        self.device = torch.device(device)
        t, n = self.num_steps, self.num_envs

        def buf(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros(t, n, *shape, dtype=dtype, device=self.device)

        self.obs = buf(num_obs)
        self.critic_obs = buf(num_critic_obs)
        self.actions = buf(num_actions)
        self.mu = buf(num_actions)
        self.sigma = buf(num_actions)
        self.rewards = buf()
        self.dones = buf(dtype=torch.bool)
        self.time_outs = buf(dtype=torch.bool)
        self.values = buf()
        self.log_probs = buf()
        self.advantages = buf()
        self.returns = buf()
        self.step = 0
        """Steps stored so far (host count)."""
        self._step_t = torch.zeros(1, dtype=torch.long, device=self.device)
        # the same count on the device: the write index, read without a host sync

    def add(self, obs: torch.Tensor, critic_obs: torch.Tensor, actions: torch.Tensor,
            log_probs: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor,
            values: torch.Tensor, rewards: torch.Tensor, dones: torch.Tensor,
            time_outs: torch.Tensor) -> None:
        """Store one transition for all envs (each argument has leading dim N)."""
        self.commit_step()
        self.write_policy_part(obs, critic_obs, actions, log_probs, mu, sigma, values)
        self.write_env_part(rewards, dones, time_outs)

    def commit_step(self) -> None:
        """
        Count one more stored step on the host; raise if the storage is already full.

        ``add`` does this itself.  A caller that writes through ``write_policy_part`` /
        ``write_env_part`` (the runner, which keeps host code out of its step functions) calls
        it once per step.
        """
        if self.step >= self.num_steps:
            raise RuntimeError('RolloutStorage is full; call clear() after the update')
        self.step += 1

    def write_policy_part(self, obs: torch.Tensor, critic_obs: torch.Tensor,
                          actions: torch.Tensor, log_probs: torch.Tensor, mu: torch.Tensor,
                          sigma: torch.Tensor, values: torch.Tensor) -> None:
        """
        Write what the policy produced at the current step (device-side step index).

        No host reads or host-side indexing (no GPU sync).
        """
        i = self._step_t
        for buf, x in ((self.obs, obs), (self.critic_obs, critic_obs), (self.actions, actions),
                       (self.log_probs, log_probs), (self.mu, mu), (self.sigma, sigma),
                       (self.values, values)):
            buf.index_copy_(0, i, x.unsqueeze(0).to(buf.dtype))

    def write_env_part(self, rewards: torch.Tensor, dones: torch.Tensor,
                       time_outs: torch.Tensor) -> None:
        """Write the env's reply for the current step, then advance the device step index."""
        i = self._step_t
        for buf, x in ((self.rewards, rewards), (self.dones, dones),
                       (self.time_outs, time_outs)):
            buf.index_copy_(0, i, x.unsqueeze(0).to(buf.dtype))
        i.add_(1)

    def clear(self) -> None:
        """Start a new rollout (buffers are overwritten, not reallocated)."""
        self.step = 0
        self._step_t.zero_()

    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float) -> None:
        """Fill ``advantages`` and ``returns`` with GAE (see ``compute_gae``)."""
        if self.step != self.num_steps:
            raise RuntimeError(f'RolloutStorage holds {self.step} of {self.num_steps} steps')
        adv, ret = compute_gae(self.rewards, self.values, self.dones, self.time_outs,
                               last_values, gamma, lam)
        self.advantages.copy_(adv)
        self.returns.copy_(ret)

    def flat(self) -> Batch:
        """Return views of the stored fields flattened to ``[num_steps * num_envs, ...]``."""
        return Batch(*(x.flatten(0, 1) for x in (
            self.obs, self.critic_obs, self.actions, self.values, self.advantages,
            self.returns, self.log_probs, self.mu, self.sigma)))

    def minibatch_indices(self, num_minibatches: int, num_epochs: int,
                          generator: torch.Generator = None) -> torch.Tensor:
        """
        Return ``[num_epochs * num_minibatches, B]`` sample indices, one fresh shuffle per epoch.

        ``B = total // num_minibatches`` (a remainder of the shuffle is left out, as rsl_rl
        does).  Drawn on the storage's device without host reads.
        """
        total = self.num_steps * self.num_envs
        if num_minibatches < 1 or num_minibatches > total:
            raise ValueError(f'num_minibatches must be in [1, {total}], got {num_minibatches}')
        size = total // num_minibatches
        perms = [torch.randperm(total, device=self.device, generator=generator)[
            :size * num_minibatches] for _ in range(num_epochs)]
        return torch.stack(perms).reshape(num_epochs * num_minibatches, size)

    def minibatches(self, num_minibatches: int, num_epochs: int,
                    generator: torch.Generator = None) -> Iterator[Batch]:
        """Yield ``num_epochs * num_minibatches`` shuffled minibatches of flattened data."""
        flat = self.flat()
        for idx in self.minibatch_indices(num_minibatches, num_epochs, generator):
            yield gather_batch(flat, idx)


def gather_batch(flat: Batch, idx: torch.Tensor) -> Batch:
    """Return the rows ``idx`` of every field of ``flat`` (no host reads)."""
    return Batch(*(x.index_select(0, idx) for x in flat))
