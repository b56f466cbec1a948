"""
Per-world action and observation latency counted in physics steps (torch only, capture-safe).

:class:`LatencyBuffers` keeps two ring buffers per world, shifted in place with fixed shapes and
no host syncs, so a backend can run them inside its captured decimation loop:

- the PD targets of the last ``max_action_delay_steps + 1`` calls of ``step`` (one push per
  call).  A target written at physics step ``s0`` reaches the PD law at step ``s0 + d``
  (``d = action_delay_steps`` of the world): at substep ``k`` of a call of ``decimation``
  substeps, the PD law uses the target pushed ``ceil((d - k) / decimation)`` calls ago (0 when
  ``k >= d``).  Booster Gym delays the actions of each environment by 0-9 physics substeps the
  same way.
- the measured state after each of the last ``max_obs_delay_steps + 1`` physics steps.
  :meth:`delayed_state` returns, per world, the state ``obs_delay_steps`` physics steps before
  the latest one (0: the current state).

A reset world forgets its history: its state ring is filled with the reset state and its
target ring with the next pushed target.
"""

from typing import Dict, Sequence, Tuple

import torch


class LatencyBuffers:
    """Ring buffers of PD targets and measured states of ``num_envs`` worlds (see module)."""

    def __init__(self, num_envs: int, num_joints: int, max_action_delay_steps: int,
                 max_obs_delay_steps: int, state_layout: Sequence[Tuple[str, int]],
                 device: torch.device) -> None:
        """
        Allocate the rings; every delay starts at 0.

        ``state_layout`` names the recorded state's parts and their widths, in the order of
        the rows given to :meth:`record_state` (for example ``[('base_quat', 4), ...]``).
        """
        if min(max_action_delay_steps, max_obs_delay_steps) < 0:
            raise ValueError('maximum delays must be >= 0 physics steps, got '
                             f'{max_action_delay_steps}, {max_obs_delay_steps}')
        n = int(num_envs)
        self.max_action_delay_steps = int(max_action_delay_steps)
        self.max_obs_delay_steps = int(max_obs_delay_steps)
        self.layout = [(name, int(width)) for name, width in state_layout]
        width = sum(w for _, w in self.layout)
        self.action_delay_steps = torch.zeros(n, dtype=torch.long, device=device)
        """Per-world action delay [physics steps] (write in place; <= the maximum)."""
        self.obs_delay_steps = torch.zeros(n, dtype=torch.long, device=device)
        """Per-world observation delay [physics steps] (write in place; <= the maximum)."""
        self._targets = torch.zeros(self.max_action_delay_steps + 1, n, num_joints,
                                    device=device)
        self._states = torch.zeros(self.max_obs_delay_steps + 1, n, width, device=device)
        self._fresh = torch.ones(n, dtype=torch.bool, device=device)
        self._target = torch.zeros(n, num_joints, device=device)
        self._delayed = torch.zeros(n, width, device=device)
        self._delayed_views: Dict[str, torch.Tensor] = {}
        col = 0
        for name, w in self.layout:
            self._delayed_views[name] = self._delayed[:, col:col + w]
            col += w

    def push_target(self, q_target: torch.Tensor) -> None:
        """Shift the target ring and put ``q_target`` [N, J] first (once per ``step`` call)."""
        if self._targets.shape[0] > 1:
            self._targets[1:] = self._targets[:-1].clone()
        self._targets[0] = q_target
        fresh = self._fresh.view(1, -1, 1)
        self._targets.copy_(torch.where(fresh, q_target.unsqueeze(0), self._targets))
        self._fresh.zero_()

    def target(self, substep: int, decimation: int) -> torch.Tensor:
        """
        Return the PD target [N, J] each world sees at ``substep`` (0-based) of this call.

        The returned tensor is a persistent buffer, overwritten by the next call.
        """
        lag = torch.div(self.action_delay_steps - substep + decimation - 1, decimation,
                        rounding_mode='floor')
        lag = lag.clamp(0, self._targets.shape[0] - 1)
        index = lag.view(1, -1, 1).expand(1, -1, self._targets.shape[2])
        self._target.copy_(torch.gather(self._targets, 0, index)[0])
        return self._target

    def record_state(self, state: torch.Tensor) -> None:
        """Shift the state ring and put ``state`` [N, W] first (after every physics step)."""
        if self._states.shape[0] > 1:
            self._states[1:] = self._states[:-1].clone()
        self._states[0] = state

    def reset_masked(self, mask: torch.Tensor, state: torch.Tensor) -> None:
        """Forget the history of the worlds in ``mask``: fill their state ring with ``state``."""
        self._states.copy_(torch.where(mask.view(1, -1, 1), state.unsqueeze(0), self._states))
        self._fresh.logical_or_(mask)

    def delayed_state(self) -> Dict[str, torch.Tensor]:
        """Return each part of the state ``obs_delay_steps`` physics steps ago, [N, width]."""
        lag = self.obs_delay_steps.clamp(0, self._states.shape[0] - 1)
        index = lag.view(1, -1, 1).expand(1, -1, self._states.shape[2])
        self._delayed.copy_(torch.gather(self._states, 0, index)[0])
        return self._delayed_views
