"""
Episodes of the locomotion task: random numbers, masked resets, commands, pushes, statistics.

This file is longer than 500 lines: every term it draws is written into the same per-step
random slab and the same masked reset inside one captured CUDA graph, so splitting the terms
apart would split one fixed-shape graph body across modules.

:class:`EpisodeMixin` is the part of :class:`training.env.LocomotionEnv` that starts and ends
episodes inside the captured step: the per-step random slab (every random number of a step,
drawn by one ``uniform_`` outside the graph), masked resets with the domain randomization
(:class:`training.config.DomainRandConfig`), the terrain's spawn points and curriculum
(:class:`training.config.TerrainConfig`, :mod:`training.env.terrain`), velocity-command sampling
and resampling, pushes, and the finished episodes' statistics.  Like the rest of the step it
uses fixed shapes, masked full-width writes and no host syncs.

It works on the env's state: ``cfg``, ``robot``, ``backend``, ``device``, ``num_envs``,
``num_actions`` and the persistent buffers that ``LocomotionEnv._init_buffers`` allocates.
Its hooks into the rest of the env:

- :meth:`EpisodeMixin._model_terrain` gives the MuJoCo model builder the terrain (or None);
- :meth:`EpisodeMixin._refresh_terrain_heights`, at the end of ``_refresh_state``, makes
  ``base_height`` and ``feet_height`` relative to the ground under them and fills
  :attr:`terrain_heights` (no-op on flat ground);
- :meth:`EpisodeMixin._sensor_model` turns the true observation inputs into what the actor's
  sensors report: observation latency, IMU bias, encoder bias (before the per-step noise);
- :attr:`EpisodeMixin.PRIVILEGED_PARAM_NAMES` names the columns of ``privileged_params`` that
  every reset fills (normalized randomized parameters, for the critic).
"""

import math
from typing import Any, Dict, List, Optional, Tuple

from humanoid_rl_ros.core.policy_math import projected_gravity, world_to_body, yaw_from_quat
from humanoid_rl_ros.robot.mujoco_model import FLOOR_FRICTION, Terrain
import torch
from training.backends.base import SimBackend
from training.config import DomainRandConfig, EnvConfig
from training.env.terrain import generate_terrain, HeightMap, TerrainGrid, update_levels


def delay_steps_range(delay_ms: Tuple[float, float], physics_dt_s: float) -> Tuple[int, int]:
    """Return a delay range [ms] as whole physics steps (each end rounded down)."""
    low, high = (int(math.floor(v * 1e-3 / physics_dt_s + 1e-9)) for v in delay_ms)
    if not 0 <= low <= high:
        raise ValueError(f'a delay range must be 0 <= low <= high [ms], got {delay_ms}')
    return low, high


def privileged_param_specs(r: DomainRandConfig, physics_dt_s: float
                           ) -> List[Tuple[str, float, float]]:
    """
    Return ``(name, low, high)`` of each randomized parameter the critic gets, in order.

    Only switched-on terms appear; :class:`EpisodeMixin` writes each value mapped from
    [low, high] to [-1, 1].  Per-joint kp/kd and motor-strength scales are not here: the
    critic has them per joint already.
    """
    specs: List[Tuple[str, float, float]] = []
    if r.friction:
        specs.append(('friction', *r.friction_range))
    if r.added_base_mass:
        specs.append(('added_base_mass_kg', *r.added_base_mass_kg))
    if r.base_com:
        specs += [(f'base_com_{axis}_m', -h, h) for axis, h in zip('xyz', r.base_com_offset_m)]
    if r.link_mass:
        specs.append(('link_mass_scale_mean', *r.link_mass_scale_range))
    if r.kd_scale:
        specs.append(('kd_scale_mean', *r.kd_scale_range))
    if r.armature:
        specs.append(('armature_scale_mean', *r.armature_scale_range))
    if r.joint_friction:
        specs.append(('joint_friction_nm_mean', *r.joint_friction_nm))
    if r.joint_damping:
        specs.append(('joint_damping_nms_per_rad_mean', *r.joint_damping_nms_per_rad))
    if r.latency:
        specs.append(('action_delay_steps',
                      *delay_steps_range(r.action_delay_ms, physics_dt_s)))
        specs.append(('obs_delay_steps', *delay_steps_range(r.obs_delay_ms, physics_dt_s)))
    if r.imu_bias:
        specs += [(f'gyro_bias_{axis}_rad_s', -r.gyro_bias_rad_s, r.gyro_bias_rad_s)
                  for axis in 'xyz']
        specs += [(f'gravity_bias_{axis}', -r.gravity_bias, r.gravity_bias) for axis in 'xyz']
    return specs


