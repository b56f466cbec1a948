"""
The contract's ``training`` section: what a policy was trained under, read and written.

:func:`parse_training` validates the section of a format-2 document into
:class:`TrainingConditions`; :func:`training_to_dict` lays it out for the writer
(``contract_to_dict`` fills in the code facts of its subsections). ``null`` marks a group a
run did not record (unknown); ``'off'`` a randomization item that was switched off. Sections
and items added after the first format-2 files are optional and written only where stated:
``base_lin_vel_error``, ``terrain`` and the randomization items from ``link_mass_scale_range``
on (see :class:`Randomization`), so files written before them keep their text, and their
absence means what the older code did (none); ``action_delay_tolerance``, the measured delay
tolerance (:mod:`~humanoid_rl_ros.core.contract.delay_section`), whose absence means not
measured.
"""

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from humanoid_rl_ros.core.contract.delay_section import (check_flat_figure,
                                                         delay_tolerance_to_dict,
                                                         parse_delay_tolerance)
from humanoid_rl_ros.core.contract.facts import (check_facts, ContractError, KNOWN_OBS_TERMS,
                                                 LIN_VEL_ERROR_FACTS, NOISE_FACTS, OFF, push_kind,
                                                 RANDOMIZATION_FACTS)
from humanoid_rl_ros.core.contract.fields import (int_range, integer, mapping, number,
                                                  off_or_range, require, string, value_range,
                                                  vector)
from humanoid_rl_ros.core.contract.schema import (BaseLinVelError, CommandSampling, Latency,
                                                  Randomization, TerrainSpec, TrainingConditions)

RANDOMIZATION_PATH = 'training.randomization'
"""Dotted path of the randomization section."""

OPTIONAL_RANGES: Tuple[Tuple[str, Dict[str, bool]], ...] = (
    ('link_mass_scale_range', {'positive': True}),
    ('kd_scale_range', {'positive': True}),
    ('armature_scale_range', {'positive': True}),
    ('joint_friction_nm', {'nonneg': True}),
    ('joint_damping_nms_per_rad', {'nonneg': True}),
)
"""Optional randomization ranges (written only where on) and the check of their ends."""

OPTIONAL_HALF_RANGES = ('gyro_bias_rad_s', 'gravity_bias', 'encoder_bias_rad')
"""Optional randomization half-ranges (written only where on), each >= 0."""


def parse_training(data: Mapping[str, Any]) -> TrainingConditions:
    """Return the ``training`` section of the format-2 document ``data``, validated."""
    training = mapping(require(data, 'training', ''), 'training')
    delay = require(training, 'action_delay_policy_steps', 'training')
    tolerated = require(training, 'tolerated_action_delay_s', 'training')
    noise = require(training, 'observation_noise', 'training')
    randomization = require(training, 'randomization', 'training')
    sampling = require(training, 'command_sampling', 'training')
    if delay is not None:
        delay = integer(delay, 'training.action_delay_policy_steps', minimum=0)
    if tolerated is not None:
        tolerated = number(tolerated, 'training.tolerated_action_delay_s', nonneg=True)
    if noise is not None:
        mapping(noise, 'training.observation_noise')
        check_facts(data, NOISE_FACTS)
        widths = mapping(require(noise, 'half_width', 'training.observation_noise'),
                         'training.observation_noise.half_width')
        for name in widths:
            if name not in KNOWN_OBS_TERMS:
                raise ContractError(f'training.observation_noise.half_width.{name}',
                                    f'unknown observation term {name!r}')
        noise = {str(name): number(width, f'training.observation_noise.half_width.{name}',
                                   nonneg=True) for name, width in widths.items()}
    if randomization is not None:
        randomization = _parse_randomization(mapping(randomization, RANDOMIZATION_PATH), data)
    if sampling is not None:
        path = 'training.command_sampling'
        mapping(sampling, path)
        sampling = CommandSampling(
            resample_interval_s=value_range(require(sampling, 'resample_interval_s', path),
                                            f'{path}.resample_interval_s'),
            standing_fraction=number(require(sampling, 'standing_fraction', path),
                                     f'{path}.standing_fraction', nonneg=True),
            small_command_m_s=number(require(sampling, 'small_command_m_s', path),
                                     f'{path}.small_command_m_s', nonneg=True),
            single_axis_fraction=number(sampling.get('single_axis_fraction', 0.0),
                                        f'{path}.single_axis_fraction', nonneg=True))
    # optional: absent where no error model was applied (and in files older than the field)
    lin_vel_error = training.get('base_lin_vel_error')
    if lin_vel_error is not None:
        lin_vel_error = _parse_lin_vel_error(mapping(lin_vel_error,
                                                     'training.base_lin_vel_error'), data)
    # optional: absent for the flat floor (and in files older than the field)
    terrain = training.get('terrain')
    if terrain is not None:
        terrain = _parse_terrain(mapping(terrain, 'training.terrain'))
    # optional: absent where the tolerance was not measured (and in files older than the field)
    measured = training.get('action_delay_tolerance')
    if measured is not None:
        measured = parse_delay_tolerance(measured, data)
        check_flat_figure(tolerated, measured)
    return TrainingConditions(action_delay_policy_steps=delay,
                              tolerated_action_delay_s=tolerated, observation_noise=noise,
                              randomization=randomization, command_sampling=sampling,
                              base_lin_vel_error=lin_vel_error, terrain=terrain,
                              action_delay_tolerance=measured)


