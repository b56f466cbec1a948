"""Tests of the training terrain: heights, slopes, the MuJoCo heightfield, the curriculum."""

import dataclasses
import math

from humanoid_rl_ros.robot.description import load_robot, RobotConfigError
from humanoid_rl_ros.robot.mujoco_model import build_mujoco_model, HFIELD_GEOM_NAME, Terrain
import mujoco
import numpy as np
import pytest
import torch
from training.config import DomainRandConfig, EnvConfig, TerrainConfig
from training.env import LocomotionEnv
from training.env.terrain import (check_config, difficulty, generate_terrain, HeightMap,
                                  tile_heights, update_levels)

SMALL = TerrainConfig(enabled=True, kinds=('slope_up', 'slope_down', 'rough', 'rough_slope'),
                      num_levels=3, tile_size_m=4.0, platform_m=1.6, cell_m=0.2, border_m=1.0,
                      max_slope_deg=12.0, max_rough_m=0.04, spawn_half_range_m=0.3)
"""A small grid: 3 levels x 4 kinds of 4 m tiles."""


def _rng():
    return np.random.default_rng(0)


def _face_mask(cfg, margin_m=0.05):
    """Grid points of a tile on its +x face, off the platform and off the diagonals."""
    p = int(round(cfg.tile_size_m / cfg.cell_m)) + 1
    axis = np.linspace(-cfg.tile_size_m / 2, cfg.tile_size_m / 2, p)
    xx, yy = np.meshgrid(axis, axis)
    return (xx > np.abs(yy) + margin_m) & (xx > cfg.platform_m / 2 + margin_m), axis


def test_level_zero_is_flat_for_every_kind():
    for kind in SMALL.kinds + ('flat',):
        assert np.array_equal(tile_heights(kind, 0.0, SMALL, _rng()), np.zeros((21, 21)))
    assert difficulty(0, 3) == 0.0 and difficulty(2, 3) == 1.0 and difficulty(0, 1) == 0.0


@pytest.mark.parametrize('slope_deg', [10.0, 15.0])
def test_slope_faces_have_the_requested_angle(slope_deg):
    cfg = dataclasses.replace(SMALL, max_slope_deg=slope_deg)
    up = tile_heights('slope_up', 1.0, cfg, _rng())
    face, axis = _face_mask(cfg)
    # along +x on the +x face the ground falls by tan(slope) per metre
    grade = -np.diff(up, axis=1) / cfg.cell_m
    on_face = face[:, 1:] & face[:, :-1]
    np.testing.assert_allclose(grade[on_face], math.tan(math.radians(slope_deg)), rtol=1e-9)
    # the platform is flat on top, the edges at 0, the top tan(slope) * run above them
    half_run = cfg.tile_size_m / 2 - cfg.platform_m / 2
    assert up[10, 10] == pytest.approx(math.tan(math.radians(slope_deg)) * half_run)
    assert np.all(up[0] == 0) and np.all(up[-1] == 0) and np.all(up[:, 0] == 0)
    down = tile_heights('slope_down', 1.0, cfg, _rng())
    np.testing.assert_array_equal(down, -up)
    half = tile_heights('slope_up', 0.5, cfg, _rng())
    grade_half = -np.diff(half, axis=1)[on_face] / cfg.cell_m
    np.testing.assert_allclose(grade_half, math.tan(math.radians(slope_deg / 2)), rtol=1e-9)


def test_rough_heights_are_within_the_amplitude_off_the_platform():
    for diff in (0.5, 1.0):
        rough = tile_heights('rough', diff, SMALL, _rng())
        amplitude = diff * SMALL.max_rough_m
        assert np.abs(rough).max() <= amplitude
        assert np.abs(rough).max() > 0.8 * amplitude  # the range is used
        assert rough.min() < -0.5 * amplitude and rough.max() > 0.5 * amplitude
        axis = np.linspace(-2.0, 2.0, 21)
        xx, yy = np.meshgrid(axis, axis)
        platform = np.maximum(np.abs(xx), np.abs(yy)) <= SMALL.platform_m / 2
        assert np.all(rough[platform] == 0.0)
    bumps = tile_heights('rough_slope', 1.0, SMALL, _rng()) - \
        tile_heights('slope_up', 1.0, SMALL, _rng())
    assert np.abs(bumps).max() <= SMALL.max_rough_m + 1e-12 and np.abs(bumps).max() > 0.03


