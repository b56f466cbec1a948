"""
Writing a contract document: :class:`PolicyContract` to the plain data of the YAML file.

:func:`contract_to_dict` lays out the format-2 document (always the newest format) and fills
in the code facts of the sections it holds; :func:`plain_data` turns provenance values
(dataclasses, tuples, paths, numpy scalars) into YAML-safe builtins.
"""

import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from humanoid_rl_ros.core.contract.facts import (CODE_FACTS, DELAY_TOLERANCE_FACTS,
                                                 FORMAT_VERSION, GAIT_CLOCK_FACTS, HISTORY_FACTS,
                                                 LIN_VEL_ERROR_FACTS, NOISE_FACTS, PHYSICS_FACTS,
                                                 put_dotted, RANDOMIZATION_FACTS)
from humanoid_rl_ros.core.contract.schema import PhysicsSpec, PolicyContract
from humanoid_rl_ros.core.contract.training_section import training_to_dict


def _floats(values: Optional[Sequence[float]]) -> Optional[List[float]]:
    return None if values is None else [float(v) for v in values]


def _physics_to_dict(physics: Optional[PhysicsSpec]) -> Optional[Dict[str, Any]]:
    if physics is None:
        return None
    return {
        'simulator': physics.simulator,
        'timestep_s': float(physics.timestep_s),
        'integrator': physics.integrator,
        'solver': physics.solver,
        'cone': physics.cone,
        'iterations': int(physics.iterations),
        'ls_iterations': int(physics.ls_iterations),
        'gravity_m_s2': [float(v) for v in physics.gravity_m_s2],
        'self_collision': bool(physics.self_collision),
        'floor_friction': [float(v) for v in physics.floor_friction],
        'robot_geom_friction': _floats(physics.robot_geom_friction),
        'friction_combination': None,
    }


def contract_to_dict(contract: PolicyContract) -> Dict[str, Any]:
    """
    Return the plain-data document that :func:`write_contract` stores (always format 2).

    ``None`` placeholders in the layout below are the code facts, filled from the fact tables.
    """
    observation: Dict[str, Any] = {
        'terms': [{'name': t.name, 'size': t.size, 'scale': [float(s) for s in t.scale]}
                  for t in contract.obs_terms],
        'clip': float(contract.obs_clip),
        'formula': None,
        'history_length': int(contract.history_length),
        'history_layout': contract.history_layout,
    }
    if contract.history_length > 1:
        observation['history_formula'] = None
        observation['history_start'] = None
    if contract.gait_period_s is not None:
        period = float(contract.gait_period_s)
        observation['gait_clock'] = {
            'period_s': period, 'rate_hz': 1.0 / period, 'features': None,
            'phase_formula': None, 'runs_at_zero_command': None, 'start_phase': None,
            'trained_start_phase': None}
    observation['last_action'] = {'value': None, 'initial': None, 'when_delayed': None}
    document = {
        'format_version': FORMAT_VERSION,
        'robot': contract.robot,
        'frames': {
            'base_link': contract.base_link,
            'odometry_child_frame': contract.base_link,
            'base_velocity_frame': None,
            'base_lin_vel_point': None,
            'command_frame': None,
            'gravity_direction_world': None,
        },
        'joints': {
            'names': list(contract.joint_names),
            'default_pos_rad': [float(v) for v in contract.default_pos_rad],
            'action_scale_rad': [float(v) for v in contract.action_scale_rad],
            'kp_nm_per_rad': [float(v) for v in contract.kp_nm_per_rad],
            'kd_nms_per_rad': [float(v) for v in contract.kd_nms_per_rad],
            'effort_limit_nm': [float(v) for v in contract.effort_limit_nm],
            'position_min_rad': _floats(contract.position_min_rad),
            'position_max_rad': _floats(contract.position_max_rad),
            'velocity_limit_rad_s': _floats(contract.velocity_limit_rad_s),
            'armature_kg_m2': _floats(contract.armature_kg_m2),
        },
        'timing': {
            'physics_dt_s': float(contract.physics_dt_s),
            'decimation': int(contract.decimation),
            'policy_dt_s': float(contract.policy_dt_s),
            'target_hold': None,
        },
        'control': {
            'trained_mode': None,
            'pd_law': None,
            'pd_rate_hz': 1.0 / float(contract.physics_dt_s),
            'position_mode': None,
        },
        'observation': observation,
        'action': {'clip': float(contract.action_clip), 'formula': None},
        'commands': {
            'lin_vel_x_m_s': [float(v) for v in contract.commands.lin_vel_x_m_s],
            'lin_vel_y_m_s': [float(v) for v in contract.commands.lin_vel_y_m_s],
            'ang_vel_z_rad_s': [float(v) for v in contract.commands.ang_vel_z_rad_s],
        },
        'training': training_to_dict(contract.training),
        'physics': _physics_to_dict(contract.physics),
        'onnx': {
            'file': contract.onnx_file,
            'input': {'name': contract.onnx_input_name, 'shape': ['batch', contract.obs_dim]},
            'output': {'name': contract.onnx_output_name,
                       'shape': ['batch', contract.action_dim]},
        },
        'provenance': plain_data(dict(contract.provenance)),
    }
    facts = list(CODE_FACTS)
    if contract.history_length > 1:
        facts += HISTORY_FACTS
    if contract.gait_period_s is not None:
        facts += GAIT_CLOCK_FACTS
    if document['training']['observation_noise'] is not None:
        facts += NOISE_FACTS
    if document['training']['randomization'] is not None:
        facts += RANDOMIZATION_FACTS
    if 'base_lin_vel_error' in document['training']:
        facts += LIN_VEL_ERROR_FACTS
    if 'action_delay_tolerance' in document['training']:
        facts += DELAY_TOLERANCE_FACTS
    if document['physics'] is not None:
        facts += PHYSICS_FACTS
    for dotted, value in facts:
        put_dotted(document, dotted, list(value) if isinstance(value, list) else value)
    return document


def plain_data(value: Any) -> Any:
    """Convert dataclasses, mappings, tuples, paths and numpy scalars into YAML-safe builtins."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, 'item') and callable(value.item):
        return value.item()
    return value
