"""
The policy contract: the one document that joins training and deployment.

The exporter writes it twice, with equal content: into the ONNX file's metadata (key
:data:`ONNX_METADATA_KEY`, the YAML text) and as ``models/<policy>.yaml`` beside
``models/<policy>.onnx`` (the readable copy). :func:`read_contract` takes either path and
refuses a YAML and an ONNX that disagree. The policy node, the sim-to-sim evaluator and the
tests read it through :func:`read_contract` or
:class:`humanoid_rl_ros.core.policy_runtime.PolicyRuntime`.

Format 2 states everything a deployer needs who reads only the contract, the ONNX and the
robot files (``docs/DEPLOYING.md`` explains each field):

* format version, robot name, base link (= the odometry child frame);
* frames: base velocities in the base link frame, linear velocity of the base link origin,
  commands in the base link frame, gravity along world -z;
* joints in policy order: default pose, action scale, PD gains, effort, position and velocity
  limits, rotor inertia (armature);
* timing: physics (PD) period, decimation, policy period, the target held between policy steps;
* control: the PD law at the physics rate (the trained mode), and what drives that run their
  own PD (position mode) must do;
* the observation: terms in order with size and scale, clip, history (``history_length``
  frames, oldest first, started by repeating the first frame), the gait clock (sin before
  cos, period, start, runs at zero command), the last action (clipped, initially zero, the
  newest policy output);
* the action: clip and the joint-target formula;
* the command ranges;
* the training conditions: action delay, observation noise (uniform, half-widths), the
  estimator-like error on an observed base velocity (bias, scale error, lag), randomization
  (friction, masses, gains, joint dynamics, latency, sensor biases, pushes), command sampling,
  the terrain, and the action delay the policy was measured to tolerate with the PD law in
  the node and in the drive (the delays tried, falls, and the robustness report, suite, date,
  commit and graph the figures come from);
* the physics the policy was trained in: simulator, integrator, solver, timestep, gravity,
  self collision, friction (MuJoCo combines a pair with max);
* the ONNX input and output names and shapes;
* provenance (commit, seed, iterations, backend, final metrics, training config).

Facts the code fixes (frames, clock order, last action, PD law, ...) are written in every
format-2 file and checked on reading: a file that states anything else is refused, because
this code cannot run it. Facts a training run did not record are ``null``: unknown, never
guessed.

Format 1 files (no frames, limits, training conditions or physics) still load: the facts
fixed by the format-1 code (the same frames, clock, last action and PD law) are implied, the
others are unknown (``None``). ``python -m training.export upgrade <policy>.yaml`` rewrites a
format-1 policy as format 2.

Reading validates every field. A problem raises :class:`ContractError` whose message starts
with the dotted path of the offending field, e.g. ``joints.kp_nm_per_rad: expected 21 values``.

The code is split by concept; this module is the public API and re-exports the rest:
:mod:`~humanoid_rl_ros.core.contract.facts` (format vocabulary and code facts),
:mod:`~humanoid_rl_ros.core.contract.schema` (the dataclasses),
:mod:`~humanoid_rl_ros.core.contract.fields` (typed field readers),
:mod:`~humanoid_rl_ros.core.contract.parse` (document to contract, validation),
:mod:`~humanoid_rl_ros.core.contract.training_section` (the training section, both ways),
:mod:`~humanoid_rl_ros.core.contract.delay_section` (its measured delay tolerance: types,
reading, writing),
:mod:`~humanoid_rl_ros.core.contract.document` (contract to document),
:mod:`~humanoid_rl_ros.core.contract.onnx_metadata` (the ONNX copy, comparing copies).
"""

from pathlib import Path
from typing import Union

from humanoid_rl_ros.core.contract.delay_section import (ActionDelayTolerance, DelaySource,
                                                         DelayTolerance, DelayTrial)
from humanoid_rl_ros.core.contract.document import contract_to_dict, plain_data
from humanoid_rl_ros.core.contract.facts import (ACTION_FORMULA, CODE_FACTS, ContractError,
                                                 DELAY_CRITERION, DELAY_PD_IN_DRIVE,
                                                 DELAY_PD_IN_NODE, DELAY_TOLERANCE_FACTS,
                                                 expected_term_size, FORMAT_VERSION,
                                                 GAIT_CLOCK_FACTS, HISTORY_FACTS, HISTORY_FORMULA,
                                                 history_layout, HISTORY_LAYOUT_NONE,
                                                 HISTORY_LAYOUT_STACKED, KNOWN_OBS_TERMS,
                                                 LIN_VEL_ERROR_FACTS, LIN_VEL_ERROR_FORMULA,
                                                 NOISE_FACTS, OBSERVATION_FORMULA, OFF,
                                                 ONNX_METADATA_KEY, PD_IN_DRIVE, PD_IN_NODE,
                                                 PD_LAW, PD_LOCATIONS, PHASE_FORMULA,
                                                 PHYSICS_FACTS, POSITION_MODE, PUSH_ANGULAR,
                                                 push_kind, PUSH_PLANAR, PUSH_SPATIAL,
                                                 RANDOMIZATION_FACTS)
