"""
Gaussian actor-critic with separate MLPs and a state-independent learned log-std.

Architecture defaults follow rsl_rl / legged_gym / mjlab: actor and critic MLPs with hidden
sizes [512, 256, 128], ELU activations, initial action std 1.0.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
from torch import nn
from torch.distributions import Normal

_ACTIVATIONS = {
    'elu': nn.ELU,
    'relu': nn.ReLU,
    'tanh': nn.Tanh,
    'selu': nn.SELU,
    'silu': nn.SiLU,
}


@dataclass
class PolicyConfig:
    """Network architecture of the actor-critic."""

    actor_hidden_dims: Tuple[int, ...] = (512, 256, 128)
    """Hidden layer widths of the actor MLP (rsl_rl/legged_gym: [512, 256, 128])."""

    critic_hidden_dims: Tuple[int, ...] = (512, 256, 128)
    """Hidden layer widths of the critic MLP (rsl_rl/legged_gym: [512, 256, 128])."""

    activation: str = 'elu'
    """Hidden activation: one of elu, relu, tanh, selu, silu (rsl_rl default: elu)."""

    init_noise_std: float = 1.0
    """Initial standard deviation of the Gaussian action noise (rsl_rl default: 1.0)."""

    min_noise_std: float = 1e-3
    """Lower bound applied to the action std in the forward pass, to keep log-probs finite."""

    def __post_init__(self) -> None:
        """Validate the fields."""
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f'policy.activation: unknown activation {self.activation!r}; '
                f'expected one of {sorted(_ACTIVATIONS)}')
        if not self.init_noise_std > 0.0:
            raise ValueError(f'policy.init_noise_std must be > 0, got {self.init_noise_std}')
        for name in ('actor_hidden_dims', 'critic_hidden_dims'):
            dims = getattr(self, name)
            if len(dims) == 0 or any(int(d) <= 0 for d in dims):
                raise ValueError(f'policy.{name} must be non-empty positive ints, got {dims}')


def build_mlp(in_dim: int, hidden_dims: Sequence[int], out_dim: int,
              activation: str) -> nn.Sequential:
    """Build an MLP ``in_dim -> hidden_dims... -> out_dim`` with ``activation`` between layers."""
    act = _ACTIVATIONS[activation]
    layers = []
    prev = in_dim
    for width in hidden_dims:
        layers.append(nn.Linear(prev, int(width)))
        layers.append(act())
        prev = int(width)
    layers.append(nn.Linear(prev, out_dim))
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """
    Separate actor and critic MLPs; diagonal Gaussian policy with learned log-std.

    Shapes: ``obs`` ``[B, num_obs]``, ``critic_obs`` ``[B, num_critic_obs]``, actions
    ``[B, num_actions]``, values ``[B]``.  Inputs are expected to be already normalized.
    """

    def __init__(self, num_obs: int, num_critic_obs: int, num_actions: int,
                 cfg: PolicyConfig = None) -> None:
        """Create the networks; ``cfg`` defaults to ``PolicyConfig()``."""
        super().__init__()
        cfg = cfg if cfg is not None else PolicyConfig()
        for name, val in (('num_obs', num_obs), ('num_critic_obs', num_critic_obs),
                          ('num_actions', num_actions)):
            if int(val) <= 0:
                raise ValueError(f'ActorCritic: {name} must be positive, got {val}')
        self.cfg = cfg
        self.num_obs = int(num_obs)
        self.num_critic_obs = int(num_critic_obs)
        self.num_actions = int(num_actions)
        self.actor = build_mlp(self.num_obs, cfg.actor_hidden_dims, self.num_actions,
                               cfg.activation)
        self.critic = build_mlp(self.num_critic_obs, cfg.critic_hidden_dims, 1, cfg.activation)
        self.log_std = nn.Parameter(
            torch.full((self.num_actions,), float(torch.log(torch.tensor(cfg.init_noise_std)))))
        self._min_log_std = float(torch.log(torch.tensor(cfg.min_noise_std)))

    @property
    def action_std(self) -> torch.Tensor:
        """Return the current action std ``[num_actions]``."""
        return self.log_std.clamp(min=self._min_log_std).exp()

    def distribution(self, obs: torch.Tensor) -> Normal:
        """
        Return the diagonal Gaussian action distribution for ``obs`` ``[B, num_obs]``.

        Argument validation is off: it checks ``std > 0`` with a host read (a GPU sync on every
        call); the std is positive by construction (``exp`` of the clamped log-std).
        """
        mean = self.actor(obs)
        std = self.action_std.expand_as(mean)
        return Normal(mean, std, validate_args=False)

    def act(self, obs: torch.Tensor, noise: Optional[torch.Tensor] = None
            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Sample actions; return ``(actions, log_prob [B], mean, std)``.

        ``noise`` ``[B, num_actions]``: standard normal draws to use (actions = mean + std *
        noise), for callers that draw them outside a CUDA graph; None draws here.
        """
        dist = self.distribution(obs)
        actions = dist.sample() if noise is None else dist.mean + dist.stddev * noise
        return actions, dist.log_prob(actions).sum(-1), dist.mean, dist.stddev

    def act_inference(self, obs: torch.Tensor) -> torch.Tensor:
        """Return the deterministic action (the Gaussian mean) ``[B, num_actions]``."""
        return self.actor(obs)

    def evaluate(self, critic_obs: torch.Tensor) -> torch.Tensor:
        """Return the critic's value estimate ``[B]``."""
        return self.critic(critic_obs).squeeze(-1)
