"""
The training env for other RL libraries: Gymnasium and Stable-Baselines3 adapters.

- :func:`make_env` builds the training env (:class:`RecordingLocomotionEnv`, MuJoCo Warp by
  default) for the adapters;
- :class:`GymnasiumVecEnv` exposes it as a ``gymnasium.vector.VectorEnv`` (also the way in for
  RLlib, see ``docs/INTEROP.md``);
- :class:`SB3VecEnv` exposes it as a Stable-Baselines3 ``VecEnv``;
- :func:`export_sb3_policy` exports an SB3 policy as ONNX + policy contract for the ROS node.

Spaces come from the policy contract; torch <-> numpy conversion happens once per step at the
adapters' boundary (:class:`training.interop.bridge.NumpyBridge`).  The adapters import
gymnasium and stable-baselines3, which ``python -m training.train`` does not need.
"""

from training.interop.bridge import BatchStep, make_env, NumpyBridge, RecordingLocomotionEnv
from training.interop.export import export_sb3_policy
from training.interop.gymnasium_env import GymnasiumVecEnv
from training.interop.sb3 import SB3VecEnv

__all__ = ['BatchStep', 'GymnasiumVecEnv', 'NumpyBridge', 'RecordingLocomotionEnv',
           'SB3VecEnv', 'export_sb3_policy', 'make_env']
