"""
Reading a contract document: validate every field, build a :class:`PolicyContract`.

:func:`contract_from_dict` takes a parsed document (format 1 or 2).  A problem raises
:class:`ContractError` whose message starts with the field's dotted path.  Format 2 must state
every code fact of the sections it gives (:mod:`humanoid_rl_ros.core.contract.facts`) and
every field, ``null`` where unknown; a format-1 document is upgraded in memory: the facts the
format-1 code fixed are implied, the rest is unknown.
"""

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from humanoid_rl_ros.core.contract.facts import (check_facts, CODE_FACTS, ContractError,
                                                 expected_term_size, FORMAT_VERSION,
                                                 GAIT_CLOCK_FACTS, HISTORY_FACTS, history_layout,
                                                 KNOWN_OBS_TERMS, PHYSICS_FACTS)
from humanoid_rl_ros.core.contract.fields import (integer, mapping, number, optional_vector,
                                                  require, string, value_range, vector)
from humanoid_rl_ros.core.contract.schema import (CommandRanges, ObsTermSpec, PhysicsSpec,
                                                  PolicyContract)
from humanoid_rl_ros.core.contract.training_section import parse_training


def _shape(value: Any, path: str, size: int) -> None:
    if not isinstance(value, Sequence) or len(value) != 2:
        raise ContractError(path, f'expected [batch, {size}], got {value!r}')
    if value[1] != size:
        raise ContractError(f'{path}[1]', f'ONNX shape says {value[1]} but the contract implies '
                            f'{size}')


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _parse_frames(data: Mapping[str, Any]) -> Optional[str]:
    frames = mapping(require(data, 'frames', ''), 'frames')
    base = require(frames, 'base_link', 'frames')
    child = require(frames, 'odometry_child_frame', 'frames')
    base = None if base is None else string(base, 'frames.base_link')
    if child != base:
        raise ContractError('frames.odometry_child_frame', f'must equal frames.base_link '
                            f'({base!r}): odometry twists are read in the base link frame, '
                            f'got {child!r}')
    return base


def _parse_joint_limits(joints: Mapping[str, Any], n: int,
                        default: Tuple[float, ...]) -> Dict[str, Any]:
    out = {}
    for key, kw in (('position_min_rad', {}), ('position_max_rad', {}),
                    ('velocity_limit_rad_s', {'positive': True}),
                    ('armature_kg_m2', {'nonneg': True})):
        out[key] = optional_vector(require(joints, key, 'joints'), f'joints.{key}', n, **kw)
    low, high = out['position_min_rad'], out['position_max_rad']
    if (low is None) != (high is None):
        raise ContractError('joints.position_min_rad', 'give both position limits or neither')
    if low is not None:
        for i, (lo, hi, q0) in enumerate(zip(low, high, default)):
            if not lo - 1e-9 <= q0 <= hi + 1e-9:
                raise ContractError(f'joints.default_pos_rad[{i}]', f'{q0} is outside the '
                                    f'position limits [{lo}, {hi}]')
    return out


def _parse_gait_clock(obs: Mapping[str, Any], data: Mapping[str, Any],
                      uses_clock: bool) -> Optional[float]:
    clock = obs.get('gait_clock')
    if not uses_clock:
        if clock is not None:
            raise ContractError('observation.gait_clock', 'given but no gait_phase term is used')
        return None
    clock = mapping(require(obs, 'gait_clock', 'observation'), 'observation.gait_clock')
    check_facts(data, GAIT_CLOCK_FACTS)
    period = number(require(clock, 'period_s', 'observation.gait_clock'),
                    'observation.gait_clock.period_s', positive=True)
    rate = number(require(clock, 'rate_hz', 'observation.gait_clock'),
                  'observation.gait_clock.rate_hz', positive=True)
    if not _close(rate, 1.0 / period):
        raise ContractError('observation.gait_clock.rate_hz', f'{rate} is not 1 / period_s '
                            f'({1.0 / period})')
    return period


