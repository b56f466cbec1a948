# Type stub of the two isaacgym.gymtorch functions the isaacgym backend calls (Isaac Gym
# Preview 4, python/isaacgym/gymtorch.py); the isaacgym-stubs package covers gymapi only.
from typing import Optional, Sequence

from isaacgym import gymapi
import torch

def wrap_tensor(gym_tensor: gymapi.Tensor, offsets: Optional[Sequence[int]] = ...,
                counts: Optional[Sequence[int]] = ...) -> torch.Tensor: ...

def unwrap_tensor(torch_tensor: torch.Tensor) -> gymapi.Tensor: ...
