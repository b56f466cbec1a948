"""
Empirical (running) observation normalizer, exported inside the ONNX graph.

Running mean and population variance are merged batch by batch with the parallel algorithm of
Chan et al. (1979), so the statistics equal numpy's ``mean``/``var`` (ddof=0) over all samples
seen.  The normalizer only updates when ``update`` is called; the runner calls it during
training rollouts only, never at evaluation or export time.

``normalize(x) = clip((x - mean) / (std + eps), -clip, clip)``.  rsl_rl's
``EmpiricalNormalization`` uses ``eps = 1e-2`` added to the std; we keep that.  The clip (default
5 std) is our addition: a feature that was nearly constant in training (std ~ 0) would otherwise
map a small deployment offset to a huge input; 5 std leaves every in-distribution value intact.
Set ``clip=None`` to disable.
"""

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn


class EmpiricalNormalizer(nn.Module):
    """Normalize inputs ``[..., dim]`` with running statistics of the data seen so far."""

    def __init__(self, shape: Union[int, Sequence[int]], eps: float = 1e-2,
                 clip: Optional[float] = 5.0, until: Optional[int] = None) -> None:
        """
        Create an identity-initialized normalizer for features of ``shape``.

        ``until``: stop updating after this many samples (None: never stop).
        """
        super().__init__()
        shape = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
        if eps <= 0.0:
            raise ValueError(f'EmpiricalNormalizer: eps must be > 0, got {eps}')
        if clip is not None and clip <= 0.0:
            raise ValueError(f'EmpiricalNormalizer: clip must be > 0 or None, got {clip}')
        self.eps = float(eps)
        self.clip = None if clip is None else float(clip)
        self.until = until
        self.register_buffer('mean', torch.zeros(shape))
        self.register_buffer('var', torch.ones(shape))
        self.register_buffer('std', torch.ones(shape))
        # shape [1], not a 0-dim tensor: torch.compile (torch 2.13, CPU) drops in-place updates
        # of 0-dim float64 tensors
        self.register_buffer('count', torch.zeros(1, dtype=torch.float64))

    # eager under torch.compile: triton 3.6 failed to compile the fused float64 statistics
    # update on the H100 ("PassManager::run failed"); it is a dozen small kernels per step
    @torch.compiler.disable
    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge a batch ``x`` ``[..., dim]`` into the running mean/var."""
        if self.until is not None and float(self.count) >= self.until:
            return
        x = x.reshape(-1, *self.mean.shape).to(self.mean.dtype)
        n = x.shape[0]
        if n == 0:
            return
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        count = self.count.to(self.mean.dtype)
        total = count + n
        delta = batch_mean - self.mean
        w_new = n / total
        self.mean.add_(delta * w_new)
        m2 = self.var * count + batch_var * n + delta.square() * count * w_new
        self.var.copy_(m2 / total)
        self.std.copy_(self.var.sqrt())
        self.count.add_(n)

    def _load_from_state_dict(self, state_dict: Dict[str, Any], prefix: str,
                              *args: Any) -> None:
        # checkpoints written before the count became shape [1] hold a 0-dim count
        key = prefix + 'count'
        if key in state_dict and state_dict[key].dim() == 0:
            state_dict[key] = state_dict[key].reshape(1)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return normalized ``x`` (no statistics update)."""
        y = (x - self.mean) / (self.std + self.eps)
        if self.clip is not None:
            y = y.clamp(-self.clip, self.clip)
        return y

    def extra_repr(self) -> str:
        """Describe the settings."""
        return f'shape={tuple(self.mean.shape)}, eps={self.eps}, clip={self.clip}'
