"""
The ros2_control kit: the ``<ros2_control>`` URDF variant and config/controllers.yaml.

Both committed files are regenerated and compared; the joints, their order and their limits are
checked against robot.yaml, the policy contract and the policy node's ros2_control preset.
"""

import dataclasses
from pathlib import Path
import xml.etree.ElementTree as ElementTree

from humanoid_rl_ros.core.contract import read_contract
from humanoid_rl_ros.integration import ros2_control
from humanoid_rl_ros.integration.ros2_control import (EFFORT_CONTROLLER, Ros2ControlKitConfig,
                                                      variant_path)
from humanoid_rl_ros.robot.description import load_robot, models_dir
from humanoid_rl_ros.ros import launch_config
import mujoco
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICY = models_dir() / 'humanoid_walk.yaml'
CONTROLLERS = REPO_ROOT / 'config' / 'controllers.yaml'


@pytest.fixture(scope='module')
def robot():
    return load_robot('kestrel')


@pytest.fixture(scope='module')
def variant(robot) -> ElementTree.Element:
    return ElementTree.parse(variant_path(robot)).getroot()


def test_committed_files_are_what_the_generator_writes(robot) -> None:
    """Regenerating reproduces kestrel.ros2_control.urdf and config/controllers.yaml exactly."""
    (urdf_path, urdf), (controllers_path, controllers) = ros2_control.generate(
        Ros2ControlKitConfig(policy=POLICY, controllers_out=CONTROLLERS))
    assert urdf_path == models_dir() / 'robots' / 'kestrel' / 'kestrel.ros2_control.urdf'
    assert urdf == urdf_path.read_text(), 'stale: python -m humanoid_rl_ros.integration.' \
        'ros2_control --policy models/humanoid_walk.yaml'
    assert controllers == controllers_path.read_text()
    assert ros2_control.main(['--policy', str(POLICY), '--controllers-out', str(CONTROLLERS),
                              '--check']) == 0


def test_variant_is_the_urdf_plus_one_block(robot) -> None:
    """Removing the generated block gives kestrel.urdf byte for byte: the two cannot diverge."""
    text = variant_path(robot).read_text()
    start = text.index('  <!-- GENERATED')
    end = text.index('</ros2_control>\n') + len('</ros2_control>\n')
    assert text[:start] + text[end:] == robot.description_path.read_text()


def test_interfaces_per_joint_in_policy_order(robot, variant) -> None:
    """Effort commands within the effort limit, position (default pose) and velocity states."""
    blocks = variant.findall('ros2_control')
    assert len(blocks) == 1 and blocks[0].get('type') == 'system'
    assert blocks[0].findtext('hardware/plugin') == ros2_control.MOCK_HARDWARE
    joints = blocks[0].findall('joint')
    assert [j.get('name') for j in joints] == list(robot.joint_names)
    assert [j.get('name') for j in joints] == list(read_contract(POLICY).joint_names)
    for joint, spec in zip(joints, robot.joints):
        commands = joint.findall('command_interface')
        assert [c.get('name') for c in commands] == ['effort']
        params = {p.get('name'): float(p.text) for p in commands[0].findall('param')}
        assert params == {'min': -spec.effort_limit_nm, 'max': spec.effort_limit_nm}
        states = joint.findall('state_interface')
        assert [s.get('name') for s in states] == ['position', 'velocity']
        assert float(states[0].findtext('param')) == pytest.approx(spec.default_pos_rad)
    # Knee: 200 N*m, default 0.4 rad.
    knee = joints[list(robot.joint_names).index('left_knee_joint')]
    assert knee.find('command_interface/param[@name="max"]').text == '200.0'
    assert knee.find('state_interface/param').text == '0.4'


def test_variant_compiles_like_the_urdf(robot) -> None:
    """The variant compiles in MuJoCo into the same model (the block is ignored by simulators)."""
    plain = mujoco.MjModel.from_xml_path(str(robot.description_path))
    extended = mujoco.MjModel.from_xml_path(str(variant_path(robot)))
    assert (extended.nq, extended.njnt, extended.nbody) == (plain.nq, plain.njnt, plain.nbody)


def test_controllers_agree_with_the_robot_the_contract_and_the_preset(robot) -> None:
    """effort_controller: effort interface, policy joint order; the preset publishes there."""
    params = yaml.safe_load(CONTROLLERS.read_text())
    manager = params['controller_manager']['ros__parameters']
    assert manager['update_rate'] == 200  # 1 / physics_dt_s = 1 / 0.005 s
    assert manager['joint_state_broadcaster']['type'] == (
        'joint_state_broadcaster/JointStateBroadcaster')
    assert manager[EFFORT_CONTROLLER]['type'] == (
        'forward_command_controller/ForwardCommandController')
    effort = params[EFFORT_CONTROLLER]['ros__parameters']
    assert effort['interface_name'] == 'effort'
    assert effort['joints'] == list(robot.joint_names) == list(read_contract(POLICY).joint_names)
    preset = yaml.safe_load((REPO_ROOT / 'config' / 'policy_ros2_control.yaml').read_text())
    assert preset['/**']['ros__parameters']['output_joint_order'] == effort['joints']
    assert ('joint_command', f'/{EFFORT_CONTROLLER}/commands') in (
        launch_config.PRESET_REMAPPINGS['ros2_control'])


def test_a_contract_for_other_joints_is_refused(robot) -> None:
    """A contract whose joint order differs from robot.yaml is refused, naming both lists."""
    contract = read_contract(POLICY)
    ros2_control.check_joint_order(robot, contract)
    names = list(contract.joint_names)
    names[0], names[1] = names[1], names[0]
    swapped = dataclasses.replace(contract, joint_names=tuple(names))
    with pytest.raises(ValueError, match='left_hip_roll_joint.*policy order'):
        ros2_control.check_joint_order(robot, swapped)


def test_a_urdf_with_a_block_already_is_refused(robot) -> None:
    """Generating from the variant itself would nest blocks: refused."""
    with pytest.raises(ValueError, match='already has a <ros2_control>'):
        ros2_control.ros2_control_urdf(robot, variant_path(robot).read_text())


def test_the_robot_loader_still_reads_kestrel_with_two_urdfs() -> None:
    """robot.yaml names kestrel.urdf: the second URDF in the folder changes nothing."""
    robot = load_robot('kestrel')
    assert robot.description_path.name == 'kestrel.urdf'
    assert launch_config.ROBOT_URDF[-1] == 'kestrel.urdf'
