"""
The Isaac Gym backend without Isaac Gym: the message where it is missing, and its wiring.

The wiring tests run the backend on ``isaacgym_fake`` (Isaac Gym's tensor semantics, no
physics): they check what the backend writes into and reads from Isaac Gym's tensors, not
PhysX.  Isaac Gym's API use is type-checked in test_isaacgym_typecheck.py; the conversions are
tested in test_conventions.py.
"""

import importlib.util
from pathlib import Path
import subprocess
import sys

from humanoid_rl_ros.core.policy_math import pd_effort
from humanoid_rl_ros.robot.description import load_robot
from isaacgym_fake import EXTRA_DOF, fake_isaacgym
import numpy as np
import pytest
import torch
from training.backends import BackendUnavailableError, make_backend

ROOT = Path(__file__).resolve().parents[1]

without_isaacgym = pytest.mark.skipif(importlib.util.find_spec('isaacgym') is not None,
                                      reason='Isaac Gym is installed here')


def _says_what_to_do(message: str) -> None:
    assert message.startswith('backend "isaacgym" is not available '
                              "(No module named 'isaacgym'; this is Python ")
    assert 'download Isaac Gym Preview 4 from NVIDIA' in message
    assert '`pip install -e isaacgym/python`' in message
    assert 'Python 3.6-3.8' in message
    assert '`python -m training.isaacgym_train`' in message
    assert message.endswith('The default backend, mjwarp (`--backend mjwarp`), needs nothing '
                            "beyond this project's requirements.")


@without_isaacgym
def test_selecting_isaacgym_without_it_says_how_to_install_it_and_that_mjwarp_needs_nothing():
    with pytest.raises(BackendUnavailableError) as info:
        make_backend('isaacgym', load_robot('kestrel'), 2, 'cpu')
    _says_what_to_do(str(info.value))