from humanoid_rl_ros.core.contract.onnx_metadata import (contract_difference,
                                                         embedded_contract_document,
                                                         graph_sha256, mismatch_error,
                                                         onnx_metadata, parse_yaml)
from humanoid_rl_ros.core.contract.parse import contract_from_dict
from humanoid_rl_ros.core.contract.schema import (BaseLinVelError, CommandRanges, CommandSampling,
                                                  Latency, ObsTermSpec, PhysicsSpec,
                                                  placeholder_contract, PolicyContract,
                                                  Randomization, TerrainSpec, TrainingConditions)
import yaml

__all__ = [
    'ACTION_FORMULA', 'ActionDelayTolerance', 'BaseLinVelError', 'CODE_FACTS', 'CommandRanges',
    'CommandSampling', 'contract_difference', 'contract_from_dict', 'contract_text',
    'contract_to_dict', 'ContractError', 'DELAY_CRITERION', 'DELAY_PD_IN_DRIVE',
    'DELAY_PD_IN_NODE', 'DELAY_TOLERANCE_FACTS', 'DelaySource', 'DelayTolerance', 'DelayTrial',
    'embedded_contract_document', 'expected_term_size', 'FORMAT_VERSION',
    'GAIT_CLOCK_FACTS', 'graph_sha256', 'HISTORY_FACTS', 'HISTORY_FORMULA', 'HISTORY_LAYOUT_NONE',
    'HISTORY_LAYOUT_STACKED', 'history_layout', 'KNOWN_OBS_TERMS', 'Latency',
    'LIN_VEL_ERROR_FACTS', 'LIN_VEL_ERROR_FORMULA', 'NOISE_FACTS', 'OBSERVATION_FORMULA',
    'ObsTermSpec', 'OFF', 'ONNX_METADATA_KEY', 'onnx_metadata', 'PD_IN_DRIVE', 'PD_IN_NODE',
    'PD_LAW', 'PD_LOCATIONS', 'PHASE_FORMULA',
    'PHYSICS_FACTS', 'PhysicsSpec', 'placeholder_contract', 'plain_data', 'PolicyContract',
    'POSITION_MODE', 'PUSH_ANGULAR', 'push_kind', 'PUSH_PLANAR', 'PUSH_SPATIAL',
    'Randomization', 'RANDOMIZATION_FACTS', 'read_contract', 'TerrainSpec',
    'TrainingConditions', 'write_contract', 'YAML_HEADER',
]


def contract_text(contract: PolicyContract) -> str:
    """
    Return the contract's YAML text: the ONNX metadata value, and the YAML file's body.

    Validated first (the text always reads back as ``contract``).
    """
    document = contract_to_dict(contract)
    contract_from_dict(document)
    return yaml.safe_dump(document, sort_keys=False, width=100)


YAML_HEADER = ('# humanoid_rl_ros policy contract: the interface between training and '
               'deployment.\n'
               '# The readable copy of the contract inside the ONNX file beside it (metadata key\n'
               f'# {ONNX_METADATA_KEY}); the two must be equal. Written by training/export.py;\n'
               '# read by the policy node and the evaluator. Fields: docs/DEPLOYING.md.\n')
"""Comment lines at the top of every written YAML copy."""


def read_contract(path: Union[str, Path]) -> PolicyContract:
    """
    Read and validate the contract at ``path``; raise :class:`ContractError` on any problem.

    ``path`` is the YAML copy (``.yaml``/``.yml``) or the ONNX file (``.onnx``). Where both the
    YAML and the ONNX's embedded contract exist they must agree; a disagreement is refused with
    the first differing field. An ONNX without an embedded contract (an export older than
    format 2) is read through its ``.yaml`` sibling.
    """
    path = Path(path)
    if not path.is_file():
        raise ContractError('<file>', f'no policy contract at {path}')
    if path.suffix == '.onnx':
        embedded = embedded_contract_document(path)
        sibling = path.with_suffix('.yaml')
        if embedded is None:
            if sibling.is_file():
                return read_contract(sibling)
            raise ContractError('<file>', (
                f'{path} carries no policy contract (no {ONNX_METADATA_KEY!r} metadata) and '
                f'has no {sibling.name} beside it; re-export the policy, or run "python -m '
                'training.export upgrade <its contract .yaml>"'))
        contract = contract_from_dict(embedded)
        if sibling.is_file():
            difference = contract_difference(parse_yaml(sibling.read_text(), sibling), embedded)
            if difference:
                raise mismatch_error(sibling, path, difference)
        return contract
    document = parse_yaml(path.read_text(), path)
    contract = contract_from_dict(document)
    onnx_path = contract.onnx_path(path)
    if onnx_path.is_file():
        embedded = embedded_contract_document(onnx_path)
        if embedded is not None:
            difference = contract_difference(document, embedded)
            if difference:
                raise mismatch_error(path, onnx_path, difference)
    return contract


def write_contract(contract: PolicyContract, path: Union[str, Path]) -> Path:
    """
    Validate ``contract`` and write its YAML copy to ``path``; return the path.

    The ONNX metadata copy is written by ``training.export`` (the ``onnx`` package is a
    training dependency); the YAML is :data:`YAML_HEADER` plus :func:`contract_text`.
    """
    text = contract_text(contract)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(YAML_HEADER + text)
    return path