def test_grid_layout_origins_and_seams():
    grid = generate_terrain(SMALL)
    tile, border = 20, 5  # cells
    assert grid.heights_m.shape == (4 * tile + 2 * border + 1, 3 * tile + 2 * border + 1)
    assert grid.extent_m == (-1.0, 13.0, -1.0, 17.0)
    assert grid.origins_m.shape == (3, 4, 3)
    # tile (level 2, kind slope_up) centred at (10, 2), its platform at the top
    top = math.tan(math.radians(12.0)) * (2.0 - 0.8)
    np.testing.assert_allclose(grid.origins_m[2, 0], [10.0, 2.0, top])
    np.testing.assert_allclose(grid.origins_m[2, 1], [10.0, 6.0, -top])
    assert np.all(grid.origins_m[0, :, 2] == 0.0)  # level 0: flat
    # the border is flat, and the sloped kinds' tile edges meet at height 0
    h = grid.heights_m
    assert np.all(h[:border + 1] == 0) and np.all(h[:, :border + 1] == 0)
    for k in (0, 1):  # slope_up, slope_down rows of tiles (the last row: the bumps' edge)
        rows = slice(border + k * tile, border + (k + 1) * tile)
        for level in range(4):
            assert np.all(h[rows, border + level * tile] == 0.0)
    assert grid.plane_z_m == pytest.approx(float(h.min()) - 1.0)
    again = generate_terrain(SMALL)
    np.testing.assert_array_equal(again.heights_m, h)  # seeded
    other = generate_terrain(dataclasses.replace(SMALL, seed=1))
    assert not np.array_equal(other.heights_m, h)


def test_config_errors_are_named():
    for field, value in (('kinds', ('stairs',)), ('tile_size_m', 4.1), ('max_init_level', 3),
                         ('max_slope_deg', 50.0), ('spawn_half_range_m', 1.0)):
        with pytest.raises(ValueError, match=field):
            check_config(dataclasses.replace(SMALL, **{field: value}))
    with pytest.raises(RobotConfigError, match='grid'):
        Terrain(grid_heights_m=np.zeros((3, 3)))
    with pytest.raises(RobotConfigError, match='2 x 2'):
        Terrain(grid_heights_m=np.zeros((1, 3)), grid_extent_m=(0.0, 1.0, 0.0, 1.0))


def _ray_height(model, data, x, y):
    """Return the height of the heightfield under (x, y) by a MuJoCo ray cast from above."""
    geomid = np.zeros(1, dtype=np.int32)
    hf = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, HFIELD_GEOM_NAME)
    group = np.zeros(6, dtype=np.uint8)
    group[model.geom_group[hf]] = 1
    dist = mujoco.mj_ray(model, data, np.array([x, y, 5.0]), np.array([0.0, 0.0, -1.0]),
                         group, 1, -1, geomid)
    assert geomid[0] == hf, (x, y)
    return 5.0 - dist


def test_height_map_matches_the_mujoco_heightfield():
    robot = load_robot('kestrel')
    grid = generate_terrain(SMALL)
    model = build_mujoco_model(robot, terrain=grid.mujoco_terrain())
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    hm = HeightMap(grid, torch.device('cpu'))
    rng = np.random.default_rng(1)
    # slope faces (planes: exact) of the hardest slope_up and slope_down tiles
    pts = []
    for k in (0, 1):
        cx, cy = grid.origins_m[2, k, :2]
        for _ in range(20):
            x = cx + rng.uniform(1.0, 1.9)
            y = cy + rng.uniform(-0.8, 0.8) * (x - cx) / 2.0
            pts.append((x, y))
    ours = hm(torch.tensor(pts, dtype=torch.float32)).numpy()
    mj = np.array([_ray_height(model, data, x, y) for x, y in pts])
    np.testing.assert_allclose(ours, mj, atol=2e-4)
    assert np.ptp(mj) > 0.1  # points at different heights
    # rough ground: bilinear vs MuJoCo's two triangles per cell, within the bump height
    cx, cy = grid.origins_m[2, 2, :2]
    pts = [(cx + rng.uniform(1.0, 1.9), cy + rng.uniform(-1.9, 1.9)) for _ in range(20)]
    ours = hm(torch.tensor(pts, dtype=torch.float32)).numpy()
    mj = np.array([_ray_height(model, data, x, y) for x, y in pts])
    assert np.abs(ours - mj).max() < SMALL.max_rough_m
    assert np.abs(ours - mj).mean() < 0.3 * SMALL.max_rough_m
    # grid points exactly, and the builder's own lookup
    terrain = grid.mujoco_terrain()
    xy = torch.tensor([[grid.origins_m[2, 3, 0] + 1.2, grid.origins_m[2, 3, 1] - 0.6]])
    assert float(hm(xy)[0]) == pytest.approx(terrain.height_m(*xy[0].tolist()), abs=1e-6)
    # beyond the grid: the plane moved below the lowest point
    assert float(hm(torch.tensor([[-30.0, 0.0]]))[0]) == pytest.approx(grid.plane_z_m)
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, 'floor')
    assert model.geom_pos[floor, 2] == pytest.approx(grid.plane_z_m, abs=1e-6)


