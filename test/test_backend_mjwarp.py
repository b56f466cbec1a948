"""Tests of the MuJoCo Warp training backend on the CPU (a few worlds, a few steps)."""

import dataclasses

from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.robot.mujoco_model import build_mujoco_model
import mujoco
import numpy as np
import pytest
import torch
from training.backends import BackendUnavailableError, make_backend
from training.backends.base import raise_if_overflow, SimOverflowError
from training.backends.mjwarp import default_contact_sizes, MjWarpBackend

NUM_ENVS = 3
DECIMATION = 4


@pytest.fixture(scope='module')
def robot():
    """Load the project's robot."""
    return load_robot('kestrel')


@pytest.fixture(scope='module')
def backend(robot):
    """Build one CPU backend shared by the tests of this file (kernel compile is slow)."""
    return MjWarpBackend(robot, NUM_ENVS, device='cpu')


def _mask(backend, ids):
    """Return the bool [N] mask selecting worlds ``ids``."""
    mask = torch.zeros(backend.num_envs, dtype=torch.bool)
    mask[list(ids)] = True
    return mask


def _default_state(backend, ids):
    """Return reset_masked arguments putting worlds ``ids`` in the default standing pose."""
    n = backend.num_envs
    key = backend.mj_model.key_qpos[0]
    pos = torch.tensor(key[0:3], dtype=torch.float32).repeat(n, 1)
    quat = torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1)
    zeros3 = torch.zeros(n, 3)
    jp = torch.tensor(backend.robot.default_pos_rad, dtype=torch.float32).repeat(n, 1)
    return {'mask': _mask(backend, ids), 'base_pos': pos, 'base_quat': quat,
            'base_lin_vel_world': zeros3, 'base_ang_vel_body': zeros3.clone(), 'joint_pos': jp,
            'joint_vel': torch.zeros_like(jp)}


def _reset_all(backend):
    backend.reset_masked(**_default_state(backend, list(range(backend.num_envs))))
    backend.q_target.copy_(torch.tensor(backend.robot.default_pos_rad, dtype=torch.float32))
    backend.check_overflow(clear=True)


def test_view_shapes_dtypes_devices(backend):
    n, j, f = NUM_ENVS, backend.num_joints, backend.num_feet
    assert (j, f) == (21, 2)
    shapes = {
        'base_pos': (n, 3), 'base_quat': (n, 4), 'base_lin_vel_world': (n, 3),
        'base_ang_vel_body': (n, 3), 'joint_pos': (n, j), 'joint_vel': (n, j),
        'foot_pos': (n, f, 3), 'foot_contact_force': (n, f), 'last_effort': (n, j),
        'q_target': (n, j), 'kp': (n, j), 'kd': (n, j), 'effort_limit': (n, j),
    }
    for name, shape in shapes.items():
        t = getattr(backend, name)
        assert tuple(t.shape) == shape, name
        assert t.dtype == torch.float32, name
        assert t.device == torch.device('cpu'), name
    assert backend.device == torch.device('cpu')
    assert backend.physics_dt_s == pytest.approx(0.005)
    np.testing.assert_allclose(backend.kp[1].numpy(), backend.robot.kp_nm_per_rad, rtol=1e-6)
    with pytest.raises(AttributeError):
        backend.q_target = torch.zeros(n, j)


def test_views_are_zero_copy(backend):
    _reset_all(backend)
    qpos_ptr = backend.warp_data.qpos.ptr
    assert backend.base_pos.data_ptr() == qpos_ptr
    base_pos, joint_vel, foot_pos = backend.base_pos, backend.joint_vel, backend.foot_pos
    z0 = base_pos[:, 2].clone()
    backend.q_target[:, 3] += 0.3  # bend the knees a bit: joints must move
    backend.step(DECIMATION)
    assert backend.base_pos is base_pos and backend.foot_pos is foot_pos
    assert not torch.equal(base_pos[:, 2], z0)
    assert joint_vel.abs().max() > 1e-3
    # a write into the warp array (through numpy, a view on the CPU) is seen by the view
    backend.warp_data.qvel.numpy()[0, 0] = 1.25
    assert float(backend.base_lin_vel_world[0, 0]) == 1.25
    _reset_all(backend)


