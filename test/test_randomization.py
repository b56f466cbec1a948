"""
Tests of the domain randomization on the CPU (MuJoCo Warp, a few worlds, a few steps).

Each term must really change what the physics sees (two worlds that differ only in that term
move differently, or the model field the solver reads differs), stay within its range, and
leave everything nominal when switched off.
"""

import dataclasses
import math

from humanoid_rl_ros.robot.description import load_robot
import mujoco
import numpy as np
import pytest
from step_body_checks import assert_step_body_has_no_host_syncs
import torch
from training.backends.latency import LatencyBuffers
from training.backends.mjwarp import MjWarpBackend
from training.config import DomainRandConfig, EnvConfig
from training.env import LocomotionEnv
from training.env.episodes import delay_steps_range, privileged_param_specs

ALL_ON = {'link_mass': True, 'base_com': True, 'kd_scale': True, 'armature': True,
          'joint_friction': True, 'joint_damping': True, 'latency': True, 'imu_bias': True,
          'encoder_bias': True, 'push_lin_vel_z_m_s': 0.4,
          'push_ang_vel_rad_s': (0.52, 0.52, 0.78)}
"""Every term of DomainRandConfig that is off by default, switched on."""


@pytest.fixture(scope='module')
def robot():
    """Load the project's robot."""
    return load_robot('kestrel')


@pytest.fixture(scope='module')
def backend(robot):
    """Three CPU worlds with latency buffers (at most 4 action / 3 observation steps)."""
    b = MjWarpBackend(robot, 3, device='cpu')
    b.enable_latency(4, 3)
    return b


def _all(n):
    return torch.ones(n, dtype=torch.bool)


def _stand(b, lin_vel_world=(0.0, 0.0, 0.0)):
    """Reset every world to the default standing pose (optionally moving) with default gains."""
    n, robot = b.num_envs, b.robot
    key = b.mj_model.key_qpos[0]
    jp = torch.tensor(robot.default_pos_rad, dtype=torch.float32).repeat(n, 1)
    b.reset_masked(_all(n), torch.tensor(key[0:3], dtype=torch.float32).repeat(n, 1),
                   torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1),
                   torch.tensor(lin_vel_world, dtype=torch.float32).repeat(n, 1),
                   torch.zeros(n, 3), jp, torch.zeros_like(jp))
    b.q_target.copy_(jp)
    b.kp.copy_(torch.tensor(robot.kp_nm_per_rad, dtype=torch.float32))
    b.kd.copy_(torch.tensor(robot.kd_nms_per_rad, dtype=torch.float32))


def _nominal(b):
    """Put every randomized model field of every world back to its nominal value."""
    every, n, j = _all(b.num_envs), b.num_envs, b.num_joints
    b.set_friction_masked(every, float(b.mj_model.geom_friction[0, 0]))
    b.set_link_mass_scale_masked(every, torch.ones(n, b.num_links))
    b.set_base_mass_offset_masked(every, 0.0)
    b.set_base_com_offset_masked(every, torch.zeros(n, 3))
    b.set_joint_dynamics_masked(every, torch.ones(n, j), torch.zeros(n, j), torch.zeros(n, j))
    b.set_latency_masked(every, torch.zeros(n, dtype=torch.long),
                         torch.zeros(n, dtype=torch.long))


# ------------------------------------------------------------------------- latency buffers
def test_latency_buffers_delay_targets_by_exactly_the_physics_steps():
    """Hand-checked: a target pushed at call c (decimation 4) reaches the PD law 4c + d."""
    lat = LatencyBuffers(9, 1, 8, 0, [('x', 1)], torch.device('cpu'))
    lat.action_delay_steps.copy_(torch.arange(9))  # world d has delay d
    seen = {}  # (world, physics step) -> value of the target the PD law used
    for call in range(5):
        lat.push_target(torch.full((9, 1), float(call)))
        for k in range(4):
            for world, value in enumerate(lat.target(k, 4)[:, 0].tolist()):
                seen[(world, 4 * call + k)] = value
    for d in range(9):
        for step in range(8, 20):  # after the fill of the first call
            # the latest target pushed at or before physics step (step - d): call (step-d)//4
            assert seen[(d, step)] == (step - d) // 4, (d, step)
    # before any call reached it, a world sees its first target (the ring starts filled)
    assert seen[(8, 0)] == 0.0


