"""
Training pipeline tests on the CPU: the env, a short PPO run with export, and the parity test.

The parity test proves that training and the policy node agree: for one simulator state, the
observation the env hands to PPO and the PD effort it applies equal what the node's pure core
(:class:`humanoid_rl_ros.core.controller.Controller`) computes from the same state delivered as ROS
messages (joint states in shuffled order, odometry with the twist in the child frame).
"""

import dataclasses
import signal

from humanoid_rl_ros.core.contract import read_contract, write_contract
from humanoid_rl_ros.core.controller import Controller, ControllerConfig, ControllerState
from humanoid_rl_ros.core.policy_math import world_to_body
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from humanoid_rl_ros.robot.description import models_dir
from humanoid_rl_ros.ros.ros_conversions import (
    joint_state_to_arrays, make_joint_state, make_odometry, make_twist, odometry_to_arrays,
    twist_to_command)
import numpy as np
import onnxruntime as ort
import pytest
from robot_fixtures import CLASSIC_HUMANOID_JOINTS, write_classic_humanoid_robot
import torch
from training.config import DomainRandConfig, EnvConfig, ObservationConfig
from training.env import LocomotionEnv
from training.evaluate import EvalConfig, evaluate, SUITE
from training.runner import OnPolicyRunner
from training.train import parse_config, train


def _quiet_cfg(num_envs: int, **observations) -> EnvConfig:
    """Return a small env config with every randomization switched off."""
    off = DomainRandConfig(friction=False, added_base_mass=False, motor_strength=False,
                           pd_gain_scale=False, pushes=False, obs_noise=False,
                           action_latency=False)
    return dataclasses.replace(EnvConfig(), num_envs=num_envs, randomization=off,
                               observations=ObservationConfig(**observations))


@pytest.fixture(scope='module')
def env():
    """Return a 3-world CPU env of the default robot."""
    torch.manual_seed(0)
    environment = LocomotionEnv(_quiet_cfg(3), device='cpu')
    yield environment
    environment.close()


def test_env_obs_match_the_contract_and_stay_finite_for_200_random_steps(env, tmp_path):
    contract = read_contract(write_contract(env.contract(), tmp_path / 'c.yaml'))
    obs, critic = env.reset()
    assert obs.shape == (3, contract.obs_dim) and env.num_obs == contract.obs_dim
    assert critic.shape == (3, env.num_critic_obs)
    assert contract.joint_names == tuple(env.robot.joint_names)
    generator = torch.Generator().manual_seed(1)
    dones_seen = 0
    for _ in range(200):
        actions = torch.randn(3, env.num_actions, generator=generator)
        obs, critic, rewards, dones, extras = env.step(actions)
        assert torch.isfinite(obs).all() and torch.isfinite(critic).all()
        assert torch.isfinite(rewards).all()
        assert not (extras['time_outs'] & ~dones).any()
        dones_seen += int(dones.sum())
    assert dones_seen > 0, 'random actions should make at least one robot fall in 4 s'


@pytest.fixture(scope='module', params=[False, True],
                ids=['measured_terms_only', 'with_base_lin_vel'])
def parity_env(request):
    """Return a 3-world CPU env of the default observation set, or of the one with base_lin_vel."""
    torch.manual_seed(0)
    environment = LocomotionEnv(_quiet_cfg(3, use_base_lin_vel=request.param), device='cpu')
    yield environment
    environment.close()


