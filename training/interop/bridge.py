"""
The numpy boundary shared by the Gymnasium and Stable-Baselines3 adapters.

:class:`NumpyBridge` steps a :class:`RecordingLocomotionEnv` (the training env, torch tensors on
its device, auto-resetting inside ``step``) with numpy actions and returns numpy arrays: the only
torch <-> numpy conversions of the adapters happen here, once per step.  Its spaces come from
the env's policy contract: observations ``Box(-obs_clip, obs_clip, (obs_dim,))`` (the env clips
scaled observations to that range) and actions ``Box(-action_clip, action_clip,
(action_dim,))`` (the env clips raw actions to that range), both float32.

Episodes end by *termination* (the robot fell) or *truncation* (``episode_length_s`` ran out);
the env reports the latter as ``extras['time_outs']``.  Because the env starts the next episode
within the same step, the adapters also need each finished episode's last observation (to
bootstrap truncated episodes); :class:`RecordingLocomotionEnv` records it.
"""

import dataclasses
from typing import Any, Dict, NamedTuple, Optional

import gymnasium
import numpy as np
import torch
from training.config import EnvConfig
from training.env import LocomotionEnv


class RecordingLocomotionEnv(LocomotionEnv):
    """
    The training env, also recording the last observation of the episodes a step ends.

    ``final_obs`` [N, num_obs] holds, after each ``step``, the observation every env had at the
    end of that step *before* the auto-reset: for the envs that the step ended, the last
    observation of the finished episode; for the others, their returned observation.  It costs
    one extra observation computation per step.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Build the env (same arguments as :class:`LocomotionEnv`)."""
        super().__init__(*args, **kwargs)
        self.final_obs = torch.zeros(self.num_envs, self.num_obs, device=self.device)

    def _reset_masked(self, mask: torch.Tensor) -> None:
        """Record the observation of every env, then reset the envs where ``mask`` is True."""
        self._observations()
        self.final_obs.copy_(self._obs_buf)
        super()._reset_masked(mask)


def make_env(cfg: Optional[EnvConfig] = None, device: str = 'cpu', backend: str = 'mjwarp',
             **overrides: Any) -> RecordingLocomotionEnv:
    """
    Build the training env for the adapters.

    ``cfg`` defaults to ``EnvConfig()``; ``overrides`` replace its fields (e.g.
    ``num_envs=4``).  ``backend`` is ``'mjwarp'`` (default) or ``'isaacgym'``.
    """
    cfg = dataclasses.replace(cfg or EnvConfig(), **overrides)
    return RecordingLocomotionEnv(cfg, backend_name=backend, device=device)


class BatchStep(NamedTuple):
    """One step of every env, as numpy arrays."""

    obs: np.ndarray
    """[N, obs_dim] float32: observation after the step (new episode's first where it ended)."""
    rewards: np.ndarray
    """[N] float32: reward of the step."""
    terminated: np.ndarray
    """[N] bool: the episode ended by a fall (no bootstrap)."""
    truncated: np.ndarray
    """[N] bool: the episode ran out of time (bootstrap from ``final_obs``)."""
    final_obs: np.ndarray
    """[N, obs_dim] float32: last observation of the episode; meaningful where it ended."""
    log: Dict[str, float]
    """The env's logged scalars of the step (``extras['log']``)."""


class NumpyBridge:
    """Numpy in, numpy out around a :class:`RecordingLocomotionEnv` (see the module doc)."""

    render_mode = None
    """Nothing is rendered."""

    def __init__(self, env: RecordingLocomotionEnv) -> None:
        """Wrap ``env``; its contract gives the spaces."""
        if not isinstance(env, RecordingLocomotionEnv):
            raise TypeError('the adapters need a RecordingLocomotionEnv (make one with '
                            'training.interop.make_env): it records the last observation of '
                            f'every finished episode; got {type(env).__name__}')
        self.env = env
        self.num_envs = int(env.num_envs)
        contract = env.contract()
        self.contract = contract
        self.observation_space = gymnasium.spaces.Box(
            low=-contract.obs_clip, high=contract.obs_clip, shape=(contract.obs_dim,),
            dtype=np.float32)
        self.action_space = gymnasium.spaces.Box(
            low=-contract.action_clip, high=contract.action_clip,
            shape=(contract.action_dim,), dtype=np.float32)

    def reset(self, seed: Optional[int] = None) -> np.ndarray:
        """
        Reset every env; return the observations [N, obs_dim].

        ``seed`` seeds torch's global generator, which the env draws every random number from.
        """
        if seed is not None:
            torch.manual_seed(int(seed))
        obs, _ = self.env.reset()
        return obs.cpu().numpy()

    def step(self, actions: Any) -> BatchStep:
        """Step every env with ``actions`` [N, action_dim] (array-like)."""
        shape = (self.num_envs,) + self.action_space.shape
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != shape:
            raise ValueError(f'actions must have shape {shape}, got {actions.shape}')
        obs, _, rewards, dones, extras = self.env.step(
            torch.from_numpy(actions).to(self.env.device))
        truncated = extras['time_outs']
        return BatchStep(obs=obs.cpu().numpy(), rewards=rewards.cpu().numpy(),
                         terminated=(dones & ~truncated).cpu().numpy(),
                         truncated=truncated.cpu().numpy(),
                         final_obs=self.env.final_obs.cpu().numpy().copy(),
                         log={key: float(value) for key, value in extras.get('log', {}).items()})

    def close(self) -> None:
        """Release the simulator."""
        self.env.close()