def test_latency_buffers_decimation_one_and_reset_forgets_history():
    lat = LatencyBuffers(2, 1, 3, 3, [('x', 1)], torch.device('cpu'))
    lat.action_delay_steps.copy_(torch.tensor([0, 3]))
    lat.obs_delay_steps.copy_(torch.tensor([2, 3]))
    lat.reset_masked(_all(2), torch.zeros(2, 1))
    out = []
    for step in range(1, 7):
        lat.push_target(torch.full((2, 1), float(step)))
        out.append(lat.target(0, 1)[:, 0].tolist())
        lat.record_state(torch.full((2, 1), float(step)))
    assert [o[0] for o in out] == [1, 2, 3, 4, 5, 6]
    assert [o[1] for o in out] == [1, 1, 1, 1, 2, 3]  # 3 steps late (first target held)
    assert lat.delayed_state()['x'][:, 0].tolist() == [4.0, 3.0]  # 6 - 2, 6 - 3
    lat.reset_masked(torch.tensor([False, True]), torch.full((2, 1), 9.0))
    assert lat.delayed_state()['x'][:, 0].tolist() == [4.0, 9.0]
    lat.push_target(torch.full((2, 1), 7.0))
    assert lat.target(0, 1)[:, 0].tolist() == [7.0, 7.0]  # reset world: no stale targets


def test_delay_ranges_in_physics_steps():
    assert delay_steps_range((0.0, 40.0), 0.005) == (0, 8)
    assert delay_steps_range((12.0, 19.9), 0.005) == (2, 3)
    with pytest.raises(ValueError, match='delay'):
        delay_steps_range((10.0, 5.0), 0.005)


# ------------------------------------------------------------------------- backend terms
def test_action_delay_holds_the_old_target_for_exactly_n_physics_steps(backend):
    """World 0: no delay; world 1: 3 steps; world 2: no target change (the reference)."""
    b = backend
    _nominal(b)
    b.set_latency_masked(_all(3), torch.tensor([0, 3, 0]), torch.zeros(3, dtype=torch.long))
    _stand(b)
    for _ in range(3):
        b.step(1)
    knee = 3
    kp = b.robot.kp_nm_per_rad[knee]
    b.q_target[:2, knee] += 0.1
    for step in range(1, 6):
        b.step(1)
        effort = b.last_effort[:, knee]
        if step == 1:  # no delay: the new target acts at once, against the same state
            assert float(effort[0] - effort[2]) == pytest.approx(0.1 * kp, rel=1e-4)
        if step <= 3:  # delayed world: same effort as the unchanged world
            assert float(effort[1]) == pytest.approx(float(effort[2]), abs=1e-4)
        if step == 4:  # the target arrives; the state is still the reference's
            assert float(effort[1] - effort[2]) == pytest.approx(0.1 * kp, rel=1e-4)
    _nominal(b)


def test_observation_delay_returns_the_state_n_physics_steps_old(backend):
    b = backend
    _nominal(b)
    b.set_latency_masked(_all(3), torch.zeros(3, dtype=torch.long), torch.tensor([0, 1, 3]))
    _stand(b)
    b.q_target[:, 3] += 0.3  # the knees move: every step's state differs
    history = []
    for _ in range(5):
        b.step(1)
        history.append((b.joint_pos.clone(), b.base_quat.clone()))
    old = b.delayed_state()
    for world, delay in enumerate([0, 1, 3]):
        jp, quat = history[-1 - delay]
        torch.testing.assert_close(old['joint_pos'][world], jp[world], rtol=0, atol=0)
        torch.testing.assert_close(old['base_quat'][world], quat[world], rtol=0, atol=0)
    assert not torch.equal(history[-1][0][2], history[-4][0][2])
    _nominal(b)