def test_env_observation_and_pd_effort_equal_the_nodes(parity_env, tmp_path):
    env = parity_env
    contract = read_contract(write_contract(env.contract(), tmp_path / 'c.yaml'))
    assert ('base_lin_vel' in contract.term_names()) == env.cfg.observations.use_base_lin_vel
    assert contract.history_length == 1 and contract.obs_dim == env.num_obs
    period_s = contract.gait_period_s
    phase_at_second_policy_tick = contract.decimation * contract.physics_dt_s / period_s
    env.reset()
    generator = torch.Generator().manual_seed(2)
    for _ in range(5):
        env.step(0.5 * torch.randn(3, env.num_actions, generator=generator))
    env.gait_phase[0] = phase_at_second_policy_tick - contract.policy_dt_s / period_s
    action = 0.5 * torch.randn(3, env.num_actions, generator=generator)
    obs, _, _, dones, _ = env.step(action)
    assert not dones[0], 'world 0 must not have been reset during the parity step'
    b = env.backend
    quat = b.base_quat[0].double().numpy()
    lin_body = world_to_body(quat, b.base_lin_vel_world[0].double().numpy())
    ang_body = b.base_ang_vel_body[0].double().numpy()
    q, qd = b.joint_pos[0].double().numpy(), b.joint_vel[0].double().numpy()
    command = env.commands[0].double().numpy()
    env_action = action[0].numpy().astype(np.float32)

    recorded = []

    def policy(observation: np.ndarray) -> np.ndarray:
        recorded.append((observation.copy(), controller.gait_phase))
        return env_action

    controller = Controller(contract, policy, ControllerConfig(stand_ramp_s=0.0))
    names = list(contract.joint_names)
    order = np.random.default_rng(3).permutation(len(names))
    joint_msg = make_joint_state([names[i] for i in order] + ['head_pan_joint'],
                                 position=list(q[order]) + [0.3],
                                 velocity=list(qd[order]) + [-1.0])
    odom_msg = make_odometry([0.0, 0.0, 0.8], quat, lin_body, ang_body)
    twist = make_twist(*command, stamped=True)
    for tick in range(contract.decimation + 1):
        now = tick * contract.physics_dt_s
        controller.update_joint_state(*joint_state_to_arrays(joint_msg), now)
        controller.update_odom(*odometry_to_arrays(odom_msg), now)
        controller.update_cmd_vel(*twist_to_command(twist), now)
        if tick == 0:
            controller.activate(now)
            controller.request_walk(now)
        effort = controller.step(now)
        assert controller.state is ControllerState.WALKING
    assert len(recorded) == 2
    node_obs, node_phase = recorded[1]
    assert node_phase == pytest.approx(float(env.gait_phase[0]), abs=1e-6)
    np.testing.assert_allclose(node_obs, obs[0].numpy(), atol=1e-5)
    env_effort = b.compute_effort()[0].numpy()
    np.testing.assert_allclose(effort, env_effort, atol=1e-3)
    assert np.abs(env_effort).max() > 1.0, 'the compared effort should not be trivially zero'


def test_short_cpu_training_run_exports_a_policy_that_onnxruntime_agrees_with(tmp_path):
    cfg = parse_config([
        '--device', 'cpu', '--num-envs', '3', '--iterations', '2',
        '--runner.num-steps-per-env', '8', '--runner.no-tensorboard',
        '--runner.policy.actor-hidden-dims', '32', '32',
        '--runner.policy.critic-hidden-dims', '32', '32', '--seed', '4', '--run-name', 'cpu_smoke',
        '--log-root', str(tmp_path / 'runs'), '--export-dir', str(tmp_path / 'models')])
    result = train(cfg, command_line=['pytest'])
    history = result['history']
    assert len(history) == 2
    assert all(np.isfinite([row['value_loss'], row['surrogate_loss']]).all() for row in history)
    assert (tmp_path / 'runs' / 'cpu_smoke' / 'config.yaml').is_file()
    contract = read_contract(result['contract'])
    assert contract.provenance['iterations'] == 2
    assert contract.provenance['backend'] == 'mjwarp'
    assert contract.provenance['config']['env']['num_envs'] == 3
    session = ort.InferenceSession(str(result['onnx']), providers=['CPUExecutionProvider'])
    obs = np.random.default_rng(5).normal(size=(16, contract.obs_dim)).astype(np.float32)
    onnx_actions = session.run([contract.onnx_output_name], {contract.onnx_input_name: obs})[0]
    assert onnx_actions.shape == (16, contract.action_dim)
    assert np.all(np.isfinite(onnx_actions))
    # the default observation: what a robot measures, no base velocity, one frame
    n = contract.num_joints
    assert [(t.name, t.size) for t in contract.obs_terms] == [
        ('base_ang_vel', 3), ('projected_gravity', 3), ('velocity_command', 3),
        ('joint_pos', n), ('joint_vel', n), ('last_action', n), ('gait_phase', 2)]
    assert contract.history_length == 1 and contract.history_layout == 'current_only'
    assert 'base_lin_vel' not in contract.training.observation_noise
    assert contract.training.base_lin_vel_error is None
    # the node's runtime loads it; a controller fed only joints and an IMU (no odometry) walks
    runtime = PolicyRuntime.load(result['contract'])
    assert runtime.contract.obs_dim == contract.obs_dim == 11 + 3 * n
    _walk_a_few_ticks_on_imu_only(runtime)


