"""
Tests of the quiet-stance rewards and their gates: stand at zero command, step when pushed.

The reward functions are fed hand-made states (a plain namespace with the env's attribute
names) and compared with hand-computed numbers; the gates are computed by the env itself from
a simulator state set by hand.
"""

import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch
from training.config import DomainRandConfig, EnvConfig, ObservationConfig, RewardConfig
from training.env import LocomotionEnv, rewards


def _state(standing, joint_dev=None, joint_vel=None, contact=None, feet_height=None,
           desired=None):
    """Return a two-joint, two-foot state for the envs whose ``standing`` flags are given."""
    standing = torch.tensor(standing, dtype=torch.float32)
    n = len(standing)
    default = torch.tensor([0.2, -0.4])
    return SimpleNamespace(
        cfg=SimpleNamespace(rewards=RewardConfig()), standing=standing,
        gait_active=1.0 - standing, moving_command=torch.zeros(n),
        default_joint_pos=default,
        joint_pos=default + (torch.zeros(n, 2) if joint_dev is None else torch.tensor(joint_dev)),
        joint_vel=torch.zeros(n, 2) if joint_vel is None else torch.tensor(joint_vel),
        feet_contact=torch.ones(n, 2) if contact is None else torch.tensor(contact),
        feet_height=torch.zeros(n, 2) if feet_height is None else torch.tensor(feet_height),
        desired_feet_height=torch.zeros(n, 2) if desired is None else torch.tensor(desired))


def test_stand_pose_is_mjlabs_standing_kernel_and_only_pays_while_standing():
    state = _state([1.0, 1.0, 0.0], joint_dev=[[0.0, 0.0], [0.05, -0.1], [0.0, 0.0]])
    # mean(((0.05 / 0.05)^2, (0.1 / 0.05)^2)) = (1 + 4) / 2
    expected = [1.0, math.exp(-2.5), 0.0]
    torch.testing.assert_close(rewards.stand_pose(state), torch.tensor(expected))