def test_ground_friction_changes_how_far_the_feet_slide(backend):
    """Robots sent forward at 1 m/s: feet slide far more at friction 0.2 than at 1.5."""
    b = backend
    _nominal(b)
    b.set_friction_masked(_all(3), torch.tensor([0.2, 1.5, 0.2]))
    fr = b.warp_model.geom_friction.numpy()
    assert np.allclose(fr[0, :, 0], 0.2) and np.allclose(fr[1, :, 0], 1.5)  # every geom
    _stand(b, lin_vel_world=(1.0, 0.0, 0.0))
    start = b.foot_pos[:, :, 0].clone()
    for _ in range(10):
        b.step(2)
    slide = (b.foot_pos[:, :, 0] - start).mean(dim=1)
    assert float(slide[0]) > 3.0 * float(slide[1]) > 0.0
    assert float(slide[0]) == pytest.approx(float(slide[2]), abs=1e-6)  # same friction
    _nominal(b)


def test_payload_and_link_masses_change_the_masses_the_solver_reads(backend, robot):
    b = backend
    _nominal(b)
    model = b.mj_model
    base = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, robot.base_link)
    scale = torch.ones(3, b.num_links)
    scale[1] = torch.linspace(0.9, 1.1, b.num_links)
    b.set_link_mass_scale_masked(_all(3), scale)
    b.set_base_mass_offset_masked(_all(3), torch.tensor([0.0, 0.0, 2.5]))
    mass = b.warp_model.body_mass.numpy()
    nominal = model.body_mass
    np.testing.assert_allclose(mass[0], nominal, rtol=1e-6)
    np.testing.assert_allclose(mass[1, 1:], nominal[1:] * scale[1].numpy(), rtol=1e-6)
    assert mass[2].sum() == pytest.approx(nominal.sum() + 2.5, rel=1e-6)  # payload
    assert mass[2, base] == pytest.approx(nominal[base] + 2.5, rel=1e-6)
    inertia = b.warp_model.body_inertia.numpy()
    np.testing.assert_allclose(inertia[1, 1:], model.body_inertia[1:]
                               * scale[1].numpy()[:, None], rtol=1e-5)
    np.testing.assert_allclose(inertia[2], model.body_inertia, rtol=1e-6)
    # subtree masses as MuJoCo computes them for the same masses
    sub = b.warp_model.body_subtreemass.numpy()
    for world in range(3):
        expected = np.zeros(model.nbody)
        for body in range(model.nbody - 1, -1, -1):
            expected[body] += mass[world, body]
            if body > 0:
                expected[model.body_parentid[body]] += expected[body]
        np.testing.assert_allclose(sub[world], expected, rtol=1e-5)
    # the feet of the payload world carry 2.5 kg more
    _stand(b)
    for _ in range(25):
        b.step(4)
    total = b.foot_contact_force.sum(dim=1)
    assert float(total[2] - total[0]) == pytest.approx(2.5 * 9.81, abs=12.0)
    with pytest.raises(ValueError, match='link_mass_scale'):
        b.set_link_mass_scale_masked(_all(3), -scale)
    _nominal(b)


def test_base_com_offset_moves_the_base_centre_of_mass(backend, robot):
    b = backend
    _nominal(b)
    base = mujoco.mj_name2id(b.mj_model, mujoco.mjtObj.mjOBJ_BODY, robot.base_link)
    offset = torch.tensor([[0.0, 0.0, 0.0], [0.03, -0.02, 0.01], [0.0, 0.0, 0.0]])
    b.set_base_com_offset_masked(_all(3), offset)
    _stand(b)  # runs kinematics: xipos follows body_ipos
    xipos = b.warp_data.xipos.numpy()[:, base]
    np.testing.assert_allclose(xipos[1] - xipos[0], offset[1].numpy(), atol=1e-5)  # upright
    np.testing.assert_allclose(xipos[2], xipos[0], atol=1e-7)
    _nominal(b)


