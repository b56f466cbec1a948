"""
Reading a contract document: validate every field, build a :class:`PolicyContract`.

:func:`contract_from_dict` takes a parsed document (format 1 or 2).  A problem raises
:class:`ContractError` whose message starts with the field's dotted path.  Format 2 must state
every code fact of the sections it gives (:mod:`humanoid_rl_ros.core.contract_facts`) and
every field, ``null`` where unknown; a format-1 document is upgraded in memory: the facts the
format-1 code fixed are implied, the rest is unknown.
"""

import math
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from humanoid_rl_ros.core.contract_facts import (check_facts, CODE_FACTS, ContractError,
                                                 expected_term_size, FORMAT_VERSION,
                                                 GAIT_CLOCK_FACTS, HISTORY_FACTS,
                                                 history_layout, KNOWN_OBS_TERMS,
                                                 LIN_VEL_ERROR_FACTS, NOISE_FACTS, OFF,
                                                 PHYSICS_FACTS, RANDOMIZATION_FACTS)
from humanoid_rl_ros.core.contract_types import (BaseLinVelError, CommandRanges,
                                                 CommandSampling, ObsTermSpec, PhysicsSpec,
                                                 PolicyContract, Randomization,
                                                 TrainingConditions)


def _require(mapping: Mapping[str, Any], key: str, path: str) -> Any:
    if not isinstance(mapping, Mapping):
        raise ContractError(path, f'expected a mapping, got {type(mapping).__name__}')
    if key not in mapping:
        raise ContractError(f'{path}.{key}' if path else key, 'missing required field')
    return mapping[key]