def _parse_lin_vel_error(raw: Mapping[str, Any], data: Mapping[str, Any]) -> BaseLinVelError:
    path = 'training.base_lin_vel_error'
    check_facts(data, LIN_VEL_ERROR_FACTS)
    return BaseLinVelError(
        bias_m_s=number(require(raw, 'bias_m_s', path), f'{path}.bias_m_s', nonneg=True),
        scale_error=number(require(raw, 'scale_error', path), f'{path}.scale_error',
                           nonneg=True),
        lag_policy_steps=int_range(require(raw, 'lag_policy_steps', path),
                                   f'{path}.lag_policy_steps'))


def _optional(raw: Mapping[str, Any], key: str, read: Callable[[Any, str], Any]) -> Any:
    """Return ``read(raw[key], path)``, or None where the item is absent or ``null``."""
    value = raw.get(key)
    return None if value is None else read(value, f'{RANDOMIZATION_PATH}.{key}')


def _parse_randomization(raw: Mapping[str, Any], data: Mapping[str, Any]) -> Randomization:
    path = RANDOMIZATION_PATH
    check_facts(data, RANDOMIZATION_FACTS)
    ranges = {key: off_or_range(require(raw, key, path), f'{path}.{key}')
              for key in ('friction_range', 'added_base_mass_kg', 'motor_strength_range',
                          'pd_gain_scale_range', 'push_interval_s')}
    push = require(raw, 'push_lin_vel_m_s', path)
    push = None if push == OFF else number(push, f'{path}.push_lin_vel_m_s', nonneg=True)
    if (push is None) != (ranges['push_interval_s'] is None):
        raise ContractError(f'{path}.push_lin_vel_m_s', 'push_interval_s and push_lin_vel_m_s '
                            f'must both be {OFF!r} or both be given')
    for key, kw in OPTIONAL_RANGES:
        ranges[key] = _optional(raw, key, lambda v, p, kw=kw: value_range(v, p, **kw))
    half_ranges = {key: _optional(raw, key, lambda v, p: number(v, p, nonneg=True))
                   for key in OPTIONAL_HALF_RANGES}
    if (half_ranges['gyro_bias_rad_s'] is None) != (half_ranges['gravity_bias'] is None):
        raise ContractError(f'{path}.gyro_bias_rad_s', 'the IMU bias gives gyro_bias_rad_s '
                            'and gravity_bias together, or neither')
    push_z = _optional(raw, 'push_lin_vel_z_m_s', lambda v, p: number(v, p, positive=True))
    push_ang = _optional(raw, 'push_ang_vel_rad_s', lambda v, p: vector(v, p, 3, nonneg=True))
    if push is None and (push_z is not None or push_ang is not None):
        raise ContractError(f'{path}.push_lin_vel_m_s', 'push_lin_vel_z_m_s and '
                            'push_ang_vel_rad_s need the pushes on')
    kind = require(raw, 'push', path)
    if kind != push_kind(push_z is not None, push_ang is not None):
        raise ContractError(f'{path}.push', f'the stated push terms mean '
                            f'{push_kind(push_z is not None, push_ang is not None)!r}, the '
                            f'contract says {kind!r}')
    return Randomization(
        push_lin_vel_m_s=push,
        init_joint_noise_rad=number(require(raw, 'init_joint_noise_rad', path),
                                    f'{path}.init_joint_noise_rad', nonneg=True),
        init_base_lin_vel_m_s=number(require(raw, 'init_base_lin_vel_m_s', path),
                                     f'{path}.init_base_lin_vel_m_s', nonneg=True),
        base_com_offset_m=_optional(raw, 'base_com_offset_m',
                                    lambda v, p: vector(v, p, 3, nonneg=True)),
        latency=_optional(raw, 'latency', _parse_latency),
        push_lin_vel_z_m_s=push_z, push_ang_vel_rad_s=push_ang, **ranges, **half_ranges)


