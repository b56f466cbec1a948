"""
Tests of the left-right mirror used by symmetry augmentation (:mod:`training.symmetry`).

The mirror is checked against physics, not against itself: a mirrored MuJoCo state driven by
the mirrored efforts must stay the mirror of the original run, for kestrel and for the
classic MuJoCo humanoid (a robot whose description uses other axis conventions), and the
observation the policy node builds (:mod:`humanoid_rl_ros.core.policy_math`, which the training
env matches, test_env_observations.py) of a mirrored state must be the mirrored observation.
"""

import dataclasses
from pathlib import Path

from humanoid_rl_ros.core.contract.facts import KNOWN_OBS_TERMS
from humanoid_rl_ros.core.policy_math import build_observation, observation_inputs
from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.robot.mujoco_model import (base_qpos_adr, build_mujoco_model,
                                                default_qpos, joint_dof_adr, joint_qpos_adr)
import mujoco
import numpy as np
import pytest
from robot_fixtures import write_classic_humanoid_robot
import torch
from training.config import CommandConfig, EnvConfig, ObservationConfig
from training.env.observations import actor_obs_terms
from training.symmetry import (action_mirror, observation_mirror, robot_mirror,
                               SignedPermutation, SymmetryError, TERM_MIRROR_RULES)
from training.symmetry.robot_mirror import mirror_state, run_with_mirror


@pytest.fixture(scope='module')
def kestrel():
    robot = load_robot('kestrel')
    return robot, build_mujoco_model(robot)


@pytest.fixture(scope='module')
def classic(tmp_path_factory):
    folder = write_classic_humanoid_robot(Path(tmp_path_factory.mktemp('classic')))
    robot = load_robot(folder / 'robot.yaml')
    return robot, build_mujoco_model(robot)


# ------------------------------------------------------------------ signed permutations
def test_a_signed_permutation_applies_composes_and_knows_an_involution():
    m = SignedPermutation((2, 0, 1), (1.0, -1.0, 1.0))
    x = np.array([10.0, 20.0, 30.0])
    np.testing.assert_allclose(m.apply(x), [30.0, -10.0, 20.0])
    torch.testing.assert_close(m.apply(torch.tensor([[10.0, 20.0, 30.0]])),
                               torch.tensor([[30.0, -10.0, 20.0]]))
    np.testing.assert_allclose(m.then(m).apply(x), m.apply(m.apply(x)))
    assert not m.is_involution()
    swap = SignedPermutation((1, 0, 2), (-1.0, -1.0, 1.0))
    assert swap.is_involution()
    assert SignedPermutation((1, 0), (-1.0, 1.0)).is_involution() is False  # signs differ
    block = SignedPermutation.concat([swap, SignedPermutation.signs((-1.0,))])
    np.testing.assert_allclose(block.apply(np.arange(4.0)), [-1.0, -0.0, 2.0, -3.0])
    for bad in (((0, 0), (1.0, 1.0)), ((0, 1), (1.0, 0.5)), ((0, 1), (1.0,))):
        with pytest.raises(ValueError):
            SignedPermutation(*bad)
    with pytest.raises(ValueError, match='last axis'):
        m.apply(np.zeros(4))


# ------------------------------------------------------------------ the robot's mirror
def test_kestrel_mirrors_left_and_right_with_roll_and_yaw_joints_negated(kestrel):
    robot, model = kestrel
    mirror = robot_mirror(model, robot)
    for joint, partner, sign in mirror.pairs():
        if joint.startswith(('left_', 'right_')):
            side, other = ('left_', 'right_')[::1 if joint.startswith('left_') else -1]
            assert partner == joint.replace(side, other, 1)
        else:
            assert partner == joint  # torso yaw: on the mid-plane
        flips = any(k in joint for k in ('roll', 'yaw'))
        assert sign == (-1.0 if flips else 1.0), (joint, sign)
    assert mirror.feet == (1, 0)