class EpisodeMixin:
    """Random slab, masked resets, commands, pushes and episode statistics of the env."""

    cfg: EnvConfig
    backend: SimBackend
    device: torch.device
    num_envs: int
    num_actions: int
    _dr_unsupported: List[str]

    @property
    def PRIVILEGED_PARAM_NAMES(self) -> Tuple[str, ...]:  # noqa: N802 (the observations' hook)
        """Return the names of the randomized parameters in ``privileged_params``, in order."""
        return tuple(name for name, _, _ in privileged_param_specs(
            self.cfg.randomization, self.cfg.physics_dt_s))

    def _model_terrain(self) -> Optional[Terrain]:
        """
        Generate the terrain grid (``cfg.terrain.enabled``) for the MuJoCo model; else None.

        Called while the env is built, before the simulator: keeps the grid as
        :attr:`terrain_grid`.
        """
        self.terrain_grid: Optional[TerrainGrid] = None
        """The generated terrain (None on flat ground)."""
        if not self.cfg.terrain.enabled:
            return None
        self.terrain_grid = generate_terrain(self.cfg.terrain)
        return self.terrain_grid.mujoco_terrain()

    def _init_random_layout(self) -> None:
        """
        Lay out the per-step random slab [N, R] and the randomization and terrain buffers.

        One ``uniform_`` per step fills the slab: every random number a step (or a reset) may
        use is a fixed column range of it, drawn OUTSIDE the captured graph, so each replay
        reads fresh numbers.
        """
        a, r = self.num_actions, self.cfg.randomization
        widths = [('reset_yaw', 1), ('reset_height', 1), ('reset_lin_vel', 2),
                  ('reset_joint', a), ('reset_gain', a), ('reset_strength', a),
                  ('reset_friction', 1), ('reset_mass', 1), ('reset_phase', 1),
                  ('reset_cmd', 3), ('reset_standing', 1), ('reset_hold', 1),
                  ('reset_push', 1), ('cmd', 3), ('standing', 1), ('hold', 1),
                  ('push_vel', 2), ('push_interval', 1)]
        links = int(getattr(self.backend, 'num_links', 0))
        optional = [(r.kd_scale, 'reset_kd', a), (r.armature, 'reset_armature', a),
                    (r.joint_friction, 'reset_joint_friction', a),
                    (r.joint_damping, 'reset_joint_damping', a),
                    (r.link_mass, 'reset_link_mass', links), (r.base_com, 'reset_com', 3),
                    (r.latency, 'reset_delay', 2), (r.imu_bias, 'reset_imu_bias', 6),
                    (r.encoder_bias, 'reset_encoder_bias', a),
                    (r.pushes and r.push_lin_vel_z_m_s > 0, 'push_vel_z', 1),
                    (r.pushes and any(v > 0 for v in r.push_ang_vel_rad_s), 'push_ang_vel', 3),
                    (self.cfg.commands.single_axis_fraction > 0, 'reset_single_axis', 2),
                    (self.cfg.commands.single_axis_fraction > 0, 'single_axis', 2),
                    (self.cfg.terrain.enabled, 'reset_spawn', 2),
                    (self.cfg.terrain.enabled, 'reset_level', 1)]
        widths += [(name, width) for on, name, width in optional if on]
        term_width = {'base_lin_vel': 3, 'base_ang_vel': 3, 'projected_gravity': 3,
                      'velocity_command': 3, 'joint_pos': a, 'joint_vel': a, 'last_action': a,
                      'gait_phase': 2}
        self._noise_terms = [name for name in self.cfg.observations.noise
                             if name in term_width]
        widths += [(f'noise_{name}', term_width[name]) for name in self._noise_terms]
        self._rand_cols: Dict[str, Tuple[int, int]] = {}
        col = 0
        for name, width in widths:
            self._rand_cols[name] = (col, width)
            col += width
        self._rand = torch.zeros(self.num_envs, col, device=self.device)
        self._init_randomization()
        self._init_terrain()

    def _init_randomization(self) -> None:
        """Allocate the randomized parameters' buffers; switch the backend's latency on."""
        n, a, dev, r = self.num_envs, self.num_actions, self.device, self.cfg.randomization
        links = int(getattr(self.backend, 'num_links', 0))
        self.kd_scale = torch.ones(n, a, device=dev)
        """Extra kd scale per joint (``DomainRandConfig.kd_scale``), on top of gain_scale."""
        self.armature_scale = torch.ones(n, a, device=dev)
        self.joint_friction_nm = torch.zeros(n, a, device=dev)
        self.joint_damping_nms_per_rad = torch.zeros(n, a, device=dev)
        self.link_mass_scale = torch.ones(n, links, device=dev)
        self.base_com_offset_m = torch.zeros(n, 3, device=dev)
        self.friction = torch.ones(n, device=dev)
        self.added_base_mass_kg = torch.zeros(n, device=dev)
        self.action_delay_steps = torch.zeros(n, dtype=torch.long, device=dev)
        self.obs_delay_steps = torch.zeros(n, dtype=torch.long, device=dev)
        self.gyro_bias_rad_s = torch.zeros(n, 3, device=dev)
        self.gravity_bias = torch.zeros(n, 3, device=dev)
        self.encoder_bias_rad = torch.zeros(n, a, device=dev)
        self._privileged_specs = privileged_param_specs(r, self.cfg.physics_dt_s)
        self._com_half_m = torch.tensor(r.base_com_offset_m, dtype=torch.float32, device=dev)
        self._push_ang_half_rad_s = torch.tensor(r.push_ang_vel_rad_s, dtype=torch.float32,
                                                 device=dev)
        self.disturbance_scale = torch.full((), 0.0 if r.ramp_iterations > 0 else 1.0,
                                            device=dev)
        """Scale of the randomization in [0, 1]: push speeds, delay spans, and every
        randomized parameter's spread about its nominal value (see
        ``DomainRandConfig.ramp_iterations``; set by :meth:`on_iteration`); a device scalar
        that the step's CUDA graph reads, updated in place."""
        if r.ramp_iterations < 0:
            raise ValueError(f'randomization.ramp_iterations must be >= 0, got '
                             f'{r.ramp_iterations}')
        self._delay_range = (delay_steps_range(r.action_delay_ms, self.cfg.physics_dt_s)
                             + delay_steps_range(r.obs_delay_ms, self.cfg.physics_dt_s))
        self._latency_on = False
        """Whether the backend delays actions and observations (``DomainRandConfig.latency``)."""
        if r.latency:
            try:
                self.backend.enable_latency(self._delay_range[1], self._delay_range[3])
                self._latency_on = True
            except NotImplementedError as exc:
                print(f"[env] domain randomization 'latency' is off: {exc}")

    def _init_terrain(self) -> None:
        """Set up the terrain's height lookup, levels and spawn buffers (flat: none)."""
        n, dev, t = self.num_envs, self.device, self.cfg.terrain
        grid = getattr(self, 'terrain_grid', None)
        if t.enabled and grid is None:
            raise ValueError('terrain.enabled needs the model built with _model_terrain()')
        if t.enabled and self.backend_name != 'mjwarp':
            raise ValueError(f'terrain needs the mjwarp backend, not {self.backend_name!r}')
        self.terrain_level = torch.zeros(n, dtype=torch.long, device=dev)
        """Each env's terrain level (row of the grid); 0 on flat ground."""
        self.terrain_kind = torch.remainder(torch.arange(n, device=dev), max(len(t.kinds), 1))
        """Each env's terrain kind (column of the grid), fixed: env index modulo the kinds."""
        self._spawn_xy = torch.zeros(n, 2, device=dev)
        scan = len(t.height_scan_x_m) * len(t.height_scan_y_m) if t.enabled else 0
        self.terrain_heights = torch.zeros(n, (self.num_feet if t.enabled else 0) + scan,
                                           device=dev)
        """
        Terrain samples for the critic [N, F + S] (width 0 on flat ground): each foot's height
        above the ground under it [m], then base height above the ground at each scan point
        minus the nominal base height [m] (scan points: ``height_scan_x_m`` x
        ``height_scan_y_m`` in the heading frame, x-major).
        """
        if not t.enabled:
            self._height_map = None
            return
        self._height_map = HeightMap(grid, dev)
        self._terrain_origins = torch.as_tensor(grid.origins_m, dtype=torch.float32,
                                                device=dev)
        sx = torch.as_tensor(t.height_scan_x_m, dtype=torch.float32, device=dev)
        sy = torch.as_tensor(t.height_scan_y_m, dtype=torch.float32, device=dev)
        self._scan_points = torch.stack(torch.meshgrid(sx, sy, indexing='ij'), -1).view(-1, 2)
        gen = torch.Generator(device='cpu').manual_seed(t.seed)
        first = torch.randint(0, t.max_init_level + 1, (n,), generator=gen)
        self.terrain_level.copy_(first.to(dev))
        # heights relative to the ground: base_height becomes a buffer (flat: a view of z)
        self.base_height = torch.zeros(n, device=dev)

    def _draw_randoms(self) -> None:
        """Refill the random slab (outside any graph: torch RNG advances every call)."""
        self._rand.uniform_(0.0, 1.0)

    def _u(self, name: str, low: Any = 0.0, high: Any = 1.0) -> torch.Tensor:
        """Return the slab's uniform draws ``name`` mapped to [low, high): [N] or [N, width]."""
        col, width = self._rand_cols[name]
        u = self._rand[:, col] if width == 1 else self._rand[:, col:col + width]
        return low + (high - low) * u

    def _reset_masked(self, mask: torch.Tensor) -> None:
        """
        Start a new episode in the envs where ``mask`` (bool [N]) is True.

        Fixed shapes, no host sync: every quantity is drawn for all envs from the random slab
        and written with ``torch.where``, so unmasked envs keep their values exactly.
        """
        n, a, dev, cfg = self.num_envs, self.num_actions, self.device, self.cfg
        m1 = mask.unsqueeze(1)
        yaw = self._u('reset_yaw', -math.pi, math.pi)
        zero = torch.zeros_like(yaw)
        quat = torch.stack([torch.cos(yaw / 2), zero, zero, torch.sin(yaw / 2)], dim=1)
        height = self.robot.nominal_base_height_m + self._u('reset_height', 0.0, 0.02)
        if self._height_map is None:
            pos = torch.stack([zero, zero, height], dim=1)
        else:
            pos = self._terrain_spawn(mask, height)
        lin_vel = torch.cat([self._u('reset_lin_vel', -cfg.init_base_vel_m_s,
                                     cfg.init_base_vel_m_s), zero.unsqueeze(1)], dim=1)
        joint_pos = self.default_joint_pos + self._u(
            'reset_joint', -cfg.init_joint_noise_rad, cfg.init_joint_noise_rad)
        self._backend_reset(mask, base_pos=pos, base_quat=quat, base_lin_vel_world=lin_vel,
                            base_ang_vel_body=torch.zeros(n, 3, device=dev),
                            joint_pos=joint_pos, joint_vel=torch.zeros(n, a, device=dev))
        self._randomize_masked(mask)
        for buf in (self.actions, self.last_actions, self.applied_actions, self.last_joint_vel,
                    self.feet_air_time):
            buf.masked_fill_(m1, 0.0)
        self.last_feet_pos.copy_(torch.where(mask.view(n, 1, 1), self.backend.foot_pos,
                                             self.last_feet_pos))
        self.last_feet_contact.masked_fill_(m1, True)
        self._vel_window.masked_fill_(mask.view(n, 1, 1), 0.0)
        self._vel_window_sum.masked_fill_(m1, 0.0)
        self._vel_window_count.masked_fill_(mask, 0.0)
        self.episode_length.masked_fill_(mask, 0)
        self._episode_sums_all.masked_fill_(mask.unsqueeze(0), 0.0)
        self.gait_phase.copy_(torch.where(mask, self._u('reset_phase'), self.gait_phase))
        cmd, hold_s = self._sample_commands('reset_')
        self.commands.copy_(torch.where(m1, cmd, self.commands))
        self.command_timer_s.copy_(torch.where(mask, hold_s, self.command_timer_s))
        self.push_timer_s.copy_(torch.where(
            mask, self._u('reset_push', *cfg.randomization.push_interval_s), self.push_timer_s))

    def curriculum_state(self) -> Dict[str, torch.Tensor]:
        """Return the curriculum's state to keep in a checkpoint: each env's terrain level."""
        return {'terrain_level': self.terrain_level.detach().cpu().clone()}

    def load_curriculum_state(self, state: Dict[str, torch.Tensor]) -> None:
        """
        Restore :meth:`curriculum_state` (a resumed run goes on at the levels it had reached).

        With another number of envs, the saved levels are spread over the new envs in order;
        levels beyond this config's ``num_levels`` are clamped. Call before the first reset
        (which moves no level: no episode has run).
        """
        saved = state.get('terrain_level')
        if saved is None or saved.numel() == 0 or not self.cfg.terrain.enabled:
            return
        saved = saved.to(self.device).long().reshape(-1)
        pick = torch.arange(self.num_envs, device=self.device) * saved.numel() // self.num_envs
        self.terrain_level.copy_(saved[pick].clamp(0, self.cfg.terrain.num_levels - 1))

    def _terrain_spawn(self, mask: torch.Tensor, height_m: torch.Tensor) -> torch.Tensor:
        """
        Move the levels of the ending episodes by the curriculum; return spawn points [N, 3].

        Spawn: the centre of the env's tile plus a uniform offset, on its flat platform,
        ``height_m`` [N] above the ground.  Levels move only for envs in ``mask`` that ran at
        least one step (not at the first reset).
        """
        t, n = self.cfg.terrain, self.num_envs
        u_level = self._u('reset_level')
        # an episode cut for a buffer overflow ran on wrong physics: its level stays
        eligible = mask & (self.episode_length > 0) & ~self._cut_now
        if t.curriculum:
            walked = torch.norm(self.backend.base_pos[:, :2] - self._spawn_xy, dim=1)
            commanded = torch.norm(self.commands[:, :2], dim=1) * \
                self.episode_length.float() * self.dt_s
            level = update_levels(self.terrain_level, eligible, walked, self.terminated,
                                  commanded, t.tile_size_m, t.num_levels, u_level)
        else:
            random_level = (u_level * t.num_levels).long().clamp(0, t.num_levels - 1)
            level = torch.where(eligible, random_level, self.terrain_level)
        self.terrain_level.copy_(level)
        origin = self._terrain_origins[self.terrain_level, self.terrain_kind]
        xy = origin[:, :2] + self._u('reset_spawn', -t.spawn_half_range_m, t.spawn_half_range_m)
        self._spawn_xy.copy_(torch.where(mask.view(n, 1), xy, self._spawn_xy))
        return torch.cat([xy, (origin[:, 2] + height_m).unsqueeze(1)], dim=1)

    def _refresh_terrain_heights(self) -> None:
        """
        Measure heights from the ground under the robot (end of ``_refresh_state``).

        ``base_height``: base z minus the ground under the base; ``feet_height``: foot z minus
        the ground under the foot minus the foot's standing height; :attr:`terrain_heights`
        (see there).  No-op on flat ground (the floor is z = 0).
        """
        hm = self._height_map
        if hm is None:
            return
        b = self.backend
        base_xy, base_z = b.base_pos[:, :2], b.base_pos[:, 2]
        self.base_height.copy_(base_z - hm(base_xy))
        clearance = b.foot_pos[:, :, 2] - hm(b.foot_pos[:, :, :2])
        self.feet_height.copy_(clearance - self.foot_stand_height_m)
        yaw = yaw_from_quat(b.base_quat).unsqueeze(1)
        px, py = self._scan_points[:, 0], self._scan_points[:, 1]
        points = torch.stack([base_xy[:, 0:1] + torch.cos(yaw) * px - torch.sin(yaw) * py,
                              base_xy[:, 1:2] + torch.sin(yaw) * px + torch.cos(yaw) * py],
                             dim=-1)
        scan = base_z.unsqueeze(1) - hm(points) - self.robot.nominal_base_height_m
        self.terrain_heights.copy_(torch.cat([clearance, scan], dim=1))

    @torch.compiler.disable
    def _backend_reset(self, mask: torch.Tensor, **state: torch.Tensor) -> None:
        """Write the reset state into the simulator (eager: simulator code is not compiled)."""
        self.backend.reset_masked(mask, **state)

    def _randomize_masked(self, mask: torch.Tensor) -> None:
        """Draw the per-env domain randomization of the envs where ``mask`` is True."""
        r, m1, b = self.cfg.randomization, mask.unsqueeze(1), self.backend
        if r.pd_gain_scale:
            self._draw(mask, self.gain_scale, 'reset_gain', r.pd_gain_scale_range, 1.0)
        else:
            self.gain_scale.masked_fill_(m1, 1.0)
        if r.motor_strength:
            self._draw(mask, self.strength_scale, 'reset_strength', r.motor_strength_range, 1.0)
        else:
            self.strength_scale.masked_fill_(m1, 1.0)
        if r.kd_scale:
            self._draw(mask, self.kd_scale, 'reset_kd', r.kd_scale_range, 1.0)
        b.kp.copy_(torch.where(m1, self.kp * self.gain_scale, b.kp))
        b.kd.copy_(torch.where(m1, self.kd * self.gain_scale * self.kd_scale, b.kd))
        b.effort_limit.copy_(torch.where(m1, self.effort_limit * self.strength_scale,
                                         b.effort_limit))
        if r.friction:
            self._draw(mask, self.friction, 'reset_friction', r.friction_range,
                       FLOOR_FRICTION[0])
            self._try_dr('friction', b.set_friction_masked, mask, self.friction)
        if r.added_base_mass:
            self._draw(mask, self.added_base_mass_kg, 'reset_mass', r.added_base_mass_kg, 0.0)
            self._try_dr('added_base_mass', b.set_base_mass_offset_masked, mask,
                         self.added_base_mass_kg)
        if r.link_mass:
            self._draw(mask, self.link_mass_scale, 'reset_link_mass', r.link_mass_scale_range,
                       1.0)
            self._try_dr('link_mass', b.set_link_mass_scale_masked, mask, self.link_mass_scale)
        if r.base_com:
            half = self._com_half_m
            self._draw(mask, self.base_com_offset_m, 'reset_com', (-half, half), 0.0)
            self._try_dr('base_com', b.set_base_com_offset_masked, mask, self.base_com_offset_m)
        joints = {}
        for on, name, buf, col, rng, nominal in (
                (r.armature, 'armature_scale', self.armature_scale, 'reset_armature',
                 r.armature_scale_range, 1.0),
                (r.joint_friction, 'frictionloss_nm', self.joint_friction_nm,
                 'reset_joint_friction', r.joint_friction_nm, 0.0),
                (r.joint_damping, 'damping_nms_per_rad', self.joint_damping_nms_per_rad,
                 'reset_joint_damping', r.joint_damping_nms_per_rad, 0.0)):
            if on:
                self._draw(mask, buf, col, rng, nominal)
                joints[name] = buf
        if joints:
            self._try_dr('joint_dynamics', b.set_joint_dynamics_masked, mask, **joints)
        if self._latency_on:
            a_lo, a_hi, o_lo, o_hi = self._delay_range
            u = self._u('reset_delay')
            for buf, lo, hi, uu in ((self.action_delay_steps, a_lo, a_hi, u[:, 0]),
                                    (self.obs_delay_steps, o_lo, o_hi, u[:, 1])):
                span = torch.floor((hi - lo) * self.disturbance_scale)  # whole steps
                steps = (lo + torch.minimum(torch.floor(uu * (span + 1)), span)).long()
                buf.copy_(torch.where(mask, steps, buf))
            self._try_dr('latency', b.set_latency_masked, mask, self.action_delay_steps,
                         self.obs_delay_steps)
        if r.imu_bias:
            u = self._u('reset_imu_bias', -1.0, 1.0) * self.disturbance_scale
            self.gyro_bias_rad_s.copy_(torch.where(m1, u[:, :3] * r.gyro_bias_rad_s,
                                                   self.gyro_bias_rad_s))
            self.gravity_bias.copy_(torch.where(m1, u[:, 3:] * r.gravity_bias,
                                                self.gravity_bias))
        if r.encoder_bias:
            self._draw(mask, self.encoder_bias_rad, 'reset_encoder_bias',
                       (-r.encoder_bias_rad, r.encoder_bias_rad), 0.0)
        self._write_privileged_params(mask)

    def _draw(self, mask: torch.Tensor, buf: torch.Tensor, name: str, rng: Any,
              nominal: float) -> None:
        """
        Write slab draws ``name`` into the masked rows of ``buf``, ramped toward ``nominal``.

        A draw over ``rng`` (low, high) is moved toward ``nominal`` (the unrandomized value,
        clamped into the range) by the disturbance scale: ``nominal + scale * (draw -
        nominal)``, so the range grows from ``nominal`` to ``rng`` over the ramp.
        """
        low, high = rng
        if isinstance(low, torch.Tensor):  # per-column ranges on the device
            centre = torch.minimum(torch.maximum(torch.full_like(low, nominal), low), high)
        else:
            centre = min(max(float(nominal), float(low)), float(high))
        value = centre + self.disturbance_scale * (self._u(name, low, high) - centre)
        m = mask.view((self.num_envs,) + (1,) * (buf.dim() - 1))
        buf.copy_(torch.where(m, value, buf))

    def _write_privileged_params(self, mask: torch.Tensor) -> None:
        """Write the masked envs' randomized parameters, mapped to [-1, 1], for the critic."""
        params = getattr(self, 'privileged_params', None)
        if params is None or params.shape[1] == 0:
            return
        source = {
            'friction': self.friction, 'added_base_mass_kg': self.added_base_mass_kg,
            'base_com_x_m': self.base_com_offset_m[:, 0],
            'base_com_y_m': self.base_com_offset_m[:, 1],
            'base_com_z_m': self.base_com_offset_m[:, 2],
            'link_mass_scale_mean': self.link_mass_scale.mean(dim=1),
            'kd_scale_mean': self.kd_scale.mean(dim=1),
            'armature_scale_mean': self.armature_scale.mean(dim=1),
            'joint_friction_nm_mean': self.joint_friction_nm.mean(dim=1),
            'joint_damping_nms_per_rad_mean': self.joint_damping_nms_per_rad.mean(dim=1),
            'action_delay_steps': self.action_delay_steps.float(),
            'obs_delay_steps': self.obs_delay_steps.float()}
        for i, axis in enumerate('xyz'):
            source[f'gyro_bias_{axis}_rad_s'] = self.gyro_bias_rad_s[:, i]
            source[f'gravity_bias_{axis}'] = self.gravity_bias[:, i]
        columns = []
        for name, low, high in self._privileged_specs:
            mid, half = 0.5 * (low + high), 0.5 * (high - low)
            value = source[name]
            columns.append((value - mid) / half if half > 0 else torch.zeros_like(value))
        params.copy_(torch.where(mask.unsqueeze(1), torch.stack(columns, dim=1), params))

    def _sensor_model(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """
        Return the actor's observation inputs as its sensors report them (the critic's stay).

        ``inputs`` are the true raw terms (``_observation_inputs``).  Observation latency
        replaces the base and joint terms by the state ``obs_delay_steps`` physics steps old;
        IMU bias adds the episode's gyro and gravity biases; encoder bias the episode's joint
        position biases.  The per-step noise comes after (``ObservationConfig.noise``).
        """
        r = self.cfg.randomization
        if not (self._latency_on or r.imu_bias or r.encoder_bias):
            return inputs
        out = dict(inputs)
        if self._latency_on:
            old = self.backend.delayed_state()
            delayed = {'base_lin_vel': world_to_body(old['base_quat'],
                                                     old['base_lin_vel_world']),
                       'base_ang_vel': old['base_ang_vel_body'],
                       'projected_gravity': projected_gravity(old['base_quat']),
                       'joint_pos': old['joint_pos'] - self.default_joint_pos,
                       'joint_vel': old['joint_vel']}
            out.update({name: value for name, value in delayed.items() if name in out})
        if r.imu_bias:
            out['base_ang_vel'] = out['base_ang_vel'] + self.gyro_bias_rad_s
            out['projected_gravity'] = out['projected_gravity'] + self.gravity_bias
        if r.encoder_bias:
            out['joint_pos'] = out['joint_pos'] + self.encoder_bias_rad
        return out

    @torch.compiler.disable
    def _try_dr(self, name: str, setter: Any, mask: torch.Tensor, *values: torch.Tensor,
                **named: torch.Tensor) -> None:
        """Apply one simulator-side randomization; switch it off if the backend lacks it."""
        if name in self._dr_unsupported:
            return
        try:
            setter(mask, *values, **named)
        except NotImplementedError as exc:
            self._dr_unsupported.append(name)
            print(f'[env] domain randomization {name!r} is off: {exc}')

    def _sample_commands(self, prefix: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Return fresh commands [N, 3] and their hold times [N] [s] from the random slab.

        ``prefix`` selects the slab's columns: ``'reset_'`` for an episode start, ``''`` for a
        resample within the episode.
        """
        c = self.cfg.commands
        cmd = self._u(f'{prefix}cmd', self.cmd_low, self.cmd_high)
        if c.single_axis_fraction > 0:
            draw = self._u(f'{prefix}single_axis')
            axis = (draw[:, 1] * 3).long().clamp(max=2)
            keep = torch.arange(3, device=cmd.device) == axis.unsqueeze(1)
            single = (draw[:, 0] < c.single_axis_fraction).unsqueeze(1)
            cmd = torch.where(single & ~keep, torch.zeros_like(cmd), cmd)
        small = torch.norm(cmd[:, :2], dim=1) < c.small_command_m_s
        cmd[:, :2] *= (~small).unsqueeze(1)
        standing = self._u(f'{prefix}standing') < c.standing_fraction
        cmd *= (~standing).unsqueeze(1)
        return cmd, self._u(f'{prefix}hold', *c.resample_interval_s)

    def _accumulate_episode_log(self, dones: torch.Tensor) -> None:
        """Add the finished episodes' sums, lengths, falls and count to the log accumulator."""
        d = dones.float()
        self._episode_log_acc += torch.cat([
            (self._episode_sums_all * d).sum(dim=1),
            torch.stack([(self.episode_length.float() * d).sum(),
                         (self.terminated.float() * d).sum(), d.sum()])])

    def _episode_log(self) -> Dict[str, Any]:
        """
        Return the means over the episodes finished since the last call; clear the sums.

        One host read per ``EPISODE_LOG_INTERVAL`` steps.  The keys are present only when an
        episode finished (like the per-reset logging it replaces).  Means are per finished
        episode: ``reward/<term>`` is the episode sum divided by ``episode_length_s``.
        """
        values = self._episode_log_acc.tolist()
        self._episode_log_acc.zero_()
        count = values[-1]
        if count <= 0:
            return {}
        log: Dict[str, Any] = {f'reward/{name}': values[i] / count / self.cfg.episode_length_s
                               for i, (name, _, _) in enumerate(self.reward_terms)}
        log['episode/length_s'] = values[-3] / count * self.dt_s
        log['episode/fall_rate'] = values[-2] / count
        if self._height_map is not None:
            log['terrain/level_mean'] = float(self.terrain_level.float().mean())
        return log

    def _resample_commands_due(self) -> None:
        """Resample the commands whose hold time ran out (masked: no host sync)."""
        due = (self.command_timer_s <= 0).unsqueeze(1)
        cmd, hold_s = self._sample_commands('')
        self.commands.copy_(torch.where(due, cmd, self.commands))
        self.command_timer_s.copy_(torch.where(due[:, 0], hold_s, self.command_timer_s))

    def on_iteration(self, iteration: int) -> float:
        """
        Set the disturbance scale for PPO iteration ``iteration`` (0-based); return it.

        ``min(1, iteration / ramp_iterations)`` with a ramp, else 1.  Called by the runner
        before each iteration's rollout (outside the step's CUDA graph).
        """
        ramp = self.cfg.randomization.ramp_iterations
        scale = 1.0 if ramp <= 0 else min(1.0, max(0.0, iteration / ramp))
        with self.backend.sim_stream():
            self.disturbance_scale.fill_(scale)
        return scale

    def _push_due(self) -> None:
        r = self.cfg.randomization
        if not r.pushes:
            return
        due = self.push_timer_s <= 0
        scaled = due * self.disturbance_scale
        push = self._u('push_vel', -r.push_lin_vel_m_s, r.push_lin_vel_m_s)
        self.backend.base_lin_vel_world[:, :2] += push * scaled.unsqueeze(1)
        if 'push_vel_z' in self._rand_cols:
            self.backend.base_lin_vel_world[:, 2] += scaled * self._u(
                'push_vel_z', -r.push_lin_vel_z_m_s, r.push_lin_vel_z_m_s)
        if 'push_ang_vel' in self._rand_cols:
            half = self._push_ang_half_rad_s
            kick = self._u('push_ang_vel', -half, half) * scaled.unsqueeze(1)
            self.backend.base_ang_vel_body.add_(kick)
        self.push_timer_s.copy_(torch.where(
            due, self._u('push_interval', *r.push_interval_s), self.push_timer_s))