def _walk_a_few_ticks_on_imu_only(runtime):
    """Run a controller on ``runtime`` for two policy steps from joint states and an IMU."""
    contract = runtime.contract
    controller = Controller(contract, runtime.act,
                            ControllerConfig(stand_ramp_s=0.0, orientation_source='imu'))
    q = np.asarray(contract.default_pos_rad)
    for tick in range(2 * contract.decimation):
        now = tick * contract.physics_dt_s
        controller.update_joint_state(contract.joint_names, q, np.zeros_like(q), now)
        controller.update_imu([1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.1], now)
        controller.update_cmd_vel(0.4, 0.0, 0.0, now)
        if tick == 0:
            controller.activate(now)
            assert controller.request_walk(now)[0]
        effort = controller.step(now)
        assert controller.state is ControllerState.WALKING
        assert np.all(np.isfinite(effort))
        assert np.all(np.abs(effort) <= np.asarray(contract.effort_limit_nm))
    assert controller.policy_steps == 2


def test_the_shipped_policy_with_base_velocity_still_loads_and_runs():
    runtime = PolicyRuntime.load(models_dir() / 'humanoid_walk_base_vel.yaml')
    contract = runtime.contract
    assert contract.term_names()[0] == 'base_lin_vel' and contract.history_length == 1
    assert contract.obs_dim == contract.frame_dim == 14 + 3 * contract.num_joints
    action = runtime.act(np.zeros(contract.obs_dim, dtype=np.float32))
    assert action.shape == (contract.action_dim,) and np.all(np.isfinite(action))


def test_the_shipped_default_policy_observes_no_base_velocity():
    """The default policy runs on what a robot measures without a velocity estimator."""
    runtime = PolicyRuntime.load(models_dir() / 'humanoid_walk.yaml')
    contract = runtime.contract
    assert 'base_lin_vel' not in contract.term_names() and contract.history_length == 1
    assert contract.term_names()[:2] == ('base_ang_vel', 'projected_gravity')
    assert contract.obs_dim == contract.frame_dim == 11 + 3 * contract.num_joints
    action = runtime.act(np.zeros(contract.obs_dim, dtype=np.float32))
    assert action.shape == (contract.action_dim,) and np.all(np.isfinite(action))


def test_pipeline_takes_another_robot_described_in_mjcf(tmp_path):
    robot_dir = write_classic_humanoid_robot(tmp_path)
    cfg = parse_config([
        '--device', 'cpu', '--num-envs', '2', '--iterations', '1',
        '--runner.num-steps-per-env', '8', '--runner.no-tensorboard', '--runner.no-plot',
        '--runner.policy.actor-hidden-dims', '32', '32',
        '--runner.policy.critic-hidden-dims', '32', '32', '--robot', str(robot_dir),
        '--run-name', 'classic', '--log-root', str(tmp_path / 'runs'),
        '--export-dir', str(tmp_path / 'models')])
    result = train(cfg, command_line=['pytest'])
    contract = read_contract(result['contract'])
    assert contract.robot == 'classic_humanoid'
    assert contract.joint_names == tuple(CLASSIC_HUMANOID_JOINTS)
    cfg = EvalConfig(duration_s=1.0, settle_s=0.2, rise_s=0.5, seeds=1, pushes=(False,))
    report = evaluate(result['contract'], cfg, None, cases=SUITE[:1], robot_path=robot_dir)
    assert report['robot'] == 'classic_humanoid' and report['overall']['runs'] == 1


def test_a_world_with_non_finite_physics_terminates_and_resets_cleanly(env):
    env.reset()
    env.backend.joint_vel[1, 3] = float('nan')
    obs, critic, rewards, dones, extras = env.step(torch.zeros(3, env.num_actions))
    assert bool(dones[1]) and not bool(extras['time_outs'][1])
    assert torch.isfinite(obs).all() and torch.isfinite(critic).all()
    assert torch.isfinite(rewards).all()
    assert torch.isfinite(env.backend.joint_vel).all()


def test_a_fall_on_the_last_step_is_a_termination_not_a_time_out(env):
    env.reset()
    env.episode_length.fill_(env.max_episode_length - 1)
    env.backend.base_pos[0, 2] = 0.1  # far below the fall height
    _, _, _, dones, extras = env.step(torch.zeros(3, env.num_actions))
    assert bool(dones[0]) and not bool(extras['time_outs'][0])
    assert bool(dones[1]) and bool(extras['time_outs'][1])


