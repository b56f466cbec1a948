"""Solver and collision test limits: the robot model's defaults and the env's override."""

from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.robot.mujoco_model import (build_mujoco_model, parse_collision_accuracy,
                                                RobotConfigError, set_collision_accuracy,
                                                set_solver_iterations, SOLVER_ITERATIONS,
                                                SOLVER_LS_ITERATIONS)
import pytest
import torch
from training.config import DomainRandConfig, EnvConfig


def test_models_carry_the_default_limits_and_an_override_sets_only_what_it_names():
    model = build_mujoco_model(load_robot('kestrel'))
    default = (SOLVER_ITERATIONS, SOLVER_LS_ITERATIONS)
    assert (model.opt.iterations, model.opt.ls_iterations) == default
    set_solver_iterations(model, 4)
    assert (model.opt.iterations, model.opt.ls_iterations) == (4, SOLVER_LS_ITERATIONS)
    set_solver_iterations(model, None, 8)
    assert (model.opt.iterations, model.opt.ls_iterations) == (4, 8)


@pytest.mark.parametrize('bad', [0, -3, 2.5, True])
def test_a_limit_that_is_not_a_positive_integer_is_refused_by_name(bad):
    model = build_mujoco_model(load_robot('kestrel'))
    with pytest.raises(RobotConfigError, match='solver ls_iterations must be a positive'):
        set_solver_iterations(model, 5, bad)
    assert model.opt.iterations == SOLVER_ITERATIONS  # a refused call changes nothing


def test_the_env_simulates_with_the_configured_limits():
    pytest.importorskip('mujoco_warp')
    from training.env import LocomotionEnv
    cfg = EnvConfig(num_envs=2, solver_iterations=3, solver_ls_iterations=6,
                    randomization=DomainRandConfig(pushes=False, obs_noise=False))
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    assert (env.mj_model.opt.iterations, env.mj_model.opt.ls_iterations) == (3, 6)
    opt = env.backend.warp_model.opt
    assert (int(opt.iterations), int(opt.ls_iterations)) == (3, 6)
    env.reset()
    env.step(torch.zeros(2, env.num_actions))
    assert int(env.backend.warp_data.solver_niter.numpy().max()) <= 3
    env.close()


def test_collision_accuracy_sets_what_it_names_and_refuses_bad_values_by_name():
    model = build_mujoco_model(load_robot('kestrel'))
    default = (model.opt.ccd_iterations, model.opt.ccd_tolerance)
    set_collision_accuracy(model, None, None)
    assert (model.opt.ccd_iterations, model.opt.ccd_tolerance) == default
    set_collision_accuracy(model, 12)
    assert (model.opt.ccd_iterations, model.opt.ccd_tolerance) == (12, default[1])
    set_collision_accuracy(model, None, 1e-4)
    assert model.opt.ccd_iterations == 12
    assert model.opt.ccd_tolerance == pytest.approx(1e-4)
    with pytest.raises(RobotConfigError, match='ccd_iterations must be a positive integer'):
        set_collision_accuracy(model, 0, 1e-3)
    with pytest.raises(RobotConfigError, match='ccd_tolerance must be a positive number'):
        set_collision_accuracy(model, 20, float('nan'))
    assert model.opt.ccd_iterations == 12  # a refused call changes nothing


def test_the_env_tests_collisions_with_the_configured_accuracy():
    pytest.importorskip('mujoco_warp')
    from training.env import LocomotionEnv
    cfg = EnvConfig(num_envs=2, ccd_iterations=9, ccd_tolerance=1e-4,
                    randomization=DomainRandConfig(pushes=False, obs_noise=False))
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    assert env.mj_model.opt.ccd_iterations == 9
    opt = env.backend.warp_model.opt
    assert int(opt.ccd_iterations) == 9
    assert float(opt.ccd_tolerance.numpy().ravel()[0]) == pytest.approx(1e-4)
    env.close()


def test_collision_accuracy_strings_are_parsed_and_a_bad_one_is_named():
    assert parse_collision_accuracy('12:1e-4') == (12, 1e-4)
    for bad in ('12', '12:abc', '0:1e-4', '12:-1e-4', '12:nan'):
        with pytest.raises(RobotConfigError, match=f"collision accuracy '{bad}'"):
            parse_collision_accuracy(bad)