def test_a_state_mirror_reflects_the_base_and_maps_the_joints(kestrel):
    robot, model = kestrel
    mirror = robot_mirror(model, robot)
    qpos = default_qpos(model, robot, base_pos_m=(1.0, 2.0, 3.0),
                        base_quat_wxyz=(0.5, 0.5, 0.5, 0.5))
    qa, da = joint_qpos_adr(model, robot), joint_dof_adr(model, robot)
    qpos[qa] = np.arange(len(qa)) * 0.01
    qvel = np.zeros(model.nv)
    qvel[:6] = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    qvel[da] = np.arange(len(da)) * 0.1
    q, v = mirror_state(model, robot, mirror.joints, qpos, qvel)
    base = base_qpos_adr(model, robot)
    np.testing.assert_allclose(q[base:base + 7], [1.0, -2.0, 3.0, 0.5, -0.5, 0.5, -0.5])
    np.testing.assert_allclose(v[:6], [1.0, -2.0, 3.0, -4.0, 5.0, -6.0])
    knee, right_knee = (robot.joint_names.index(n) for n in ('left_knee_joint',
                                                             'right_knee_joint'))
    roll, right_roll = (robot.joint_names.index(n) for n in ('left_hip_roll_joint',
                                                             'right_hip_roll_joint'))
    assert q[qa[knee]] == qpos[qa[right_knee]] and v[da[knee]] == qvel[da[right_knee]]
    assert q[qa[roll]] == -qpos[qa[right_roll]] and v[da[roll]] == -qvel[da[right_roll]]


@pytest.mark.parametrize('robot_fixture', ['kestrel', 'classic'])
@pytest.mark.parametrize('height_m', [None, 2.0], ids=['on_the_ground', 'in_the_air'])
def test_the_mirrored_state_under_mirrored_efforts_stays_the_mirror(robot_fixture, height_m,
                                                                    request):
    robot, model = request.getfixturevalue(robot_fixture)
    mirror = robot_mirror(model, robot)
    rng = np.random.default_rng(3)
    n = len(robot.joints)
    qpos = default_qpos(model, robot)
    base = base_qpos_adr(model, robot)
    if height_m is not None:
        qpos[base + 2] = height_m
    quat = np.array([1.0, 0.02, -0.02, 0.3])  # rolled, pitched and yawed: no mirror plane
    qpos[base + 3:base + 7] = quat / np.linalg.norm(quat)
    qpos[base:base + 2] = (0.3, 0.2)
    qa = joint_qpos_adr(model, robot)
    qpos[qa] += rng.uniform(-0.1, 0.1, n)
    qvel = np.zeros(model.nv)
    qvel[:6] = rng.uniform(-0.3, 0.3, 6)
    qvel[joint_dof_adr(model, robot)] = rng.uniform(-1.0, 1.0, n)
    efforts = rng.uniform(-0.3, 0.3, (40, n)) * np.asarray(robot.effort_limit_nm)

    (q1, v1, ncon), (q2, v2, _) = run_with_mirror(model, robot, mirror.joints, qpos, qvel,
                                                  efforts)
    if height_m is None:
        assert ncon > 0  # the feet touched the ground
    expected_q, expected_v = mirror_state(model, robot, mirror.joints, q1, v1)
    moved = np.abs(q1 - qpos).max()
    assert moved > 0.01  # the efforts did something
    np.testing.assert_allclose(q2, expected_q, atol=1e-6)
    np.testing.assert_allclose(v2, expected_v, atol=1e-4)


def test_a_robot_that_is_not_symmetric_is_refused_by_name(kestrel, tmp_path):
    robot, model = kestrel
    asym = build_mujoco_model(robot)
    jid = mujoco.mj_name2id(asym, mujoco.mjtObj.mjOBJ_JOINT, 'left_knee_joint')
    body = asym.jnt_bodyid[jid]
    asym.body_pos[body] += (0.0, 0.0, 0.02)  # the left shin (and knee) 2 cm higher
    with pytest.raises(SymmetryError, match='left_knee_joint'):
        robot_mirror(asym, robot)
    # the same kinematics, but a heavier left shin, or more damping in the left knee
    for change in ('mass', 'damping'):
        heavy = build_mujoco_model(robot)
        if change == 'mass':
            heavy.body_mass[body] += 0.5
        else:
            heavy.dof_damping[heavy.jnt_dofadr[jid]] += 1.0
        with pytest.raises(SymmetryError, match='move apart under mirrored efforts'):
            robot_mirror(heavy, robot)
    # a robot.yaml whose mirrored joints disagree on a gain
    joints = list(robot.joints)
    i = robot.joint_names.index('right_knee_joint')
    joints[i] = dataclasses.replace(joints[i], kp_nm_per_rad=joints[i].kp_nm_per_rad * 1.2)
    with pytest.raises(SymmetryError, match='kp_nm_per_rad'):
        robot_mirror(model, dataclasses.replace(robot, joints=tuple(joints)))
    # and on the default pose: shoulder roll must be mirrored (0.15 / -0.15)
    i = robot.joint_names.index('right_shoulder_roll_joint')
    joints = list(robot.joints)
    joints[i] = dataclasses.replace(joints[i], default_pos_rad=0.15)
    with pytest.raises(SymmetryError, match='default_pos_rad'):
        robot_mirror(model, dataclasses.replace(robot, joints=tuple(joints)))


