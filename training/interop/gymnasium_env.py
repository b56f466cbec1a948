"""
The training env as a ``gymnasium.vector.VectorEnv`` (numpy arrays, one row per robot).

The simulator steps all robots together and starts a new episode inside the step that ended
the old one, so the natural autoreset mode is ``SAME_STEP``: where an episode ended, the step
returns the new episode's first observation and reports the finished episode's last one in
``infos['final_obs']`` (an object array, ``None`` elsewhere, with the mask
``infos['_final_obs']``).  Time-outs are ``truncations``, falls ``terminations``.

``autoreset_mode=AutoresetMode.NEXT_STEP`` (Gymnasium's default, what RLlib's env runner
expects) is emulated: the step that ends an episode returns its last observation, and the next
step reports the reset (reward 0, not done, the action ignored in the report).  The simulator
has, however, already started the new episode one step earlier, so that action is applied to
the new episode's first step, and the observation reported as its start is the one after it.
"""

from typing import Any, Dict, List, Optional, Tuple, Union

import gymnasium
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
import numpy as np
from training.interop.bridge import NumpyBridge, RecordingLocomotionEnv


class GymnasiumVecEnv(gymnasium.vector.VectorEnv):
    """
    ``gymnasium.vector.VectorEnv`` over a :class:`RecordingLocomotionEnv` (see the module doc).

    ``single_observation_space``/``single_action_space`` come from the policy contract (see
    :class:`training.interop.bridge.NumpyBridge`); ``reset(seed=...)`` seeds torch's global
    generator.  ``last_log`` holds the env's logged scalars of the last step.
    """

    def __init__(self, env: RecordingLocomotionEnv,
                 autoreset_mode: Union[AutoresetMode, str] = AutoresetMode.SAME_STEP) -> None:
        """Wrap ``env``; ``autoreset_mode`` is SAME_STEP (exact) or NEXT_STEP (emulated)."""
        mode = AutoresetMode(autoreset_mode)
        if mode not in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP):
            raise ValueError(f'autoreset_mode must be SAME_STEP or NEXT_STEP, got {mode}: the '
                             'env always resets an episode that ends')
        self.bridge = NumpyBridge(env)
        self.num_envs = self.bridge.num_envs
        self.single_observation_space = self.bridge.observation_space
        self.single_action_space = self.bridge.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {'autoreset_mode': mode}
        self.render_mode = None
        self.last_log: Dict[str, float] = {}
        self._reset_reported = np.ones(self.num_envs, dtype=bool)

    def reset(self, *, seed: Optional[Union[int, List[int]]] = None,
              options: Optional[Dict[str, Any]] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
        """Reset every env; ``seed`` (an int, or a list whose first entry is used) seeds torch."""
        if isinstance(seed, (list, tuple)):
            seed = seed[0] if seed else None
        super().reset(seed=seed)
        self._reset_reported[:] = True
        return self.bridge.reset(seed), {}

    def step(self, actions: Any
             ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """Step every env; return ``(obs, rewards, terminations, truncations, infos)``."""
        out = self.bridge.step(actions)
        self.last_log = out.log
        obs, rewards = out.obs, out.rewards
        terminated, truncated = out.terminated, out.truncated
        if self.metadata['autoreset_mode'] == AutoresetMode.NEXT_STEP:
            pending = ~self._reset_reported
            rewards = np.where(pending, 0.0, rewards).astype(np.float32)
            terminated, truncated = terminated & ~pending, truncated & ~pending
            ended = terminated | truncated
            obs = np.where(ended[:, None], out.final_obs, obs)
            self._reset_reported = ~ended
            return obs, rewards, terminated, truncated, {}
        ended = terminated | truncated
        infos: Dict[str, Any] = {}
        if ended.any():
            final = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                final[i] = out.final_obs[i]
            infos = {'final_obs': final, '_final_obs': ended.copy(),
                     'final_info': {}, '_final_info': ended.copy()}
        return obs, rewards, terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        """Release the simulator."""
        self.bridge.close()
