"""Tests of the policy contract reader and writer: round trip, named errors, format 1 and 2."""

import copy
import dataclasses
import math

from contract_fixtures import format_1_document
from humanoid_rl_ros.core import policy_math
from humanoid_rl_ros.core.contract import (
    BaseLinVelError, CODE_FACTS, CommandRanges, CommandSampling, contract_difference,
    contract_from_dict, contract_text, contract_to_dict, ContractError, FORMAT_VERSION,
    GAIT_CLOCK_FACTS, HISTORY_FACTS, Latency, LIN_VEL_ERROR_FACTS, NOISE_FACTS, ObsTermSpec,
    PHYSICS_FACTS, PhysicsSpec, PolicyContract, Randomization, RANDOMIZATION_FACTS,
    read_contract, TerrainSpec, TrainingConditions, write_contract, YAML_HEADER)
import numpy as np
import pytest
import yaml

JOINTS = ('left_knee_joint', 'right_knee_joint', 'torso_yaw_joint')


def make_contract(**overrides):
    """Return a small valid contract for three joints, with ``overrides`` applied."""
    contract = PolicyContract(
        robot='kestrel', joint_names=JOINTS, default_pos_rad=(0.3, 0.3, 0.0),
        action_scale_rad=(0.25, 0.25, 0.1), kp_nm_per_rad=(100.0, 100.0, 60.0),
        kd_nms_per_rad=(3.0, 3.0, 2.0), effort_limit_nm=(150.0, 150.0, 60.0),
        physics_dt_s=0.005, decimation=4,
        obs_terms=(ObsTermSpec('base_ang_vel', 3, (0.25,) * 3),
                   ObsTermSpec('projected_gravity', 3, (1.0,) * 3),
                   ObsTermSpec('velocity_command', 3, (2.0, 2.0, 0.25)),
                   ObsTermSpec('joint_pos', 3, (1.0,) * 3),
                   ObsTermSpec('joint_vel', 3, (0.05,) * 3),
                   ObsTermSpec('last_action', 3, (1.0,) * 3),
                   ObsTermSpec('gait_phase', 2, (1.0, 1.0))),
        commands=CommandRanges((-0.5, 1.0), (-0.4, 0.4), (-1.0, 1.0)),
        gait_period_s=0.7, onnx_file='walk.onnx',
        provenance={'seed': 3, 'backend': 'mjwarp', 'metrics': {'reward': 12.5}})
    return dataclasses.replace(contract, **overrides)


def make_complete_contract(**overrides):
    """Return :func:`make_contract` with every format-2 fact known."""
    return make_contract(
        base_link='pelvis', position_min_rad=(-0.1, -0.1, -1.0),
        position_max_rad=(2.0, 2.0, 1.0), velocity_limit_rad_s=(14.0, 14.0, 15.0),
        armature_kg_m2=(0.065, 0.065, 0.018),
        training=TrainingConditions(
            action_delay_policy_steps=0, tolerated_action_delay_s=0.01,
            observation_noise={'base_ang_vel': 0.2, 'joint_vel': 1.5},
            randomization=Randomization(
                friction_range=(0.4, 1.2), added_base_mass_kg=None,
                motor_strength_range=(0.8, 1.0), pd_gain_scale_range=(0.9, 1.1),
                push_interval_s=(3.0, 6.0), push_lin_vel_m_s=0.6, init_joint_noise_rad=0.1,
                init_base_lin_vel_m_s=0.3),
            command_sampling=CommandSampling((3.0, 8.0), 0.15, 0.1)),
        physics=PhysicsSpec(
            simulator='mjwarp', timestep_s=0.005, integrator='implicitfast', solver='newton',
            cone='pyramidal', iterations=10, ls_iterations=20, gravity_m_s2=(0.0, 0.0, -9.81),
            self_collision=False, floor_friction=(1.0, 0.005, 0.0001),
            robot_geom_friction=(1.0, 0.005, 0.0001)),
        **overrides)


@pytest.mark.parametrize('make', [make_contract, make_complete_contract])
def test_written_contract_reads_back_equal(tmp_path, make):
    contract = make()
    path = write_contract(contract, tmp_path / 'walk.yaml')
    assert read_contract(path) == contract
    assert path.read_text() == YAML_HEADER + contract_text(contract)
    assert contract.obs_dim == 20 and contract.action_dim == 3
    assert contract.policy_dt_s == pytest.approx(0.02)
    assert contract.onnx_path(path) == (tmp_path / 'walk.onnx').resolve()
    assert contract.onnx_path(tmp_path / 'renamed.onnx') == (tmp_path / 'renamed.onnx').resolve()