def test_armature_friction_and_damping_change_the_joint_response(backend):
    """Same state, same PD step on the elbows: more inertia or friction, less acceleration."""
    b = backend
    _nominal(b)
    n, j = 3, b.num_joints
    arm = torch.ones(n, j)
    arm[1] = 4.0
    friction = torch.zeros(n, j)
    friction[2] = 2.0
    b.set_joint_dynamics_masked(_all(n), armature_scale=arm, frictionloss_nm=friction,
                                damping_nms_per_rad=torch.full((n, j), 0.1))
    jv = b._ix.joint_vadr
    np.testing.assert_allclose(b.warp_model.dof_armature.numpy()[1, jv],
                               4.0 * b.mj_model.dof_armature[jv], rtol=1e-6)
    assert np.allclose(b.warp_model.dof_frictionloss.numpy()[2, jv], 2.0)
    assert np.allclose(b.warp_model.dof_damping.numpy()[:, jv], 0.1)
    _stand(b)
    elbow = b.robot.joint_names.index('left_elbow_joint')
    b.q_target[:, elbow] += 0.2
    b.step(1)
    speed = b.joint_vel[:, elbow].abs()
    assert float(speed[1]) < 0.6 * float(speed[0])  # 4x rotor inertia
    assert float(speed[2]) < float(speed[0])  # 2 N*m dry friction
    report = b.check_overflow()
    assert not report['overflow'], report
    with pytest.raises(ValueError, match='frictionloss_nm'):
        b.set_joint_dynamics_masked(_all(n), frictionloss_nm=-friction - 1.0)
    _nominal(b)


# ------------------------------------------------------------------------- through the env
def _env(num_envs=4, **kw):
    r = DomainRandConfig(**kw)
    return LocomotionEnv(EnvConfig(num_envs=num_envs, randomization=r), 'mjwarp', 'cpu')


@pytest.fixture(scope='module')
def env_all_on():
    """Build an env with every randomization term on; every episode lasts one step."""
    torch.manual_seed(0)
    r = DomainRandConfig(**ALL_ON)
    cfg = EnvConfig(num_envs=6, episode_length_s=0.02, randomization=r)
    return LocomotionEnv(cfg, 'mjwarp', 'cpu')


def test_every_draw_stays_in_its_range(env_all_on):
    env, r = env_all_on, env_all_on.cfg.randomization
    env.reset()
    seen_delays = set()
    zeros = torch.zeros(env.num_envs, env.num_actions)
    for _ in range(4):
        env.step(zeros)  # every env resets every step: fresh draws
        b = env.backend

        def within(t, low, high):
            return bool(((t >= low - 1e-6) & (t <= high + 1e-6)).all())

        assert within(env.friction, *r.friction_range)
        assert within(b.warp_model.geom_friction.numpy()[:, :, 0], *r.friction_range)
        assert within(env.added_base_mass_kg, *r.added_base_mass_kg)
        assert within(env.link_mass_scale, *r.link_mass_scale_range)
        for axis, half in enumerate(r.base_com_offset_m):
            assert within(env.base_com_offset_m[:, axis], -half, half)
        assert within(env.kd_scale, *r.kd_scale_range)
        assert within(env.armature_scale, *r.armature_scale_range)
        assert within(env.joint_friction_nm, *r.joint_friction_nm)
        assert within(env.joint_damping_nms_per_rad, *r.joint_damping_nms_per_rad)
        assert within(env.gyro_bias_rad_s, -r.gyro_bias_rad_s, r.gyro_bias_rad_s)
        assert within(env.gravity_bias, -r.gravity_bias, r.gravity_bias)
        assert within(env.encoder_bias_rad, -r.encoder_bias_rad, r.encoder_bias_rad)
        assert within(env.action_delay_steps, 0, 8) and within(env.obs_delay_steps, 0, 8)
        seen_delays.update(env.action_delay_steps.tolist())
        # the simulator holds what was drawn
        torch.testing.assert_close(b.kd, env.kd * env.gain_scale * env.kd_scale)
        jv = b._ix.joint_vadr
        np.testing.assert_allclose(b.warp_model.dof_frictionloss.numpy()[:, jv],
                                   env.joint_friction_nm.numpy(), rtol=1e-6)
        assert torch.equal(b._latency.action_delay_steps, env.action_delay_steps)
        params = env.privileged_params
        assert params.shape == (env.num_envs, len(privileged_param_specs(r, 0.005)))
        assert bool((params.abs() <= 1.0 + 1e-5).all())
    assert len(seen_delays) >= 3  # whole steps drawn over the range