def _parse_physics(data: Mapping[str, Any], physics_dt_s: float) -> Optional[PhysicsSpec]:
    raw = require(data, 'physics', '')
    if raw is None:
        return None
    path = 'physics'
    mapping(raw, path)
    check_facts(data, PHYSICS_FACTS)
    timestep = number(require(raw, 'timestep_s', path), 'physics.timestep_s', positive=True)
    if not _close(timestep, physics_dt_s):
        raise ContractError('physics.timestep_s', f'{timestep} differs from timing.physics_dt_s '
                            f'{physics_dt_s}')
    self_collision = require(raw, 'self_collision', path)
    if not isinstance(self_collision, bool):
        raise ContractError('physics.self_collision', f'expected true or false, got '
                            f'{self_collision!r}')
    geom_friction = require(raw, 'robot_geom_friction', path)
    return PhysicsSpec(
        simulator=string(require(raw, 'simulator', path), 'physics.simulator'),
        timestep_s=timestep,
        integrator=string(require(raw, 'integrator', path), 'physics.integrator'),
        solver=string(require(raw, 'solver', path), 'physics.solver'),
        cone=string(require(raw, 'cone', path), 'physics.cone'),
        iterations=integer(require(raw, 'iterations', path), 'physics.iterations'),
        ls_iterations=integer(require(raw, 'ls_iterations', path), 'physics.ls_iterations'),
        gravity_m_s2=vector(require(raw, 'gravity_m_s2', path), 'physics.gravity_m_s2', 3),
        self_collision=self_collision,
        floor_friction=vector(require(raw, 'floor_friction', path), 'physics.floor_friction',
                              3, nonneg=True),
        robot_geom_friction=optional_vector(geom_friction, 'physics.robot_geom_friction', 3,
                                            nonneg=True))


