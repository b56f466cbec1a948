"""Ground contact in training: feet-only contact, and foot boxes on the ground by sole spheres."""

from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.robot.mujoco_model import (build_mujoco_model, joint_dof_adr,
                                                joint_qpos_adr, keep_ground_contacts,
                                                robot_collision_geoms, RobotConfigError,
                                                sole_sphere_geoms)
import mujoco
import pytest
import torch
from training.config import DomainRandConfig, EnvConfig


def _colliding_bodies(model):
    return {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, int(model.geom_bodyid[g]))
            for g in robot_collision_geoms(model)}


def test_only_the_named_bodies_keep_their_collisions_and_the_ground_keeps_its_own():
    robot = load_robot('kestrel')
    model = build_mujoco_model(robot)
    before = _colliding_bodies(model)
    assert set(robot.foot_links) < before and 'pelvis' in before
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, 'floor')
    floor_bits = (int(model.geom_contype[floor]), int(model.geom_conaffinity[floor]))
    colliding_before = len(robot_collision_geoms(model))
    dropped = keep_ground_contacts(model, robot.foot_links)
    assert _colliding_bodies(model) == set(robot.foot_links)
    assert dropped == colliding_before - len(robot_collision_geoms(model)) > 0
    assert (int(model.geom_contype[floor]), int(model.geom_conaffinity[floor])) == floor_bits
    with pytest.raises(RobotConfigError, match="'hoof'"):
        keep_ground_contacts(model, ['hoof'])


def test_a_feet_only_env_stands_on_its_feet_and_its_pelvis_passes_through_the_ground():
    pytest.importorskip('mujoco_warp')
    from training.env import LocomotionEnv
    cfg = EnvConfig(num_envs=2, ground_contact='feet',
                    randomization=DomainRandConfig(pushes=False, obs_noise=False))
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    assert _colliding_bodies(env.mj_model) == set(env.robot.foot_links)
    env.reset()
    for _ in range(10):  # standing on the feet as with every geom colliding
        env.step(torch.zeros(2, env.num_actions))
    assert bool((env.feet_contact > 0.5).all())
    assert bool((env.base_height > 0.9 * env.robot.nominal_base_height_m).all())


def _foot_collision_geoms(model, foot):
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, foot)
    return [g for g in robot_collision_geoms(model) if int(model.geom_bodyid[g]) == body]


def _lowest_z(model, data, g):
    """Lowest point of a sphere or box geom in the world [m]."""
    if int(model.geom_type[g]) == mujoco.mjtGeom.mjGEOM_SPHERE:
        return float(data.geom_xpos[g][2] - model.geom_size[g][0])
    rot, half = data.geom_xmat[g].reshape(3, 3), model.geom_size[g]
    return float(data.geom_xpos[g][2] - abs(rot[2]) @ half)


def test_sole_spheres_replace_each_foot_box_at_the_same_height_and_mass():
    robot = load_robot('kestrel')
    boxes = build_mujoco_model(robot)
    spheres = build_mujoco_model(robot, sole_spheres=True)
    torch.testing.assert_close(torch.as_tensor(spheres.body_mass),
                               torch.as_tensor(boxes.body_mass))
    torch.testing.assert_close(torch.as_tensor(spheres.body_inertia),
                               torch.as_tensor(boxes.body_inertia))
    d_box, d_sph = mujoco.MjData(boxes), mujoco.MjData(spheres)
    for model, data in ((boxes, d_box), (spheres, d_sph)):
        data.qpos[:] = model.key_qpos[0]
        mujoco.mj_kinematics(model, data)
    for foot in robot.foot_links:
        (box,) = _foot_collision_geoms(boxes, foot)
        assert int(boxes.geom_type[box]) == mujoco.mjtGeom.mjGEOM_BOX
        balls = _foot_collision_geoms(spheres, foot)
        assert len(balls) == 6
        assert all(int(spheres.geom_type[g]) == mujoco.mjtGeom.mjGEOM_SPHERE for g in balls)
        # the box is still there for its looks, without collision bits
        body = mujoco.mj_name2id(spheres, mujoco.mjtObj.mjOBJ_BODY, foot)
        kept = [g for g in range(spheres.ngeom) if int(spheres.geom_bodyid[g]) == body
                and int(spheres.geom_type[g]) == mujoco.mjtGeom.mjGEOM_BOX
                and tuple(spheres.geom_size[g]) == tuple(boxes.geom_size[box])]
        assert kept  # (with the URDF's visual copy of it)
        assert all(int(spheres.geom_contype[g]) == 0 == int(spheres.geom_conaffinity[g])
                   for g in kept)
        # the spheres' lowest point is the box's within a millimetre (the sole is pitched a
        # little at the default pose, and a corner sphere rounds the corner off by its radius
        # times that pitch): the foot stands at the same height
        lowest = min(_lowest_z(spheres, d_sph, g) for g in balls)
        assert lowest == pytest.approx(_lowest_z(boxes, d_box, box), abs=1e-3)
        # they take the box's contact parameters
        for g in balls:
            assert tuple(spheres.geom_friction[g]) == tuple(boxes.geom_friction[box])
            assert int(spheres.geom_condim[g]) == int(boxes.geom_condim[box])


def test_a_robot_standing_on_sole_spheres_stands_as_on_its_boxes():
    robot = load_robot('kestrel')
    heights = []
    for sole_spheres in (False, True):
        model = build_mujoco_model(robot, sole_spheres=sole_spheres)
        data = mujoco.MjData(model)
        data.qpos[:] = model.key_qpos[0]
        qa, da = joint_qpos_adr(model, robot), joint_dof_adr(model, robot)
        kp = torch.tensor([j.kp_nm_per_rad for j in robot.joints], dtype=torch.float64)
        kd = torch.tensor([j.kd_nms_per_rad for j in robot.joints], dtype=torch.float64)
        q0 = torch.as_tensor(model.key_qpos[0][qa].copy())
        for _ in range(400):  # 2 s of PD holding the default pose
            q, qd = torch.as_tensor(data.qpos[qa].copy()), torch.as_tensor(data.qvel[da].copy())
            data.ctrl[:] = (kp * (q0 - q) - kd * qd).numpy()
            mujoco.mj_step(model, data)
        heights.append(float(data.qpos[2]))
    assert heights[1] == pytest.approx(heights[0], abs=2e-3)
    assert heights[0] > 0.9 * robot.nominal_base_height_m


def test_the_env_trains_on_sole_spheres():
    pytest.importorskip('mujoco_warp')
    from training.env import LocomotionEnv
    cfg = EnvConfig(num_envs=2, foot_collision='sole_spheres',
                    randomization=DomainRandConfig(pushes=False, obs_noise=False))
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    try:
        for foot in env.robot.foot_links:
            spheres = sole_sphere_geoms(env.mj_model, foot)
            assert len(spheres) == 6 and spheres == _foot_collision_geoms(env.mj_model, foot)
        env.reset()
        for _ in range(10):
            env.step(torch.zeros(2, env.num_actions))
        assert bool((env.feet_contact > 0.5).all())
        assert bool((env.base_height > 0.9 * env.robot.nominal_base_height_m).all())
    finally:
        env.close()
