"""
The shipped policy (models/humanoid_walk) carries contract format 2 inside its ONNX file.

It was trained before format 2 existed and upgraded with ``python -m training.export upgrade``:
the graph and weights are the trained ones, the new facts come from the recorded training
config, the robot files and the code. The action delay it tolerates was measured by the
robustness suite and written with ``python -m training.export record-tolerance`` from the
committed report (``benchmarks/robustness/robustness_report.json``).
"""

import hashlib
import json
from pathlib import Path
import shutil
import subprocess

from humanoid_rl_ros.core.contract import (contract_text, ONNX_METADATA_KEY, read_contract,
                                           YAML_HEADER)
from humanoid_rl_ros.robot.description import load_robot
import onnx
import pytest
from training.export import main, REPO_ROOT
from training.export_tolerance import delay_tolerance_from_report

MODELS = Path(__file__).resolve().parents[1] / 'models'
ONNX_PATH = MODELS / 'humanoid_walk.onnx'
YAML_PATH = MODELS / 'humanoid_walk.yaml'
REPORT_NAME = 'benchmarks/robustness/robustness_report.json'

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


def test_no_fact_is_unknown_and_the_delay_tolerance_is_the_committed_reports():
    """5 ms with the PD law in the node (10 ms fell), 40 ms and more in the drive: measured."""
    contract = read_contract(ONNX_PATH)
    assert contract.unknown_fields() == []
    report = json.loads((MODELS.parent / REPORT_NAME).read_text())
    measured = contract.training.action_delay_tolerance
    assert measured == delay_tolerance_from_report(report, TRAINED_GRAPH_SHA256, REPORT_NAME)
    assert measured.source.policy_graph_sha256 == TRAINED_GRAPH_SHA256
    assert contract.training.tolerated_delay_s(pd_in_drive=False) == 0.005
    assert measured.pd_in_node.first_failed_s == 0.01
    assert contract.training.tolerated_delay_s(pd_in_drive=True) == 0.04
    assert measured.pd_in_drive.first_failed_s is None
    assert contract.training.tolerated_action_delay_s == 0.005


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


def test_the_delay_tolerance_is_what_the_command_writes_from_the_report(tmp_path, capsys):
    """``record-tolerance`` on a copy of the shipped policy writes the shipped contract."""
    report = MODELS.parent / REPORT_NAME
    commit = json.loads(report.read_text())['commit']
    if shutil.which('git') is None or subprocess.run(
            ['git', '-C', str(REPO_ROOT), 'cat-file', '-e', commit],
            capture_output=True).returncode != 0:
        pytest.skip(f'commit {commit} of the committed report is not in a git history here')
    for path in (ONNX_PATH, YAML_PATH):
        shutil.copy(path, tmp_path)
    copy = tmp_path / YAML_PATH.name
    main(['record-tolerance', str(copy), str(report)])
    out = capsys.readouterr().out
    assert 'training.tolerated_action_delay_s = 0.005 (wherever the PD law runs)' in out
    assert 'PD law in the node: 5 ms (10 ms fell); robustness suite full' in out
    assert 'PD law in the drive: 40 ms or more (no delay tried fell)' in out
    assert copy.read_text() == YAML_PATH.read_text()