def test_pd_holds_default_pose_for_one_second(backend):
    _reset_all(backend)
    steps = int(round(1.0 / (backend.physics_dt_s * DECIMATION)))
    forces = []
    for _ in range(steps):
        backend.step(DECIMATION)
        forces.append(backend.foot_contact_force.sum(dim=1).clone())
    quat = backend.base_quat
    up_z = 1.0 - 2.0 * (quat[:, 1] ** 2 + quat[:, 2] ** 2)  # body z axis . world z
    assert torch.all(backend.base_pos[:, 2] > 0.9 * backend.robot.nominal_base_height_m)
    assert torch.all(up_z > np.cos(np.radians(10.0)))
    # standing still: the feet carry the robot's weight
    weight_n = float(backend.mj_model.body_mass.sum()) * 9.81
    mean_force = torch.stack(forces[-10:]).mean(dim=0)
    np.testing.assert_allclose(mean_force.numpy(), weight_n, rtol=0.1)
    assert torch.all(backend.foot_pos[:, :, 2] < 0.15)
    assert torch.all(backend.last_effort.abs() <= backend.effort_limit + 1e-4)
    report = backend.check_overflow()
    assert not report['overflow'] and report['nonfinite_worlds'] == 0
    assert 0 < report['nacon_peak'] <= report['naconmax']


