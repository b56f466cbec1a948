"""
Export a trained actor, with its observation normalizer baked in, to ONNX + policy contract.

The exported graph computes ``actions = actor(normalizer(obs))``: the deterministic action (the
Gaussian mean), with the running-statistics normalization inside the graph so that deployment
never has to re-implement it (the missing-normalizer failure of Isaac Lab #3836).  Input ``obs``
``[batch, obs_dim]`` float32 with a dynamic batch, output ``actions`` ``[batch, action_dim]``,
ONNX opset 17.  The contract is written beside it as ``<name>.yaml`` with its ``onnx`` fields
pointing at ``<name>.onnx``.
"""

import copy
import dataclasses
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union
import warnings

from humanoid_rl_ros.core.contract import (contract_from_dict, contract_to_dict, PolicyContract,
                                           read_contract, write_contract)
import numpy as np
import torch
from torch import nn

from .ppo.actor_critic import build_mlp
from .ppo.normalizer import EmpiricalNormalizer

ONNX_OPSET = 17
"""ONNX opset of exported policies."""

INPUT_NAME = 'obs'
"""ONNX input tensor name, shape [batch, obs_dim]."""

OUTPUT_NAME = 'actions'
"""ONNX output tensor name, shape [batch, action_dim]."""


class NormalizedActor(nn.Module):
    """``actions = actor(normalizer(obs))`` on CPU in float32, for export."""

    def __init__(self, actor: nn.Module, normalizer: Optional[nn.Module] = None) -> None:
        """Deep-copy ``actor`` and ``normalizer`` (None: identity) to CPU, eval mode."""
        super().__init__()
        self.normalizer = (copy.deepcopy(normalizer) if normalizer is not None
                           else nn.Identity()).cpu().float().eval()
        self.actor = copy.deepcopy(actor).cpu().float().eval()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Return the deterministic actions for ``obs`` ``[batch, obs_dim]``."""
        return self.actor(self.normalizer(obs))


def _linear_dims(module: nn.Module) -> Tuple[Optional[int], Optional[int]]:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        return None, None
    return linears[0].in_features, linears[-1].out_features


def _onnx_export(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    kwargs = {'input_names': [INPUT_NAME], 'output_names': [OUTPUT_NAME],
              'opset_version': ONNX_OPSET}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            # The TorchScript exporter emits opset 17 directly and needs no onnxscript.
            torch.onnx.export(model, (example,), str(path), dynamo=False,
                              dynamic_axes={INPUT_NAME: {0: 'batch'}, OUTPUT_NAME: {0: 'batch'}},
                              **kwargs)
        except TypeError:  # pragma: no cover - a torch without the dynamo switch
            torch.onnx.export(model, (example,), str(path),
                              dynamic_axes={INPUT_NAME: {0: 'batch'}, OUTPUT_NAME: {0: 'batch'}},
                              **kwargs)


def export_policy(actor: nn.Module, normalizer: Optional[nn.Module],
                  contract: PolicyContract, out_dir: Union[str, Path], name: str,
                  provenance: Optional[Mapping[str, Any]] = None,
                  check_tolerance: float = 1e-4) -> Tuple[Path, Path]:
    """
    Write ``<out_dir>/<name>.onnx`` and its contract ``<out_dir>/<name>.yaml``.

    ``actor`` maps normalized observations ``[B, obs_dim]`` to action means ``[B, action_dim]``
    (e.g. ``ActorCritic.actor``); ``normalizer`` is the observation normalizer (None: none).
    ``contract`` supplies everything but the ONNX fields, which are filled here; ``provenance``
    entries are merged into the contract's.  The ONNX file is checked with ``onnx.checker``
    and, with onnxruntime, against torch on random observations (max abs difference must be
    below ``check_tolerance``).  Returns ``(onnx_path, contract_path)``.
    """
    import onnx
    import onnxruntime as ort

    if not name or '/' in name or name.endswith(('.onnx', '.yaml')):
        raise ValueError(f'export_policy: name must be a bare file stem, got {name!r}')
    obs_dim, action_dim = contract.obs_dim, contract.action_dim
    in_dim, out_dim = _linear_dims(actor)
    if in_dim is not None and in_dim != obs_dim:
        raise ValueError(f'export_policy: actor input size {in_dim} != contract obs_dim {obs_dim} '
                         f'(terms {list(contract.term_names())})')
    if out_dim is not None and out_dim != action_dim:
        raise ValueError(f'export_policy: actor output size {out_dim} != contract action_dim '
                         f'{action_dim} ({contract.num_joints} joints)')
    model = NormalizedActor(actor, normalizer)
    example = torch.zeros(1, obs_dim)
    with torch.no_grad():
        out = model(example)
    if tuple(out.shape) != (1, action_dim):
        raise ValueError(f'export_policy: the actor returns shape {tuple(out.shape)} for one '
                         f'observation, expected (1, {action_dim})')

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f'{name}.onnx'
    contract_path = out_dir / f'{name}.yaml'
    _onnx_export(model, example, onnx_path)
    onnx.checker.check_model(onnx.load(str(onnx_path)))

    session = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    gen = torch.Generator().manual_seed(0)
    probe = torch.randn(16, obs_dim, generator=gen) * 3.0
    with torch.no_grad():
        expected = model(probe).numpy()
    got = session.run([OUTPUT_NAME], {INPUT_NAME: probe.numpy().astype(np.float32)})[0]
    err = float(np.max(np.abs(got - expected)))
    if not err < check_tolerance:
        raise RuntimeError(f'export_policy: onnxruntime differs from torch by {err:.3g} '
                           f'(tolerance {check_tolerance}) for {onnx_path}')

    merged = dict(contract.provenance)
    merged.update(provenance or {})
    merged.setdefault('onnx_opset', ONNX_OPSET)
    final = dataclasses.replace(contract, onnx_file=onnx_path.name, onnx_input_name=INPUT_NAME,
                                onnx_output_name=OUTPUT_NAME, provenance=merged)
    write_contract(final, contract_path)
    return onnx_path, contract_path


def normalized_contract(contract: PolicyContract) -> PolicyContract:
    """Return ``contract`` as it reads back from YAML (tuples/lists and numbers normalized)."""
    return contract_from_dict(contract_to_dict(contract))


def export_random_policy(contract_template: Union[PolicyContract, str, Path],
                         out_dir: Union[str, Path], name: str, seed: int = 0,
                         hidden_dims: Sequence[int] = (64, 64),
                         action_std_rad: float = 0.1) -> Tuple[Path, Path]:
    """
    Export a randomly initialized (untrained) policy for a contract template.

    For tests of the deployment side before a trained policy exists.  The template is a
    :class:`PolicyContract` or a path to one; its ONNX fields are overwritten.  The normalizer
    gets random, seeded statistics so the baked-in normalization is exercised; the output layer
    is scaled so actions are about ``action_std_rad`` in magnitude.  Deterministic in ``seed``.
    """
    template = (contract_template if isinstance(contract_template, PolicyContract)
                else read_contract(contract_template))
    gen = torch.Generator().manual_seed(int(seed))
    actor = build_mlp(template.obs_dim, hidden_dims, template.action_dim, 'elu')
    with torch.no_grad():
        for p in actor.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) / max(p.shape[-1], 1) ** 0.5)
        actor[-1].weight.mul_(action_std_rad)
        actor[-1].bias.zero_()
    normalizer = EmpiricalNormalizer(template.obs_dim)
    normalizer.update(torch.randn(64, template.obs_dim, generator=gen) * 2.0 + 0.5)
    return export_policy(actor, normalizer, template, out_dir, name,
                         provenance={'kind': 'random_init', 'seed': int(seed)})