def test_privileged_params_are_the_normalized_draws(env_all_on):
    env = env_all_on
    env.reset()
    names = list(env.privileged_param_names)
    specs = privileged_param_specs(env.cfg.randomization, 0.005)
    assert names == [name for name, _, _ in specs]
    low, high = env.cfg.randomization.friction_range
    expected = (env.friction - 0.5 * (low + high)) / (0.5 * (high - low))
    torch.testing.assert_close(env.privileged_params[:, names.index('friction')], expected)
    delay = env.privileged_params[:, names.index('action_delay_steps')]
    torch.testing.assert_close(delay, (env.action_delay_steps.float() - 4.0) / 4.0)
    # the critic's observation ends with them
    _, critic = env.reset()
    torch.testing.assert_close(critic[:, -len(names):], env.privileged_params)


def test_imu_and_encoder_biases_reach_the_actor_only():
    torch.manual_seed(3)
    r = dict(ALL_ON, latency=False, obs_noise=False)
    env = _env(**r)
    env.reset()
    inputs = env._observation_inputs()
    seen = env._sensor_model(inputs)
    torch.testing.assert_close(seen['base_ang_vel'], inputs['base_ang_vel'] + env.gyro_bias_rad_s)
    torch.testing.assert_close(seen['projected_gravity'],
                               inputs['projected_gravity'] + env.gravity_bias)
    torch.testing.assert_close(seen['joint_pos'], inputs['joint_pos'] + env.encoder_bias_rad)
    torch.testing.assert_close(seen['joint_vel'], inputs['joint_vel'])
    assert float(env.gyro_bias_rad_s.abs().min()) > 0.0
    # in the actor's observation, scaled; not in the critic's
    obs, critic = env.reset()
    spec = {t.name: t for t in env.obs_terms}
    col = 0
    for t in env.obs_terms:
        if t.name == 'base_ang_vel':
            break
        col += t.size
    scale = spec['base_ang_vel'].scale[0]
    truth = env.base_ang_vel_b * scale
    torch.testing.assert_close(obs[:, col:col + 3], truth + env.gyro_bias_rad_s * scale,
                               rtol=0, atol=1e-5)
    critic_col = 3 + 0  # base_lin_vel first, then base_ang_vel
    torch.testing.assert_close(critic[:, critic_col:critic_col + 3], truth, rtol=0, atol=1e-5)


def test_observation_latency_shows_the_actor_an_older_state():
    torch.manual_seed(4)
    env = _env(num_envs=2, latency=True, obs_noise=False, pushes=False)
    env.reset()
    env.backend.set_latency_masked(_all(2), torch.zeros(2, dtype=torch.long),
                                   torch.tensor([0, 4]))
    history = []
    for _ in range(3):
        env.step(0.5 * torch.ones(2, env.num_actions))
        history.append(env.joint_pos.clone())
    seen = env._sensor_model(env._observation_inputs())
    torch.testing.assert_close(seen['joint_pos'][0], history[-1][0] - env.default_joint_pos)
    # 4 physics steps = one policy step (decimation 4) back
    torch.testing.assert_close(seen['joint_pos'][1], history[-2][1] - env.default_joint_pos)


def test_pushes_change_every_velocity_axis_within_range():
    torch.manual_seed(5)
    env = _env(num_envs=4, push_interval_s=(0.0, 0.0), push_lin_vel_z_m_s=0.4,
               push_ang_vel_rad_s=(0.5, 0.5, 0.8))
    env.reset()
    b = env.backend
    env._draw_randoms()
    env.push_timer_s.fill_(0.0)
    lin, ang = b.base_lin_vel_world.clone(), b.base_ang_vel_body.clone()
    env._push_due()
    dlin, dang = b.base_lin_vel_world - lin, b.base_ang_vel_body - ang
    assert bool((dlin[:, :2].abs() <= 0.6 + 1e-6).all()) and bool((dlin[:, 2].abs() <= 0.4).all())
    assert bool((dang.abs() <= torch.tensor([0.5, 0.5, 0.8]) + 1e-6).all())
    assert bool((dlin.abs() > 0).all()) and bool((dang.abs() > 0).all())


