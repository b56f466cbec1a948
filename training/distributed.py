"""
Data-parallel PPO over ``torch.distributed``: one process per GPU, the way rsl_rl does it.

``torchrun --nproc-per-node N -m training.train ...`` starts N processes and sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each one's environment;
:func:`init_distributed` reads them and joins the process group (NCCL on CUDA, gloo on the
CPU).  Without them (plain ``python -m training.train``) nothing changes: one process, no
process group.  In a group of N processes:

- process ``r`` runs on ``cuda:LOCAL_RANK`` (:func:`rank_device`), seeds its random numbers
  with ``seed + r`` (:func:`rank_seed`) and simulates its own ``num_envs`` environments, so a
  run collects N x num_envs x num_steps_per_env transitions per iteration;
- the learner's parameters start as rank 0's (:func:`broadcast_module_`); every minibatch's
  gradients are averaged over the processes with one all-reduce, which also averages the
  minibatch statistics: the KL that the adaptive learning rate reads is the mean over all
  processes, so every process takes the same learning rate and the same Adam step, and the
  parameters stay identical without further communication (:class:`training.ppo.PPO`).  The
  all-reduce is never inside a CUDA graph: with ``runner.graph_update`` each minibatch step
  replays two graphs (loss and backward; rate, clip and Adam) with the all-reduce between them,
  where one process replays the whole update as one graph; the env step graph, the fused
  collection step and ``torch.compile`` work per process as with one GPU;
- advantages are normalized with the mean and std over all processes' rollouts;
- the empirical observation normalizers are merged once per iteration, after the rollout
  (:func:`sync_normalizers_`): during its rollout each process adds its own samples, then
  every process gets the statistics of all samples of all processes (count, mean and M2
  combined with the pairwise formula of Chan et al.);
- rank 0 alone prints, writes TensorBoard files, checkpoints, history and exports; the
  time-budget decision and the wall time are rank 0's; episode returns and lengths and the
  env-steps/s figures count all processes.  Resuming loads the checkpoint on every process.
"""

from dataclasses import dataclass
import datetime
import os
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn
import torch.distributed as dist