@pytest.mark.parametrize('field', ['kd_nms_per_rad', 'effort_limit_nm', 'velocity_limit_rad_s',
                                   'armature_kg_m2'])
def test_mirrored_joints_must_agree_on_every_fact_of_robot_yaml(kestrel, field):
    robot, model = kestrel
    joints = list(robot.joints)
    i = robot.joint_names.index('left_ankle_roll_joint')
    joints[i] = dataclasses.replace(joints[i], **{field: getattr(joints[i], field) * 1.1})
    with pytest.raises(SymmetryError, match=f"'left_ankle_roll_joint' mirrors "
                                            f"'right_ankle_roll_joint'.*{field}"):
        robot_mirror(model, dataclasses.replace(robot, joints=tuple(joints)))


def test_mirrored_joints_must_have_mirrored_ranges(kestrel):
    robot, _ = kestrel
    model = build_mujoco_model(robot)
    jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, 'right_hip_roll_joint')
    model.jnt_range[jid, 1] += 0.05
    with pytest.raises(SymmetryError, match='range'):
        robot_mirror(model, robot)


# ------------------------------------------------------------------ observations
def test_every_observation_term_has_a_mirror_rule():
    assert set(TERM_MIRROR_RULES) == set(KNOWN_OBS_TERMS)


def _node_observation(model, robot, terms, qpos, qvel, command, last_action, phase):
    base = base_qpos_adr(model, robot)
    quat = qpos[base + 3:base + 7]
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, quat)
    inputs = observation_inputs(
        base_quat_wxyz=quat, base_lin_vel_body_m_s=rot.reshape(3, 3).T @ qvel[0:3],
        base_ang_vel_body_rad_s=qvel[3:6], command=command,
        joint_pos_rad=qpos[joint_qpos_adr(model, robot)],
        default_joint_pos_rad=np.asarray(robot.default_pos_rad),
        joint_vel_rad_s=qvel[joint_dof_adr(model, robot)], last_action=last_action,
        gait_phase=np.asarray(phase))
    return build_observation(terms, inputs)


@pytest.mark.parametrize('use_base_lin_vel', [False, True])
def test_the_observation_of_a_mirrored_state_is_the_mirrored_observation(
        kestrel, use_base_lin_vel):
    robot, model = kestrel
    mirror = robot_mirror(model, robot)
    n = len(robot.joints)
    terms = actor_obs_terms(ObservationConfig(use_base_lin_vel=use_base_lin_vel), n)
    obs_mirror = observation_mirror(terms, mirror, foot_phase_offsets=(0.0, 0.5))
    assert obs_mirror.is_involution()
    rng = np.random.default_rng(5)
    qpos = default_qpos(model, robot)
    base = base_qpos_adr(model, robot)
    quat = rng.normal(size=4)
    qpos[base + 3:base + 7] = quat / np.linalg.norm(quat)
    qpos[joint_qpos_adr(model, robot)] += rng.uniform(-0.3, 0.3, n)
    qvel = rng.uniform(-1.0, 1.0, model.nv)
    command = np.array([0.7, 0.3, -0.6])
    last_action = rng.uniform(-1.0, 1.0, n)
    phase = 0.2
    obs = _node_observation(model, robot, terms, qpos, qvel, command, last_action, phase)
    # the mirrored robot: reflected state, sideways and yaw commands negated, its left foot
    # doing what the right one did (half a gait cycle later)
    mq, mv = mirror_state(model, robot, mirror.joints, qpos, qvel)
    mirrored = _node_observation(model, robot, terms, mq, mv, command * (1.0, -1.0, -1.0),
                                 action_mirror(mirror).apply(last_action), phase + 0.5)
    np.testing.assert_allclose(mirrored, obs_mirror.apply(obs), atol=1e-9)
    assert np.abs(mirrored - obs).max() > 0.1  # the state was not symmetric to begin with


def test_a_history_is_mirrored_frame_by_frame_and_a_phase_offset_must_allow_it(kestrel):
    robot, model = kestrel
    mirror = robot_mirror(model, robot)
    terms = actor_obs_terms(ObservationConfig(), len(robot.joints))
    one = observation_mirror(terms, mirror, (0.0, 0.5))
    three = observation_mirror(terms, mirror, (0.0, 0.5), history_length=3)
    frames = np.random.default_rng(0).normal(size=(3, one.size))
    np.testing.assert_allclose(three.apply(frames.reshape(-1)),
                               one.apply(frames).reshape(-1))
    # both feet in phase (a hop): the clock is its own mirror
    hop = observation_mirror(terms, mirror, (0.0, 0.0))
    np.testing.assert_allclose(hop.apply(frames[0])[-2:], frames[0][-2:])
    with pytest.raises(SymmetryError, match='gait clock'):
        observation_mirror(terms, mirror, (0.0, 0.25))
    with pytest.raises(SymmetryError, match="'odometry'"):
        observation_mirror(terms + (dataclasses.replace(terms[0], name='odometry'),),
                           mirror, (0.0, 0.5))