def test_the_disturbance_ramp_grows_pushes_and_delays_with_the_iterations():
    torch.manual_seed(7)
    env = _env(num_envs=64, push_interval_s=(0.0, 0.0), push_lin_vel_z_m_s=0.4,
               push_ang_vel_rad_s=(0.5, 0.5, 0.8), latency=True, ramp_iterations=100)
    # before any iteration (the first reset): no disturbance yet
    assert float(env.disturbance_scale) == 0.0
    env.reset()
    assert int(env.action_delay_steps.max()) == 0 and int(env.obs_delay_steps.max()) == 0
    assert [env.on_iteration(i) for i in (0, 50, 100, 250)] == [0.0, 0.5, 1.0, 1.0]
    b = env.backend

    def push_and_delays(iteration):
        env.on_iteration(iteration)
        env._draw_randoms()
        env.push_timer_s.fill_(0.0)
        lin, ang = b.base_lin_vel_world.clone(), b.base_ang_vel_body.clone()
        env._push_due()
        env._randomize_masked(torch.ones(env.num_envs, dtype=torch.bool))
        return (b.base_lin_vel_world - lin).abs(), (b.base_ang_vel_body - ang).abs(), \
            env.action_delay_steps.clone(), env.obs_delay_steps.clone()

    env.reset()
    dlin, dang, act, obs = push_and_delays(0)  # the start: no pushes, no delay
    assert float(dlin.max()) == 0.0 and float(dang.max()) == 0.0
    assert int(act.max()) == 0 and int(obs.max()) == 0
    dlin, dang, act, obs = push_and_delays(50)  # half way: half the speeds, half the spans
    assert float(dlin[:, :2].max()) <= 0.3 + 1e-6 and float(dlin[:, 2].max()) <= 0.2 + 1e-6
    assert bool((dang <= torch.tensor([0.25, 0.25, 0.4]) + 1e-6).all())
    assert float(dlin.max()) > 0.1
    assert int(act.max()) <= 4 and int(obs.max()) <= 4 and int(act.max()) >= 2
    dlin, dang, act, obs = push_and_delays(100)  # the full ranges
    assert float(dlin[:, :2].max()) > 0.3 and int(act.max()) > 4
    assert int(act.max()) <= 8 and int(obs.max()) <= 8
    without = _env(num_envs=2)  # no ramp: full from the first iteration
    assert without.on_iteration(0) == 1.0 and float(without.disturbance_scale) == 1.0
    with pytest.raises(ValueError, match='ramp_iterations'):
        _env(num_envs=2, ramp_iterations=-1)


def test_switches_off_leave_the_physics_nominal():
    torch.manual_seed(6)
    off = {f.name: False for f in dataclasses.fields(DomainRandConfig)
           if f.type in (bool, 'bool')}
    env = _env(num_envs=3, **off)
    assert env.privileged_param_names == () and env.privileged_params.shape == (3, 0)
    assert env.backend._latency is None
    env.reset()
    for _ in range(2):
        env.step(0.3 * torch.randn(3, env.num_actions))
    b, model = env.backend, env.backend.mj_model
    nominal = {'geom_friction': model.geom_friction, 'body_mass': model.body_mass,
               'body_inertia': model.body_inertia, 'body_ipos': model.body_ipos,
               'dof_armature': model.dof_armature, 'dof_frictionloss': model.dof_frictionloss,
               'dof_damping': model.dof_damping, 'body_subtreemass': model.body_subtreemass}
    for name, value in nominal.items():
        got = getattr(b.warp_model, name).numpy()
        np.testing.assert_allclose(got, np.broadcast_to(value, got.shape), rtol=1e-6,
                                   err_msg=name)
    torch.testing.assert_close(b.kp, env.kp.expand_as(b.kp))
    torch.testing.assert_close(b.kd, env.kd.expand_as(b.kd))
    torch.testing.assert_close(b.effort_limit, env.effort_limit.expand_as(b.effort_limit))
    inputs = env._observation_inputs()
    assert env._sensor_model(inputs) is inputs


def test_everything_on_steps_without_nan_or_overflow(env_all_on):
    env = env_all_on
    env.reset()
    gen = torch.Generator().manual_seed(7)
    for _ in range(6):
        obs, critic, rewards, dones, _ = env.step(
            0.5 * torch.randn(env.num_envs, env.num_actions, generator=gen))
        assert torch.isfinite(obs).all() and torch.isfinite(critic).all()
        assert torch.isfinite(rewards).all()
    report = env.check_overflow()
    assert report['nonfinite_worlds'] == 0 and not report['overflow']
    assert math.isfinite(float(env.backend.base_pos.abs().max()))