def _parse_latency(raw: Any, path: str) -> Latency:
    mapping(raw, path)
    return Latency(
        action_delay_ms=value_range(require(raw, 'action_delay_ms', path),
                                    f'{path}.action_delay_ms', nonneg=True),
        action_delay_physics_steps=int_range(require(raw, 'action_delay_physics_steps', path),
                                             f'{path}.action_delay_physics_steps'),
        obs_delay_ms=value_range(require(raw, 'obs_delay_ms', path), f'{path}.obs_delay_ms',
                                 nonneg=True),
        obs_delay_physics_steps=int_range(require(raw, 'obs_delay_physics_steps', path),
                                          f'{path}.obs_delay_physics_steps'))


def _parse_terrain(raw: Mapping[str, Any]) -> TerrainSpec:
    path = 'training.terrain'
    kinds = require(raw, 'kinds', path)
    if not isinstance(kinds, Sequence) or isinstance(kinds, str) or not kinds:
        raise ContractError(f'{path}.kinds', f'expected a non-empty list of kinds, got '
                            f'{kinds!r}')
    curriculum = require(raw, 'curriculum', path)
    if not isinstance(curriculum, bool):
        raise ContractError(f'{path}.curriculum', f'expected true or false, got {curriculum!r}')
    return TerrainSpec(
        kinds=tuple(string(k, f'{path}.kinds[{i}]') for i, k in enumerate(kinds)),
        num_levels=integer(require(raw, 'num_levels', path), f'{path}.num_levels'),
        max_slope_deg=number(require(raw, 'max_slope_deg', path), f'{path}.max_slope_deg',
                             nonneg=True),
        max_rough_m=number(require(raw, 'max_rough_m', path), f'{path}.max_rough_m',
                           nonneg=True),
        tile_size_m=number(require(raw, 'tile_size_m', path), f'{path}.tile_size_m',
                           positive=True),
        curriculum=curriculum)


def _floats(values: Sequence[float]) -> List[float]:
    return [float(v) for v in values]


def _range_or_off(values: Optional[Sequence[float]]) -> Any:
    return OFF if values is None else _floats(values)