def test_the_env_gives_mirrors_of_its_sizes_and_refuses_asymmetric_commands():
    from training.env import LocomotionEnv
    cfg = EnvConfig(num_envs=2, observations=ObservationConfig(history_length=2))
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    obs_mirror, act_mirror = env.mirror_maps()
    assert (obs_mirror.size, act_mirror.size) == (env.num_obs, env.num_actions)
    assert obs_mirror.is_involution() and act_mirror.is_involution()
    env.cfg = dataclasses.replace(cfg, commands=CommandConfig(lin_vel_y_m_s=(-0.3, 0.5)))
    with pytest.raises(SymmetryError, match='lin_vel_y_m_s'):
        env.mirror_maps()


def test_in_the_training_env_a_mirrored_world_stays_the_mirror_with_the_same_rewards():
    """World 1 starts as the mirror of world 0 and gets the mirrored actions for 30 steps."""
    from training.config import DomainRandConfig, TerrainConfig
    from training.env import LocomotionEnv
    off = DomainRandConfig(friction=False, added_base_mass=False, motor_strength=False,
                           pd_gain_scale=False, obs_noise=False, pushes=False)
    env = LocomotionEnv(EnvConfig(num_envs=2, compile_step='off', randomization=off,
                                  terrain=TerrainConfig(enabled=False)), 'mjwarp', 'cpu')
    obs_mirror, act_mirror = env.mirror_maps()
    env.reset()
    b, n = env.backend, env.num_actions
    g = torch.Generator().manual_seed(0)
    vec, pseudo = torch.tensor([1.0, -1.0, 1.0]), torch.tensor([-1.0, 1.0, -1.0])
    pos, quat = b.base_pos.clone(), b.base_quat.clone()
    lin, ang = b.base_lin_vel_world.clone(), b.base_ang_vel_body.clone()
    joint_pos, joint_vel = b.joint_pos.clone(), b.joint_vel.clone()
    pos[0] = torch.tensor([0.3, 0.2, 0.82])
    quat[0] = torch.nn.functional.normalize(torch.tensor([0.98, 0.02, -0.03, 0.2]), dim=0)
    lin[0], ang[0] = torch.tensor([0.3, 0.25, 0.0]), torch.tensor([0.2, -0.1, 0.3])
    joint_pos[0] = env.default_joint_pos + 0.1 * (torch.rand(n, generator=g) - 0.5)
    joint_vel[0] = torch.rand(n, generator=g) - 0.5
    pos[1], quat[1] = pos[0] * vec, quat[0] * torch.tensor([1.0, -1.0, 1.0, -1.0])
    lin[1], ang[1] = lin[0] * vec, ang[0] * pseudo
    joint_pos[1], joint_vel[1] = act_mirror.apply(joint_pos[0]), act_mirror.apply(joint_vel[0])
    env._backend_reset(torch.tensor([True, True]), base_pos=pos, base_quat=quat,
                       base_lin_vel_world=lin, base_ang_vel_body=ang, joint_pos=joint_pos,
                       joint_vel=joint_vel)
    env.commands[0] = torch.tensor([0.5, 0.3, 0.4])
    env.commands[1] = env.commands[0] * torch.tensor([1.0, -1.0, -1.0])
    env.gait_phase[:] = torch.tensor([0.1, 0.6])  # the mirror's left foot is the right one
    env.command_timer_s[:] = 100.0
    env.push_timer_s[:] = 100.0
    for buf in (env.actions, env.last_actions, env.applied_actions, env.last_joint_vel,
                env.feet_air_time):
        buf.zero_()
    env.last_feet_pos.copy_(b.foot_pos)
    env.last_feet_contact[:] = True
    env.episode_length[:] = 5
    asymmetry = 0.0
    for _ in range(30):
        action = 0.5 * torch.randn(n, generator=g)
        obs, _, reward, dones, _ = env.step(torch.stack([action, act_mirror.apply(action)]))
        assert not dones.any()
        torch.testing.assert_close(obs[1], obs_mirror.apply(obs[0]), rtol=0, atol=1e-4)
        torch.testing.assert_close(reward[1], reward[0], rtol=1e-4, atol=1e-7)
        asymmetry = max(asymmetry, float((obs[1] - obs[0]).abs().max()))
    assert asymmetry > 0.1  # the two worlds were not the same to begin with
