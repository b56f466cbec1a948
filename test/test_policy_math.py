"""Tests of the shared observation and action math (numpy and torch, one definition)."""

import math
from pathlib import Path
import subprocess
import sys

from humanoid_rl_ros.core.contract import ObsTermSpec
from humanoid_rl_ros.core.policy_math import (
    action_to_joint_targets, all_finite, build_observation, clamp, flatten_history,
    gait_phase_features, init_history, observation_inputs, pd_effort, projected_gravity,
    push_history, quat_rotate, quat_rotate_inverse, quat_xyzw_to_wxyz, world_to_body,
    yaw_from_quat)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
import numpy as np
import pytest
import torch


def _quat_axis_angle(axis, angle_rad):
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    return np.concatenate([[math.cos(angle_rad / 2)], math.sin(angle_rad / 2) * axis])


def test_upright_robot_sees_gravity_straight_down():
    g = projected_gravity(np.array([1.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(g, [0.0, 0.0, -1.0], atol=1e-12)


def test_robot_pitched_nose_down_90_deg_sees_gravity_along_its_x_axis():
    # Pitch +90 deg about y turns the body x axis to point down (world -z).
    q = _quat_axis_angle([0, 1, 0], math.pi / 2)
    np.testing.assert_allclose(projected_gravity(q), [1.0, 0.0, 0.0], atol=1e-12)


def test_robot_rolled_left_90_deg_sees_gravity_along_its_minus_y_axis():
    q = _quat_axis_angle([1, 0, 0], math.pi / 2)
    np.testing.assert_allclose(projected_gravity(q), [0.0, -1.0, 0.0], atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, (4,), elements=st.floats(-3.0, 3.0)).filter(
    lambda q: np.linalg.norm(q) > 1e-3))
def test_projected_gravity_is_the_inverse_rotation_of_world_gravity(q):
    expected = quat_rotate_inverse(q, np.array([0.0, 0.0, -1.0]))
    np.testing.assert_allclose(projected_gravity(q), expected, atol=1e-12)
    np.testing.assert_allclose(projected_gravity(torch.as_tensor(q)).numpy(), expected,
                               atol=1e-12)


def test_projected_gravity_of_a_zero_quaternion_is_zero_not_nan():
    # no orientation information: zeros (the controller rejects such a quaternion anyway)
    assert np.array_equal(projected_gravity(np.zeros(4)), np.zeros(3))


def test_the_node_side_modules_do_not_load_torch():
    # torch is a training dependency; the policy node runs on numpy (and need not have torch)
    code = ('import sys\n'
            'import humanoid_rl_ros.core.policy_math, humanoid_rl_ros.core.controller\n'
            'import humanoid_rl_ros.core.policy_runtime, humanoid_rl_ros.ros.policy_node\n'
            'print("torch" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    assert out == 'False'


def test_yawed_robot_moving_along_world_y_moves_forward_in_body_frame():
    q = _quat_axis_angle([0, 0, 1], math.pi / 2)
    v_body = world_to_body(q, np.array([0.0, 2.0, 0.0]))
    np.testing.assert_allclose(v_body, [2.0, 0.0, 0.0], atol=1e-12)
    assert yaw_from_quat(q) == pytest.approx(math.pi / 2)


def test_ros_quaternion_order_is_converted():
    np.testing.assert_array_equal(quat_xyzw_to_wxyz(np.array([1.0, 2.0, 3.0, 4.0])),
                                  [4.0, 1.0, 2.0, 3.0])


def test_pd_effort_hand_computed_and_clamped():
    effort = pd_effort(np.array([0.5, 0.5, -2.0]), np.array([0.0, 0.5, 0.0]),
                       np.array([1.0, 0.0, 0.0]), np.array([100.0, 100.0, 100.0]),
                       np.array([2.0, 2.0, 2.0]), np.array([80.0, 80.0, 80.0]))
    np.testing.assert_allclose(effort, [48.0, 0.0, -80.0])


def test_action_to_targets_scales_and_clips():
    targets = action_to_joint_targets(np.array([1.0, -300.0]), np.array([0.1, 0.2]),
                                      np.array([0.25, 0.5]), clip=100.0)
    np.testing.assert_allclose(targets, [0.35, 0.2 - 50.0])


def test_build_observation_order_scale_and_clip():
    terms = (ObsTermSpec('base_ang_vel', 3, (0.25,) * 3),
             ObsTermSpec('joint_pos', 2, (1.0, 1.0)),
             ObsTermSpec('gait_phase', 2, (1.0, 1.0)))
    inputs = {'base_ang_vel': np.array([4.0, 8.0, 1000.0]), 'joint_pos': np.array([0.1, -0.2]),
              'gait_phase': gait_phase_features(np.array(0.25))}
    obs = build_observation(terms, inputs, clip=100.0)
    np.testing.assert_allclose(obs, [1.0, 2.0, 100.0, 0.1, -0.2, 1.0, 0.0], atol=1e-12)


def test_build_observation_names_a_missing_or_wrong_sized_term():
    terms = (ObsTermSpec('joint_vel', 2, (1.0, 1.0)),)
    with pytest.raises(KeyError, match='joint_vel'):
        build_observation(terms, {})
    with pytest.raises(ValueError, match='joint_vel.*expected size 2, got 3'):
        build_observation(terms, {'joint_vel': np.zeros(3)})


finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
quats = arrays(np.float64, 4, elements=st.floats(-1.0, 1.0)).filter(
    lambda q: np.linalg.norm(q) > 0.1)
vec3 = arrays(np.float64, 3, elements=finite)
vec6 = arrays(np.float64, 6, elements=finite)


@settings(max_examples=200, deadline=None)
@given(q=quats, v=vec3)
def test_rotation_numpy_and_torch_agree_and_invert(q, v):
    body = quat_rotate_inverse(q, v)
    np.testing.assert_allclose(quat_rotate(q, body), v, atol=1e-9)
    body_t = quat_rotate_inverse(torch.tensor(q), torch.tensor(v))
    np.testing.assert_allclose(body_t.numpy(), body, atol=1e-6)
    assert np.linalg.norm(body) == pytest.approx(np.linalg.norm(v), abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(q=quats, lin=vec3, ang=vec3, cmd=vec3, qpos=vec6, qvel=vec6, act=vec6,
       phase=st.floats(0.0, 1.0), target=vec6)
def test_observation_and_effort_numpy_torch_agree_and_are_finite(
        q, lin, ang, cmd, qpos, qvel, act, phase, target):
    terms = tuple(ObsTermSpec(name, size, tuple(np.linspace(0.05, 2.0, size)))
                  for name, size in [('base_lin_vel', 3), ('base_ang_vel', 3),
                                     ('projected_gravity', 3), ('velocity_command', 3),
                                     ('joint_pos', 6), ('joint_vel', 6), ('last_action', 6),
                                     ('gait_phase', 2)])
    default = np.linspace(-0.3, 0.3, 6)
    kp, kd, limit = np.full(6, 80.0), np.full(6, 2.0), np.full(6, 50.0)

    def compute(conv):
        inputs = observation_inputs(
            base_quat_wxyz=conv(q), base_lin_vel_body_m_s=conv(lin),
            base_ang_vel_body_rad_s=conv(ang), command=conv(cmd), joint_pos_rad=conv(qpos),
            default_joint_pos_rad=default, joint_vel_rad_s=conv(qvel), last_action=conv(act),
            gait_phase=conv(np.array(phase)))
        obs = build_observation(terms, inputs)
        effort = pd_effort(action_to_joint_targets(conv(target), default, np.full(6, 0.25)),
                           conv(qpos), conv(qvel), kp, kd, limit)
        return obs, effort

    obs_np, eff_np = compute(lambda x: x)
    obs_t, eff_t = compute(lambda x: torch.tensor(x, dtype=torch.float64))
    np.testing.assert_allclose(obs_t.numpy(), obs_np, atol=1e-6)
    np.testing.assert_allclose(eff_t.numpy(), eff_np, atol=1e-6)
    assert np.all(np.isfinite(obs_np)) and np.all(np.isfinite(eff_np))
    assert np.all(np.abs(eff_np) <= limit)


def test_batched_torch_matches_per_row_numpy():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(64, 4))
    v = rng.normal(size=(64, 3))
    batched = quat_rotate_inverse(torch.tensor(q, dtype=torch.float32),
                                  torch.tensor(v, dtype=torch.float32)).numpy()
    rows = np.stack([quat_rotate_inverse(q[i], v[i]) for i in range(64)])
    np.testing.assert_allclose(batched, rows, atol=1e-5)


def test_all_finite_numpy_and_torch():
    assert all_finite(np.array([0.0, -2.5, 3.0]))
    assert all_finite(np.array([1e308, 1e308]))  # the sum overflows; the values are finite
    assert all_finite(np.full(4, 3e38, dtype=np.float32))
    assert all_finite(np.zeros(0))
    for bad in (np.nan, np.inf, -np.inf):
        assert not all_finite(np.array([1.0, bad, 2.0]))
        assert not all_finite(np.array([[1e308, 1e308], [bad, 0.0]]))
    assert all_finite(torch.tensor([1.0, 2.0]))
    assert not all_finite(torch.tensor([1.0, float('nan')]))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, 23, elements=st.floats(allow_nan=True, allow_infinity=True,
                                                 width=64)),
       arrays(np.float64, 23, elements=st.floats(-10, 10)),
       st.floats(0.0, 10.0))
def test_clamp_equals_np_clip_nan_included_for_array_and_scalar_bounds(x, low, width):
    high = low + width
    np.testing.assert_array_equal(clamp(x, low, high), np.clip(x, low, high))
    np.testing.assert_array_equal(clamp(x, -width, width), np.clip(x, -width, width))
    torch_out = clamp(torch.as_tensor(x), low, high)
    assert isinstance(torch_out, torch.Tensor)
    np.testing.assert_array_equal(torch_out.numpy(), np.clip(x, low, high))


def test_the_stacked_observation_is_oldest_first_and_starts_with_the_first_frame_repeated():
    history = init_history(np.array([1.0, 10.0]), 3)
    assert history.shape == (3, 2)
    np.testing.assert_array_equal(flatten_history(history), [1, 10, 1, 10, 1, 10])
    history = push_history(history, np.array([2.0, 20.0]))
    history = push_history(history, np.array([3.0, 30.0]))
    np.testing.assert_array_equal(flatten_history(history), [1, 10, 2, 20, 3, 30])
    history = push_history(history, np.array([4.0, 40.0]))
    np.testing.assert_array_equal(flatten_history(history), [2, 20, 3, 30, 4, 40])
    restarted = push_history(history, np.array([5.0, 50.0]), restart=np.bool_(True))
    np.testing.assert_array_equal(flatten_history(restarted), [5, 50, 5, 50, 5, 50])
    single = push_history(init_history(np.array([1.0, 2.0]), 1), np.array([3.0, 4.0]))
    np.testing.assert_array_equal(flatten_history(single), [3.0, 4.0])
    with pytest.raises(ValueError, match='history_length must be >= 1'):
        init_history(np.zeros(2), 0)


def test_batched_torch_history_with_a_restart_mask_equals_per_row_numpy():
    rng = np.random.default_rng(1)
    frames = rng.normal(size=(5, 4, 3))  # steps, envs, frame
    restarts = np.array([[False] * 4, [False, True, False, False], [False] * 4,
                         [True, False, False, True], [False] * 4])
    batch = init_history(torch.tensor(frames[0]), 2)
    rows = [init_history(frames[0, i], 2) for i in range(4)]
    for k in range(1, 5):
        batch = push_history(batch, torch.tensor(frames[k]), torch.tensor(restarts[k]))
        rows = [init_history(frames[k, i], 2) if restarts[k, i]
                else push_history(rows[i], frames[k, i]) for i in range(4)]
    assert batch.shape == (4, 2, 3)
    np.testing.assert_allclose(flatten_history(batch).numpy(),
                               np.stack([flatten_history(r) for r in rows]))
    # env 3 restarted at step 3: its history holds steps 3 and 4
    np.testing.assert_allclose(flatten_history(batch)[3].numpy(),
                               np.concatenate([frames[3, 3], frames[4, 3]]))