def contract_from_dict(data: Mapping[str, Any]) -> PolicyContract:
    """
    Validate a parsed contract document and build a :class:`PolicyContract`.

    Format 2 must state every code fact (:data:`CODE_FACTS` and the gait clock, noise,
    randomization and physics facts of the sections it gives) and every field, ``null`` where
    unknown. Format 1 lacks them: its code facts are implied and the rest is unknown.
    """
    if not isinstance(data, Mapping):
        raise ContractError('<root>', f'expected a mapping, got {type(data).__name__}')
    version = integer(require(data, 'format_version', ''), 'format_version')
    if version > FORMAT_VERSION:
        raise ContractError('format_version', f'version {version} is newer than this code reads '
                            f'({FORMAT_VERSION}); update humanoid_rl_ros')
    robot = string(require(data, 'robot', ''), 'robot')

    joints = require(data, 'joints', '')
    names = require(joints, 'names', 'joints')
    if not isinstance(names, Sequence) or isinstance(names, str) or not names:
        raise ContractError('joints.names', 'expected a non-empty list of joint names')
    names = tuple(string(n, f'joints.names[{i}]') for i, n in enumerate(names))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ContractError('joints.names', f'duplicate joint names {duplicates}')
    n = len(names)
    default = vector(require(joints, 'default_pos_rad', 'joints'), 'joints.default_pos_rad', n)
    scale = vector(require(joints, 'action_scale_rad', 'joints'), 'joints.action_scale_rad', n,
                   nonneg=True)
    kp = vector(require(joints, 'kp_nm_per_rad', 'joints'), 'joints.kp_nm_per_rad', n,
                nonneg=True)
    kd = vector(require(joints, 'kd_nms_per_rad', 'joints'), 'joints.kd_nms_per_rad', n,
                nonneg=True)
    limit = vector(require(joints, 'effort_limit_nm', 'joints'), 'joints.effort_limit_nm', n,
                   positive=True)

    timing = require(data, 'timing', '')
    dt = number(require(timing, 'physics_dt_s', 'timing'), 'timing.physics_dt_s', positive=True)
    decimation = integer(require(timing, 'decimation', 'timing'), 'timing.decimation')

    obs = require(data, 'observation', '')
    raw_terms = require(obs, 'terms', 'observation')
    if not isinstance(raw_terms, Sequence) or isinstance(raw_terms, str) or not raw_terms:
        raise ContractError('observation.terms', 'expected a non-empty list of terms')
    terms = []
    for i, raw in enumerate(raw_terms):
        path = f'observation.terms[{i}]'
        name = string(require(raw, 'name', path), f'{path}.name')
        if name not in KNOWN_OBS_TERMS:
            raise ContractError(f'{path}.name', f'unknown observation term {name!r}; known '
                                f'terms are {", ".join(KNOWN_OBS_TERMS)}')
        size = integer(require(raw, 'size', path), f'{path}.size')
        expected = expected_term_size(name, n)
        if size != expected:
            raise ContractError(f'{path}.size', f'term {name!r} has size {expected} for '
                                f'{n} joints, got {size}')
        term_scale = vector(raw.get('scale', 1.0), f'{path}.scale', size)
        terms.append(ObsTermSpec(name=name, size=size, scale=term_scale))
    seen = [t.name for t in terms]
    repeated = sorted({t for t in seen if seen.count(t) > 1})
    if repeated:
        raise ContractError('observation.terms', f'terms listed twice: {repeated}')
    obs_clip = number(obs.get('clip', 100.0), 'observation.clip', positive=True)

    extra: Dict[str, Any] = {}
    if version >= 2:
        gait_period = _parse_gait_clock(obs, data, 'gait_phase' in seen)
        extra['base_link'] = _parse_frames(data)
        extra.update(_parse_joint_limits(joints, n, default))
        check_facts(data, CODE_FACTS)
        control = mapping(require(data, 'control', ''), 'control')
        rate = number(require(control, 'pd_rate_hz', 'control'), 'control.pd_rate_hz',
                      positive=True)
        if not _close(rate, 1.0 / dt):
            raise ContractError('control.pd_rate_hz', f'{rate} is not 1 / timing.physics_dt_s '
                                f'({1.0 / dt})')
        history = integer(require(obs, 'history_length', 'observation'),
                          'observation.history_length')
        layout = require(obs, 'history_layout', 'observation')
        if layout != history_layout(history):
            raise ContractError('observation.history_layout', f'this code implements '
                                f'{history_layout(history)!r} for history_length {history}, the '
                                f'contract says {layout!r}')
        if history > 1:
            check_facts(data, HISTORY_FACTS)
        extra['history_length'] = history
        extra['training'] = parse_training(data)
        extra['physics'] = _parse_physics(data, dt)
    else:
        gait_period = obs.get('gait_period_s')
        if 'gait_phase' in seen:
            if gait_period is None:
                raise ContractError('observation.gait_period_s', 'required by the gait_phase term')
            gait_period = number(gait_period, 'observation.gait_period_s', positive=True)
        elif gait_period is not None:
            raise ContractError('observation.gait_period_s',
                                'given but no gait_phase term is used')

    action = data.get('action', {})
    action_clip = number(action.get('clip', 100.0) if isinstance(action, Mapping) else action,
                         'action.clip', positive=True)

    cmd = require(data, 'commands', '')
    commands = CommandRanges(
        lin_vel_x_m_s=value_range(require(cmd, 'lin_vel_x_m_s', 'commands'),
                                  'commands.lin_vel_x_m_s'),
        lin_vel_y_m_s=value_range(require(cmd, 'lin_vel_y_m_s', 'commands'),
                                  'commands.lin_vel_y_m_s'),
        ang_vel_z_rad_s=value_range(require(cmd, 'ang_vel_z_rad_s', 'commands'),
                                    'commands.ang_vel_z_rad_s'))

    onnx = require(data, 'onnx', '')
    onnx_file = string(require(onnx, 'file', 'onnx'), 'onnx.file')
    onnx_in = require(onnx, 'input', 'onnx')
    onnx_out = require(onnx, 'output', 'onnx')
    in_name = string(require(onnx_in, 'name', 'onnx.input'), 'onnx.input.name')
    out_name = string(require(onnx_out, 'name', 'onnx.output'), 'onnx.output.name')
    obs_dim = extra.get('history_length', 1) * sum(t.size for t in terms)
    _shape(require(onnx_in, 'shape', 'onnx.input'), 'onnx.input.shape', obs_dim)
    _shape(require(onnx_out, 'shape', 'onnx.output'), 'onnx.output.shape', n)

    provenance = data.get('provenance', {})
    if not isinstance(provenance, Mapping):
        raise ContractError('provenance', 'expected a mapping')

    return PolicyContract(
        format_version=version, robot=robot, joint_names=names, default_pos_rad=default,
        action_scale_rad=scale, kp_nm_per_rad=kp, kd_nms_per_rad=kd, effort_limit_nm=limit,
        physics_dt_s=dt, decimation=decimation, obs_terms=tuple(terms), commands=commands,
        obs_clip=obs_clip, action_clip=action_clip, gait_period_s=gait_period,
        onnx_file=onnx_file, onnx_input_name=in_name, onnx_output_name=out_name,
        provenance=dict(provenance), **extra)