def test_update_levels_follows_the_rule():
    levels = torch.tensor([0, 1, 1, 1, 2, 2, 0, 1])
    eligible = torch.tensor([True, True, True, True, True, False, True, True])
    walked = torch.tensor([2.5, 2.5, 0.5, 2.5, 2.5, 2.5, 0.1, 1.0])
    fell = torch.tensor([False, False, False, True, False, False, True, False])
    commanded = torch.tensor([1.0, 1.0, 4.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    u = torch.full((8,), 0.4)
    new = update_levels(levels, eligible, walked, fell, commanded, tile_size_m=4.0,
                        num_levels=3, u_random=u)
    # 0: far -> up; 1: far -> up; 2: short of half its command (0.5 < 2) -> down;
    # 3: fell -> down; 4: far at the top -> random level int(0.4 * 3) = 1;
    # 5: not eligible -> kept; 6: fell at level 0 -> stays 0; 7: neither -> kept
    assert new.tolist() == [1, 2, 0, 0, 1, 2, 0, 1]


# ------------------------------------------------------------------------- in the env
@pytest.fixture(scope='module')
def terrain_env():
    """Four envs on the small grid, all starting on the hardest level."""
    torch.manual_seed(0)
    r = DomainRandConfig(pushes=False)
    cfg = EnvConfig(num_envs=4, randomization=r,
                    terrain=dataclasses.replace(SMALL, max_init_level=2))
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    env.terrain_level.fill_(2)
    return env


def test_robots_spawn_on_their_tile_and_heights_are_from_the_ground(terrain_env):
    env = terrain_env
    env.reset()
    grid, b = env.terrain_grid, env.backend
    assert env.terrain_kind.tolist() == [0, 1, 2, 3]
    for i in range(4):
        origin = grid.origins_m[2, i]
        assert np.abs(b.base_pos[i, :2].numpy() - origin[:2]).max() <= 0.3 + 1e-6
        z = float(b.base_pos[i, 2]) - origin[2]
        assert env.robot.nominal_base_height_m <= z <= env.robot.nominal_base_height_m + 0.02
    torch.testing.assert_close(env.base_height, b.base_pos[:, 2]
                               - torch.as_tensor(grid.origins_m[2, :, 2], dtype=torch.float32))
    for _ in range(10):
        env.step(torch.zeros(4, env.num_actions))
    # standing on the platforms: base at about its nominal height over the ground, feet down
    assert torch.all((env.base_height - env.robot.nominal_base_height_m).abs() < 0.05)
    assert torch.all(env.feet_height.abs() < 0.03)
    assert torch.all(env.feet_contact > 0.5)
    assert env.terrain_heights.shape == (4, 2 + 12)
    scan = env.terrain_heights[:, 2:]
    assert torch.all(scan.abs() < 0.05)  # the scan points lie on the flat platforms
    report = env.check_overflow()
    assert not report['overflow'] and report['nonfinite_worlds'] == 0


def test_curriculum_moves_levels_through_resets(terrain_env):
    env = terrain_env
    env.reset()
    env.terrain_level.copy_(torch.tensor([1, 1, 1, 1]))
    env.reset()  # the first reset of these episodes: no level moves
    assert env.terrain_level.tolist() == [1, 1, 1, 1]
    b, n = env.backend, 4
    for _ in range(3):
        env.step(torch.zeros(n, env.num_actions))
    spawn = env._spawn_xy.clone()
    # env 0 "walked" 2.5 m (more than half a 4 m tile), env 1 fell, env 2 stood still with a
    # zero command, env 3 stood still with a 1 m/s command
    env.commands.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0],
                                     [1.0, 0.0, 0.0]]))
    env.terminated.copy_(torch.tensor([False, True, False, False]))
    b.base_pos[0, 0] = spawn[0, 0] + 2.5  # a write into qpos: the walked distance
    mask = torch.ones(n, dtype=torch.bool)
    env._draw_randoms()
    env._reset_masked(mask)
    assert env.terrain_level.tolist() == [2, 0, 1, 0]
    origins = torch.as_tensor(env.terrain_grid.origins_m, dtype=torch.float32)
    expect = origins[env.terrain_level, env.terrain_kind]
    assert torch.all((b.base_pos[:, :2] - expect[:, :2]).abs() <= 0.3 + 1e-6)


def test_random_levels_without_curriculum():
    torch.manual_seed(2)
    cfg = EnvConfig(num_envs=8, episode_length_s=0.02, terrain=dataclasses.replace(
        SMALL, curriculum=False, kinds=('flat',)))
    env = LocomotionEnv(cfg, 'mjwarp', 'cpu')
    env.reset()
    assert env.terrain_level.tolist() == [0] * 8  # max_init_level 0: flat start
    seen = set()
    for _ in range(3):
        env.step(torch.zeros(8, env.num_actions))  # every env resets every step
        seen.update(env.terrain_level.tolist())
    assert seen == {0, 1, 2}
