"""Feet-only ground contact: only the feet's geoms collide; the rest pass through the ground."""

from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.robot.mujoco_model import (build_mujoco_model, keep_ground_contacts,
                                                robot_collision_geoms, RobotConfigError)
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
