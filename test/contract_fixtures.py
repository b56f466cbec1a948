"""
Format-1 policies for the tests of reading and upgrading old contracts.

``format_1_document`` turns a contract into the document the format-1 writer wrote (no frames,
control, training, physics, joint limits, history, gait clock or last-action sections; the gait
period under ``observation.gait_period_s``). ``make_format_1_policy`` writes a random policy as a
format-1 export: the YAML in format 1 and an ONNX without an embedded contract.
"""

import dataclasses
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from humanoid_rl_ros.core.contract import contract_to_dict, PolicyContract, read_contract
import onnx
import yaml


def format_1_document(contract: PolicyContract) -> Dict[str, Any]:
    """Return ``contract`` as the format-1 writer wrote it."""
    doc = contract_to_dict(contract)
    doc['format_version'] = 1
    for key in ('frames', 'control', 'training', 'physics'):
        del doc[key]
    for key in ('position_min_rad', 'position_max_rad', 'velocity_limit_rad_s',
                'armature_kg_m2'):
        del doc['joints'][key]
    del doc['timing']['target_hold']
    del doc['action']['formula']
    observation = doc['observation']
    clock = observation.pop('gait_clock', None)
    if clock is not None:
        observation['gait_period_s'] = clock['period_s']
    for key in ('formula', 'history_length', 'history_layout', 'last_action'):
        del observation[key]
    return doc


def make_format_1_policy(folder: Path, name: str = 'old_policy',
                         provenance: Optional[Mapping[str, Any]] = None) -> Path:
    """
    Write ``<folder>/<name>.yaml`` (format 1) + ``.onnx`` (no embedded contract).

    The policy is the random Kestrel policy of ``policy_fixtures``; ``provenance`` replaces the
    contract's (e.g. to record a training config). Return the YAML path.
    """
    from policy_fixtures import make_random_policy
    folder = Path(folder)
    contract = read_contract(make_random_policy(folder, name=name))
    if provenance is not None:
        contract = dataclasses.replace(contract, provenance=dict(provenance))
    # what a format-1 export knew: no robot-derived facts either
    contract = dataclasses.replace(contract, base_link=None, velocity_limit_rad_s=None,
                                   armature_kg_m2=None, position_min_rad=None,
                                   position_max_rad=None)
    onnx_path = folder / f'{name}.onnx'
    model = onnx.load(str(onnx_path))
    del model.metadata_props[:]
    onnx.save(model, str(onnx_path))
    yaml_path = folder / f'{name}.yaml'
    yaml_path.write_text(yaml.safe_dump(format_1_document(contract), sort_keys=False))
    return yaml_path
