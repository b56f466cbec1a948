"""Tests of the policy contract reader and writer: round trip and named errors."""

import copy
import dataclasses

from humanoid_rl_ros.core.contract import (
    CommandRanges, contract_from_dict, contract_to_dict, ContractError, FORMAT_VERSION,
    ObsTermSpec, PolicyContract, read_contract, write_contract)
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


def test_written_contract_reads_back_equal(tmp_path):
    contract = make_contract()
    path = write_contract(contract, tmp_path / 'walk.yaml')
    assert read_contract(path) == contract
    assert contract.obs_dim == 20 and contract.action_dim == 3
    assert contract.policy_dt_s == pytest.approx(0.02)
    assert contract.onnx_path(path) == (tmp_path / 'walk.onnx').resolve()


def _document():
    return contract_to_dict(make_contract())


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
    (('observation', 'gait_period_s'), 'observation.gait_period_s: required'),
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
