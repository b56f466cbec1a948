"""
Abstract vectorized environment contract consumed by the PPO runner.

The runner knows nothing about the simulator: it only sees tensors with the shapes documented
below, all living on ``env.device``.  The time-out convention follows rsl_rl's ``VecEnv``:
``extras['time_outs']`` marks episodes that were *truncated* (ran out of time) rather than
*terminated* (fell), so that PPO can bootstrap their value instead of treating them as terminal.
"""

from abc import ABC, abstractmethod
from typing import Any, Dict, Tuple

import torch


class VecEnv(ABC):
    """
    Batch of ``num_envs`` environments stepped together on one device.

    Attributes (set by subclasses):

    - ``num_envs`` (int): number of parallel environments N.
    - ``num_obs`` (int): width of the policy (actor) observation.
    - ``num_critic_obs`` (int): width of the critic observation; equal to ``num_obs``
      when there are no privileged terms.
    - ``num_actions`` (int): width A of the action vector.
    - ``device`` (torch.device | str): device of every returned tensor.
    - ``max_episode_length`` (int): episode length in policy steps at which an episode
      is truncated (and flagged in ``extras['time_outs']``).

    Environments auto-reset: when an env is done after ``step``, it is reset inside ``step``
    and the *returned* observation is the first observation of its new episode.
    """

    num_envs: int
    num_obs: int
    num_critic_obs: int
    num_actions: int
    device: Any
    max_episode_length: int

    @abstractmethod
    def reset(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Reset all environments.

        Returns ``(obs [N, num_obs], critic_obs [N, num_critic_obs])``, float32 on ``device``.
        """

    @abstractmethod
    def step(
        self, actions: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Dict[str, Any]]:
        """
        Advance every environment by one policy step.

        ``actions`` is ``[N, num_actions]`` float32 on ``device`` (raw policy output; the env
        applies its own scaling/clipping).

        Returns ``(obs, critic_obs, rewards, dones, extras)``:

        - ``obs`` ``[N, num_obs]`` and ``critic_obs`` ``[N, num_critic_obs]``: observations after
          the step (of the new episode for envs that were reset);
        - ``rewards`` ``[N]`` float32: reward of this transition;
        - ``dones`` ``[N]`` bool: episode ended at this step (termination *or* time-out);
        - ``extras['time_outs']`` ``[N]`` bool: truncation, a subset of ``dones``; the runner
          bootstraps these with the critic's value;
        - ``extras['log']`` (optional) ``dict[str, scalar tensor | float]``: values to log,
          e.g. per-reward-term episode sums, tracking errors, episode length.  The runner
          averages each key over the steps in which it was reported.
        """

    def close(self) -> None:
        """Release simulator resources (default: nothing to do)."""
