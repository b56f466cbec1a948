"""
The shipped policies (models/humanoid_walk, models/humanoid_walk_base_vel) and their contracts.

``humanoid_walk``, the default, is iteration 4768 of the real-world training run, copied from
its snapshot (``benchmarks/time_to_policy_real_world/snapshot_it04768/``) with ``python -m
training.export copy``: no base velocity in its observation. ``humanoid_walk_base_vel`` is the
flat-ground policy with base velocity, trained before contract format 2 existed and upgraded
with ``python -m training.export upgrade``. Each carries contract format 2 inside its ONNX
file; the action delay each tolerates was measured by the robustness suite and written with
``python -m training.export record-tolerance`` from its committed report.
"""

import json
from pathlib import Path
import shutil
import subprocess

from humanoid_rl_ros.core.contract import (contract_text, graph_sha256, ONNX_METADATA_KEY,
                                           read_contract, YAML_HEADER)
from humanoid_rl_ros.robot.description import load_robot
import onnx
import pytest
from training.export import main, REPO_ROOT
from training.export_tolerance import delay_tolerance_from_report

MODELS = Path(__file__).resolve().parents[1] / 'models'
SNAPSHOT_ONNX = (REPO_ROOT / 'benchmarks' / 'time_to_policy_real_world' / 'snapshot_it04768'
                 / 'real_world_it04768.onnx')

SHIPPED = {
    # name: (graph sha256, committed robustness report)
    'humanoid_walk': ('858d1e61938e5551fb6524355cfe77377be8464d24d54c755c213f321666a21b',
                      'benchmarks/robustness/robustness_report.json'),
    'humanoid_walk_base_vel': ('3a3fb93fd9da5e7b7bdc87fd077a80a40838f405a8dcd00d926764f2a5a36c7a',
                               'benchmarks/robustness_base_vel/robustness_report.json'),
}
"""SHA-256 of each serialized graph (weights included) as trained, and its suite report."""

pytestmark = pytest.mark.skipif(not (MODELS / 'humanoid_walk.onnx').is_file(),
                                reason='no shipped policy')
each_policy = pytest.mark.parametrize('name', sorted(SHIPPED))


@each_policy
def test_the_onnx_carries_format_2_and_the_yaml_is_its_copy(name):
    onnx_path, yaml_path = MODELS / f'{name}.onnx', MODELS / f'{name}.yaml'
    metadata = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert yaml_path.read_text() == YAML_HEADER + metadata[ONNX_METADATA_KEY]
    contract = read_contract(onnx_path)
    assert contract == read_contract(yaml_path)
    assert contract.format_version == 2 and contract.onnx_file == f'{name}.onnx'
    assert contract_text(contract) == metadata[ONNX_METADATA_KEY]


@each_policy
def test_the_graph_and_weights_are_the_trained_ones(name):
    assert graph_sha256(MODELS / f'{name}.onnx') == SHIPPED[name][0]


def test_the_default_policy_is_the_committed_real_world_snapshot():
    assert graph_sha256(SNAPSHOT_ONNX) == SHIPPED['humanoid_walk'][0]
    shipped = read_contract(MODELS / 'humanoid_walk.yaml')
    snapshot = read_contract(SNAPSHOT_ONNX)
    assert shipped.term_names() == snapshot.term_names()
    assert shipped.provenance == snapshot.provenance


@each_policy
def test_no_fact_is_unknown_and_the_delay_tolerance_is_the_committed_reports(name):
    """5 ms with the PD law in the node (10 ms fell), 40 ms and more in the drive: measured."""
    sha, report_name = SHIPPED[name]
    contract = read_contract(MODELS / f'{name}.onnx')
    assert contract.unknown_fields() == []
    report = json.loads((REPO_ROOT / report_name).read_text())
    measured = contract.training.action_delay_tolerance
    assert measured == delay_tolerance_from_report(report, sha, report_name)
    assert measured.source.policy_graph_sha256 == sha
    assert contract.training.tolerated_delay_s(pd_in_drive=False) == 0.005
    assert measured.pd_in_node.first_failed_s == 0.01
    assert contract.training.tolerated_delay_s(pd_in_drive=True) == 0.04
    assert measured.pd_in_drive.first_failed_s is None
    assert contract.training.tolerated_action_delay_s == 0.005


