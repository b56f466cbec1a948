"""
Export a trained actor, with its observation normalizer baked in, to ONNX + policy contract.

The exported graph computes ``actions = actor(normalizer(obs))``: the deterministic action (the
Gaussian mean), with the running-statistics normalization inside the graph so that deployment
never has to re-implement it (a known failure mode when the normalizer is left out).  Input
``obs`` ``[batch, obs_dim]`` float32 with a dynamic batch, output ``actions``
``[batch, action_dim]``, ONNX opset 17.

The contract (format 2) goes into the ONNX file's metadata (key
``humanoid_rl_ros.core.contract.ONNX_METADATA_KEY``) and, as its readable copy, into
``<name>.yaml`` beside it, with its ``onnx`` fields pointing at ``<name>.onnx``.  Before it is
written, :func:`training.export_facts.complete_contract` fills the facts the contract leaves
unknown from the robot files, the MuJoCo model the code builds of them, and the training
config recorded in the provenance; what none of them records stays ``null``.

Command line (tyro)::

    python -m training.export upgrade models/humanoid_walk.yaml   # format 1 -> 2, graph untouched
    python -m training.export extract models/humanoid_walk.onnx   # YAML copy from the ONNX
    # a training snapshot as the shipped policy (graph copied, contract renamed)
    python -m training.export copy runs/<run>/snapshots/<snapshot>.yaml models/humanoid_walk.onnx
    # the action delay measured by the robustness suite, into the contract (graph untouched)
    python -m training.export record-tolerance models/humanoid_walk.yaml \
        benchmarks/robustness/robustness_report.json
"""

import copy
import dataclasses
import datetime
import json
import os
from pathlib import Path
import shutil
import sys
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union
import warnings

from humanoid_rl_ros.core.contract import (contract_difference, contract_from_dict,
                                           contract_text, contract_to_dict,
                                           embedded_contract_document, ONNX_METADATA_KEY,
                                           PolicyContract, read_contract, write_contract,
                                           YAML_HEADER)
from humanoid_rl_ros.core.provenance import git_commit
import numpy as np
import torch
from torch import nn

from .export_facts import complete_contract
from .export_tolerance import (delay_tolerance_from_report, fingerprint_difference,
                               FINGERPRINT_KEY, graph_sha256, report_policy_graph_sha256,
                               ReportMismatch)
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
    final = complete_contract(dataclasses.replace(
        contract, onnx_file=onnx_path.name, onnx_input_name=INPUT_NAME,
        onnx_output_name=OUTPUT_NAME, provenance=merged))
    write_policy_contract(final, onnx_path, contract_path)
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