def _number(value: Any, path: str, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(path, f'expected a number, got {value!r}')
    value = float(value)
    if not math.isfinite(value):
        raise ContractError(path, f'expected a finite number, got {value}')
    if positive and value <= 0.0:
        raise ContractError(path, f'must be > 0, got {value}')
    if nonneg and value < 0.0:
        raise ContractError(path, f'must be >= 0, got {value}')
    return value


def _int(value: Any, path: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(path, f'expected an integer, got {value!r}')
    if value < minimum:
        raise ContractError(path, f'must be >= {minimum}, got {value}')
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ContractError(path, f'expected a non-empty string, got {value!r}')
    return value


def _vector(value: Any, path: str, size: int, **kw: bool) -> Tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * size
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ContractError(path, f'expected a list of {size} numbers, got {value!r}')
    if len(value) != size:
        raise ContractError(path, f'expected {size} values (one per entry), got {len(value)}')
    return tuple(_number(v, f'{path}[{i}]', **kw) for i, v in enumerate(value))


def _range(value: Any, path: str) -> Tuple[float, float]:
    low, high = _vector(value, path, 2)
    if low > high:
        raise ContractError(path, f'range low {low} is above high {high}')
    return (low, high)


def _shape(value: Any, path: str, size: int) -> None:
    if not isinstance(value, Sequence) or len(value) != 2:
        raise ContractError(path, f'expected [batch, {size}], got {value!r}')
    if value[1] != size:
        raise ContractError(f'{path}[1]', f'ONNX shape says {value[1]} but the contract implies '
                            f'{size}')


def _optional_vector(value: Any, path: str, size: int, **kw: bool) -> Optional[Tuple[float, ...]]:
    return None if value is None else _vector(value, path, size, **kw)


def _optional_range(value: Any, path: str) -> Optional[Tuple[float, float]]:
    return None if value == OFF else _range(value, path)


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContractError(path, f'expected a mapping, got {value!r}')
    return value


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _parse_frames(data: Mapping[str, Any]) -> Optional[str]:
    frames = _mapping(_require(data, 'frames', ''), 'frames')
    base = _require(frames, 'base_link', 'frames')
    child = _require(frames, 'odometry_child_frame', 'frames')
    base = None if base is None else _string(base, 'frames.base_link')
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
        out[key] = _optional_vector(_require(joints, key, 'joints'), f'joints.{key}', n, **kw)
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
    clock = _mapping(_require(obs, 'gait_clock', 'observation'), 'observation.gait_clock')
    check_facts(data, GAIT_CLOCK_FACTS)
    period = _number(_require(clock, 'period_s', 'observation.gait_clock'),
                     'observation.gait_clock.period_s', positive=True)
    rate = _number(_require(clock, 'rate_hz', 'observation.gait_clock'),
                   'observation.gait_clock.rate_hz', positive=True)
    if not _close(rate, 1.0 / period):
        raise ContractError('observation.gait_clock.rate_hz', f'{rate} is not 1 / period_s '
                            f'({1.0 / period})')
    return period


def _parse_training(data: Mapping[str, Any]) -> TrainingConditions:
    training = _mapping(_require(data, 'training', ''), 'training')
    delay = _require(training, 'action_delay_policy_steps', 'training')
    tolerated = _require(training, 'tolerated_action_delay_s', 'training')
    noise = _require(training, 'observation_noise', 'training')
    randomization = _require(training, 'randomization', 'training')
    sampling = _require(training, 'command_sampling', 'training')
    if delay is not None:
        delay = _int(delay, 'training.action_delay_policy_steps', minimum=0)
    if tolerated is not None:
        tolerated = _number(tolerated, 'training.tolerated_action_delay_s', nonneg=True)
    if noise is not None:
        _mapping(noise, 'training.observation_noise')
        check_facts(data, NOISE_FACTS)
        widths = _mapping(_require(noise, 'half_width', 'training.observation_noise'),
                          'training.observation_noise.half_width')
        for name in widths:
            if name not in KNOWN_OBS_TERMS:
                raise ContractError(f'training.observation_noise.half_width.{name}',
                                    f'unknown observation term {name!r}')
        noise = {str(name): _number(width, f'training.observation_noise.half_width.{name}',
                                    nonneg=True) for name, width in widths.items()}
    if randomization is not None:
        randomization = _parse_randomization(_mapping(randomization, 'training.randomization'),
                                             data)
    if sampling is not None:
        path = 'training.command_sampling'
        _mapping(sampling, path)
        sampling = CommandSampling(
            resample_interval_s=_range(_require(sampling, 'resample_interval_s', path),
                                       f'{path}.resample_interval_s'),
            standing_fraction=_number(_require(sampling, 'standing_fraction', path),
                                      f'{path}.standing_fraction', nonneg=True),
            small_command_m_s=_number(_require(sampling, 'small_command_m_s', path),
                                      f'{path}.small_command_m_s', nonneg=True))
    # optional: absent where no error model was applied (and in files older than the field)
    lin_vel_error = training.get('base_lin_vel_error')
    if lin_vel_error is not None:
        lin_vel_error = _parse_lin_vel_error(_mapping(lin_vel_error,
                                                      'training.base_lin_vel_error'), data)
    return TrainingConditions(action_delay_policy_steps=delay,
                              tolerated_action_delay_s=tolerated, observation_noise=noise,
                              randomization=randomization, command_sampling=sampling,
                              base_lin_vel_error=lin_vel_error)


def _parse_lin_vel_error(raw: Mapping[str, Any], data: Mapping[str, Any]) -> BaseLinVelError:
    path = 'training.base_lin_vel_error'
    check_facts(data, LIN_VEL_ERROR_FACTS)
    lag = _require(raw, 'lag_policy_steps', path)
    if not isinstance(lag, Sequence) or isinstance(lag, str) or len(lag) != 2:
        raise ContractError(f'{path}.lag_policy_steps', f'expected [low, high], got {lag!r}')
    low = _int(lag[0], f'{path}.lag_policy_steps[0]', minimum=0)
    high = _int(lag[1], f'{path}.lag_policy_steps[1]', minimum=0)
    if low > high:
        raise ContractError(f'{path}.lag_policy_steps', f'range low {low} is above high {high}')
    return BaseLinVelError(
        bias_m_s=_number(_require(raw, 'bias_m_s', path), f'{path}.bias_m_s', nonneg=True),
        scale_error=_number(_require(raw, 'scale_error', path), f'{path}.scale_error',
                            nonneg=True),
        lag_policy_steps=(low, high))


def _parse_randomization(raw: Mapping[str, Any], data: Mapping[str, Any]) -> Randomization:
    path = 'training.randomization'
    check_facts(data, RANDOMIZATION_FACTS)
    ranges = {key: _optional_range(_require(raw, key, path), f'{path}.{key}')
              for key in ('friction_range', 'added_base_mass_kg', 'motor_strength_range',
                          'pd_gain_scale_range', 'push_interval_s')}
    push = _require(raw, 'push_lin_vel_m_s', path)
    push = None if push == OFF else _number(push, f'{path}.push_lin_vel_m_s', nonneg=True)
    if (push is None) != (ranges['push_interval_s'] is None):
        raise ContractError(f'{path}.push_lin_vel_m_s', 'push_interval_s and push_lin_vel_m_s '
                            f'must both be {OFF!r} or both be given')
    return Randomization(
        push_lin_vel_m_s=push,
        init_joint_noise_rad=_number(_require(raw, 'init_joint_noise_rad', path),
                                     f'{path}.init_joint_noise_rad', nonneg=True),
        init_base_lin_vel_m_s=_number(_require(raw, 'init_base_lin_vel_m_s', path),
                                      f'{path}.init_base_lin_vel_m_s', nonneg=True),
        **ranges)


def _parse_physics(data: Mapping[str, Any], physics_dt_s: float) -> Optional[PhysicsSpec]:
    raw = _require(data, 'physics', '')
    if raw is None:
        return None
    path = 'physics'
    _mapping(raw, path)
    check_facts(data, PHYSICS_FACTS)
    timestep = _number(_require(raw, 'timestep_s', path), 'physics.timestep_s', positive=True)
    if not _close(timestep, physics_dt_s):
        raise ContractError('physics.timestep_s', f'{timestep} differs from timing.physics_dt_s '
                            f'{physics_dt_s}')
    self_collision = _require(raw, 'self_collision', path)
    if not isinstance(self_collision, bool):
        raise ContractError('physics.self_collision', f'expected true or false, got '
                            f'{self_collision!r}')
    geom_friction = _require(raw, 'robot_geom_friction', path)
    return PhysicsSpec(
        simulator=_string(_require(raw, 'simulator', path), 'physics.simulator'),
        timestep_s=timestep,
        integrator=_string(_require(raw, 'integrator', path), 'physics.integrator'),
        solver=_string(_require(raw, 'solver', path), 'physics.solver'),
        cone=_string(_require(raw, 'cone', path), 'physics.cone'),
        iterations=_int(_require(raw, 'iterations', path), 'physics.iterations'),
        ls_iterations=_int(_require(raw, 'ls_iterations', path), 'physics.ls_iterations'),
        gravity_m_s2=_vector(_require(raw, 'gravity_m_s2', path), 'physics.gravity_m_s2', 3),
        self_collision=self_collision,
        floor_friction=_vector(_require(raw, 'floor_friction', path), 'physics.floor_friction',
                               3, nonneg=True),
        robot_geom_friction=_optional_vector(geom_friction, 'physics.robot_geom_friction', 3,
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
    version = _int(_require(data, 'format_version', ''), 'format_version')
    if version > FORMAT_VERSION:
        raise ContractError('format_version', f'version {version} is newer than this code reads '
                            f'({FORMAT_VERSION}); update humanoid_rl_ros')
    robot = _string(_require(data, 'robot', ''), 'robot')

    joints = _require(data, 'joints', '')
    names = _require(joints, 'names', 'joints')
    if not isinstance(names, Sequence) or isinstance(names, str) or not names:
        raise ContractError('joints.names', 'expected a non-empty list of joint names')
    names = tuple(_string(n, f'joints.names[{i}]') for i, n in enumerate(names))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ContractError('joints.names', f'duplicate joint names {duplicates}')
    n = len(names)
    default = _vector(_require(joints, 'default_pos_rad', 'joints'), 'joints.default_pos_rad', n)
    scale = _vector(_require(joints, 'action_scale_rad', 'joints'), 'joints.action_scale_rad', n,
                    nonneg=True)
    kp = _vector(_require(joints, 'kp_nm_per_rad', 'joints'), 'joints.kp_nm_per_rad', n,
                 nonneg=True)
    kd = _vector(_require(joints, 'kd_nms_per_rad', 'joints'), 'joints.kd_nms_per_rad', n,
                 nonneg=True)
    limit = _vector(_require(joints, 'effort_limit_nm', 'joints'), 'joints.effort_limit_nm', n,
                    positive=True)

    timing = _require(data, 'timing', '')
    dt = _number(_require(timing, 'physics_dt_s', 'timing'), 'timing.physics_dt_s', positive=True)
    decimation = _int(_require(timing, 'decimation', 'timing'), 'timing.decimation')

    obs = _require(data, 'observation', '')
    raw_terms = _require(obs, 'terms', 'observation')
    if not isinstance(raw_terms, Sequence) or isinstance(raw_terms, str) or not raw_terms:
        raise ContractError('observation.terms', 'expected a non-empty list of terms')
    terms = []
    for i, raw in enumerate(raw_terms):
        path = f'observation.terms[{i}]'
        name = _string(_require(raw, 'name', path), f'{path}.name')
        if name not in KNOWN_OBS_TERMS:
            raise ContractError(f'{path}.name', f'unknown observation term {name!r}; known '
                                f'terms are {", ".join(KNOWN_OBS_TERMS)}')
        size = _int(_require(raw, 'size', path), f'{path}.size')
        expected = expected_term_size(name, n)
        if size != expected:
            raise ContractError(f'{path}.size', f'term {name!r} has size {expected} for '
                                f'{n} joints, got {size}')
        term_scale = _vector(raw.get('scale', 1.0), f'{path}.scale', size)
        terms.append(ObsTermSpec(name=name, size=size, scale=term_scale))
    seen = [t.name for t in terms]
    repeated = sorted({t for t in seen if seen.count(t) > 1})
    if repeated:
        raise ContractError('observation.terms', f'terms listed twice: {repeated}')
    obs_clip = _number(obs.get('clip', 100.0), 'observation.clip', positive=True)

    extra: Dict[str, Any] = {}
    if version >= 2:
        gait_period = _parse_gait_clock(obs, data, 'gait_phase' in seen)
        extra['base_link'] = _parse_frames(data)
        extra.update(_parse_joint_limits(joints, n, default))
        check_facts(data, CODE_FACTS)
        control = _mapping(_require(data, 'control', ''), 'control')
        rate = _number(_require(control, 'pd_rate_hz', 'control'), 'control.pd_rate_hz',
                       positive=True)
        if not _close(rate, 1.0 / dt):
            raise ContractError('control.pd_rate_hz', f'{rate} is not 1 / timing.physics_dt_s '
                                f'({1.0 / dt})')
        history = _int(_require(obs, 'history_length', 'observation'),
                       'observation.history_length')
        layout = _require(obs, 'history_layout', 'observation')
        if layout != history_layout(history):
            raise ContractError('observation.history_layout', f'this code implements '
                                f'{history_layout(history)!r} for history_length {history}, the '
                                f'contract says {layout!r}')
        if history > 1:
            check_facts(data, HISTORY_FACTS)
        extra['history_length'] = history
        extra['training'] = _parse_training(data)
        extra['physics'] = _parse_physics(data, dt)
    else:
        gait_period = obs.get('gait_period_s')
        if 'gait_phase' in seen:
            if gait_period is None:
                raise ContractError('observation.gait_period_s', 'required by the gait_phase term')
            gait_period = _number(gait_period, 'observation.gait_period_s', positive=True)
        elif gait_period is not None:
            raise ContractError('observation.gait_period_s',
                                'given but no gait_phase term is used')

    action = data.get('action', {})
    action_clip = _number(action.get('clip', 100.0) if isinstance(action, Mapping) else action,
                          'action.clip', positive=True)

    cmd = _require(data, 'commands', '')
    commands = CommandRanges(
        lin_vel_x_m_s=_range(_require(cmd, 'lin_vel_x_m_s', 'commands'), 'commands.lin_vel_x_m_s'),
        lin_vel_y_m_s=_range(_require(cmd, 'lin_vel_y_m_s', 'commands'), 'commands.lin_vel_y_m_s'),
        ang_vel_z_rad_s=_range(_require(cmd, 'ang_vel_z_rad_s', 'commands'),
                               'commands.ang_vel_z_rad_s'))

    onnx = _require(data, 'onnx', '')
    onnx_file = _string(_require(onnx, 'file', 'onnx'), 'onnx.file')
    onnx_in = _require(onnx, 'input', 'onnx')
    onnx_out = _require(onnx, 'output', 'onnx')
    in_name = _string(_require(onnx_in, 'name', 'onnx.input'), 'onnx.input.name')
    out_name = _string(_require(onnx_out, 'name', 'onnx.output'), 'onnx.output.name')
    obs_dim = extra.get('history_length', 1) * sum(t.size for t in terms)
    _shape(_require(onnx_in, 'shape', 'onnx.input'), 'onnx.input.shape', obs_dim)
    _shape(_require(onnx_out, 'shape', 'onnx.output'), 'onnx.output.shape', n)

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
