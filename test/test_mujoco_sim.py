"""Tests for MujocoRobotSim (real MuJoCo on the CPU)."""

import math

from humanoid_rl_ros.core.policy_math import pd_effort
from humanoid_rl_ros.robot.description import load_robot, RobotConfig
from humanoid_rl_ros.sim.mujoco_sim import MujocoRobotSim, SimState
import mujoco
import numpy as np
import pytest

GRAVITY_M_S2 = 9.81


@pytest.fixture(scope='module')
def robot() -> RobotConfig:
    """Load the project's robot once."""
    return load_robot('kestrel')


@pytest.fixture()
def sim(robot: RobotConfig) -> MujocoRobotSim:
    """Return a fresh sim at the default pose."""
    return MujocoRobotSim(robot)


def _hold(sim: MujocoRobotSim, duration_s: float) -> None:
    """Run PD to the default pose (zero action) for ``duration_s``."""
    robot = sim.robot
    for _ in range(int(round(duration_s / sim.timestep_s))):
        sim.step(pd_effort(robot.default_pos_rad, sim.joint_pos_rad, sim.joint_vel_rad_s,
                           robot.kp_nm_per_rad, robot.kd_nms_per_rad, robot.effort_limit_nm))


def test_reset_puts_robot_at_default_pose(sim: MujocoRobotSim, robot: RobotConfig) -> None:
    """reset(): base at xy/yaw/nominal height, joints at default, at rest, time 0."""
    _hold(sim, 0.1)
    sim.reset(base_xy_m=(1.0, -2.0), yaw_rad=math.pi / 2)
    assert sim.time_s == 0.0
    np.testing.assert_allclose(sim.base_pos_m, [1.0, -2.0, robot.nominal_base_height_m])
    np.testing.assert_allclose(sim.base_quat_wxyz,
                               [math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])
    np.testing.assert_allclose(sim.joint_pos_rad, robot.default_pos_rad)
    assert not np.any(sim.joint_vel_rad_s) and not np.any(sim.base_lin_vel_world_m_s)
    custom = robot.default_pos_rad + 0.05
    sim.reset(joint_pos_rad=custom)
    np.testing.assert_allclose(sim.joint_pos_rad, custom)
    with pytest.raises(ValueError, match='joint_pos_rad must have shape'):
        sim.reset(joint_pos_rad=[0.0, 1.0])


def test_standing_state_is_physical(sim: MujocoRobotSim, robot: RobotConfig) -> None:
    """Standing under PD: feet in contact, IMU reads +g up, velocities ~0, not fallen."""
    _hold(sim, 3.0)
    assert sim.time_s == pytest.approx(3.0)
    assert sim.foot_in_contact.tolist() == [True, True]
    assert not sim.fallen()
    acc = sim.base_lin_acc_body_m_s2
    assert np.linalg.norm(acc) == pytest.approx(GRAVITY_M_S2, abs=0.1)
    assert acc[2] > 9.5  # mostly along body z: specific force, like a real accelerometer
    np.testing.assert_allclose(sim.base_lin_vel_world_m_s, 0.0, atol=0.05)
    np.testing.assert_allclose(sim.base_ang_vel_body_rad_s, 0.0, atol=0.05)
    np.testing.assert_allclose(sim.base_gyro_body_rad_s, sim.base_ang_vel_body_rad_s, atol=1e-9)
    feet = sim.foot_pos_world_m
    assert feet.shape == (2, 3)
    assert feet[0, 1] > 0.0 > feet[1, 1]  # left foot at +y
    assert np.all(feet[:, 2] < 0.1)
    np.testing.assert_allclose(sim.foot_lin_vel_world_m_s, 0.0, atol=0.05)
    assert abs(sim.base_pos_m[2] - robot.nominal_base_height_m) < 0.02
    state = sim.state()
    assert isinstance(state, SimState)
    np.testing.assert_allclose(state.joint_pos_rad, sim.joint_pos_rad)
    assert np.all(np.abs(state.joint_effort_nm) <= robot.effort_limit_nm)


def test_push_changes_base_velocity(sim: MujocoRobotSim) -> None:
    """push() adds to the world-frame base linear velocity; body-frame view agrees."""
    _hold(sim, 0.5)
    before = sim.base_lin_vel_world_m_s
    sim.push([0.5, -0.25, 0.0])
    np.testing.assert_allclose(sim.base_lin_vel_world_m_s - before, [0.5, -0.25, 0.0])
    rot_yaw_free = sim.base_lin_vel_body_m_s
    assert rot_yaw_free[0] == pytest.approx(0.5 + before[0], abs=0.03)
    sim.add_base_velocity([0.0, 0.25, 0.0])
    assert sim.base_lin_vel_world_m_s[1] == pytest.approx(before[1], abs=1e-9)
    with pytest.raises(ValueError, match='3 finite numbers'):
        sim.push([0.0, float('nan'), 0.0])


