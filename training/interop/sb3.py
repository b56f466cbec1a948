"""
The training env as a Stable-Baselines3 ``VecEnv``.

SB3's conventions: ``step_wait`` returns ``(obs, rewards, dones, infos)`` with ``dones`` the
union of falls and time-outs; where an episode ended, ``obs`` is already the new episode's
first observation, ``infos[i]['terminal_observation']`` the finished episode's last one, and
``infos[i]['TimeLimit.truncated']`` True for a time-out (SB3's on-policy algorithms then
bootstrap the value of ``terminal_observation``) and False for a fall.

Example (a CPU run; use ``device='cuda:0'`` and thousands of envs on a GPU)::

    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor
    from training.interop import make_env, SB3VecEnv

    venv = VecMonitor(SB3VecEnv(make_env(num_envs=16, device='cpu')))
    model = PPO('MlpPolicy', venv, n_steps=24, batch_size=96).learn(100_000)

:func:`training.interop.export.export_sb3_policy` writes the trained policy as ONNX plus its
policy contract for the ROS policy node.
"""

from typing import Any, List, Optional, Type

import gymnasium
import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn
from training.interop.bridge import NumpyBridge, RecordingLocomotionEnv


class SB3VecEnv(VecEnv):
    """
    Stable-Baselines3 ``VecEnv`` over a :class:`RecordingLocomotionEnv` (see the module doc).

    Spaces come from the policy contract (:class:`training.interop.bridge.NumpyBridge`).  The
    seed of :meth:`seed` (env ``i`` gets ``seed + i``; the first is used) seeds torch's global
    generator at the next :meth:`reset`.  The robots are one batched simulation, so attributes
    and methods are those of the whole batch: :meth:`get_attr` returns the same value for every
    index, and :meth:`set_attr`/:meth:`env_method` act on the batch and need every index.
    """

    def __init__(self, env: RecordingLocomotionEnv) -> None:
        """Wrap ``env``."""
        self.bridge = NumpyBridge(env)
        self._actions: Optional[np.ndarray] = None
        self.last_log: dict = {}
        super().__init__(self.bridge.num_envs, self.bridge.observation_space,
                         self.bridge.action_space)

    def reset(self) -> np.ndarray:
        """Reset every env; return the observations [N, obs_dim]."""
        obs = self.bridge.reset(self._seeds[0])
        self._reset_seeds()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions [N, action_dim] for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every env with the stored actions (see the module doc for the returns)."""
        if self._actions is None:
            raise RuntimeError('step_wait() called without step_async()')
        out = self.bridge.step(self._actions)
        self._actions = None
        self.last_log = out.log
        dones = out.terminated | out.truncated
        infos: List[dict] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i]['terminal_observation'] = out.final_obs[i]
            infos[i]['TimeLimit.truncated'] = bool(out.truncated[i])
        return out.obs, out.rewards, dones, infos

    def close(self) -> None:
        """Release the simulator."""
        self.bridge.close()

    def _whole_batch(self, indices: VecEnvIndices, what: str) -> None:
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise NotImplementedError(f'{what}: the robots are one batched simulation; it '
                                      'applies to every env index or to none')

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> List[Any]:
        """Return the batch's attribute ``attr_name`` once per index."""
        owner: Any = self.bridge if hasattr(self.bridge, attr_name) else self.bridge.env
        value = getattr(owner, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set the env's attribute ``attr_name`` (every index)."""
        self._whole_batch(indices, 'set_attr')
        setattr(self.bridge.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> List[Any]:
        """Call the env's method once (every index); its result is returned per index."""
        self._whole_batch(indices, 'env_method')
        result = getattr(self.bridge.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in range(self.num_envs)]

    def env_is_wrapped(self, wrapper_class: Type[gymnasium.Wrapper],
                       indices: VecEnvIndices = None) -> List[bool]:
        """Return False per index: the env is not a gymnasium.Env and carries no wrappers."""
        return [False for _ in self._get_indices(indices)]