def test_unknown_facts_are_null_and_listed():
    partial = make_contract()
    assert partial.unknown_fields() == [
        'frames.base_link', 'joints.position_min_rad', 'joints.position_max_rad',
        'joints.velocity_limit_rad_s', 'joints.armature_kg_m2',
        'training.action_delay_policy_steps', 'training.tolerated_action_delay_s',
        'training.observation_noise', 'training.randomization', 'training.command_sampling',
        'physics']
    document = contract_to_dict(partial)
    assert document['physics'] is None and document['training']['randomization'] is None
    assert make_complete_contract().unknown_fields() == []
    # a switched-off randomization item is 'off', not unknown
    randomization = contract_to_dict(make_complete_contract())['training']['randomization']
    assert randomization['added_base_mass_kg'] == 'off'
    assert randomization['friction_range'] == [0.4, 1.2]


def test_code_facts_are_stated_in_every_file():
    document = contract_to_dict(make_complete_contract())
    for dotted, value in (CODE_FACTS + GAIT_CLOCK_FACTS + NOISE_FACTS + RANDOMIZATION_FACTS
                          + PHYSICS_FACTS):
        holder = document
        for key in dotted.split('.'):
            holder = holder[key]
        assert holder == value, dotted
    # planar pushes only (no vertical or angular push terms)
    assert document['training']['randomization']['push'] == (
        'planar_world_velocity_change_uniform_per_axis')
    assert document['frames']['base_link'] == document['frames']['odometry_child_frame']
    assert document['control']['pd_rate_hz'] == pytest.approx(200.0)
    assert document['observation']['gait_clock'] == {
        'period_s': 0.7, 'rate_hz': pytest.approx(1.0 / 0.7), 'features': ['sin', 'cos'],
        'phase_formula': GAIT_CLOCK_FACTS[1][1], 'runs_at_zero_command': True,
        'start_phase': 0.0, 'trained_start_phase': 'uniform_0_1'}


def test_stated_facts_are_what_policy_math_computes():
    """The facts the contract states are the behaviour of the shared observation/PD math."""
    facts = dict(CODE_FACTS + GAIT_CLOCK_FACTS)
    # sin before cos: a quarter cycle gives [1, 0]
    features = policy_math.gait_phase_features(np.float64(0.25))
    assert facts['observation.gait_clock.features'] == ['sin', 'cos']
    np.testing.assert_allclose(features, [1.0, 0.0], atol=1e-12)
    # projected gravity of an upright base is the stated world gravity direction
    np.testing.assert_allclose(policy_math.projected_gravity(np.array([1.0, 0.0, 0.0, 0.0])),
                               facts['frames.gravity_direction_world'])
    # a base yawed by 90 deg moving along world x moves along its own -y (body frame)
    yaw90 = np.array([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])
    np.testing.assert_allclose(policy_math.world_to_body(yaw90, np.array([1.0, 0.0, 0.0])),
                               [0.0, -1.0, 0.0], atol=1e-12)
    # action formula with clip, and the PD law with its clamp
    targets = policy_math.action_to_joint_targets(np.array([3.0, -0.5]), np.array([0.1, 0.2]),
                                                  np.array([0.25, 0.5]), clip=2.0)
    np.testing.assert_allclose(targets, [0.1 + 0.25 * 2.0, 0.2 + 0.5 * -0.5])
    effort = policy_math.pd_effort(np.array([0.5, 0.0]), np.array([0.4, 0.0]),
                                   np.array([1.0, -30.0]), np.array([100.0, 100.0]),
                                   np.array([2.0, 2.0]), np.array([50.0, 50.0]))
    np.testing.assert_allclose(effort, [100.0 * 0.1 - 2.0 * 1.0, 50.0])


def _document():
    return contract_to_dict(make_contract())


def _v1_document():
    """Return :func:`make_contract` as the format-1 writer wrote it."""
    return format_1_document(make_contract())


def _delete(doc, path):
    *parents, last = path
    for key in parents:
        doc = doc[key]
    del doc[last]


def _set(doc, path, value):
    *parents, last = path
    for key in parents:
        doc = doc[key]
    doc[last] = value


