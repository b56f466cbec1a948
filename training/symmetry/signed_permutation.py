"""A signed permutation of vector components: the form of every mirror map."""

from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import numpy as np
import torch

Array = Union[np.ndarray, torch.Tensor]


@dataclass(frozen=True)
class SignedPermutation:
    """
    The map ``y = sign * x[..., perm]`` on the last axis: ``y[i] = sign[i] * x[perm[i]]``.

    ``perm`` is a permutation of ``range(n)``, ``sign`` holds +1 or -1 per output component.
    """

    perm: Tuple[int, ...]
    """Source component of each output component."""
    sign: Tuple[float, ...]
    """+1 or -1 per output component."""

    def __post_init__(self) -> None:
        """Check that ``perm`` is a permutation and ``sign`` holds +/-1 of the same length."""
        perm = tuple(int(i) for i in self.perm)
        sign = tuple(float(s) for s in self.sign)
        if sorted(perm) != list(range(len(perm))):
            raise ValueError(f'SignedPermutation: perm {perm} is not a permutation of '
                             f'0..{len(perm) - 1}')
        if len(sign) != len(perm) or any(s not in (1.0, -1.0) for s in sign):
            raise ValueError(f'SignedPermutation: sign must hold +1/-1 for each of the '
                             f'{len(perm)} components, got {sign}')
        object.__setattr__(self, 'perm', perm)
        object.__setattr__(self, 'sign', sign)

    @property
    def size(self) -> int:
        """Return the number of components."""
        return len(self.perm)

    @staticmethod
    def identity(n: int) -> 'SignedPermutation':
        """Return the identity on ``n`` components."""
        return SignedPermutation(tuple(range(n)), (1.0,) * n)

    @staticmethod
    def signs(sign: Sequence[float]) -> 'SignedPermutation':
        """Return the map that only changes the sign of some components (no permutation)."""
        return SignedPermutation(tuple(range(len(sign))), tuple(sign))

    @staticmethod
    def concat(blocks: Sequence['SignedPermutation']) -> 'SignedPermutation':
        """Return the block-diagonal map acting on the concatenation of the blocks' vectors."""
        perm, sign, offset = [], [], 0
        for block in blocks:
            perm += [offset + i for i in block.perm]
            sign += list(block.sign)
            offset += block.size
        return SignedPermutation(tuple(perm), tuple(sign))

    def then(self, other: 'SignedPermutation') -> 'SignedPermutation':
        """Return the map ``x -> other(self(x))``."""
        if other.size != self.size:
            raise ValueError(f'SignedPermutation.then: sizes {self.size} and {other.size}')
        perm = tuple(self.perm[j] for j in other.perm)
        sign = tuple(other.sign[i] * self.sign[other.perm[i]] for i in range(self.size))
        return SignedPermutation(perm, sign)

    def is_involution(self) -> bool:
        """Return whether applying the map twice gives the identity (a mirror must)."""
        return self.then(self) == SignedPermutation.identity(self.size)

    def apply(self, x: Array) -> Array:
        """Return ``sign * x[..., perm]`` for a numpy array or a torch tensor ``[..., n]``."""
        if x.shape[-1] != self.size:
            raise ValueError(f'SignedPermutation.apply: last axis {x.shape[-1]}, expected '
                             f'{self.size}')
        if isinstance(x, torch.Tensor):
            perm, sign = self.tensors(x.device, x.dtype)
            return x.index_select(-1, perm) * sign
        return np.asarray(x)[..., list(self.perm)] * np.asarray(self.sign, dtype=np.float64)

    def tensors(self, device: Union[str, torch.device] = 'cpu',
                dtype: torch.dtype = torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``(perm [n] long, sign [n])`` on ``device``, for graph-friendly callers."""
        return (torch.tensor(self.perm, dtype=torch.long, device=device),
                torch.tensor(self.sign, dtype=dtype, device=device))
