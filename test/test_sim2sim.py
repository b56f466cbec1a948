"""Sim-to-sim in PyBullet: state conventions, rotor inertia, and the shipped policy standing."""

import json
import math
from pathlib import Path
import xml.etree.ElementTree as ElementTree

from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from humanoid_rl_ros.robot.description import load_robot, models_dir, RobotConfig
from humanoid_rl_ros.robot.mujoco_model import joint_dof_adr
from humanoid_rl_ros.sim.mujoco_sim import MujocoRobotSim
import mujoco
import numpy as np
import pytest
from training.evaluate import EvalConfig, run_case
from training.sim2sim.pybullet_sim import PyBulletConfig, PyBulletRobotSim, urdf_with_rotors
from training.sim2sim.run import main, select_cases

SHIPPED = models_dir() / 'humanoid_walk.yaml'
HALF_SQRT2 = math.sqrt(0.5)


@pytest.fixture(scope='module')
def robot() -> RobotConfig:
    """Load the project's robot once."""
    return load_robot('kestrel')


@pytest.fixture(scope='module')
def sim(robot: RobotConfig) -> PyBulletRobotSim:
    """Return one PyBullet robot (rotor armature) shared by the tests of this module."""
    sim = PyBulletRobotSim(robot, 0.005)
    yield sim
    sim.close()


def test_base_quaternion_is_wxyz_not_pybullets_xyzw(sim: PyBulletRobotSim) -> None:
    sim.reset(yaw_rad=math.pi / 2)
    # a yaw of 90 deg: w = z = sqrt(1/2); PyBullet itself reports (0, 0, sqrt(1/2), sqrt(1/2))
    np.testing.assert_allclose(sim.base_quat_wxyz, [HALF_SQRT2, 0.0, 0.0, HALF_SQRT2],
                               atol=1e-9)
    np.testing.assert_allclose(sim.client.getBasePositionAndOrientation(sim.body_id)[1],
                               [0.0, 0.0, HALF_SQRT2, HALF_SQRT2], atol=1e-9)
    # an orientation set through PyBullet (x, y, z, w) reads back reordered
    xyzw = (0.1, -0.2, 0.3, math.sqrt(1.0 - 0.14))
    sim.client.resetBasePositionAndOrientation(sim.body_id, [0.0, 0.0, 1.0], xyzw)
    sim.refresh()
    np.testing.assert_allclose(sim.base_quat_wxyz, [xyzw[3], 0.1, -0.2, 0.3], atol=1e-9)
    # the base z axis is tilted by acos(1 - 2 (x^2 + y^2)) = acos(0.9)
    assert sim.tilt_rad() == pytest.approx(math.acos(0.9), abs=1e-9)