@pytest.mark.parametrize('path, named', [
    (('joints', 'kp_nm_per_rad'), 'joints.kp_nm_per_rad: missing'),
    (('robot',), 'robot: missing'),
    (('timing', 'decimation'), 'timing.decimation: missing'),
    (('observation', 'terms'), 'observation.terms: missing'),
    (('onnx', 'input'), 'onnx.input: missing'),
    (('commands', 'ang_vel_z_rad_s'), 'commands.ang_vel_z_rad_s: missing'),
    (('observation', 'gait_clock', 'period_s'), 'observation.gait_clock.period_s: missing'),
    (('observation', 'gait_clock'), 'observation.gait_clock: missing'),
    (('frames',), 'frames: missing'),
    (('training',), 'training: missing'),
    (('training', 'randomization'), 'training.randomization: missing'),
    (('physics',), 'physics: missing'),
    (('joints', 'armature_kg_m2'), 'joints.armature_kg_m2: missing'),
    (('observation', 'last_action', 'value'), 'observation.last_action.value: missing'),
    (('control', 'pd_law'), 'control.pd_law: missing'),
])
def test_missing_field_is_named(path, named):
    doc = _document()
    _delete(doc, path)
    with pytest.raises(ContractError, match=named.replace('.', r'\.')):
        contract_from_dict(doc)


@pytest.mark.parametrize('path, value, named', [
    (('joints', 'kd_nms_per_rad'), [1.0, 2.0], r'joints\.kd_nms_per_rad: expected 3 values'),
    (('joints', 'effort_limit_nm'), [1.0, -2.0, 3.0],
     r'joints\.effort_limit_nm\[1\]: must be > 0'),
    (('joints', 'default_pos_rad'), [0.0, float('nan'), 0.0], r'default_pos_rad\[1\]: .*finite'),
    (('joints', 'names'), ['a', 'a', 'b'], r'joints\.names: duplicate'),
    (('observation', 'terms', 0, 'name'), 'foot_forces',
     r'terms\[0\]\.name: unknown .*foot_forces'),
    (('observation', 'terms', 3, 'size'), 4, r'terms\[3\]\.size: term .joint_pos. has size 3'),
    (('observation', 'terms', 2, 'scale'), [1.0], r'terms\[2\]\.scale: expected 3 values'),
    (('onnx', 'input', 'shape'), ['batch', 19], r'onnx\.input\.shape\[1\]: ONNX shape says 19'),
    (('onnx', 'output', 'shape'), ['batch', 4], r'onnx\.output\.shape\[1\]'),
    (('format_version',), FORMAT_VERSION + 1, r'format_version: version \d+ is newer'),
    (('format_version',), 'one', r'format_version: expected an integer'),
    (('timing', 'physics_dt_s'), 0.0, r'timing\.physics_dt_s: must be > 0'),
    (('commands', 'lin_vel_x_m_s'), [1.0, -1.0], r'commands\.lin_vel_x_m_s: range low'),
    (('joints',), [1, 2], r'joints: expected a mapping'),
    (('observation', 'history_length'), 3,
     r"observation\.history_layout: this code implements 'frames_oldest_first' for "
     r"history_length 3, the contract says 'current_only'"),
    (('observation', 'history_length'), 0, r'observation\.history_length: must be >= 1'),
    (('frames', 'odometry_child_frame'), 'base_link',
     r'frames\.odometry_child_frame: must equal frames\.base_link'),
    (('control', 'pd_rate_hz'), 100.0, r'control\.pd_rate_hz: 100\.0 is not 1 / timing'),
    (('observation', 'gait_clock', 'rate_hz'), 1.0, r'gait_clock\.rate_hz: 1\.0 is not 1 / '),
    (('training', 'action_delay_policy_steps'), -1,
     r'training\.action_delay_policy_steps: must be >= 0'),
])
def test_malformed_field_is_named(path, value, named):
    doc = copy.deepcopy(_document())
    _set(doc, path, value)
    with pytest.raises(ContractError, match=named):
        contract_from_dict(doc)


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(ContractError, match='no policy contract at'):
        read_contract(tmp_path / 'absent.yaml')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('joints: [unclosed\n')
    with pytest.raises(ContractError, match='not valid YAML'):
        read_contract(bad)
    scalar = tmp_path / 'scalar.yaml'
    scalar.write_text(yaml.safe_dump(42))
    with pytest.raises(ContractError, match='expected a mapping'):
        read_contract(scalar)


