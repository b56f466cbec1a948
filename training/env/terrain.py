"""
Training terrain: a grid of sloped and rough tiles, its height lookup and its curriculum.

Pure functions (numpy to generate, torch to look up and to move levels), no simulator:

- :func:`generate_terrain` builds the heightfield of :class:`training.config.TerrainConfig`:
  one row of square tiles per difficulty level along x, one column per terrain kind along y,
  a flat border around them.  Every tile's edge is at height 0, so neighbouring tiles meet
  without a step (bumps aside), and every tile has a flat platform at its centre where robots
  spawn.  :meth:`TerrainGrid.mujoco_terrain` hands it to
  :func:`humanoid_rl_ros.robot.mujoco_model.build_mujoco_model` as a
  :class:`~humanoid_rl_ros.robot.mujoco_model.Terrain` (one heightfield geom, shared by all
  worlds of MuJoCo Warp).
- :class:`HeightMap` returns the ground height under any world points on the device
  (bilinear between the grid points; MuJoCo joins them by two flat triangles per cell, the
  same on slopes and within a few millimetres on bumps), capture-safe.
- :func:`update_levels` is the curriculum rule (mjlab's ``terrain_levels_vel``, plus a level
  down after a fall).

Kinds (difficulty ``d`` in [0, 1] is ``level / (num_levels - 1)``):

- ``flat``: flat at every level;
- ``slope_up``: a pyramid, the platform on top, faces sloped at ``d * max_slope_deg``;
- ``slope_down``: the same pyramid inverted (a pit, the platform at the bottom);
- ``rough``: heights uniform in ``+/- d * max_rough_m`` at every grid point off the platform;
- ``rough_slope``: ``slope_up`` plus the bumps of ``rough``.
"""

from dataclasses import dataclass
import math
from typing import Tuple

from humanoid_rl_ros.robot.mujoco_model import Terrain
import numpy as np
import torch
from training.config import TerrainConfig

KINDS = ('flat', 'slope_up', 'slope_down', 'rough', 'rough_slope')
"""Terrain kinds :func:`generate_terrain` knows."""


def _cells(length_m: float, cell_m: float, what: str) -> int:
    """Return ``length_m / cell_m`` as an int, or raise ValueError if it is not whole."""
    count = length_m / cell_m
    if abs(count - round(count)) > 1e-6 or round(count) < 0:
        raise ValueError(f'{what} ({length_m} m) must be a whole number of cells of {cell_m} m')
    return int(round(count))


def check_config(cfg: TerrainConfig) -> None:
    """Raise ValueError for a terrain config that cannot be generated."""
    unknown = [k for k in cfg.kinds if k not in KINDS]
    if unknown or not cfg.kinds:
        raise ValueError(f'terrain kinds must be some of {KINDS}, got {cfg.kinds}')
    if cfg.num_levels < 1 or not 0 <= cfg.max_init_level < cfg.num_levels:
        raise ValueError(f'num_levels must be >= 1 and max_init_level in [0, num_levels), '
                         f'got {cfg.num_levels}, {cfg.max_init_level}')
    if not (cfg.cell_m > 0 and cfg.tile_size_m > 0 and cfg.border_m >= 0):
        raise ValueError('cell_m and tile_size_m must be > 0 and border_m >= 0')
    if not 0.0 <= cfg.max_slope_deg < 45.0 or cfg.max_rough_m < 0.0:
        raise ValueError(f'max_slope_deg must be in [0, 45) and max_rough_m >= 0, got '
                         f'{cfg.max_slope_deg}, {cfg.max_rough_m}')
    if not 0.0 <= cfg.platform_m < cfg.tile_size_m:
        raise ValueError(f'platform_m must be in [0, tile_size_m), got {cfg.platform_m}')
    if not 0.0 <= cfg.spawn_half_range_m <= cfg.platform_m / 2:
        raise ValueError('spawn_half_range_m must be in [0, platform_m / 2] (spawn on the '
                         f'platform), got {cfg.spawn_half_range_m}')
    _cells(cfg.tile_size_m, cfg.cell_m, 'tile_size_m')
    _cells(cfg.border_m, cfg.cell_m, 'border_m')


def difficulty(level: int, num_levels: int) -> float:
    """Return the difficulty in [0, 1] of ``level`` (0 for the only level of one)."""
    return level / (num_levels - 1) if num_levels > 1 else 0.0


def tile_heights(kind: str, diff: float, cfg: TerrainConfig,
                 rng: np.random.Generator) -> np.ndarray:
    """
    Return one tile's heights [m] at its grid points, [P, P] with P = tile / cell + 1.

    Rows run along y, columns along x, both from the tile's low corner; ``diff`` in [0, 1].
    """
    p = _cells(cfg.tile_size_m, cfg.cell_m, 'tile_size_m') + 1
    half = 0.5 * cfg.tile_size_m
    axis = np.linspace(-half, half, p)
    xx, yy = np.meshgrid(axis, axis)
    r = np.maximum(np.abs(xx), np.abs(yy))  # distance to the centre along the nearer axis
    off_platform = r > 0.5 * cfg.platform_m + 1e-9
    heights = np.zeros((p, p))
    if kind in ('slope_up', 'slope_down', 'rough_slope'):
        grade = math.tan(math.radians(diff * cfg.max_slope_deg))
        pyramid = grade * (half - np.maximum(r, 0.5 * cfg.platform_m))
        heights += -pyramid if kind == 'slope_down' else pyramid
    if kind in ('rough', 'rough_slope'):
        amplitude = diff * cfg.max_rough_m
        heights += np.where(off_platform, rng.uniform(-amplitude, amplitude, (p, p)), 0.0)
    return heights