def test_stand_feet_contact_counts_planted_feet_while_standing():
    state = _state([1.0, 1.0, 0.0], contact=[[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(rewards.stand_feet_contact(state), torch.tensor([2.0, 1.0, 0.0]))


def test_stand_joint_vel_and_stand_still_penalize_motion_only_while_standing():
    state = _state([1.0, 0.0], joint_dev=[[0.1, -0.2], [0.1, -0.2]],
                   joint_vel=[[1.0, -2.0], [1.0, -2.0]])
    torch.testing.assert_close(rewards.stand_joint_vel(state), torch.tensor([5.0, 0.0]))
    torch.testing.assert_close(rewards.stand_still(state), torch.tensor([0.3, 0.0]))


def test_feet_phase_asks_nothing_of_a_standing_robot_and_follows_the_clock_otherwise():
    lifted = [[0.03, 0.0], [0.03, 0.0]]
    state = _state([1.0, 0.0], feet_height=lifted, desired=[[0.0, 0.0], [0.0, 0.0]])
    # standing: the maximum whatever the feet do; gait active: exp(-0.03^2 / 0.03^2)
    torch.testing.assert_close(rewards.feet_phase(state), torch.tensor([1.0, math.exp(-1.0)]))
    # a wider kernel: exp(-0.03^2 / 0.1^2)
    state.cfg = SimpleNamespace(rewards=RewardConfig(feet_phase_sigma_m=0.1))
    torch.testing.assert_close(rewards.feet_phase(state), torch.tensor([1.0, math.exp(-0.09)]))


def test_the_default_scales_make_standing_still_pay_more_than_marching_in_place():
    """Per policy step, the stand terms of a planted, still robot beat one stepping in place."""
    scales = RewardConfig()
    march = _state([1.0], joint_dev=[[0.3, -0.3]], joint_vel=[[3.0, -3.0]],
                   contact=[[1.0, 0.0]])
    still = _state([1.0])

    def stand_terms(state):
        return sum(getattr(scales, name) * float(getattr(rewards, name)(state)[0])
                   for name in ('stand_pose', 'stand_feet_contact', 'stand_joint_vel',
                                'stand_still'))
    assert stand_terms(still) == pytest.approx(scales.stand_pose + 2 * scales.stand_feet_contact)
    assert stand_terms(still) - stand_terms(march) > 1.0


def test_every_stand_term_is_a_named_reward_with_a_scale():
    for name in ('stand_pose', 'stand_feet_contact', 'stand_joint_vel', 'stand_still'):
        assert rewards.REWARD_TERMS[name] is getattr(rewards, name)
        assert getattr(RewardConfig(), name) != 0.0


@pytest.fixture(scope='module')
def env():
    """Return a 3-world CPU env with every randomization off."""
    off = DomainRandConfig(friction=False, added_base_mass=False, motor_strength=False,
                           pd_gain_scale=False, pushes=False, obs_noise=False,
                           action_latency=False)
    torch.manual_seed(0)
    environment = LocomotionEnv(dataclasses.replace(EnvConfig(num_envs=3), randomization=off),
                                'mjwarp', 'cpu')
    yield environment
    environment.close()


def test_the_env_gates_stand_at_zero_command_and_step_when_walking_or_pushed(env):
    env.reset()
    b = env.backend
    n, j = env.num_envs, b.num_joints
    quat = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1)
    pos = torch.tensor([[0.0, 0.0, env.robot.nominal_base_height_m]]).repeat(n, 1)
    # world 0 stands still, world 1 is told to walk, world 2 is pushed at 0.6 m/s
    lin_vel = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.6, 0.0, 0.0]])
    b.reset_masked(torch.ones(n, dtype=torch.bool), pos, quat, lin_vel, torch.zeros(n, 3),
                   env.default_joint_pos.repeat(n, 1), torch.zeros(n, j))
    env.commands.copy_(torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    env._refresh_state()
    env._update_step_state()
    torch.testing.assert_close(env.standing, torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(env.gait_active, torch.tensor([0.0, 1.0, 1.0]))
    torch.testing.assert_close(env.moving_command, torch.tensor([0.0, 1.0, 0.0]))
    # the clock's swing targets: none for the standing robot
    assert float(env.desired_feet_height[0].abs().max()) == 0.0
    assert float(env.desired_feet_height[1:].max()) > 0.0
    # at the default pose the standing robot earns the full pose reward, the others none
    torch.testing.assert_close(rewards.stand_pose(env), torch.tensor([1.0, 0.0, 0.0]))


def test_a_step_that_follows_the_gait_clock_pays_and_a_shuffle_does_not():
    """feet_air_time breaks even below the clock's swing time, so stepping to it is paid."""
    cfg = RewardConfig()
    swing_s = 0.5 * ObservationConfig().gait_period_s
    state = SimpleNamespace(
        cfg=SimpleNamespace(rewards=cfg), moving_command=torch.ones(2),
        feet_first_contact=torch.tensor([[1.0, 0.0], [1.0, 0.0]]),
        feet_air_time_at_touchdown=torch.tensor([[swing_s, 0.0], [0.1, 0.0]]))
    paid = rewards.feet_air_time(state)
    assert float(paid[0]) == pytest.approx(swing_s - cfg.air_time_target_s)
    assert float(paid[0]) > 0.0
    assert float(paid[1]) < 0.0


def test_a_break_even_air_time_at_or_above_the_swing_time_is_refused():
    cfg = EnvConfig(num_envs=1, rewards=RewardConfig(air_time_target_s=0.4))
    with pytest.raises(ValueError, match=r'air_time_target_s \(0\.4 s\).*swing time \(0\.4 s'):
        LocomotionEnv(cfg, 'mjwarp', 'cpu')


def _tracking_env(window_s):
    off = DomainRandConfig(friction=False, added_base_mass=False, motor_strength=False,
                           pd_gain_scale=False, pushes=False, obs_noise=False,
                           action_latency=False)
    cfg = EnvConfig(num_envs=2, randomization=off,
                    rewards=RewardConfig(tracking_window_s=window_s))
    return LocomotionEnv(cfg, 'mjwarp', 'cpu')


def test_tracking_uses_the_velocity_averaged_over_the_window_since_the_episode_start():
    env = _tracking_env(3 * 0.02)  # three policy steps at 50 Hz
    try:
        env.reset()
        samples = [torch.tensor([[0.1 * k, -0.2 * k, 0.3 * k], [1.0, 1.0, 1.0]])
                   for k in range(1, 6)]
        for k, sample in enumerate(samples, 1):
            env.base_lin_vel_b[:, :2] = sample[:, :2]
            env.base_ang_vel_b[:, 2] = sample[:, 2]
            env._update_tracked_velocity()
            window = torch.stack(samples[max(0, k - 3):k]).mean(dim=0)
            torch.testing.assert_close(env.tracked_vel_b, window)
        # the rewards read the averaged velocity
        env.commands.copy_(env.tracked_vel_b)
        torch.testing.assert_close(rewards.track_lin_vel(env), torch.ones(2))
        torch.testing.assert_close(rewards.track_ang_vel(env), torch.ones(2))
        # a new episode starts its window empty: only its own samples count
        env._reset_masked(torch.tensor([True, False]))
        env.base_lin_vel_b[:, :2] = torch.tensor([[0.5, 0.0], [1.0, 1.0]])
        env.base_ang_vel_b[:, 2] = torch.tensor([0.0, 1.0])
        env._update_tracked_velocity()
        torch.testing.assert_close(env.tracked_vel_b[0], torch.tensor([0.5, 0.0, 0.0]))
        torch.testing.assert_close(env.tracked_vel_b[1], torch.ones(3))
    finally:
        env.close()


def test_without_a_window_tracking_is_on_the_instantaneous_velocity():
    env = _tracking_env(0.0)
    try:
        env.reset()
        env.step(torch.zeros(env.num_envs, env.num_actions))
        torch.testing.assert_close(env.tracked_vel_b[:, :2], env.base_lin_vel_b[:, :2])
        torch.testing.assert_close(env.tracked_vel_b[:, 2], env.base_ang_vel_b[:, 2])
    finally:
        env.close()


def test_a_negative_tracking_window_is_refused():
    with pytest.raises(ValueError, match='rewards.tracking_window_s must be >= 0'):
        _tracking_env(-0.1)


@pytest.mark.parametrize('sigma_m', [0.0, -0.05, float('nan')])
def test_a_feet_phase_kernel_that_is_not_positive_is_refused(sigma_m):
    cfg = EnvConfig(num_envs=2, rewards=RewardConfig(feet_phase_sigma_m=sigma_m))
    with pytest.raises(ValueError, match='rewards.feet_phase_sigma_m must be > 0'):
        LocomotionEnv(cfg, 'mjwarp', 'cpu')


def test_with_a_window_the_critic_sees_the_tracked_velocity_and_without_it_does_not():
    env = _tracking_env(3 * 0.02)
    plain = _tracking_env(0.0)
    try:
        assert ('tracked_velocity', 3) in env.critic_layout
        assert 'tracked_velocity' not in [name for name, _ in plain.critic_layout]
        assert env.num_critic_obs == plain.num_critic_obs + 3
        env.reset()
        critic = env.step(torch.zeros(env.num_envs, env.num_actions))[1]
        names = [name for name, _ in env.critic_layout]
        parts = dict(zip(names, torch.split(critic,
                                            [w for _, w in env.critic_layout], dim=1)))
        torch.testing.assert_close(parts['tracked_velocity'], env.tracked_vel_b)
    finally:
        env.close()
        plain.close()