def test_writer_refuses_an_inconsistent_contract(tmp_path):
    with pytest.raises(ContractError, match='kp_nm_per_rad'):
        write_contract(make_contract(kp_nm_per_rad=(1.0,)), tmp_path / 'x.yaml')
    assert not (tmp_path / 'x.yaml').exists()


@pytest.mark.parametrize('dotted, wrong', [
    ('observation.gait_clock.features', ['cos', 'sin']),
    ('frames.base_velocity_frame', 'world'),
    ('frames.base_lin_vel_point', 'center_of_mass'),
    ('observation.last_action.value', 'raw_action'),
    ('observation.last_action.initial', 1.0),
    ('observation.gait_clock.runs_at_zero_command', False),
    ('control.trained_mode', 'position'),
    ('training.observation_noise.distribution', 'gaussian'),
    ('physics.friction_combination', 'min'),
])
def test_a_fact_this_code_does_not_implement_is_refused(dotted, wrong):
    doc = contract_to_dict(make_complete_contract())
    _set(doc, dotted.split('.'), wrong)
    with pytest.raises(ContractError, match=rf'{dotted}: this code implements .* only, the '
                       rf'contract says {wrong!r}'.replace('[', r'\[').replace(']', r'\]')):
        contract_from_dict(doc)


@pytest.mark.parametrize('path, value, named', [
    (('joints', 'position_max_rad'), [2.0, 0.2, 1.0],
     r'joints\.default_pos_rad\[1\]: 0\.3 is outside the position limits \[-0\.1, 0\.2\]'),
    (('joints', 'position_min_rad'), None, r'joints\.position_min_rad: give both'),
    (('physics', 'timestep_s'), 0.002, r'physics\.timestep_s: 0\.002 differs from timing'),
    (('physics', 'self_collision'), 'no', r'physics\.self_collision: expected true or false'),
    (('training', 'observation_noise', 'half_width', 'foot_force'), 0.1,
     r'half_width\.foot_force: unknown observation term'),
    (('training', 'randomization', 'push_lin_vel_m_s'), 'off',
     r'push_lin_vel_m_s: push_interval_s and push_lin_vel_m_s must both be'),
])
def test_inconsistent_format_2_fields_are_named(path, value, named):
    doc = contract_to_dict(make_complete_contract())
    _set(doc, path, value)
    with pytest.raises(ContractError, match=named):
        contract_from_dict(doc)


def test_format_1_loads_with_the_facts_of_the_format_1_code(tmp_path):
    path = tmp_path / 'old.yaml'
    path.write_text(yaml.safe_dump(_v1_document(), sort_keys=False))
    old = read_contract(path)
    assert old.format_version == 1
    # everything format 1 recorded, and what the node runs, is as written
    assert dataclasses.replace(old, format_version=FORMAT_VERSION) == make_contract()
    assert old.gait_period_s == 0.7 and old.history_length == 1
    # what format 1 did not record is unknown, not guessed
    assert old.base_link is None and old.physics is None
    assert old.training == TrainingConditions()
    assert 'physics' in old.unknown_fields()
    # written again it is format 2, stating the code facts the format-1 code had
    again = contract_to_dict(old)
    assert again['format_version'] == 2
    assert again['observation']['gait_clock']['features'] == ['sin', 'cos']
    assert again['observation']['last_action']['value'] == 'clipped_action'


def test_format_1_errors_still_name_their_field():
    doc = _v1_document()
    del doc['observation']['gait_period_s']
    with pytest.raises(ContractError, match=r'observation\.gait_period_s: required'):
        contract_from_dict(doc)


def test_copies_with_nan_metrics_are_equal():
    """A NaN training metric (no finished episode yet) does not make two equal copies differ."""
    contract = make_contract(provenance={'final_metrics': {'mean_reward': float('nan')}})
    assert contract_difference(contract, contract_to_dict(contract)) is None
    other = make_contract(provenance={'final_metrics': {'mean_reward': 1.0}})
    assert contract_difference(contract, other) == (
        'provenance.final_metrics.mean_reward: nan against 1.0')


def test_a_stacked_observation_reads_back_with_its_layout_and_input_size(tmp_path):
    contract = make_complete_contract(history_length=3)
    path = write_contract(contract, tmp_path / 'walk.yaml')
    assert read_contract(path) == contract
    assert contract.frame_dim == 20 and contract.obs_dim == 60
    document = contract_to_dict(contract)
    observation = document['observation']
    assert observation['history_length'] == 3
    assert observation['history_layout'] == 'frames_oldest_first'
    assert observation['history_start'] == 'first_frame_repeated'
    assert document['onnx']['input']['shape'] == ['batch', 60]
    assert contract_to_dict(make_complete_contract())['observation']['history_layout'] == (
        'current_only')
    assert 'history_start' not in contract_to_dict(make_complete_contract())['observation']