def test_step_body_with_every_term_and_terrain_has_no_host_syncs(monkeypatch):
    """
    Proxy of CUDA-graph safety on the CPU (as test_env_graph does for the defaults).

    With every randomization term, latency and the terrain on, the captured step body never
    reads a tensor on the host nor builds a tensor from host data.
    """
    from training.config import TerrainConfig
    terrain = TerrainConfig(enabled=True, kinds=('slope_up', 'rough'), num_levels=2,
                            tile_size_m=4.0, platform_m=1.6, cell_m=0.2, border_m=1.0,
                            spawn_half_range_m=0.3)
    cfg = EnvConfig(num_envs=4, episode_length_s=0.04, randomization=DomainRandConfig(**ALL_ON),
                    terrain=terrain)
    torch.manual_seed(8)
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    env.reset()
    env.step(torch.zeros(4, env.num_actions))  # episodes of 2 steps: the next step resets
    assert_step_body_has_no_host_syncs(env, monkeypatch)
    assert bool(env._dones_buf.all())  # the body ran the resets too
    assert torch.isfinite(env._obs_buf).all() and torch.isfinite(env._critic_obs_buf).all()


def test_a_term_the_backend_lacks_is_switched_off_with_a_message(monkeypatch, capsys):
    def lacks(*args, **kwargs):
        raise NotImplementedError('this backend lacks it')

    monkeypatch.setattr(MjWarpBackend, 'enable_latency', lacks)
    monkeypatch.setattr(MjWarpBackend, 'set_joint_dynamics_masked', lacks)
    torch.manual_seed(9)
    env = _env(num_envs=2, latency=True, armature=True)
    assert not env._latency_on
    env.reset()
    env.reset()
    assert env._dr_unsupported == ['joint_dynamics']  # tried once
    out = capsys.readouterr().out
    assert "'latency' is off: this backend lacks it" in out
    assert "'joint_dynamics' is off: this backend lacks it" in out
    inputs = env._observation_inputs()
    assert env._sensor_model(inputs) is inputs  # no latency, no bias terms on


def test_the_ramp_grows_every_randomized_range_from_its_nominal_value():
    torch.manual_seed(3)
    env = _env(num_envs=64, **{**ALL_ON, 'ramp_iterations': 100,
                               'friction_range': (0.2, 1.5)})
    everyone = torch.ones(env.num_envs, dtype=torch.bool)
    drawn = {'gain': lambda: env.gain_scale, 'strength': lambda: env.strength_scale,
             'kd': lambda: env.kd_scale, 'friction': lambda: env.friction,
             'payload': lambda: env.added_base_mass_kg, 'links': lambda: env.link_mass_scale,
             'com': lambda: env.base_com_offset_m, 'armature': lambda: env.armature_scale,
             'joint_friction': lambda: env.joint_friction_nm,
             'damping': lambda: env.joint_damping_nms_per_rad,
             'gyro_bias': lambda: env.gyro_bias_rad_s, 'encoder': lambda: env.encoder_bias_rad}
    nominal = {'gain': 1.0, 'strength': 1.0, 'kd': 1.0, 'friction': 1.0, 'payload': 0.0,
               'links': 1.0, 'com': 0.0, 'armature': 1.0, 'joint_friction': 0.0,
               'damping': 0.0, 'gyro_bias': 0.0, 'encoder': 0.0}

    def spreads(iteration):
        env.on_iteration(iteration)
        env._draw_randoms()
        env._randomize_masked(everyone)
        return {k: float((get() - nominal[k]).abs().max()) for k, get in drawn.items()}

    start, half, full = spreads(0), spreads(50), spreads(100)
    assert all(v < 1e-6 for v in start.values()), start  # every world the nominal robot
    for k in drawn:
        assert 0.0 < half[k] < full[k], (k, half[k], full[k])
    r = env.cfg.randomization
    assert full['friction'] > 0.5 and half['friction'] <= 0.5 * 0.8 + 1e-6  # 1.0 - 0.2
    assert half['payload'] <= 0.5 * r.added_base_mass_kg[1] + 1e-6
    # the range never leaves the configured one
    env.on_iteration(100)
    assert float(env.friction.min()) >= 0.2 - 1e-6 and float(env.friction.max()) <= 1.5 + 1e-6