def _randomization_to_dict(r: Randomization) -> Dict[str, Any]:
    """Lay out the randomization section; the optional items only where they were on."""
    document: Dict[str, Any] = {
        'friction_range': _range_or_off(r.friction_range),
        'friction_applied_to': None,
        'added_base_mass_kg': _range_or_off(r.added_base_mass_kg),
        'motor_strength_range': _range_or_off(r.motor_strength_range),
        'motor_strength_applies_to': None,
        'pd_gain_scale_range': _range_or_off(r.pd_gain_scale_range),
        'gain_scale_applies_to': None,
        'push_interval_s': _range_or_off(r.push_interval_s),
        'push_lin_vel_m_s': OFF if r.push_lin_vel_m_s is None else float(r.push_lin_vel_m_s),
    }
    if r.push_lin_vel_z_m_s is not None:
        document['push_lin_vel_z_m_s'] = float(r.push_lin_vel_z_m_s)
    if r.push_ang_vel_rad_s is not None:
        document['push_ang_vel_rad_s'] = _floats(r.push_ang_vel_rad_s)
    document['push'] = push_kind(r.push_lin_vel_z_m_s is not None,
                                 r.push_ang_vel_rad_s is not None)
    document['init_joint_noise_rad'] = float(r.init_joint_noise_rad)
    document['init_base_lin_vel_m_s'] = float(r.init_base_lin_vel_m_s)
    optional: Dict[str, Any] = {key: getattr(r, key) for key, _ in OPTIONAL_RANGES}
    optional['base_com_offset_m'] = r.base_com_offset_m
    for key, value in optional.items():
        if value is not None:
            document[key] = _floats(value)
    if r.latency is not None:
        lat = r.latency
        document['latency'] = {
            'action_delay_ms': _floats(lat.action_delay_ms),
            'action_delay_physics_steps': [int(v) for v in lat.action_delay_physics_steps],
            'obs_delay_ms': _floats(lat.obs_delay_ms),
            'obs_delay_physics_steps': [int(v) for v in lat.obs_delay_physics_steps]}
    for key in OPTIONAL_HALF_RANGES:
        if getattr(r, key) is not None:
            document[key] = float(getattr(r, key))
    return document


def training_to_dict(training: TrainingConditions) -> Dict[str, Any]:
    """Return the ``training`` section of the document (code facts as ``None`` placeholders)."""
    noise = None
    if training.observation_noise is not None:
        noise = {'distribution': None, 'applied_to': None,
                 'half_width': {str(k): float(v) for k, v in training.observation_noise.items()}}
    randomization = None
    if training.randomization is not None:
        randomization = _randomization_to_dict(training.randomization)
    sampling = None
    s = training.command_sampling
    if s is not None:
        sampling = {'resample_interval_s': _floats(s.resample_interval_s),
                    'standing_fraction': float(s.standing_fraction),
                    'small_command_m_s': float(s.small_command_m_s)}
        if s.single_axis_fraction:  # files older than the field stay as they were
            sampling['single_axis_fraction'] = float(s.single_axis_fraction)
    delay = training.action_delay_policy_steps
    tolerated = training.tolerated_action_delay_s
    document: Dict[str, Any] = {
        'action_delay_policy_steps': None if delay is None else int(delay),
        'tolerated_action_delay_s': None if tolerated is None else float(tolerated),
    }
    if training.action_delay_tolerance is not None:  # written only where measured
        document['action_delay_tolerance'] = delay_tolerance_to_dict(
            training.action_delay_tolerance)
    document.update(observation_noise=noise, randomization=randomization,
                    command_sampling=sampling)
    e = training.base_lin_vel_error
    if e is not None:  # written only where stated: files older than the field stay as they were
        document['base_lin_vel_error'] = {
            'bias_m_s': float(e.bias_m_s), 'scale_error': float(e.scale_error),
            'lag_policy_steps': [int(v) for v in e.lag_policy_steps], 'drawn': None,
            'formula': None}
    t = training.terrain
    if t is not None:  # written only for terrain runs, like base_lin_vel_error
        document['terrain'] = {
            'kinds': [str(k) for k in t.kinds], 'num_levels': int(t.num_levels),
            'max_slope_deg': float(t.max_slope_deg), 'max_rough_m': float(t.max_rough_m),
            'tile_size_m': float(t.tile_size_m), 'curriculum': bool(t.curriculum)}
    return document