# ----------------------------------------------------------------------------- the contract

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The source checkout (for the commit recorded by :func:`upgrade_policy`)."""


def embed_contract(contract: PolicyContract, onnx_path: Union[str, Path]) -> None:
    """
    Write ``contract`` into the ONNX file's metadata; the graph and weights are untouched.

    The value of key ``ONNX_METADATA_KEY`` is :func:`contract_text` (the YAML copy's body);
    other metadata entries are kept.  The file is replaced atomically.
    """
    import onnx

    onnx_path = Path(onnx_path)
    model = onnx.load(str(onnx_path))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != ONNX_METADATA_KEY]
    del model.metadata_props[:]
    for key, value in kept + [(ONNX_METADATA_KEY, contract_text(contract))]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    tmp = onnx_path.with_name(onnx_path.name + '.tmp')
    onnx.save(model, str(tmp))
    os.replace(tmp, onnx_path)


def write_policy_contract(contract: PolicyContract, onnx_path: Union[str, Path],
                          yaml_path: Union[str, Path]) -> None:
    """Write ``contract`` into the ONNX metadata and as the YAML copy (equal texts)."""
    embed_contract(contract, onnx_path)
    write_contract(contract, yaml_path)


def upgrade_policy(contract_path: Union[str, Path]) -> PolicyContract:
    """
    Rewrite a format-1 policy (``<name>.yaml`` + its ONNX) as format 2; return the contract.

    The format-1 contract plus its provenance (the recorded training config) are completed by
    :func:`complete_contract`; the result is written into the ONNX metadata and the YAML copy.
    The graph and weights are not touched.  The provenance gains ``contract_upgrade``: the
    format upgraded from, when, and the commit of the code that derived the new facts.  A
    format-2 policy is left as it is (after checking that its two copies agree).
    """
    contract_path = Path(contract_path)
    contract = read_contract(contract_path)
    onnx_path = contract.onnx_path(contract_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f'{contract_path} names {onnx_path}, which does not exist')
    if contract.format_version >= 2 and embedded_contract_document(onnx_path) is not None:
        return contract
    provenance = dict(contract.provenance)
    provenance['contract_upgrade'] = {
        'from_format_version': int(contract.format_version),
        'upgraded_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        'code_commit': git_commit(REPO_ROOT),
        'sources': ('contract format 1 fields; frames, clock, last action and PD law as fixed '
                    'by the code of every format-1 export; base link, joint limits, armature '
                    'and physics from the robot files and build_mujoco_model at code_commit; '
                    'delay, noise, randomization and command sampling from provenance.config; '
                    'null where none records the value'),
    }
    upgraded = complete_contract(dataclasses.replace(contract, provenance=provenance))
    write_policy_contract(upgraded, onnx_path, contract_path)
    return read_contract(contract_path)


def record_delay_tolerance(contract_path: Union[str, Path], report_path: Union[str, Path],
                           repo_root: Union[str, Path] = REPO_ROOT,
                           note: Optional[Callable[[str], None]] = print) -> PolicyContract:
    """
    Write the action delay a robustness report measured into a policy's contract; return it.

    ``report_path`` is a ``python -m training.robustness`` report (JSON) of this very policy:
    refused (:class:`training.export_tolerance.ReportMismatch`) where the graph it measured
    (recorded in the report, or else that of the policy it names at its commit, read from the
    git history of ``repo_root``) is not this ONNX's graph, where its robot differs, or where
    the contract fields the graph was run with differ from this contract's (the report's
    ``policy_contract_fingerprint``: gains, limits, pose, action and observation scales, timing,
    ...). A report without that fingerprint (older than it) is matched by its graph alone, and
    ``note`` is told so. The contract gains ``training.action_delay_tolerance`` (per place of
    the PD law) and ``training.tolerated_action_delay_s`` (the delay tolerated wherever the PD
    law runs); both copies are rewritten, the graph and weights are not.
    """
    contract_path = Path(contract_path)
    contract = read_contract(contract_path)
    onnx_path = contract.onnx_path(contract_path)
    yaml_path = (contract_path.with_suffix('.yaml') if contract_path.suffix == '.onnx'
                 else contract_path)
    if contract.format_version < 2 or embedded_contract_document(onnx_path) is None:
        raise ValueError(f'{contract_path} is contract format {contract.format_version} without '
                         'one in its ONNX: run "python -m training.export upgrade" on it first')
    report_path = Path(report_path)
    report = json.loads(report_path.read_text())
    mine = graph_sha256(onnx_path)
    measured = report_policy_graph_sha256(report, repo_root)
    if measured != mine:
        raise ReportMismatch(
            f'{report_path} measured {report.get("policy")} at commit {report.get("commit")}, '
            f'graph sha256 {measured}; {onnx_path} has graph sha256 {mine}: another policy. '
            'Run "python -m training.robustness" on this policy')
    if report.get('robot') != contract.robot:
        raise ReportMismatch(f'{report_path} ran robot {report.get("robot")!r}, the contract '
                             f'is for {contract.robot!r}')
    if report.get(FINGERPRINT_KEY) is None:
        if note is not None:
            note(f'{report_path} records no {FINGERPRINT_KEY} (a report older than it): the '
                 'policy is matched by its graph alone; its gains, limits, pose, scales and '
                 'timing are not compared with this contract')
    else:
        changed = fingerprint_difference(report[FINGERPRINT_KEY], contract)
        if changed:
            raise ReportMismatch(
                f'{report_path} measured this graph under a contract that differs from '
                f'{yaml_path} in {", ".join(changed)}, on which the measured behaviour '
                'depends. Run "python -m training.robustness" on this policy')
    root = Path(repo_root).resolve()
    absolute = report_path.resolve()
    name = (absolute.relative_to(root) if absolute.is_relative_to(root) else absolute)
    tolerance = delay_tolerance_from_report(report, mine, name.as_posix())
    training = dataclasses.replace(contract.training, action_delay_tolerance=tolerance,
                                   tolerated_action_delay_s=tolerance.bound_s)
    write_policy_contract(dataclasses.replace(contract, training=training), onnx_path,
                          yaml_path)
    if graph_sha256(onnx_path) != mine:  # embed_contract rewrites the metadata only
        raise RuntimeError(f'the graph of {onnx_path} changed while writing its contract')
    return read_contract(yaml_path)


def copy_policy(contract_path: Union[str, Path], out_onnx: Union[str, Path]) -> PolicyContract:
    """
    Copy a policy (its ONNX and contract) to ``out_onnx`` under that file's name; return it.

    The way a training snapshot becomes a shipped policy (``models/<name>.onnx``): the graph
    and weights are copied byte for byte, the contract's ``onnx.file`` names the new file, and
    the contract is written into the copy's metadata and as its YAML copy beside it. The
    source is left as it is. Refused where the target is the source itself.
    """
    contract_path = Path(contract_path)
    contract = read_contract(contract_path)
    source = contract.onnx_path(contract_path)
    out_onnx = Path(out_onnx)
    if out_onnx.suffix != '.onnx':
        raise ValueError(f'{out_onnx}: the copy must be an .onnx file')
    if not source.is_file():
        raise FileNotFoundError(f'{contract_path} names {source}, which does not exist')
    out_yaml = out_onnx.with_suffix('.yaml')
    if out_onnx.resolve() == source or out_yaml.resolve() == contract_path.resolve():
        raise ValueError(f'{out_onnx} is the policy being copied (or its contract)')
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_onnx.with_name(out_onnx.name + '.tmp')
    shutil.copyfile(source, tmp)
    os.replace(tmp, out_onnx)
    write_policy_contract(dataclasses.replace(contract, onnx_file=out_onnx.name), out_onnx,
                          out_yaml)
    if graph_sha256(out_onnx) != graph_sha256(source):
        out_onnx.unlink()
        out_yaml.unlink()
        raise RuntimeError(f'the graph of the copy differs from that of {source}: copy removed')
    return read_contract(out_yaml)


def extract_contract(onnx_path: Union[str, Path],
                     yaml_path: Optional[Union[str, Path]] = None) -> Path:
    """
    Write the contract embedded in an ONNX file as its YAML copy; return the YAML's path.

    ``yaml_path`` defaults to the ONNX path with ``.yaml``; an existing file is replaced.
    """
    onnx_path = Path(onnx_path)
    document = embedded_contract_document(onnx_path)
    if document is None:
        raise ValueError(f'{onnx_path} carries no embedded contract ({ONNX_METADATA_KEY})')
    yaml_path = Path(yaml_path) if yaml_path is not None else onnx_path.with_suffix('.yaml')
    contract = contract_from_dict(document)
    yaml_path.write_text(YAML_HEADER + contract_text(contract))
    assert contract_difference(read_contract(onnx_path), contract) is None
    return yaml_path


@dataclasses.dataclass
class UpgradeArgs:
    """Rewrite a format-1 policy as format 2 (ONNX metadata + YAML copy; graph untouched)."""

    contract: Path
    """The policy's contract YAML (its ONNX file is the one the contract names)."""