def test_body_velocity_follows_yaw(sim: MujocoRobotSim) -> None:
    """With the base yawed 90 deg, world +x velocity is body -y velocity."""
    sim.reset(yaw_rad=math.pi / 2)
    sim.push([1.0, 0.0, 0.0])
    np.testing.assert_allclose(sim.base_lin_vel_body_m_s, [0.0, -1.0, 0.0], atol=1e-9)


def test_fallen_after_tipping_and_feet_leave_ground(sim: MujocoRobotSim) -> None:
    """Zero effort plus a hard push: the robot falls; fallen() and foot contact notice."""
    assert not sim.fallen()
    sim.push([2.0, 0.0, 0.0])
    zero = np.zeros(sim.robot.num_joints)
    for _ in range(int(round(3.0 / sim.timestep_s))):
        sim.step(zero)
        if sim.fallen():
            break
    assert sim.fallen()
    assert sim.tilt_rad() > math.radians(70.0) or sim.base_pos_m[2] < 0.4
    sim.reset(base_height_m=2.0)  # in the air
    assert sim.foot_in_contact.tolist() == [False, False]
    assert sim.fallen(min_height_m=2.5)


def test_step_validates_and_clamps(sim: MujocoRobotSim, robot: RobotConfig) -> None:
    """Bad efforts are refused by name; oversized ones are clamped to the limits."""
    n = robot.num_joints
    with pytest.raises(ValueError, match=r'shape \(21,\)'):
        sim.step(np.zeros(n - 1))
    bad = np.zeros(n)
    bad[3] = np.inf
    with pytest.raises(ValueError, match='left_knee_joint'):
        sim.step(bad)
    assert sim.time_s == 0.0  # nothing stepped
    sim.step(np.full(n, 1.0e4))
    np.testing.assert_allclose(sim.joint_effort_nm, robot.effort_limit_nm)
    np.testing.assert_allclose(sim.data.actuator_force, robot.effort_limit_nm)
    assert sim.time_s == pytest.approx(sim.timestep_s)


def test_pd_effort_to_default_pose_and_effort_at_limit(robot: RobotConfig) -> None:
    """pd_effort_nm: kp (q* - q) - kd qd with the robot's gains, clamped; limits flagged."""
    sim = MujocoRobotSim(robot)
    np.testing.assert_allclose(sim.pd_effort_nm(), 0.0, atol=1e-12)  # at rest at the target
    knee = robot.joint_names.index('left_knee_joint')
    pose = robot.default_pos_rad.copy()
    pose[knee] += 0.01
    sim.reset(joint_pos_rad=pose)
    effort = sim.pd_effort_nm()
    expected = np.zeros(robot.num_joints)
    expected[knee] = -robot.kp_nm_per_rad[knee] * 0.01  # zero velocity: the P term only
    np.testing.assert_allclose(effort, expected, atol=1e-9)
    assert not sim.effort_at_limit(effort).any()
    # A target 10 rad away asks more than any joint can give: every entry at its limit.
    far = sim.pd_effort_nm(robot.default_pos_rad + 10.0)
    np.testing.assert_allclose(np.abs(far), robot.effort_limit_nm)
    assert sim.effort_at_limit(far).all()
    assert not sim.effort_at_limit().any()  # nothing applied yet since the reset
    half = 0.5 * robot.effort_limit_nm
    half[knee] = robot.effort_limit_nm[knee] * (1.0 - 1e-7)  # within the tolerance
    sim.step(half)
    assert sim.effort_at_limit().tolist() == [i == knee for i in range(robot.num_joints)]


def test_uprightness_is_the_cosine_of_the_tilt(sim: MujocoRobotSim) -> None:
    """Upright: 1; the base rolled by 60 degrees: 0.5 and tilt_rad 60 degrees."""
    assert sim.uprightness() == pytest.approx(1.0)
    half = 0.5 * math.radians(60.0)
    sim.data.qpos[3:7] = [math.cos(half), math.sin(half), 0.0, 0.0]
    mujoco.mj_forward(sim.model, sim.data)
    assert sim.uprightness() == pytest.approx(0.5)
    assert sim.tilt_rad() == pytest.approx(math.radians(60.0))
    assert sim.fallen(max_tilt_rad=math.radians(45.0)) and not sim.fallen()


def test_deterministic(robot: RobotConfig) -> None:
    """Two sims fed the same efforts end in the same state."""
    rng = np.random.default_rng(0)
    efforts = rng.uniform(-5.0, 5.0, size=(200, robot.num_joints))
    sims = [MujocoRobotSim(robot), MujocoRobotSim(robot)]
    for effort in efforts:
        for s in sims:
            s.step(effort)
    np.testing.assert_array_equal(sims[0].data.qpos, sims[1].data.qpos)