def test_base_velocities_are_read_in_the_body_frame(sim: PyBulletRobotSim) -> None:
    sim.reset(yaw_rad=math.pi / 2)  # body x = world y, body y = world -x
    sim.client.resetBaseVelocity(sim.body_id, [1.0, 0.0, 0.0], [0.2, 0.0, 0.5])
    sim.refresh()
    np.testing.assert_allclose(sim.base_lin_vel_world_m_s, [1.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(sim.base_lin_vel_body_m_s, [0.0, -1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(sim.base_ang_vel_body_rad_s, [0.0, -0.2, 0.5], atol=1e-9)
    # a push adds a world-frame velocity to the base
    sim.push([0.0, 0.5, 0.0])
    np.testing.assert_allclose(sim.base_lin_vel_world_m_s, [1.0, 0.5, 0.0], atol=1e-9)
    np.testing.assert_allclose(sim.base_lin_vel_body_m_s, [0.5, -1.0, 0.0], atol=1e-9)


def test_reset_places_base_and_joints_by_name_in_policy_order(sim: PyBulletRobotSim,
                                                              robot: RobotConfig) -> None:
    pose = robot.default_pos_rad + np.linspace(-0.05, 0.05, robot.num_joints)
    sim.reset(base_xy_m=(1.0, -2.0), joint_pos_rad=pose)
    np.testing.assert_allclose(sim.base_pos_m, [1.0, -2.0, robot.nominal_base_height_m],
                               atol=1e-9)
    np.testing.assert_allclose(sim.joint_pos_rad, pose, atol=1e-9)
    # by name: PyBullet's own joint called left_knee_joint holds the knee's entry
    by_name = {sim.client.getJointInfo(sim.body_id, i)[1].decode(): i
               for i in range(sim.client.getNumJoints(sim.body_id))}
    knee = robot.joint_names.index('left_knee_joint')
    assert sim.client.getJointState(sim.body_id, by_name['left_knee_joint'])[0] == (
        pytest.approx(pose[knee]))
    with pytest.raises(ValueError, match='shape'):
        sim.step(np.zeros(robot.num_joints - 1))


def test_rotors_give_mujocos_joint_inertia(sim: PyBulletRobotSim, robot: RobotConfig) -> None:
    """The geared rotors put each joint's armature on its diagonal, as MuJoCo's armature."""
    sim.reset()
    pybullet_inertia = sim.joint_inertia_kg_m2()
    mj = MujocoRobotSim(robot)
    full = np.zeros((mj.model.nv, mj.model.nv))
    mujoco.mj_fullM(mj.model, mj.data, full)
    adr = joint_dof_adr(mj.model, robot)
    mujoco_inertia = full[np.ix_(adr, adr)]
    # O(1/N) coupling of the rotors to their parents' rotation: under 1 % of the largest entry
    assert np.abs(pybullet_inertia - mujoco_inertia).max() < 0.01 * np.abs(mujoco_inertia).max()
    bare = PyBulletRobotSim(robot, 0.005, PyBulletConfig(armature='none'))
    try:
        added = np.diag(pybullet_inertia) - np.diag(bare.joint_inertia_kg_m2())
    finally:
        bare.close()
    # each joint's own diagonal gains its rotor inertia, e.g. 0.065 kg m^2 at the knees (plus
    # the O(1/N^2) inertia of the rotors further down the leg: 1.4 % at the hip roll)
    np.testing.assert_allclose(added, robot.armature_kg_m2, rtol=0.02)


def test_urdf_with_rotors_adds_a_geared_rotor_per_joint(robot: RobotConfig) -> None:
    text, rotors = urdf_with_rotors(robot.description_path,
                                    {'left_knee_joint': 0.065, 'torso_yaw_joint': 0.0}, 20.0)
    assert rotors == {'left_knee_joint': 'left_knee_joint__rotor'}  # zero armature: no rotor
    root = ElementTree.fromstring(text)
    joint = root.find("joint[@name='left_knee_joint__rotor']")
    assert joint.get('type') == 'continuous'
    assert joint.find('parent').get('link') == 'left_thigh_link'  # the knee's parent
    assert joint.find('axis').get('xyz') == '0 1 0'
    knee = root.find("joint[@name='left_knee_joint']")
    assert joint.find('origin').get('xyz') == knee.find('origin').get('xyz')
    inertia = root.find("link[@name='left_knee_joint__rotor']/inertial/inertia")
    # J / N^2 = 0.065 / 400 about the axis (y), 0.6 of that about x and z
    assert float(inertia.get('iyy')) == pytest.approx(1.625e-4)
    assert float(inertia.get('ixx')) == pytest.approx(0.975e-4)
    assert float(inertia.get('izz')) == pytest.approx(0.975e-4)
    with pytest.raises(ValueError, match='no_such_joint'):
        urdf_with_rotors(robot.description_path, {'no_such_joint': 0.01}, 20.0)


def test_config_and_command_names_are_checked() -> None:
    with pytest.raises(ValueError, match='substeps'):
        PyBulletConfig(substeps=0)
    with pytest.raises(ValueError, match="'fly'"):
        select_cases(['stand', 'fly'])
    assert [c.name for c in select_cases(['turn_0.8', 'stand'])] == ['turn_0.8', 'stand']


@pytest.mark.skipif(not SHIPPED.is_file(), reason='no trained policy ships in models/')
def test_shipped_policy_stands_in_pybullet(sim: PyBulletRobotSim) -> None:
    """2 s through the policy node's controller: the base stays up, level and in place."""
    runtime = PolicyRuntime.load(SHIPPED)
    cfg = EvalConfig(duration_s=1.5, settle_s=0.3, rise_s=0.5, seeds=1, pushes=(False,))
    result = run_case(runtime, sim, select_cases(['stand'])[0], 0, False, cfg)
    assert not result.fell
    assert sim.time_s == pytest.approx(2.0)
    assert abs(sim.base_pos_m[2] - sim.robot.nominal_base_height_m) < 0.05
    assert sim.tilt_rad() < 0.15
    assert np.hypot(*sim.base_pos_m[:2]) < 0.1
    assert result.lin_vel_error_m_s < 0.15
    assert sim.max_gear_slip_rad_s < 0.5  # the rotors follow their joints


@pytest.mark.skipif(not SHIPPED.is_file(), reason='no trained policy ships in models/')
def test_cli_writes_the_report(tmp_path: Path) -> None:
    status = main([str(SHIPPED), '--engine', 'pybullet', '--out', str(tmp_path),
                   '--commands', 'stand', '--duration-s', '1.0', '--settle-s', '0.2',
                   '--rise-s', '0.3', '--seeds', '1', '--pushes', 'False'])
    report = json.loads((tmp_path / 'sim2sim_report.json').read_text())
    assert report['engine']['name'] == 'pybullet'
    assert report['engine']['settings']['armature'] == 'rotor'
    assert report['engine']['parameters']['fixedTimeStep'] == pytest.approx(0.005)
    assert report['overall']['falls'] == 0
    assert report['sim2sim_target']['met'] is True
    assert status == 0
    assert (tmp_path / 'tracking.png').stat().st_size > 0