@pytest.mark.parametrize('change, named', [
    (lambda doc: doc['observation'].update(history_start='zeros'),
     r"observation\.history_start: this code implements 'first_frame_repeated' only"),
    (lambda doc: doc['observation'].pop('history_formula'),
     r'observation\.history_formula: missing required field'),
    (lambda doc: doc['observation'].update(history_layout='frames_newest_first'),
     r"observation\.history_layout: this code implements 'frames_oldest_first'"),
    (lambda doc: doc['onnx']['input'].update(shape=['batch', 20]),
     r'onnx\.input\.shape\[1\]: ONNX shape says 20 but the contract implies 60'),
])
def test_a_stacked_observation_states_its_facts(change, named):
    doc = contract_to_dict(make_complete_contract(history_length=3))
    change(doc)
    with pytest.raises(ContractError, match=named):
        contract_from_dict(doc)


def test_the_stated_history_layout_is_what_policy_math_builds():
    """frames_oldest_first, first frame repeated: the policy_math history functions."""
    assert dict(HISTORY_FACTS)['observation.history_start'] == 'first_frame_repeated'
    frames = [np.full(2, float(k)) for k in range(4)]
    history = policy_math.init_history(frames[0], 3)
    np.testing.assert_array_equal(policy_math.flatten_history(history), [0, 0, 0, 0, 0, 0])
    for frame in frames[1:]:
        history = policy_math.push_history(history, frame)
    np.testing.assert_array_equal(policy_math.flatten_history(history), [1, 1, 2, 2, 3, 3])


def _with_base_lin_vel(**training):
    terms = (ObsTermSpec('base_lin_vel', 3, (2.0,) * 3),) + make_contract().obs_terms
    complete = make_complete_contract()
    return dataclasses.replace(complete, obs_terms=terms,
                               training=dataclasses.replace(complete.training, **training))


def test_the_base_velocity_error_model_reads_back_and_states_its_facts(tmp_path):
    error = BaseLinVelError(bias_m_s=0.1, scale_error=0.05, lag_policy_steps=(0, 2))
    contract = _with_base_lin_vel(base_lin_vel_error=error)
    assert read_contract(write_contract(contract, tmp_path / 'w.yaml')) == contract
    document = contract_to_dict(contract)
    stated = document['training']['base_lin_vel_error']
    assert stated['bias_m_s'] == 0.1 and stated['lag_policy_steps'] == [0, 2]
    for dotted, value in LIN_VEL_ERROR_FACTS:
        assert stated[dotted.rsplit('.', 1)[1]] == value
    assert contract.unknown_fields() == []
    # no error model: no section at all, so files older than the section keep their text
    plain = _with_base_lin_vel()
    assert 'base_lin_vel_error' not in contract_to_dict(plain)['training']
    assert plain.unknown_fields() == []
    del document['training']['base_lin_vel_error']
    assert contract_from_dict(document) == plain


@pytest.mark.parametrize('field, value, named', [
    ('lag_policy_steps', [2, 1], r'base_lin_vel_error\.lag_policy_steps: range low 2'),
    ('lag_policy_steps', [0.5, 1], r'lag_policy_steps\[0\]: expected an integer'),
    ('bias_m_s', -0.1, r'base_lin_vel_error\.bias_m_s: must be >= 0'),
    ('drawn', 'per_step', r'base_lin_vel_error\.drawn: this code implements'),
])
def test_a_malformed_base_velocity_error_is_named(field, value, named):
    error = BaseLinVelError(bias_m_s=0.1, scale_error=0.05, lag_policy_steps=(0, 2))
    doc = contract_to_dict(_with_base_lin_vel(base_lin_vel_error=error))
    doc['training']['base_lin_vel_error'][field] = value
    with pytest.raises(ContractError, match=named):
        contract_from_dict(doc)


# ----------------------------------------------------------------------------- later randomization