@dataclasses.dataclass
class RecordToleranceArgs:
    """Write the action delay a robustness report measured into the policy's contract."""

    contract: Path
    """The policy's contract YAML (its ONNX file is the one the contract names)."""
    report: Path
    """The robustness report of this policy (``robustness_report.json``)."""


@dataclasses.dataclass
class CopyArgs:
    """Copy a policy under a new name (a snapshot into models/; graph untouched)."""

    contract: Path
    """The policy's contract YAML (its ONNX file is the one the contract names)."""
    out: Path
    """The copy's ONNX file (``models/<name>.onnx``); its YAML copy is written beside it."""


@dataclasses.dataclass
class ExtractArgs:
    """Write the contract embedded in an ONNX file as its YAML copy."""

    onnx: Path
    """The policy's ONNX file."""
    out: Optional[Path] = None
    """Where to write the YAML (default: beside the ONNX, same name)."""


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry point: ``upgrade``, ``extract``, ``copy`` or ``record-tolerance``."""
    import tyro

    args = tyro.extras.subcommand_cli_from_dict(
        {'upgrade': UpgradeArgs, 'extract': ExtractArgs,
         'copy': CopyArgs, 'record-tolerance': RecordToleranceArgs}, args=argv,
        prog='python -m training.export', config=(tyro.conf.PositionalRequiredArgs,))
    if isinstance(args, RecordToleranceArgs):
        training = record_delay_tolerance(args.contract, args.report).training
        print(f'{args.contract}: training.tolerated_action_delay_s = '
              f'{training.tolerated_action_delay_s} (wherever the PD law runs)')
        for pd_in_drive in (False, True):
            print(f'  {training.delay_tolerance_note(pd_in_drive)}')
    elif isinstance(args, UpgradeArgs):
        contract = upgrade_policy(args.contract)
        unknown = contract.unknown_fields()
        print(f'{args.contract}: contract format {contract.format_version}, embedded in '
              f'{contract.onnx_path(args.contract)}; unknown: {", ".join(unknown) or "none"}')
    elif isinstance(args, CopyArgs):
        contract = copy_policy(args.contract, args.out)
        print(f'copied {args.contract} to {args.out} and '
              f'{args.out.with_suffix(".yaml")} (onnx.file: {contract.onnx_file})')
    else:
        path = extract_contract(args.onnx, args.out)
        print(f'wrote {path} from the contract embedded in {args.onnx}')


if __name__ == '__main__':
    main(sys.argv[1:])