@dataclass(frozen=True)
class TerrainGrid:
    """The generated terrain: heights, where they lie and where each tile's robots spawn."""

    heights_m: np.ndarray
    """Grid heights [m], [rows along y, columns along x]."""
    extent_m: Tuple[float, float, float, float]
    """(x min, x max, y min, y max) of the grid's corner points [m]."""
    cell_m: float
    """Grid spacing [m]."""
    origins_m: np.ndarray
    """Spawn centre of each tile [num_levels, num_kinds, 3]: x, y and ground height [m]."""
    tile_size_m: float
    """Side of a tile [m]."""

    @property
    def plane_z_m(self) -> float:
        """Return the height of the plane beyond the grid (the model builder's rule) [m]."""
        low = float(self.heights_m.min())
        return low - 1.0 if low < 0.0 else 0.0

    def mujoco_terrain(self) -> Terrain:
        """Return the grid as the MuJoCo model builder's :class:`Terrain`."""
        return Terrain(grid_heights_m=self.heights_m, grid_extent_m=self.extent_m)


def generate_terrain(cfg: TerrainConfig) -> TerrainGrid:
    """
    Lay out ``cfg.num_levels`` x ``len(cfg.kinds)`` tiles with a flat border (seeded).

    Tile (level l, kind k) spans x in [l, l + 1] * tile and y in [k, k + 1] * tile; the
    border surrounds them at height 0.
    """
    check_config(cfg)
    rng = np.random.default_rng(cfg.seed)
    tile = _cells(cfg.tile_size_m, cfg.cell_m, 'tile_size_m')
    border = _cells(cfg.border_m, cfg.cell_m, 'border_m')
    levels, kinds = cfg.num_levels, len(cfg.kinds)
    heights = np.zeros((kinds * tile + 2 * border + 1, levels * tile + 2 * border + 1))
    origins = np.zeros((levels, kinds, 3))
    for level in range(levels):
        for k, kind in enumerate(cfg.kinds):
            h = tile_heights(kind, difficulty(level, levels), cfg, rng)
            r0, c0 = border + k * tile, border + level * tile
            heights[r0:r0 + tile + 1, c0:c0 + tile + 1] = h
            origins[level, k] = ((level + 0.5) * cfg.tile_size_m,
                                 (k + 0.5) * cfg.tile_size_m, h[tile // 2, tile // 2])
    extent = (-cfg.border_m, levels * cfg.tile_size_m + cfg.border_m,
              -cfg.border_m, kinds * cfg.tile_size_m + cfg.border_m)
    return TerrainGrid(heights_m=heights, extent_m=extent, cell_m=cfg.cell_m,
                       origins_m=origins, tile_size_m=cfg.tile_size_m)


class HeightMap:
    """The ground height under world points, on a torch device (capture-safe lookups)."""

    def __init__(self, grid: TerrainGrid, device: torch.device) -> None:
        """Upload the grid's heights."""
        self.heights = torch.as_tensor(grid.heights_m, dtype=torch.float32, device=device)
        self.x0, _, self.y0, _ = grid.extent_m
        self.cell_m = float(grid.cell_m)
        self.plane_z_m = float(grid.plane_z_m)
        self.rows, self.cols = (int(v) for v in grid.heights_m.shape)

    def __call__(self, xy: torch.Tensor) -> torch.Tensor:
        """Return the ground height [m] under world points ``xy`` [..., 2] [m], shape [...]."""
        fx = (xy[..., 0] - self.x0) / self.cell_m
        fy = (xy[..., 1] - self.y0) / self.cell_m
        inside = (fx >= 0) & (fx <= self.cols - 1) & (fy >= 0) & (fy <= self.rows - 1)
        fx = fx.clamp(0.0, self.cols - 1.0)
        fy = fy.clamp(0.0, self.rows - 1.0)
        c0 = fx.floor().long().clamp(max=self.cols - 2)
        r0 = fy.floor().long().clamp(max=self.rows - 2)
        tx, ty = fx - c0, fy - r0
        h = self.heights
        top = h[r0, c0] * (1 - tx) + h[r0, c0 + 1] * tx
        bottom = h[r0 + 1, c0] * (1 - tx) + h[r0 + 1, c0 + 1] * tx
        ground = top * (1 - ty) + bottom * ty
        return torch.where(inside, ground, torch.full_like(ground, self.plane_z_m))


def update_levels(levels: torch.Tensor, eligible: torch.Tensor, walked_m: torch.Tensor,
                  fell: torch.Tensor, commanded_m: torch.Tensor, tile_size_m: float,
                  num_levels: int, u_random: torch.Tensor) -> torch.Tensor:
    """
    Return the next terrain level [N] (long) of each env by the curriculum rule.

    Where ``eligible`` (bool [N]: an episode just ended): one level up when the robot
    ``walked_m`` farther than half a tile from its spawn point without falling; one level down
    when it ``fell`` or walked less than half of ``commanded_m`` (its command's speed times
    the episode's duration) [m]; past the last level, a random level from ``u_random`` (uniform
    [0, 1) [N]).  Elsewhere the level is kept.  Fixed shapes, no host sync.
    """
    up = (walked_m > 0.5 * tile_size_m) & ~fell
    down = (fell | (walked_m < 0.5 * commanded_m)) & ~up
    new = levels + up.long() - down.long()
    resampled = (u_random * num_levels).long().clamp(0, num_levels - 1)
    new = torch.where(new >= num_levels, resampled, new.clamp(min=0))
    return torch.where(eligible, new, levels)