@without_isaacgym
def test_the_isaacgym_training_entry_point_exits_with_that_one_message():
    result = subprocess.run([sys.executable, '-m', 'training.isaacgym_train', '--device', 'cpu'],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 1
    assert result.stdout == ''
    assert 'Traceback' not in result.stderr
    assert result.stderr.count('\n') == 1, result.stderr
    _says_what_to_do(result.stderr.strip())


@without_isaacgym
def test_train_with_backend_isaacgym_exits_with_that_message_and_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'training.train', '--backend', 'isaacgym',
                             '--device', 'cpu', '--num-envs', '2', '--iterations', '1',
                             '--log-root', str(tmp_path), '--export-dir', str(tmp_path)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    _says_what_to_do(result.stderr.strip())


# ---- wiring, on the stand-in ----

C45 = float(np.cos(np.pi / 4))


@pytest.fixture()
def fake(monkeypatch):
    """Return ``(backend, gym)``: an IsaacGymBackend of 2 kestrels on the fake isaacgym."""
    robot = load_robot('kestrel')
    modules, gym = fake_isaacgym(robot)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    backend = make_backend('isaacgym', robot, 2, 'cpu', env_spacing_m=3.0)
    yield backend, gym
    backend.close()


def _dof_columns(robot):
    """Return each policy joint's column in the fake asset's DOF order (reversed + 1)."""
    return [robot.num_joints - 1 - j for j in range(robot.num_joints)]


def test_the_asset_is_set_up_for_the_pd_law_in_torch(fake):
    backend, gym = fake
    robot = backend.robot
    env = gym.sim.envs[1]
    cols = _dof_columns(robot)
    assert (env.dof_props['driveMode'][cols] == 3).all()  # DOF_MODE_EFFORT
    assert (env.dof_props['stiffness'][cols] == 0.0).all()
    np.testing.assert_allclose(env.dof_props['effort'][cols], robot.effort_limit_nm, rtol=1e-6)
    assert ('create_actor', (1, 1, 1)) in gym.calls  # env 1, group 1, no self collisions
    assert ('create_sim', (0, -1, False)) in gym.calls  # CPU: no GPU pipeline


def test_state_is_read_in_the_envs_convention(fake):
    backend, gym = fake
    sim, robot = gym.sim, backend.robot
    n_dof = robot.num_joints + 1
    sim.dof.view(2, n_dof, 2)[:, :, 0] = torch.arange(n_dof, dtype=torch.float32)
    sim.root[1, 3:7] = torch.tensor([0.0, 0.0, C45, C45])  # turned +90 deg about z, xyzw
    sim.root[1, 10:13] = torch.tensor([1.0, 0.0, 0.0])  # roll rate about world x
    gym.refresh_actor_root_state_tensor(sim)  # as after the physics step that got it there
    gym.refresh_dof_state_tensor(sim)
    backend.kp.zero_()
    backend.kd.zero_()  # no effort: the fake's DOFs stay where they are
    backend.step(1)
    origin = sim.envs[1].origin
    assert (origin.x, origin.y) == (3.0, 0.0)
    torch.testing.assert_close(backend.base_pos[1], torch.tensor([0.0, 0.0, 0.795]))
    torch.testing.assert_close(backend.base_quat[1], torch.tensor([C45, 0.0, 0.0, C45]))
    torch.testing.assert_close(backend.base_ang_vel_body[1], torch.tensor([0.0, -1.0, 0.0]),
                               atol=1e-6, rtol=0)
    # joint j of the policy is DOF (J - 1 - j) of the asset
    torch.testing.assert_close(backend.joint_pos[0], torch.tensor(
        _dof_columns(robot), dtype=torch.float32))
    # feet: bodies 1 and 2 of the fake, 0.1 m apart per index, 0.7 m under the base
    torch.testing.assert_close(backend.foot_pos[1], torch.tensor(
        [[0.0, 0.1, 0.095], [0.0, 0.2, 0.095]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(backend.foot_contact_force[0], torch.tensor([100.0, 200.0]))


def test_a_masked_reset_writes_only_those_actors_in_isaacgym_layout(fake):
    backend, gym = fake
    sim, robot = gym.sim, backend.robot
    before = sim.root[0].clone()
    j = robot.num_joints
    pose = torch.linspace(-0.5, 0.5, j)
    backend.reset_masked(
        torch.tensor([False, True]), base_pos=torch.tensor([[9.0, 9.0, 9.0], [0.1, 0.2, 0.7]]),
        base_quat=torch.tensor([[1.0, 0, 0, 0], [2 * C45, 0, 0, 2 * C45]]),  # unnormalized
        base_lin_vel_world=torch.tensor([[9.0, 9, 9], [0.3, 0.0, 0.0]]),
        base_ang_vel_body=torch.tensor([[9.0, 9, 9], [1.0, 0.0, 0.0]]),
        joint_pos=torch.stack([torch.full((j,), 9.0), pose]),
        joint_vel=torch.stack([torch.full((j,), 9.0), 2 * pose]))
    assert ('set_actor_root_state_tensor_indexed', ([1],)) in gym.calls
    assert ('set_dof_state_tensor_indexed', ([1],)) in gym.calls
    torch.testing.assert_close(sim.root[0], before)  # env 0 untouched
    expected = [3.1, 0.2, 0.7, 0.0, 0.0, C45, C45, 0.3, 0.0, 0.0, 0.0, 1.0, 0.0]
    torch.testing.assert_close(sim.root[1], torch.tensor(expected), atol=1e-6, rtol=0)
    dofs = sim.dof.view(2, j + 1, 2)
    torch.testing.assert_close(dofs[1, _dof_columns(robot), 0], pose)
    torch.testing.assert_close(dofs[1, _dof_columns(robot), 1], 2 * pose)
    assert dofs[1, j, 0] == 0.0  # the unactuated DOF keeps its state
    assert (dofs[0] == 0.0).all()
    torch.testing.assert_close(backend.joint_pos[1], pose)
    torch.testing.assert_close(backend.base_ang_vel_body[1], torch.tensor([1.0, 0.0, 0.0]),
                               atol=1e-6, rtol=0)
    calls = len(gym.calls)
    backend.reset_masked(torch.tensor([False, False]), *(torch.zeros(2, w) for w in (
        3, 4, 3, 3, j, j)))
    assert len(gym.calls) == calls  # nothing to reset: no Isaac Gym call


def test_steps_apply_the_pd_effort_at_the_asset_dofs_and_send_pushes(fake):
    backend, gym = fake
    sim, robot = gym.sim, backend.robot
    j = robot.num_joints
    backend.q_target.copy_(backend.joint_pos + 0.1)
    expected = pd_effort(backend.q_target, backend.joint_pos, backend.joint_vel, backend.kp,
                         backend.kd, backend.effort_limit)
    backend.base_lin_vel_world[0, 0] += 1.0  # a push, written in place like the env does
    gym.calls.clear()
    backend.step(3)
    names = [name for name, _ in gym.calls]
    assert names[0] == 'set_actor_root_state_tensor'  # the push reaches the simulator first
    assert names.count('simulate') == 3 and names.count('fetch_results') == 3
    first_forces = next(args[0] for name, args in gym.calls
                        if name == 'set_dof_actuation_force_tensor')
    torch.testing.assert_close(first_forces.view(2, j + 1)[:, _dof_columns(robot)], expected)
    assert (first_forces.view(2, j + 1)[:, j] == 0.0).all()
    assert float(sim.root[0, 7]) == 1.0 and float(sim.root[1, 7]) == 0.0
    # 3 steps of 5 ms at 1 m/s
    assert float(backend.base_pos[0, 0]) == pytest.approx(0.015, abs=1e-6)


def test_an_angular_push_reaches_the_simulator_in_the_world_frame(fake):
    backend, gym = fake
    sim = gym.sim
    sim.root[1, 3:7] = torch.tensor([0.0, 0.0, C45, C45])  # turned +90 deg about z, xyzw
    sim.root[:, 10:13] = 0.0
    gym.refresh_actor_root_state_tensor(sim)
    backend.kp.zero_()
    backend.kd.zero_()
    backend.step(1)  # read the turned orientation into the env's copies
    # an angular push written like the env does: in place, body frame
    backend.base_ang_vel_body[1, 0] += 2.0  # roll rate about the body x axis
    backend.base_ang_vel_body[0, 2] += 0.5  # yaw rate of the upright robot
    backend.step(1)
    # body x of a robot turned +90 deg about z is world y
    torch.testing.assert_close(sim.root[1, 10:13], torch.tensor([0.0, 2.0, 0.0]),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(sim.root[0, 10:13], torch.tensor([0.0, 0.0, 0.5]),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(backend.base_ang_vel_body[1], torch.tensor([2.0, 0.0, 0.0]),
                               atol=1e-6, rtol=0)


def test_an_angular_push_survives_a_reset_of_another_world(fake):
    backend, gym = fake
    sim, j = gym.sim, backend.robot.num_joints
    sim.root[:, 10:13] = 0.0
    gym.refresh_actor_root_state_tensor(sim)
    backend.kp.zero_()
    backend.kd.zero_()
    backend.step(1)
    backend.base_ang_vel_body[0, 2] += 0.5  # the env pushes world 0 ...
    backend.reset_masked(torch.tensor([False, True]), *(torch.zeros(2, w) for w in (
        3, 4, 3, 3, j, j)))  # ... and resets world 1 in the same env step
    torch.testing.assert_close(backend.base_ang_vel_body[0], torch.tensor([0.0, 0.0, 0.5]))
    backend.step(1)
    torch.testing.assert_close(sim.root[0, 10:13], torch.tensor([0.0, 0.0, 0.5]),
                               atol=1e-6, rtol=0)


def test_randomization_writes_the_masked_envs_only(fake):
    backend, gym = fake
    envs = gym.sim.envs
    backend.set_friction_masked(torch.tensor([True, False]), torch.tensor([0.5, 0.25]))
    assert (envs[0].friction, envs[1].friction) == (0.5, 1.0)
    backend.set_base_mass_offset_masked(torch.tensor([False, True]), torch.tensor([9.0, -2.5]))
    assert (envs[0].base_mass, envs[1].base_mass) == (10.0, 7.5)
    with pytest.raises(ValueError, match='must be finite and > 0'):
        backend.set_base_mass_offset_masked(torch.tensor([True, False]),
                                            torch.tensor([-10.0, 0.0]))
    with pytest.raises(ValueError, match=r'mask must be a bool tensor of shape \(2,\)'):
        backend.set_friction_masked(torch.tensor([1, 0]), torch.tensor([0.5, 0.5]))


def test_non_finite_worlds_are_reported(fake):
    backend, gym = fake
    assert backend.check_overflow()['nonfinite_worlds'] == 0
    gym.sim.dof.view(2, -1, 2)[1, 0, 1] = float('nan')
    gym.refresh_dof_state_tensor(gym.sim)
    backend.step(1)
    report = backend.check_overflow()
    assert report == {'overflow': False, 'nonfinite_worlds': 1,
                      'note': 'PhysX has no per-world contact buffer counters'}
    assert EXTRA_DOF not in backend.robot.joint_names
