"""Tests of training.backends.conventions (simulator conventions) with hand-computed numbers."""

import math

import pytest
import torch
from training.backends.conventions import (base_mass_kg, base_state_from_root, body_to_world,
                                           check_mask, dof_state_views, mask_to_actor_indices,
                                           masked_column_write_, masked_copy_, masked_updates,
                                           name_order, quat_wxyz_to_xyzw, quat_xyzw_to_wxyz,
                                           root_from_base_state, world_to_body)

C45 = math.cos(math.pi / 4)
YAW_90_WXYZ = [C45, 0.0, 0.0, C45]
"""A base turned +90 deg about world z: its x axis points along world y."""


def close(actual, expected):
    """Assert ``actual`` equals the hand-computed ``expected`` to float32 precision."""
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype),
                               atol=1e-6, rtol=0.0)


def test_quaternion_orders_convert_both_ways():
    close(quat_wxyz_to_xyzw(torch.tensor([[0.1, 0.2, 0.3, 0.4]])), [[0.2, 0.3, 0.4, 0.1]])
    close(quat_xyzw_to_wxyz(torch.tensor([[0.2, 0.3, 0.4, 0.1]])), [[0.1, 0.2, 0.3, 0.4]])


def test_world_and_body_velocities_of_a_base_turned_90_deg_left():
    q = torch.tensor([YAW_90_WXYZ])
    # world +x is the base's right-hand side (-y) once it faces world +y
    close(world_to_body(q, torch.tensor([[1.0, 0.0, 0.0]])), [[0.0, -1.0, 0.0]])
    # the base's forward axis is world +y; vertical stays vertical
    close(body_to_world(q, torch.tensor([[1.0, 0.0, 0.0]])), [[0.0, 1.0, 0.0]])
    close(body_to_world(q, torch.tensor([[0.0, 0.0, 2.0]])), [[0.0, 0.0, 2.0]])


def _two_roots():
    """Two Isaac Gym root rows [pos, quat xyzw, lin vel world, ang vel world] and origins."""
    root = torch.tensor([
        [3.0, 4.0, 0.8, 0.0, 0.0, C45, C45, 0.5, 0.0, 0.0, 1.0, 0.0, 0.0],
        [-2.0, 0.0, 0.7, 0.0, 0.0, 0.0, 1.0, 0.0, 0.2, 0.0, 0.0, 0.0, 2.0]])
    origins = torch.tensor([[2.0, 2.0, 0.0], [-2.0, 0.0, 0.0]])
    return root, origins


def test_isaacgym_root_state_reads_as_the_envs_base_state():
    root, origins = _two_roots()
    base = base_state_from_root(root, origins)
    close(base.pos, [[1.0, 2.0, 0.8], [0.0, 0.0, 0.7]])  # env origin removed
    close(base.quat_wxyz, [YAW_90_WXYZ, [1.0, 0.0, 0.0, 0.0]])
    close(base.lin_vel_world, [[0.5, 0.0, 0.0], [0.0, 0.2, 0.0]])  # stays in the world frame
    # a roll rate about world x is, for the turned base, a rate about its -y axis
    close(base.ang_vel_body, [[0.0, -1.0, 0.0], [0.0, 0.0, 2.0]])


def test_base_state_writes_as_isaacgym_root_state_and_round_trips():
    root, origins = _two_roots()
    base = base_state_from_root(root, origins)
    close(root_from_base_state(*base, origins), root.tolist())
    # a base quaternion is normalized on the way in; a body rate about +x is world +y here
    written = root_from_base_state(torch.zeros(1, 3), torch.tensor([[2.0 * C45, 0, 0, 2.0 * C45]]),
                                   torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]]),
                                   torch.tensor([[10.0, 0.0, 0.0]]))
    close(written, [[10.0, 0.0, 0.0, 0.0, 0.0, C45, C45, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]])


def test_policy_joints_are_found_by_name_in_the_simulators_dof_order():
    dof_order = ['hip', 'ankle', 'knee']  # depth-first in the asset
    idx = name_order(dof_order, ['hip', 'knee', 'ankle'], 'joints')
    assert idx == [0, 2, 1]
    values_dof = torch.tensor([[10.0, 30.0, 20.0]])
    close(values_dof[:, idx], [[10.0, 20.0, 30.0]])  # policy order
    with pytest.raises(ValueError, match=r"joints not found: \['toe'\]; the simulator has"):
        name_order(dof_order, ['hip', 'toe'], 'joints')
    with pytest.raises(ValueError, match=r"named more than once: \['knee'\]"):
        name_order(dof_order, ['knee', 'knee'], 'joints')
    with pytest.raises(ValueError, match=r"named more than once: \['hip'\]"):
        name_order(['hip', 'hip'], ['hip'], 'joints')


def test_dof_state_views_split_position_and_velocity_per_env_and_write_through():
    dof_state = torch.arange(12, dtype=torch.float32).view(6, 2)  # 2 envs x 3 DOFs
    pos, vel = dof_state_views(dof_state, num_envs=2)
    close(pos, [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]])
    close(vel, [[1.0, 3.0, 5.0], [7.0, 9.0, 11.0]])
    # policy joints (b, c) live in DOF columns (2, 0); reset env 1 only
    masked_column_write_(pos, torch.tensor([2, 0]), torch.tensor([False, True]),
                         torch.tensor([[-1.0, -2.0], [-3.0, -4.0]]))
    close(dof_state[:, 0], [0.0, 2.0, 4.0, -4.0, 8.0, -3.0])
    close(dof_state[:, 1], [1.0, 3.0, 5.0, 7.0, 9.0, 11.0])
    with pytest.raises(ValueError, match='not a multiple of 4 envs'):
        dof_state_views(dof_state, num_envs=4)


def test_masked_copy_changes_only_the_masked_rows():
    dst = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    masked_copy_(dst, torch.tensor([True, False, True]), torch.full((3, 2), 9.0))
    close(dst, [[9.0, 9.0], [2.0, 2.0], [9.0, 9.0]])


def test_reset_bookkeeping_names_the_actors_of_the_masked_envs():
    ids = mask_to_actor_indices(torch.tensor([False, True, False, True]))
    assert ids.dtype == torch.int32 and ids.tolist() == [1, 3]
    assert mask_to_actor_indices(torch.zeros(3, dtype=torch.bool)).numel() == 0
    check_mask(torch.tensor([True, False]), 2, torch.device('cpu'))
    with pytest.raises(ValueError, match=r'bool tensor of shape \(3,\), got torch.int64'):
        check_mask(torch.tensor([1, 0, 1]), 3, torch.device('cpu'))
    with pytest.raises(ValueError, match=r'shape \(3,\), got torch.bool \(2,\)'):
        check_mask(torch.tensor([True, False]), 3, torch.device('cpu'))


def test_randomization_writes_list_each_masked_env_once_and_check_the_mass():
    updates = masked_updates(torch.tensor([True, False, True]), torch.tensor([0.5, 0.75, 1.25]))
    assert updates == [(0, 0.5), (2, 1.25)]
    with pytest.raises(ValueError, match='mask shape'):
        masked_updates(torch.tensor([True, False]), torch.tensor([0.5]))
    assert base_mass_kg(10.0, -2.5) == 7.5
    for delta in (-10.0, float('nan')):
        with pytest.raises(ValueError, match='must be finite and > 0'):
            base_mass_kg(10.0, delta)
