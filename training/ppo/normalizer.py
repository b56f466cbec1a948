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

Data-parallel training (:mod:`training.distributed`): after :meth:`EmpiricalNormalizer.enable_sync`
each process keeps updating its own statistics during its rollout and also keeps what it added
since the last synchronization (count, mean and sum of squared deviations, M2);
:meth:`EmpiricalNormalizer.merge_synced_` merges every process's additions into the statistics of
the last synchronization with the same pairwise formula, so that every process then holds the
statistics of all the samples of all processes, bit for bit the same everywhere.
"""

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn


def merge_moments(count_a: torch.Tensor, mean_a: torch.Tensor, m2_a: torch.Tensor,
                  count_b: torch.Tensor, mean_b: torch.Tensor, m2_b: torch.Tensor
                  ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Return ``(count, mean, M2)`` of the union of two sample sets given as the same triples.

    ``M2`` is the sum of squared deviations from the mean (variance = M2 / count); Chan et al.'s
    pairwise formula.  Either set may be empty (count 0: the other set's moments come back).
    """
    total = count_a + count_b
    delta = mean_b - mean_a
    w_b = count_b / total.clamp(min=1.0)
    return total, mean_a + delta * w_b, m2_a + m2_b + delta.square() * count_a * w_b


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
        if self._syncing:
            x64 = x.double()
            batch_mean = x64.mean(0)
            batch_m2 = (x64 - batch_mean).square().sum(0)
            n_t = torch.full_like(self._new_count, float(n))
            for buf, value in zip((self._new_count, self._new_mean, self._new_m2), merge_moments(
                    self._new_count, self._new_mean, self._new_m2, n_t, batch_mean, batch_m2)):
                buf.copy_(value)

    # ------------------------------------------------------------------ data-parallel sync
    @property
    def _syncing(self) -> bool:
        return hasattr(self, '_new_count')

    @torch.no_grad()
    def enable_sync(self) -> None:
        """
        Keep what :meth:`update` adds from now on, for :meth:`merge_synced_` (module doc).

        Allocates the bookkeeping buffers (not saved in the state dict, not used by forward).
        """
        if self._syncing:
            return
        dev, shape = self.mean.device, self.mean.shape
        for name in ('_new_count', '_base_count'):
            self.register_buffer(name, torch.zeros(1, dtype=torch.float64, device=dev),
                                 persistent=False)
        for name in ('_new_mean', '_new_m2', '_base_mean', '_base_m2'):
            self.register_buffer(name, torch.zeros(shape, dtype=torch.float64, device=dev),
                                 persistent=False)
        self._rebase()

    def _rebase(self) -> None:
        """Take the current statistics as the last synchronized ones; forget the additions."""
        self._base_count.copy_(self.count)
        self._base_mean.copy_(self.mean)
        self._base_m2.copy_(self.var.double() * self.count)
        for buf in (self._new_count, self._new_mean, self._new_m2):
            buf.zero_()

    def pending_moments(self) -> torch.Tensor:
        """
        Return this process's additions since the last sync as one float64 vector.

        Layout ``[count, mean (dim values), M2 (dim values)]``, dim = the feature count.
        """
        if not self._syncing:
            raise RuntimeError('EmpiricalNormalizer.pending_moments: call enable_sync() first')
        return torch.cat([self._new_count, self._new_mean.reshape(-1),
                          self._new_m2.reshape(-1)])

    @torch.no_grad()
    def merge_synced_(self, gathered: torch.Tensor) -> None:
        """
        Set the statistics to the last synchronized ones merged with every process's additions.

        ``gathered`` ``[world_size, 1 + 2 * dim]``: :meth:`pending_moments` of every process, in
        rank order (the same on every process, so every process computes the same result).
        The result becomes the new synchronized base.
        """
        if not self._syncing:
            raise RuntimeError('EmpiricalNormalizer.merge_synced_: call enable_sync() first')
        dim = self._base_mean.numel()
        gathered = gathered.to(torch.float64).reshape(-1, 1 + 2 * dim)
        count, mean, m2 = self._base_count, self._base_mean.reshape(-1), self._base_m2.reshape(-1)
        for row in gathered:
            count, mean, m2 = merge_moments(count, mean, m2, row[:1], row[1:1 + dim],
                                            row[1 + dim:])
        var = torch.where(count > 0, m2 / count.clamp(min=1.0), self.var.reshape(-1).double())
        self.mean.copy_(mean.reshape(self.mean.shape))
        self.var.copy_(var.reshape(self.var.shape))
        self.std.copy_(self.var.sqrt())
        self.count.copy_(count)
        self._rebase()

    @torch.no_grad()
    def symmetrize_(self, perm: torch.Tensor, sign: torch.Tensor) -> None:
        """
        Make the statistics those of the samples seen so far together with their mirrors.

        The mirror is ``x -> sign * x[perm]`` (a signed permutation that is its own inverse):
        the mean becomes ``(m + sign * m[perm]) / 2`` and the variance the mixture's,
        ``(v + v[perm]) / 2 + ((m - sign * m[perm]) / 2)^2``. Then normalizing commutes with
        mirroring; statistics gathered without mirrors (a resumed run) become symmetric at once.
        """
        mirrored = self.mean[..., perm] * sign
        half_gap = (self.mean - mirrored) / 2.0
        self.var.copy_((self.var + self.var[..., perm]) / 2.0 + half_gap.square())
        self.mean.copy_((self.mean + mirrored) / 2.0)
        self.std.copy_(self.var.sqrt())
        if self._syncing:
            self._rebase()

    def _load_from_state_dict(self, state_dict: Dict[str, Any], prefix: str,
                              *args: Any) -> None:
        # checkpoints written before the count became shape [1] hold a 0-dim count
        key = prefix + 'count'
        if key in state_dict and state_dict[key].dim() == 0:
            state_dict[key] = state_dict[key].reshape(1)
        super()._load_from_state_dict(state_dict, prefix, *args)
        if self._syncing:  # loaded statistics (a resume) are the synchronized base
            with torch.no_grad():
                self._rebase()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return normalized ``x`` (no statistics update)."""
        y = (x - self.mean) / (self.std + self.eps)
        if self.clip is not None:
            y = y.clamp(-self.clip, self.clip)
        return y

    def extra_repr(self) -> str:
        """Describe the settings."""
        return f'shape={tuple(self.mean.shape)}, eps={self.eps}, clip={self.clip}'