def test_reset_masked_writes_only_chosen_worlds(backend, robot):
    _reset_all(backend)
    backend.q_target[:, 2] += 0.2
    backend.step(DECIMATION)
    before = {n: getattr(backend, n).clone() for n in
              ('base_pos', 'base_quat', 'joint_pos', 'joint_vel', 'foot_pos')}
    rng = np.random.default_rng(0)
    pos = torch.tensor([[0.3, -0.2, 0.9]])
    quat = torch.tensor([[0.9, 0.1, -0.2, 0.3]])
    lin = torch.tensor([[0.5, -0.1, 0.2]])
    ang = torch.tensor([[0.1, 0.2, -0.3]])
    jp = torch.tensor(robot.default_pos_rad + rng.uniform(-0.1, 0.1, 21), dtype=torch.float32)
    jv = torch.tensor(rng.uniform(-1, 1, 21), dtype=torch.float32)
    rows = [t.repeat(NUM_ENVS, 1) for t in (pos, quat, lin, ang, jp[None], jv[None])]
    backend.reset_masked(_mask(backend, [1]), *rows)
    for name, old in before.items():
        new = getattr(backend, name)
        assert torch.equal(new[0], old[0]) and torch.equal(new[2], old[2]), name
    np.testing.assert_allclose(backend.base_pos[1].numpy(), pos[0].numpy(), atol=1e-6)
    unit = (quat / quat.norm())[0]
    np.testing.assert_allclose(backend.base_quat[1].numpy(), unit.numpy(), atol=1e-6)
    np.testing.assert_allclose(backend.base_lin_vel_world[1].numpy(), lin[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(backend.base_ang_vel_body[1].numpy(), ang[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(backend.joint_pos[1].numpy(), jp.numpy(), atol=1e-6)
    np.testing.assert_allclose(backend.joint_vel[1].numpy(), jv.numpy(), atol=1e-6)
    assert torch.all(backend.last_effort[1] == 0) and torch.all(backend.foot_contact_force[1] == 0)
    # foot positions follow the new pose (checked against CPU MuJoCo kinematics)
    model = backend.mj_model
    data = mujoco.MjData(model)
    data.qpos[:] = backend.warp_data.qpos.numpy()[1]
    mujoco.mj_kinematics(model, data)
    feet = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) for n in robot.foot_links]
    np.testing.assert_allclose(backend.foot_pos[1].numpy(), data.xpos[feet], atol=1e-4)


def test_reset_masked_rejects_bad_input(backend):
    args = _default_state(backend, [0, 1])
    bad = dict(args, joint_pos=torch.zeros(NUM_ENVS, 20))
    with pytest.raises(ValueError, match='joint_pos'):
        backend.reset_masked(**bad)
    nan = dict(args, base_pos=torch.full((NUM_ENVS, 3), float('nan')))
    with pytest.raises(ValueError, match='base_pos'):
        backend.reset_masked(**nan)
    with pytest.raises(ValueError, match='mask'):
        backend.reset_masked(**dict(args, mask=torch.tensor([0.0, 1.0, 0.0])))
    with pytest.raises(ValueError, match='decimation'):
        backend.step(0)
    # deferred validation (the CUDA default): recorded without a sync, reported later
    backend.check_overflow(clear=True)
    backend.validate_inputs = False
    try:
        backend.reset_masked(**nan)
        backend.set_friction_masked(_mask(backend, [0]), torch.zeros(NUM_ENVS))
        report = backend.check_overflow()
        assert report['invalid_inputs'] == ['base_pos', 'friction']
        assert report['nonfinite_worlds'] == 2
        with pytest.raises(ValueError, match='base_pos'):
            raise_if_overflow(report)
        assert backend.check_overflow()['invalid_inputs'] == []
    finally:
        backend.validate_inputs = True
        _reset_all(backend)
        backend.set_friction_masked(_mask(backend, [0]),
                                    float(backend.mj_model.geom_friction[0, 0]))


def test_agrees_with_cpu_mujoco_under_the_same_efforts(backend):
    """One world on MuJoCo Warp and on plain MuJoCo, fed the same efforts, stay together."""
    _reset_all(backend)
    model = backend.mj_model
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    data.qpos[:] = backend.warp_data.qpos.numpy()[0]
    mujoco.mj_forward(model, data)
    # a knee bend makes the motion non-trivial
    backend.q_target[:, 3] += 0.3
    backend.q_target[:, 9] += 0.3
    for _ in range(40):  # 0.2 s
        backend.step(1)
        data.ctrl[:] = backend.last_effort[0].numpy()
        mujoco.mj_step(model, data)
    qpos = backend.warp_data.qpos.numpy()[0]
    qvel = backend.warp_data.qvel.numpy()[0]
    moved = np.abs(data.qpos[7:] - model.key_qpos[0][7:]).max()
    assert moved > 0.05  # the knees really moved
    np.testing.assert_allclose(qpos[:3], data.qpos[:3], atol=5e-3)
    np.testing.assert_allclose(qpos[7:], data.qpos[7:], atol=2e-2)
    np.testing.assert_allclose(qvel, data.qvel, atol=0.2)


def test_friction_and_base_mass_randomization(backend, robot):
    _reset_all(backend)
    base = mujoco.mj_name2id(backend.mj_model, mujoco.mjtObj.mjOBJ_BODY, robot.base_link)
    backend.set_friction_masked(_mask(backend, [2]), torch.full((NUM_ENVS,), 0.3))
    fr = backend.warp_model.geom_friction.numpy()
    assert np.allclose(fr[2, :, 0], 0.3) and np.allclose(fr[:2, :, 0], fr[0, :, 0])
    assert not np.allclose(fr[0, :, 0], 0.3)
    backend.set_base_mass_offset_masked(_mask(backend, [1]), 5.0)
    mass = backend.warp_model.body_mass.numpy()
    assert mass[1, base] == pytest.approx(backend.mj_model.body_mass[base] + 5.0, rel=1e-6)
    assert mass[0, base] == pytest.approx(backend.mj_model.body_mass[base], rel=1e-6)
    for _ in range(25):
        backend.step(DECIMATION)
    total = backend.foot_contact_force.sum(dim=1)
    # the heavier world's feet carry 5 kg more (roughly: the robot still sways)
    assert float(total[1] - total[0]) == pytest.approx(5.0 * 9.81, abs=25.0)
    with pytest.raises(ValueError, match='friction'):
        backend.set_friction_masked(_mask(backend, [0]), torch.full((NUM_ENVS,), -1.0))
    with pytest.raises(ValueError, match='delta_kg'):
        backend.set_base_mass_offset_masked(_mask(backend, [0]), torch.tensor([1.0, 2.0]))
    every = _mask(backend, range(NUM_ENVS))
    backend.set_friction_masked(every, float(backend.mj_model.geom_friction[0, 0]))
    backend.set_base_mass_offset_masked(every, 0.0)


def test_default_contact_sizes_cover_both_feet(backend):
    nconmax, njmax = default_contact_sizes(backend.mj_model)
    assert nconmax >= 16  # two foot boxes, 8 contacts each with the floor
    assert njmax >= 4 * nconmax  # pyramidal condim 3: 4 rows per contact
    assert (backend.nconmax, backend.njmax) == (nconmax, njmax)


def test_overflow_is_detected_with_undersized_buffers(robot):
    with pytest.raises(ValueError, match='initial state'):
        MjWarpBackend(robot, 2, device='cpu', nconmax=1, njmax=8)
    # the standing keyframe fits (4 contacts, 16 rows); sinking the feet 8 cm into the floor
    # makes every corner of both foot boxes touch: 16 contacts per world
    small = MjWarpBackend(robot, 2, device='cpu', nconmax=4, njmax=16)
    state = _default_state(small, [0, 1])
    state['base_pos'][:, 2] -= 0.08
    small.reset_masked(**state)
    small.step(1)
    report = small.check_overflow(clear=False)
    assert report['overflow'] and report['worlds_overflowed'] == 2
    assert 'NARROWPHASE' in report['flags'] or 'NEFC' in report['flags']
    with pytest.raises(SimOverflowError, match='nconmax'):
        raise_if_overflow(report)
    small.check_overflow(clear=True)
    assert not small.check_overflow()['overflow']  # cleared, and no step since


def test_make_backend_names(robot):
    with pytest.raises(ValueError, match='mjwarp, isaacgym'):
        make_backend('bullet', robot, 2, 'cpu')
    with pytest.raises(BackendUnavailableError, match='isaacgym'):
        make_backend('isaacgym', robot, 2, 'cpu')
    with pytest.raises(ValueError, match='num_envs'):
        make_backend('mjwarp', robot, 0, 'cpu')


def test_model_mismatch_is_reported(robot):
    model = build_mujoco_model(robot)
    bad = dataclasses.replace(robot, foot_links=('no_such_foot',))
    with pytest.raises(ValueError, match='no_such_foot'):
        MjWarpBackend(bad, 1, device='cpu', mj_model=model)


def test_latency_is_refused_before_it_is_enabled_and_checks_its_delays(robot):
    small = MjWarpBackend(robot, 2, device='cpu')
    mask = _mask(small, [0, 1])
    steps = torch.zeros(2, dtype=torch.long)
    with pytest.raises(RuntimeError, match='enable_latency'):
        small.set_latency_masked(mask, steps, steps)
    with pytest.raises(RuntimeError, match='enable_latency'):
        small.delayed_state()
    small.enable_latency(2, 1)
    with pytest.raises(ValueError, match='delay_steps'):
        small.set_latency_masked(mask, torch.tensor([0, 3]), steps)  # above the maximum 2
    with pytest.raises(ValueError, match='delay_steps'):
        small.set_latency_masked(mask, steps, torch.tensor([-1, 0]))
    small.set_latency_masked(_mask(small, [1]), torch.tensor([9, 2]), torch.tensor([9, 1]))
    assert small._latency.action_delay_steps.tolist() == [0, 2]  # world 0 untouched
    state = small.delayed_state()
    assert set(state) == {'base_quat', 'base_lin_vel_world', 'base_ang_vel_body', 'joint_pos',
                          'joint_vel'}
    torch.testing.assert_close(state['joint_pos'], small.joint_pos)  # no step yet


def test_optional_randomization_of_the_base_class_raises_not_implemented():
    """A backend without a term says so; the env then switches the term off."""
    from training.backends.base import SimBackend

    class Minimal(SimBackend):

        def step(self, decimation):
            pass

        def reset_masked(self, *args, **kwargs):
            pass

        def check_overflow(self, clear=True):
            return {'overflow': False}

    b = Minimal()
    mask = torch.ones(1, dtype=torch.bool)
    for call in (lambda: b.set_friction_masked(mask, 1.0),
                 lambda: b.set_base_mass_offset_masked(mask, 1.0),
                 lambda: b.set_link_mass_scale_masked(mask, torch.ones(1, 1)),
                 lambda: b.set_base_com_offset_masked(mask, torch.zeros(1, 3)),
                 lambda: b.set_joint_dynamics_masked(mask, torch.ones(1, 1)),
                 lambda: b.enable_latency(1, 1),
                 lambda: b.set_latency_masked(mask, torch.zeros(1), torch.zeros(1)),
                 b.delayed_state):
        with pytest.raises(NotImplementedError, match='Minimal'):
            call()
    assert b.num_links == 0