def test_a_run_stopped_by_an_error_keeps_a_checkpoint_to_resume_from(tmp_path, monkeypatch):
    def fail(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(OnPolicyRunner, 'learn', fail)
    _assert_stopped_with_a_checkpoint(tmp_path, 'stopped')


def _assert_stopped_with_a_checkpoint(tmp_path, name: str) -> None:
    """Train a tiny run that stops early: its interrupted checkpoint is kept, nothing exported."""
    cfg = parse_config(['--device', 'cpu', '--num-envs', '2', '--iterations', '3',
                        '--runner.no-tensorboard', '--runner.no-plot', '--run-name', name,
                        '--log-root', str(tmp_path / 'runs'),
                        '--export-dir', str(tmp_path / 'models')])
    with pytest.raises(KeyboardInterrupt):
        train(cfg, command_line=['pytest'])
    assert (tmp_path / 'runs' / name / 'model_0_interrupted.pt').is_file()
    assert not (tmp_path / 'models' / f'{name}.onnx').exists()


@pytest.mark.parametrize('signals', [1, 2])
def test_a_stop_signal_ends_training_between_iterations_with_a_checkpoint(
        tmp_path, monkeypatch, capsys, signals):
    """SIGINT/SIGTERM: the iteration ends, then a checkpoint; a second signal stops at once."""
    learn = OnPolicyRunner.learn
    seen = {}

    def signalled_learn(self, *args, **kwargs):
        for _ in range(signals):  # as if sent while an iteration runs
            signal.raise_signal(signal.SIGTERM if signals == 1 else signal.SIGINT)
        seen['stop'] = self.stop_requested
        return learn(self, *args, **kwargs)

    monkeypatch.setattr(OnPolicyRunner, 'learn', signalled_learn)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    _assert_stopped_with_a_checkpoint(tmp_path, 'signal')
    if signals == 1:
        assert seen['stop'] and 'SIGTERM: stopping after this iteration' in capsys.readouterr().out
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_training_keeps_the_last_checkpoints_and_every_snapshot(tmp_path, capsys):
    cfg = parse_config([
        '--device', 'cpu', '--num-envs', '2', '--time-budget-min', '0.05',
        '--snapshot-interval-min', '0.025', '--runner.save-interval', '1',
        '--runner.keep-checkpoints', '1', '--runner.num-steps-per-env', '4',
        '--runner.no-tensorboard', '--runner.no-plot',
        '--runner.policy.actor-hidden-dims', '16', '--runner.policy.critic-hidden-dims', '16',
        '--run-name', 'kept', '--log-root', str(tmp_path / 'runs'),
        '--export-dir', str(tmp_path / 'models')])
    result = train(cfg, command_line=['pytest'])
    run_dir = tmp_path / 'runs' / 'kept'
    iterations = result['provenance']['iterations']
    assert [path.name for path in run_dir.glob('model_*.pt')] == [f'model_{iterations}.pt']
    snapshots = sorted((run_dir / 'snapshots').glob('kept_it*.onnx'))
    assert snapshots and snapshots[-1].name == f'kept_it{iterations:05d}.onnx'
    out = capsys.readouterr().out
    assert 'the last 1 kept (older ones are deleted); a snapshot policy every 0.025 min' in out
    if iterations > 1:
        assert f'saved model_{iterations}.pt; deleted model_{iterations - 1}.pt' in out


@pytest.mark.parametrize('budget', [[], ['--time-budget-min', '10', '--snapshot-interval-min',
                                         '5']], ids=['iterations', 'time_budget'])
def test_a_run_stops_itself_at_its_wall_clock_deadline_with_checkpoint_and_export(
        tmp_path, budget):
    """--stop-at-unix-s ends a long run as its budget would: final checkpoint and export."""
    import time as clock
    cfg = parse_config([
        '--device', 'cpu', '--num-envs', '2', '--iterations', '100000', *budget,
        '--stop-at-unix-s', str(clock.time() + 20.0), '--runner.num-steps-per-env', '4',
        '--runner.no-tensorboard', '--runner.no-plot',
        '--runner.policy.actor-hidden-dims', '16', '--runner.policy.critic-hidden-dims', '16',
        '--run-name', 'deadline', '--log-root', str(tmp_path / 'runs'),
        '--export-dir', str(tmp_path / 'models')])
    result = train(cfg, command_line=['pytest'])
    iterations = result['provenance']['iterations']
    assert 0 < iterations < 100000
    assert (tmp_path / 'runs' / 'deadline' / f'model_{iterations}.pt').is_file()
    assert (tmp_path / 'models' / 'deadline.onnx').is_file()
    assert not list((tmp_path / 'runs' / 'deadline').glob('*_interrupted.pt'))
