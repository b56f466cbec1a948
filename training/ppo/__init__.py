"""PPO for on-policy locomotion training: actor-critic, normalizer, storage/GAE, update."""

from .actor_critic import ActorCritic, PolicyConfig
from .normalizer import EmpiricalNormalizer
from .ppo import clipped_surrogate_loss, PPO, PPOConfig, value_loss
from .storage import compute_gae, RolloutStorage

__all__ = [
    'ActorCritic', 'PolicyConfig', 'EmpiricalNormalizer', 'PPO', 'PPOConfig',
    'clipped_surrogate_loss', 'value_loss', 'RolloutStorage', 'compute_gae',
]