ENV_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK')
"""The environment variables (set by torchrun) that place a process in the group."""


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the group (one process: rank 0 of 1)."""

    rank: int = 0
    """Global rank of this process, 0 .. world_size - 1."""
    world_size: int = 1
    """Number of processes (GPUs) training together."""
    local_rank: int = 0
    """Rank of this process on its machine: the index of its GPU."""

    def __post_init__(self) -> None:
        """Validate the fields."""
        if self.world_size < 1:
            raise ValueError(f'WORLD_SIZE must be >= 1, got {self.world_size}')
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f'RANK must be in [0, WORLD_SIZE={self.world_size}), got {self.rank}')
        if self.local_rank < 0:
            raise ValueError(f'LOCAL_RANK must be >= 0, got {self.local_rank}')

    @property
    def enabled(self) -> bool:
        """Return True when more than one process trains (collectives are needed)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Return True on rank 0, the process that logs, checkpoints and exports."""
        return self.rank == 0


def context_from_env(environ: Optional[Mapping[str, str]] = None) -> DistContext:
    """
    Return the :class:`DistContext` that ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` describe.

    None of them set: a single process.  ``LOCAL_RANK`` defaults to ``RANK``.  A partial or
    malformed set is an error naming the variable.
    """
    environ = os.environ if environ is None else environ
    present = [name for name in ENV_VARS if environ.get(name, '') != '']
    if not present:
        return DistContext()
    for name in ('RANK', 'WORLD_SIZE'):
        if name not in present:
            raise ValueError(f'distributed training: {name} is not set but '
                             f'{", ".join(present)} is; start the processes with torchrun')
    values = {}
    for name in present:
        try:
            values[name] = int(environ[name])
        except ValueError:
            raise ValueError(f'distributed training: {name}={environ[name]!r} is not an '
                             'integer') from None
    return DistContext(rank=values['RANK'], world_size=values['WORLD_SIZE'],
                       local_rank=values.get('LOCAL_RANK', values['RANK']))


def rank_device(device: Union[str, torch.device], ctx: DistContext) -> torch.device:
    """
    Return the device of this process: ``cuda:LOCAL_RANK`` for a CUDA ``device``.

    One process keeps ``device`` as given.  In a group any CUDA device (``cuda``, ``cuda:0``)
    means "this process's GPU"; an error says so when the machine has fewer GPUs than
    ``LOCAL_RANK + 1``.  The CPU stays the CPU.
    """
    dev = torch.device(device)
    if not ctx.enabled or dev.type != 'cuda':
        return dev
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if ctx.local_rank >= available:
        raise RuntimeError(
            f'distributed training: LOCAL_RANK {ctx.local_rank} needs GPU cuda:{ctx.local_rank} '
            f'but this machine has {available} GPU(s); start at most {available} processes '
            'per machine (torchrun --nproc-per-node)')
    return torch.device('cuda', ctx.local_rank)


def process_group_backend(device: Union[str, torch.device]) -> str:
    """Return the collective backend for ``device``: ``'nccl'`` on CUDA, ``'gloo'`` otherwise."""
    return 'nccl' if torch.device(device).type == 'cuda' else 'gloo'


def rank_seed(seed: int, ctx: DistContext) -> int:
    """Return this process's seed, ``seed + rank``: each process simulates different envs."""
    return int(seed) + ctx.rank


def init_distributed(device: Union[str, torch.device],
                     environ: Optional[Mapping[str, str]] = None,
                     timeout_s: float = 1800.0) -> Tuple[DistContext, torch.device, bool]:
    """
    Join the process group that torchrun's variables describe; return (ctx, device, joined).

    ``device`` is the configured device; the returned one is this process's
    (:func:`rank_device`; CUDA processes also make it their current device).  ``joined`` is
    True when this call initialized the process group (the caller destroys it with
    :func:`shutdown_distributed`); a group that exists already is used as it is.  A collective
    that waits longer than ``timeout_s`` (a process died or hangs) fails instead of blocking.
    """
    ctx = context_from_env(environ)
    dev = rank_device(device, ctx)
    if not ctx.enabled:
        return ctx, dev, False
    if dev.type == 'cuda':
        torch.cuda.set_device(dev)
    if dist.is_initialized():
        if dist.get_world_size() != ctx.world_size or dist.get_rank() != ctx.rank:
            raise RuntimeError(
                f'distributed training: the process group has rank {dist.get_rank()} of '
                f'{dist.get_world_size()}, the environment says {ctx.rank} of {ctx.world_size}')
        return ctx, dev, False
    dist.init_process_group(process_group_backend(dev), rank=ctx.rank,
                            world_size=ctx.world_size,
                            timeout=datetime.timedelta(seconds=timeout_s))
    return ctx, dev, True


def shutdown_distributed() -> None:
    """Leave and destroy the process group, if there is one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def require_process_group(ctx: DistContext, who: str) -> None:
    """Raise a clear error when ``ctx`` asks for a group that was not initialized."""
    if ctx.enabled and not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(f'{who}: world_size {ctx.world_size} needs an initialized process '
                           'group; call training.distributed.init_distributed first')
    if ctx.enabled and dist.get_world_size() != ctx.world_size:
        raise RuntimeError(f'{who}: world_size {ctx.world_size} but the process group has '
                           f'{dist.get_world_size()} processes')


# ---------------------------------------------------------------------- collectives
@torch.no_grad()
def broadcast_module_(module: nn.Module, src: int = 0) -> None:
    """Overwrite every parameter and buffer of ``module`` with rank ``src``'s values."""
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=src)


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Replace ``tensor`` by its sum over the processes (in place); return it."""
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_min_(tensor: torch.Tensor) -> torch.Tensor:
    """Replace ``tensor`` in place by its element-wise minimum over all processes; return it."""
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor


def all_gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Return ``[world_size, *tensor.shape]``: every process's ``tensor`` in rank order."""
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.stack(parts)


def broadcast_values(values: Sequence[float], device: Union[str, torch.device],
                     src: int = 0) -> List[float]:
    """Return rank ``src``'s host ``values`` on every process (one small broadcast)."""
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.broadcast(tensor, src=src)
    return tensor.tolist()


@torch.no_grad()
def sync_normalizers_(*normalizers: nn.Module) -> None:
    """
    Merge every process's new samples into each normalizer, with one all-gather for all.

    The normalizers must have called ``enable_sync()`` (see
    :class:`training.ppo.EmpiricalNormalizer`); afterwards every process holds the same
    statistics, those of all samples seen by all processes.
    """
    if not normalizers:
        return
    parts = [norm.pending_moments() for norm in normalizers]
    gathered = all_gather_rows(torch.cat(parts))
    start = 0
    for norm, part in zip(normalizers, parts):
        norm.merge_synced_(gathered[:, start:start + part.numel()])
        start += part.numel()


def tensors_in_sync(tensors: Sequence[torch.Tensor]) -> bool:
    """
    Return True when every process holds bitwise the same ``tensors`` as rank 0.

    A check for tests and debugging (one broadcast per tensor and a host read).
    """
    same = torch.ones((), dtype=torch.float64, device=tensors[0].device if tensors else 'cpu')
    for tensor in tensors:
        theirs = tensor.detach().clone()
        dist.broadcast(theirs, src=0)
        same = same * torch.equal(theirs, tensor.detach())
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    return bool(same)