LATER_ITEMS = {
    'link_mass_scale_range': (0.9, 1.1), 'base_com_offset_m': (0.025, 0.025, 0.03),
    'kd_scale_range': (0.95, 1.05), 'armature_scale_range': (0.9, 1.1),
    'joint_friction_nm': (0.0, 1.0), 'joint_damping_nms_per_rad': (0.0, 0.3),
    'latency': Latency(action_delay_ms=(5.0, 12.0), action_delay_physics_steps=(1, 2),
                       obs_delay_ms=(0.0, 20.0), obs_delay_physics_steps=(0, 4)),
    'gyro_bias_rad_s': 0.05, 'gravity_bias': 0.03, 'encoder_bias_rad': 0.015,
    'push_lin_vel_z_m_s': 0.4, 'push_ang_vel_rad_s': (0.52, 0.52, 0.78)}
"""Every randomization item added after the first format-2 files, switched on."""

TERRAIN = TerrainSpec(kinds=('slope_up', 'rough'), num_levels=10, max_slope_deg=15.0,
                      max_rough_m=0.04, tile_size_m=8.0, curriculum=True)


def _with_later_items(terrain=None, **items):
    complete = make_complete_contract()
    randomization = dataclasses.replace(complete.training.randomization, **items)
    return dataclasses.replace(complete, training=dataclasses.replace(
        complete.training, randomization=randomization, terrain=terrain))


def test_later_randomization_items_and_the_terrain_read_back_where_they_were_on(tmp_path):
    contract = _with_later_items(terrain=TERRAIN, **LATER_ITEMS)
    assert read_contract(write_contract(contract, tmp_path / 'w.yaml')) == contract
    document = contract_to_dict(contract)
    stated = document['training']['randomization']
    assert stated['latency'] == {'action_delay_ms': [5.0, 12.0],
                                 'action_delay_physics_steps': [1, 2],
                                 'obs_delay_ms': [0.0, 20.0], 'obs_delay_physics_steps': [0, 4]}
    assert stated['base_com_offset_m'] == [0.025, 0.025, 0.03]
    assert stated['push_lin_vel_z_m_s'] == 0.4
    # the pushes are stated as what they changed: world x, y, z and the body rates
    assert stated['push'] == ('world_velocity_change_uniform_per_axis'
                              '_and_body_angular_velocity_change_uniform_per_axis')
    assert document['training']['terrain']['kinds'] == ['slope_up', 'rough']
    assert contract.unknown_fields() == []


def test_switched_off_later_items_and_flat_ground_leave_the_file_as_before():
    plain = make_complete_contract()
    document = contract_to_dict(plain)
    assert set(LATER_ITEMS).isdisjoint(document['training']['randomization'])
    assert 'terrain' not in document['training']
    assert contract_to_dict(_with_later_items()) == document
    # an angular push alone keeps the planar linear change
    angular = contract_to_dict(_with_later_items(push_ang_vel_rad_s=(0.0, 0.0, 0.5)))
    assert angular['training']['randomization']['push'] == (
        'planar_world_velocity_change_uniform_per_axis'
        '_and_body_angular_velocity_change_uniform_per_axis')


@pytest.mark.parametrize('change, named', [
    ({'push': 'planar_world_velocity_change_uniform_per_axis'},
     r'randomization\.push: the stated push terms mean .world_velocity_change'),
    ({'push_lin_vel_m_s': 'off', 'push_interval_s': 'off'},
     r'push_lin_vel_m_s: push_lin_vel_z_m_s and push_ang_vel_rad_s need the pushes on'),
    ({'push_lin_vel_z_m_s': 0.0}, r'push_lin_vel_z_m_s: must be > 0'),
    ({'gravity_bias': None}, r'gyro_bias_rad_s: the IMU bias gives gyro_bias_rad_s and '),
    ({'latency': {'action_delay_ms': [5.0, 12.0], 'action_delay_physics_steps': [2, 1],
                  'obs_delay_ms': [0.0, 20.0], 'obs_delay_physics_steps': [0, 4]}},
     r'latency\.action_delay_physics_steps: range low 2 is above high 1'),
    ({'joint_friction_nm': [-0.1, 1.0]}, r'joint_friction_nm\[0\]: must be >= 0'),
])
def test_a_malformed_later_randomization_item_is_named(change, named):
    doc = contract_to_dict(_with_later_items(**LATER_ITEMS))
    doc['training']['randomization'].update(change)
    with pytest.raises(ContractError, match=named):
        contract_from_dict(doc)


def test_a_malformed_terrain_is_named():
    doc = contract_to_dict(_with_later_items(terrain=TERRAIN))
    doc['training']['terrain']['curriculum'] = 'yes'
    with pytest.raises(ContractError, match=r'training\.terrain\.curriculum: expected true'):
        contract_from_dict(doc)
