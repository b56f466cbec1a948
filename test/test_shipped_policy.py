"""
The shipped policy (models/humanoid_walk) carries contract format 2 inside its ONNX file.

It was trained before format 2 existed and upgraded with ``python -m training.export upgrade``:
the graph and weights are the trained ones, the new facts come from the recorded training
config, the robot files and the code; what none of them records is null.
"""

import hashlib
from pathlib import Path

from humanoid_rl_ros.core.contract import (contract_text, ONNX_METADATA_KEY, read_contract,
                                           YAML_HEADER)
from humanoid_rl_ros.robot.description import load_robot
import onnx
import pytest

MODELS = Path(__file__).resolve().parents[1] / 'models'
ONNX_PATH = MODELS / 'humanoid_walk.onnx'
YAML_PATH = MODELS / 'humanoid_walk.yaml'

TRAINED_GRAPH_SHA256 = '3a3fb93fd9da5e7b7bdc87fd077a80a40838f405a8dcd00d926764f2a5a36c7a'
"""SHA-256 of the serialized graph (weights included) as trained and shipped in format 1."""

pytestmark = pytest.mark.skipif(not ONNX_PATH.is_file(), reason='no shipped policy')


def test_the_onnx_carries_format_2_and_the_yaml_is_its_copy():
    metadata = {p.key: p.value for p in onnx.load(str(ONNX_PATH)).metadata_props}
    assert YAML_PATH.read_text() == YAML_HEADER + metadata[ONNX_METADATA_KEY]
    contract = read_contract(ONNX_PATH)
    assert contract == read_contract(YAML_PATH)
    assert contract.format_version == 2
    assert contract_text(contract) == metadata[ONNX_METADATA_KEY]


def test_the_graph_and_weights_are_the_trained_ones():
    graph = onnx.load(str(ONNX_PATH)).graph.SerializeToString()
    assert hashlib.sha256(graph).hexdigest() == TRAINED_GRAPH_SHA256


def test_only_the_unmeasured_delay_tolerance_is_unknown():
    contract = read_contract(ONNX_PATH)
    assert contract.unknown_fields() == ['training.tolerated_action_delay_s']


def test_the_upgrade_took_the_training_facts_from_the_recorded_config():
    contract = read_contract(ONNX_PATH)
    provenance = contract.provenance
    assert provenance['commit'] == 'cfef2091b542839b38c8e00b288dcd1145af3443'
    assert provenance['contract_upgrade']['from_format_version'] == 1
    env = provenance['config']['env']
    r = env['randomization']
    training = contract.training
    assert training.action_delay_policy_steps == (1 if r['action_latency'] else 0) == 0
    assert training.observation_noise == env['observations']['noise']  # all actor terms
    assert training.randomization.motor_strength_range == tuple(r['motor_strength_range'])
    assert training.randomization.friction_range == tuple(r['friction_range'])
    assert training.randomization.push_interval_s == tuple(r['push_interval_s'])
    assert training.command_sampling.small_command_m_s == env['commands']['small_command_m_s']
    assert contract.physics.simulator == provenance['backend'] == 'mjwarp'
    assert contract.physics.timestep_s == env['physics_dt_s']


def test_the_robot_facts_still_match_the_robot_files():
    """The robot files the facts came from are unchanged (re-upgrade if the robot changes)."""
    contract = read_contract(ONNX_PATH)
    robot = load_robot(contract.robot)
    assert contract.base_link == robot.base_link
    assert contract.armature_kg_m2 == tuple(robot.armature_kg_m2)
    assert contract.velocity_limit_rad_s == tuple(robot.velocity_limit_rad_s)
    assert contract.joint_names == robot.joint_names
