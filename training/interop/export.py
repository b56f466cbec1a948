"""
Export a Stable-Baselines3 policy trained through the adapters as ONNX + policy contract.

The deterministic action of an SB3 ``ActorCriticPolicy`` on a Box observation space is
``action_net(mlp_extractor.policy_net(flatten(obs)))`` (the Gaussian mean).  That actor, with
the observation normalization of a ``VecNormalize`` wrapper if one was used, goes through the
project's exporter (:func:`training.export.export_policy`), so the ROS policy node loads the
result like any policy trained by ``python -m training.train``.  The contract is the training
env's (observation terms, scales, clips, gains, timing): the SB3 policy saw exactly the
observations that the env builds from it.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple, Union

import torch
from torch import nn
from training.export import export_policy
from training.interop.bridge import RecordingLocomotionEnv


class SB3Actor(nn.Module):
    """The deterministic actor of an SB3 ``ActorCriticPolicy`` (Box observations)."""

    def __init__(self, policy: Any) -> None:
        """Take the actor's layers from ``policy`` (shared, not copied: export copies them)."""
        super().__init__()
        self.features = policy.pi_features_extractor
        self.latent = policy.mlp_extractor.policy_net
        self.action_net = policy.action_net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Return the action means [B, action_dim] for observations [B, obs_dim]."""
        return self.action_net(self.latent(self.features(obs.float())))


class VecNormalizeObs(nn.Module):
    """SB3 ``VecNormalize`` observations: ``clip((obs - mean) / sqrt(var + eps))``."""

    def __init__(self, mean: Any, var: Any, epsilon: float, clip_obs: float) -> None:
        """Freeze the running statistics (numpy or torch [obs_dim])."""
        super().__init__()
        self.register_buffer('mean', torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer('std', torch.sqrt(torch.as_tensor(var, dtype=torch.float32)
                                               + float(epsilon)))
        self.clip_obs = float(clip_obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalize and clip ``obs`` [B, obs_dim]."""
        return torch.clamp((obs - self.mean) / self.std, -self.clip_obs, self.clip_obs)


def export_sb3_policy(model: Any, env: RecordingLocomotionEnv, out_dir: Union[str, Path],
                      name: str, vec_normalize: Any = None,
                      provenance: Optional[Mapping[str, Any]] = None) -> Tuple[Path, Path]:
    """
    Write ``<out_dir>/<name>.onnx`` and its contract ``<name>.yaml``; return both paths.

    ``model`` is an SB3 on-policy algorithm (PPO, A2C) or its ``ActorCriticPolicy``, trained on
    ``env`` through :class:`training.interop.SB3VecEnv`.  ``vec_normalize``: the
    ``VecNormalize`` wrapper used in training, if any (its observation statistics are baked in;
    reward normalization does not affect the policy).  ``provenance`` entries are added to the
    contract's, which records the trainer, the backend and the env config.
    """
    policy = getattr(model, 'policy', model)
    normalizer = None
    if vec_normalize is not None and getattr(vec_normalize, 'norm_obs', False):
        rms = vec_normalize.obs_rms
        normalizer = VecNormalizeObs(rms.mean, rms.var, vec_normalize.epsilon,
                                     vec_normalize.clip_obs)
    import stable_baselines3

    record = {
        'trainer': f'stable-baselines3 {stable_baselines3.__version__} '
                   f'{type(model).__name__}',
        'backend': env.backend_name,
        # tuples become lists, as the contract's YAML holds them
        'config': {'env': json.loads(json.dumps(dataclasses.asdict(env.cfg)))},
    }
    record.update(provenance or {})
    contract = env.contract(onnx_file=f'{name}.onnx')
    return export_policy(SB3Actor(policy), normalizer, contract, out_dir, name,
                         provenance=record)