def test_the_default_policy_was_trained_for_the_real_world():
    """What the contract says of its training is the recorded real-world config."""
    contract = read_contract(MODELS / 'humanoid_walk.yaml')
    assert 'base_lin_vel' not in contract.term_names()
    provenance = contract.provenance
    assert provenance['iterations'] == 4768 and provenance['backend'] == 'mjwarp'
    env = provenance['config']['env']
    assert env['observations']['use_base_lin_vel'] is False
    assert env['terrain']['enabled'] is True and env['foot_collision'] == 'sole_spheres'
    assert env['rewards']['tracking_sigma'] == 0.25
    r = env['randomization']
    assert r['latency'] is True
    randomization = contract.training.randomization
    assert randomization.friction_range == tuple(r['friction_range'])
    assert randomization.motor_strength_range == tuple(r['motor_strength_range'])
    assert randomization.latency is not None  # trained with latency: the contract says so
    # the noise of the terms the actor observes (the config also sets one for base velocity)
    noise = env['observations']['noise']
    assert contract.training.observation_noise == {
        k: v for k, v in noise.items() if k in contract.term_names()}


def test_the_upgrade_took_the_training_facts_from_the_recorded_config():
    contract = read_contract(MODELS / 'humanoid_walk_base_vel.onnx')
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


@each_policy
def test_the_robot_facts_still_match_the_robot_files(name):
    """The robot files the facts came from are unchanged (re-export if the robot changes)."""
    contract = read_contract(MODELS / f'{name}.onnx')
    robot = load_robot(contract.robot)
    assert contract.base_link == robot.base_link
    assert contract.armature_kg_m2 == tuple(robot.armature_kg_m2)
    assert contract.velocity_limit_rad_s == tuple(robot.velocity_limit_rad_s)
    assert contract.joint_names == robot.joint_names


@each_policy
def test_the_delay_tolerance_is_what_the_command_writes_from_the_report(name, tmp_path, capsys):
    """``record-tolerance`` on a copy of the shipped policy writes the shipped contract."""
    report = REPO_ROOT / SHIPPED[name][1]
    commit = json.loads(report.read_text())['commit'].removesuffix('-dirty')
    if shutil.which('git') is None or subprocess.run(
            ['git', '-C', str(REPO_ROOT), 'cat-file', '-e', commit],
            capture_output=True).returncode != 0:
        pytest.skip(f'commit {commit} of the committed report is not in a git history here')
    for suffix in ('.onnx', '.yaml'):
        shutil.copy(MODELS / f'{name}{suffix}', tmp_path)
    copy = tmp_path / f'{name}.yaml'
    main(['record-tolerance', str(copy), str(report)])
    out = capsys.readouterr().out
    assert 'training.tolerated_action_delay_s = 0.005 (wherever the PD law runs)' in out
    assert 'PD law in the node: 5 ms (10 ms fell); robustness suite full' in out
    assert 'PD law in the drive: 40 ms or more (no delay tried fell)' in out
    assert copy.read_text() == (MODELS / f'{name}.yaml').read_text()


def test_copy_renames_the_policy_and_leaves_its_graph(tmp_path, capsys):
    """``copy``: the graph byte for byte, the contract naming the new file; the source kept."""
    src = tmp_path / 'src'
    src.mkdir()
    for suffix in ('.onnx', '.yaml'):
        shutil.copy(MODELS / f'humanoid_walk{suffix}', src)
    source = src / 'humanoid_walk.yaml'
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out = tmp_path / 'sub' / 'my_walk.onnx'
    main(['copy', str(source), str(out)])
    assert 'my_walk.onnx' in capsys.readouterr().out
    copied = read_contract(out.with_suffix('.yaml'))
    assert copied.onnx_file == 'my_walk.onnx' and copied == read_contract(out)
    assert graph_sha256(out) == SHIPPED['humanoid_walk'][0]
    original = read_contract(source)
    assert copied.term_names() == original.term_names()
    assert copied.provenance == original.provenance
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # the source untouched
    with pytest.raises(ValueError, match='is the policy being copied'):
        main(['copy', str(source), str(src / 'humanoid_walk.onnx')])
    with pytest.raises(ValueError, match='must be an .onnx file'):
        main(['copy', str(source), str(tmp_path / 'x.yaml')])
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    # a contract under another name than its ONNX: the copy's YAML would overwrite it
    alias = src / 'alias.yaml'
    shutil.copy(source, alias)
    with pytest.raises(ValueError, match='is the policy being copied'):
        main(['copy', str(alias), str(src / 'alias.onnx')])
    assert alias.read_bytes() == before['humanoid_walk.yaml']
