"""
Vectorized velocity-tracking locomotion task for any robot given as description + robot.yaml.

All state lives in torch tensors on one device, shared zero-copy with the simulator backend
(MuJoCo Warp by default); nothing goes through the CPU in the step loop. The observation and the
PD law come from :mod:`humanoid_rl_ros.core.policy_math`, the same definitions the ROS node runs,
and the observation order is written into the policy contract by :meth:`LocomotionEnv.contract`.

The step is written to be captured in one CUDA graph (``LocomotionEnv.step``): every buffer it
touches is persistent and updated in place, shapes are fixed (resets, domain randomization and
command resampling are masked full-width writes), there are no host syncs, and every random
number of a step comes from one slab refilled by a single ``uniform_`` outside the graph (torch
RNG inside a warp-captured graph would replay the same numbers).  On CUDA the first step runs
eagerly and captures the graph (physics included, through the backend's ``capture_graph``);
later steps replay it.  On the CPU, or when capture fails (a warning), the same code runs
eagerly.  On CUDA the torch code before and after the physics also goes through
``torch.compile`` (``EnvConfig.compile_step``), which fuses its ~600 small kernels into a few
dozen; the backend compiles its own torch code (PD law, reset writes) with the same setting.
The only host reads are the overflow check every ``OVERFLOW_CHECK_INTERVAL`` steps and the
finished-episode statistics every ``EPISODE_LOG_INTERVAL`` steps.

This module holds the step, the rewards and terminations; the episodes' part (random slab,
masked resets and domain randomization, commands, pushes, statistics) is in
:mod:`training.env.episodes`, the observations' part (the actor's terms and history, the
critic's privileged state and the ``privileged_params`` hook the randomization fills) in
:mod:`training.env.observations`.
"""

import math
from typing import Any, Callable, Dict, List, Optional, Tuple

from humanoid_rl_ros.core.contract import CommandRanges, PolicyContract
from humanoid_rl_ros.core.policy_math import (action_to_joint_targets, projected_gravity,
                                              world_to_body, yaw_from_quat)
from humanoid_rl_ros.robot.description import load_robot, RobotConfig
from humanoid_rl_ros.robot.mujoco_model import (body_ids, build_mujoco_model, default_qpos,
                                                joint_qpos_adr, keep_ground_contacts,
                                                set_collision_accuracy, set_solver_iterations,
                                                sole_sphere_geoms)
import mujoco
import numpy as np
import torch
from training.backends import make_backend
from training.backends.base import raise_if_overflow, SimBackend
from training.compiling import maybe_compile
from training.config import EnvConfig
from training.env.episodes import EpisodeMixin
from training.env.observations import ObservationMixin
from training.env.rewards import REWARD_TERMS
from training.symmetry import (action_mirror, observation_mirror, robot_mirror,
                               SignedPermutation, SymmetryError)
from training.vec_env import VecEnv

POSTURE_EXCLUDED = ('hip_yaw', 'hip_pitch', 'knee', 'ankle_pitch')
"""Joints whose names contain these are free of the posture term (they walk and turn)."""


OVERFLOW_CHECK_INTERVAL = 100
"""Policy steps between reads of the simulator's overflow counters (each read is a sync)."""

OUT_OF_BOUNDS_MARGIN_M = 1.0
"""
With the terrain on, an episode ends (as a time-out) when the base comes this close to the
heightfield's edge [m]: beyond it the robot would drop to the plane, and its feet and the
critic's height scan (up to 0.6 m ahead) would leave the terrain first.
"""

EPISODE_LOG_INTERVAL = 24
"""
Policy steps between reports of the finished episodes' statistics (each report is a sync).

24 is the runner's default ``num_steps_per_env``: one report per iteration.
"""


class LocomotionEnv(EpisodeMixin, ObservationMixin, VecEnv):
    """Velocity tracking on flat ground or terrain for ``cfg.num_envs`` robots at once."""

    def __init__(self, cfg: EnvConfig, backend_name: str = 'mjwarp',
                 device: str = 'cuda:0') -> None:
        """Build the robots, the simulator backend and every buffer on ``device``."""
        self.cfg = cfg
        if not 0.0 <= cfg.overflow_tolerance < 1.0:
            raise ValueError(f'overflow_tolerance must be in [0, 1), got {cfg.overflow_tolerance}')
        if not cfg.rewards.tracking_window_s >= 0.0:
            raise ValueError(f'rewards.tracking_window_s must be >= 0 s, got '
                             f'{cfg.rewards.tracking_window_s}')
        if not cfg.rewards.feet_phase_sigma_m > 0.0:
            raise ValueError(f'rewards.feet_phase_sigma_m must be > 0 m, got '
                             f'{cfg.rewards.feet_phase_sigma_m}')
        if not 0.0 <= cfg.commands.single_axis_fraction <= 1.0:
            raise ValueError(f'commands.single_axis_fraction must be in [0, 1], got '
                             f'{cfg.commands.single_axis_fraction}')
        swing_s = 0.5 * cfg.observations.gait_period_s
        if cfg.rewards.feet_air_time > 0 and cfg.rewards.air_time_target_s >= swing_s:
            raise ValueError(
                f'rewards.air_time_target_s ({cfg.rewards.air_time_target_s} s) must be below '
                f"the gait clock's swing time ({swing_s} s, half of "
                f'observations.gait_period_s): otherwise feet_air_time pays every step that '
                f'follows the clock at most zero and standing beats walking at small commands')
        self.robot: RobotConfig = load_robot(cfg.robot)
        self.device = torch.device(device)
        self.num_envs = cfg.num_envs
        self.num_actions = len(self.robot.joints)
        self.dt_s = cfg.physics_dt_s * cfg.decimation
        self.max_episode_length = int(math.ceil(cfg.episode_length_s / self.dt_s))
        self.mj_model = build_mujoco_model(self.robot, cfg.physics_dt_s,
                                           terrain=self._model_terrain(),
                                           sole_spheres=cfg.foot_collision == 'sole_spheres')
        """The robot's MuJoCo model: the env reads joint ranges and foot heights from it, and
        the mjwarp backend simulates it (built once, shared) with the config's solver limits."""
        set_solver_iterations(self.mj_model, cfg.solver_iterations, cfg.solver_ls_iterations)
        set_collision_accuracy(self.mj_model, cfg.ccd_iterations, cfg.ccd_tolerance)
        if cfg.ground_contact == 'feet':
            keep_ground_contacts(self.mj_model, self.robot.foot_links)
        # sole spheres touch the ground at up to six points per foot box where the box did at
        # four: room for one more contact (and its pyramid's four constraint rows) per sphere
        # (none without them)
        spheres = sum(len(sole_sphere_geoms(self.mj_model, foot))
                      for foot in self.robot.foot_links)
        sim_options = ({'nconmax': cfg.nconmax_per_world + spheres,
                        'njmax': cfg.njmax_per_world + 4 * spheres,
                        'compile_setting': cfg.compile_step, 'mj_model': self.mj_model}
                       if backend_name == 'mjwarp' else {})
        self.backend: SimBackend = make_backend(backend_name, self.robot, cfg.num_envs, device,
                                                physics_dt_s=cfg.physics_dt_s, **sim_options)
        self.backend_name = backend_name
        self._init_constants()
        self._init_buffers()
        self._init_observations()
        self._init_bounds()
        self.reward_terms = [(name, fn, getattr(cfg.rewards, name))
                             for name, fn in REWARD_TERMS.items()
                             if getattr(cfg.rewards, name) != 0.0]
        self._episode_sums_all = torch.zeros(len(self.reward_terms), self.num_envs,
                                             device=self.device)
        self.episode_sums = {name: self._episode_sums_all[i]
                             for i, (name, _, _) in enumerate(self.reward_terms)}
        """Per-term reward sums of the running episodes (rows of one [T, N] tensor)."""
        self._episode_log_acc = torch.zeros(len(self.reward_terms) + 3, device=self.device)
        self._dr_unsupported: List[str] = []
        self.steps_taken = 0
        self.use_cuda_graph = self.device.type == 'cuda'
        """Capture the step into a CUDA graph (set False before the first step to opt out)."""
        self._graphs: Dict[str, Optional[Any]] = {}
        """Captured step graphs: 'step' (plain) and 'fused' (with the caller's hooks)."""
        self._pre_physics_fn = maybe_compile(self._pre_physics, cfg.compile_step, self.device)
        self._post_physics_fn = maybe_compile(self._post_physics, cfg.compile_step,
                                              self.device)

    # ----------------------------------------------------------------------------- setup
    def _init_constants(self) -> None:
        robot, dev = self.robot, self.device

        def tensor(values: Any) -> torch.Tensor:
            return torch.as_tensor(values, dtype=torch.float32, device=dev)

        self.default_joint_pos = tensor(robot.default_pos_rad)
        self.kp = tensor(robot.kp_nm_per_rad)
        self.kd = tensor(robot.kd_nms_per_rad)
        self.effort_limit = tensor(robot.effort_limit_nm)
        self.action_scale = self.cfg.action_scale_factor * self.effort_limit / self.kp
        model = self.mj_model
        jnt_ids = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
                            for name in robot.joint_names])
        low, high = model.jnt_range[jnt_ids, 0], model.jnt_range[jnt_ids, 1]
        mid, half = (low + high) / 2, (high - low) / 2 * self.cfg.rewards.soft_joint_limit
        self.soft_pos_limits = tensor(np.stack([mid - half, mid + half]))
        data = mujoco.MjData(model)
        data.qpos[:] = default_qpos(model, robot)
        mujoco.mj_kinematics(model, data)
        self.foot_stand_height_m = tensor(data.xpos[body_ids(model, robot.foot_links), 2])
        assert len(joint_qpos_adr(model, robot)) == self.num_actions
        self.num_feet = len(robot.foot_links)
        self.posture_mask = tensor([0.0 if any(k in name for k in POSTURE_EXCLUDED) else 1.0
                                    for name in robot.joint_names])
        self.foot_phase_offset = tensor([0.5 * (i % 2) for i in range(self.num_feet)])
        cmd = self.cfg.commands
        self.cmd_low = tensor([cmd.lin_vel_x_m_s[0], cmd.lin_vel_y_m_s[0], cmd.ang_vel_z_rad_s[0]])
        self.cmd_high = tensor([cmd.lin_vel_x_m_s[1], cmd.lin_vel_y_m_s[1],
                                cmd.ang_vel_z_rad_s[1]])

    def _init_buffers(self) -> None:
        """Allocate every persistent buffer (the captured step writes them in place)."""
        n, a, dev = self.num_envs, self.num_actions, self.device
        f = len(self.robot.foot_links)
        zeros = lambda *shape: torch.zeros(shape, device=dev)  # noqa: E731
        self.actions = zeros(n, a)
        self.last_actions = zeros(n, a)
        self.applied_actions = zeros(n, a)
        self.commands = zeros(n, 3)
        self.episode_length = torch.zeros(n, dtype=torch.long, device=dev)
        self.command_timer_s = zeros(n)
        self.push_timer_s = zeros(n)
        self.gait_phase = zeros(n)
        self.last_joint_vel = zeros(n, a)
        self.feet_air_time = zeros(n, f)
        self.last_feet_contact = torch.zeros(n, f, dtype=torch.bool, device=dev)
        self.last_feet_pos = zeros(n, f, 3)
        self.terminated = torch.zeros(n, dtype=torch.bool, device=dev)
        self.gain_scale = torch.ones(n, a, device=dev)
        self.strength_scale = torch.ones(n, a, device=dev)
        # state derived from the simulator, refreshed in place after physics and resets
        b = self.backend
        self.base_quat = b.base_quat
        self.base_height = b.base_pos[:, 2]
        self.base_ang_vel_b = b.base_ang_vel_body
        self.joint_pos = b.joint_pos
        self.joint_vel = b.joint_vel
        self.effort = b.last_effort
        self.base_lin_vel_b = zeros(n, 3)
        self.projected_gravity = zeros(n, 3)
        self.feet_height = zeros(n, f)
        self.feet_contact = zeros(n, f)
        # the base velocity (vx, vy, yaw rate; body frame) averaged over the tracking window:
        # a ring of the last samples, their running sum (each step adds the newest and takes
        # out the one it replaces: no sum over the whole ring per step), the count of those
        # since the episode start, their mean
        window = max(1, round(self.cfg.rewards.tracking_window_s / self.dt_s))
        self._vel_window = zeros(n, window, 3)
        self._vel_window_sum = zeros(n, 3)
        self._vel_window_idx = torch.zeros(1, dtype=torch.long, device=dev)
        self._vel_window_count = zeros(n)
        self.tracked_vel_b = zeros(n, 3)
        # per-policy-step quantities of the reward terms
        self.joint_acc = zeros(n, a)
        self.feet_vel = zeros(n, f, 3)
        self.feet_first_contact = zeros(n, f)
        self.feet_air_time_at_touchdown = zeros(n, f)
        self.moving_command = zeros(n)
        """1 where the command is a walking command (training.env.rewards: the gates)."""
        self.gait_active = zeros(n)
        """1 where walking, or pushed at a zero command: the gait clock's terms apply."""
        self.standing = zeros(n)
        """1 where neither (1 - gait_active): the stand terms apply."""
        self.desired_feet_height = zeros(n, f)
        self.feet_lateral_distance = zeros(n)
        # step inputs/outputs with fixed addresses (read/written by the captured graph)
        self._actions_in = zeros(n, a)
        self._rewards_buf = zeros(n)
        self._dones_buf = torch.zeros(n, dtype=torch.bool, device=dev)
        self._time_outs_buf = torch.zeros(n, dtype=torch.bool, device=dev)
        self._overflow_handled = torch.zeros(n, dtype=torch.bool, device=dev)
        """Worlds whose overflow since the last check has already ended their episode."""
        self._cut_now = torch.zeros(n, dtype=torch.bool, device=dev)
        """Worlds whose episode this step ends for a buffer overflow (read by the reset)."""
        self.overflow_cut_worlds = 0
        """Worlds whose episode was cut for a tolerated buffer overflow, in total."""
        self._step_log_buf = zeros(2)
        self._all_envs = torch.ones(n, dtype=torch.bool, device=dev)
        self._obs_clip = torch.tensor(float(self.cfg.observations.clip), device=dev)
        self._action_clip = torch.tensor(float(self.cfg.action_clip), device=dev)
        self._init_random_layout()

    def _init_bounds(self) -> None:
        """Set the base's allowed x and y ranges on the terrain (None on flat ground)."""
        self._bounds_xy: Optional[torch.Tensor] = None
        """(x min, x max, y min, y max) the base stays within [m] (terrain only)."""
        grid = getattr(self, 'terrain_grid', None)
        if grid is None:
            return
        x0, x1, y0, y1 = grid.extent_m
        m = OUT_OF_BOUNDS_MARGIN_M
        self._bounds_xy = torch.tensor([x0 + m, x1 - m, y0 + m, y1 - m], dtype=torch.float32,
                                       device=self.device)

    def contract(self, provenance: Optional[Dict[str, Any]] = None,
                 onnx_file: str = 'policy.onnx') -> PolicyContract:
        """Return the policy contract describing this task's observation, action and timing."""
        cmd = self.cfg.commands
        return PolicyContract(
            robot=self.robot.name, joint_names=tuple(self.robot.joint_names),
            default_pos_rad=tuple(self.default_joint_pos.tolist()),
            action_scale_rad=tuple(self.action_scale.tolist()),
            kp_nm_per_rad=tuple(self.kp.tolist()), kd_nms_per_rad=tuple(self.kd.tolist()),
            effort_limit_nm=tuple(self.effort_limit.tolist()),
            physics_dt_s=self.cfg.physics_dt_s, decimation=self.cfg.decimation,
            obs_terms=self.obs_terms, history_length=self.history_length,
            commands=CommandRanges(tuple(cmd.lin_vel_x_m_s), tuple(cmd.lin_vel_y_m_s),
                                   tuple(cmd.ang_vel_z_rad_s)),
            obs_clip=self.cfg.observations.clip, action_clip=self.cfg.action_clip,
            gait_period_s=(self.cfg.observations.gait_period_s
                           if self.cfg.observations.use_gait_phase else None),
            onnx_file=onnx_file, provenance=dict(provenance or {}))

    def mirror_maps(self) -> Tuple[SignedPermutation, SignedPermutation]:
        """
        Return ``(observation mirror, action mirror)`` of the actor (:mod:`training.symmetry`).

        The robot's joint and foot mirror comes from its MuJoCo model; the sideways and yaw
        command ranges must be symmetric, so that a mirrored command is one the task samples.
        Raises :class:`training.symmetry.SymmetryError` naming what is not symmetric.
        """
        cmd = self.cfg.commands
        for name in ('lin_vel_y_m_s', 'ang_vel_z_rad_s'):
            low, high = getattr(cmd, name)
            if not math.isclose(-low, high, abs_tol=1e-9):
                raise SymmetryError(f'symmetry: commands.{name} {(low, high)} is not symmetric '
                                    f'about zero; mirrored samples would command '
                                    f'{(-high, -low)}')
        mirror = robot_mirror(self.mj_model, self.robot)
        # the reward's joint and foot selections must be mirror-invariant too
        mask = self.posture_mask.tolist()
        if any(mask[i] != mask[p] for i, p in enumerate(mirror.joints.perm)):
            raise SymmetryError(f'symmetry: the posture reward selects mirrored joints '
                                f'differently ({dict(zip(self.robot.joint_names, mask))})')
        if self.num_feet >= 2 and sorted(mirror.feet[:2]) != [0, 1]:
            raise SymmetryError(f'symmetry: the first two foot_links '
                                f'{list(self.robot.foot_links[:2])}, the pair of the '
                                f'feet_distance reward, do not mirror each other')
        obs = observation_mirror(self.obs_terms, mirror, self.foot_phase_offset.tolist(),
                                 self.history_length)
        return obs, action_mirror(mirror)

    # ----------------------------------------------------------------------------- episodes
    @torch.no_grad()
    def reset(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Reset every environment; return ``(obs, critic_obs)``."""
        with self.backend.sim_stream():
            self._draw_randoms()
            self._draw_observation_randoms()
            self._reset_masked(self._all_envs)
            self._refresh_state()
            self._observations()
        return self._obs_buf.clone(), self._critic_obs_buf.clone()

    # ----------------------------------------------------------------------------- stepping
    @torch.no_grad()
    def step(self, actions: torch.Tensor
             ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Dict[str, Any]]:
        """
        Apply ``actions`` [N, A], run ``decimation`` physics steps, return the transition.

        On CUDA the whole step (targets, physics, rewards, masked resets, observations) is
        one CUDA graph, captured on the first call and replayed afterwards; randoms come from
        a slab refilled before each replay.  Elsewhere, or if the capture fails (with a
        warning), the same code runs eagerly.  Returned tensors are fresh copies.
        """
        actions = torch.as_tensor(actions, device=self.device)
        if actions.shape != self._actions_in.shape:
            raise ValueError(f'actions must have shape {tuple(self._actions_in.shape)}, '
                             f'got {tuple(actions.shape)}')
        with self.backend.sim_stream():
            self._actions_in.copy_(actions)
        log = self._advance('step', self._step_body)
        return (self._obs_buf.clone(), self._critic_obs_buf.clone(), self._rewards_buf.clone(),
                self._dones_buf.clone(), {'time_outs': self._time_outs_buf.clone(), 'log': log})

    @torch.no_grad()
    def step_fused(self, before: Callable[[], None], after: Callable[[], None]
                   ) -> Dict[str, Any]:
        """
        Run one step with the caller's ``before()`` and ``after()`` in the same CUDA graph.

        ``before`` must write the actions into :attr:`actions_in`; ``after`` may read the
        step's results from :attr:`outputs`.  Both must be capture-safe like the step itself
        (no host reads, persistent buffers, no torch RNG: draw randoms before the call).  The
        runner uses this to run its policy and rollout storage inside the env's graph.
        Returns the step's log dict (what ``step`` returns under ``'log'``).
        """
        def run(captured: bool) -> None:
            before()
            self._step_body(captured)
            after()
        return self._advance('fused', run)

    @property
    def actions_in(self) -> torch.Tensor:
        """Return the persistent action input [N, A] that a step reads (for ``step_fused``)."""
        return self._actions_in

    @property
    def outputs(self) -> Dict[str, torch.Tensor]:
        """Return the persistent step outputs: obs, critic_obs, rewards, dones, time_outs."""
        return {'obs': self._obs_buf, 'critic_obs': self._critic_obs_buf,
                'rewards': self._rewards_buf, 'dones': self._dones_buf,
                'time_outs': self._time_outs_buf}

    def _advance(self, key: str, body: Callable[[bool], None]) -> Dict[str, Any]:
        """
        Draw the randoms, run ``body(captured)`` or replay its graph ``key``; return the log.

        ``body(True)`` is what a graph captures (physics run through ``substeps``);
        ``body(False)`` is the eager step.
        """
        with self.backend.sim_stream():
            self._draw_randoms()
            self._draw_observation_randoms()
            if self._graphs.get(key) is not None:
                self._graphs[key]()
            elif self.use_cuda_graph and key not in self._graphs:
                with self.backend.graph_memory():  # warm-up: this call's real step
                    body(True)
                self._graphs[key] = self.backend.capture_graph(lambda: body(True))
                if self._graphs[key] is not None:
                    print(f'[env] step captured into one CUDA graph ({self.num_envs} envs, '
                          f'{self.cfg.decimation} physics steps each)', flush=True)
            else:
                body(False)
        self.steps_taken += 1
        if self.steps_taken % OVERFLOW_CHECK_INTERVAL == 0:
            self.check_overflow()
        step_log = self._step_log_buf.clone()
        log: Dict[str, Any] = {'track/lin_vel_error_m_s': step_log[0],
                               'track/yaw_rate_error_rad_s': step_log[1]}
        if self.steps_taken % EPISODE_LOG_INTERVAL == 0:
            log.update(self._episode_log())
            if self.overflow_cut_worlds:
                log['sim/overflow_cut_worlds'] = self.overflow_cut_worlds
        return log

    @property
    def graph_captured(self) -> bool:
        """Return True when steps replay a captured CUDA graph."""
        return any(graph is not None for graph in self._graphs.values())

    def _step_body(self, captured: bool) -> None:
        """
        Run one policy step on the persistent buffers (what the CUDA graph captures).

        Reads ``_actions_in`` and the random slab, writes the state and the ``*_buf``
        outputs in place.  No host syncs, fixed shapes.  ``captured`` runs the backend's
        physics uncaptured (``substeps``) so that it becomes part of this graph.
        """
        self._pre_physics_fn()
        if captured:
            self.backend.substeps(self.cfg.decimation)
        else:
            self.backend.step(self.cfg.decimation)
        self._post_physics_fn()

    def _pre_physics(self) -> None:
        """Clamp the actions and set the PD targets (torch only; compiled on CUDA)."""
        cfg = self.cfg
        self.last_actions.copy_(self.actions)
        self.actions.copy_(self._actions_in.clamp(-cfg.action_clip, cfg.action_clip))
        applied = self.applied_actions if cfg.randomization.action_latency else self.actions
        self.backend.q_target.copy_(action_to_joint_targets(
            applied, self.default_joint_pos, self.action_scale, self._action_clip))
        self.applied_actions.copy_(self.actions)

    def _post_physics(self) -> None:
        """
        Bookkeeping, rewards, terminations, resets and observations after the physics.

        Torch only, compiled on CUDA; the backend's reset and randomization writes run
        eagerly inside it (they are excluded from compilation).
        """
        cfg = self.cfg
        self.episode_length += 1
        self.gait_phase.copy_(torch.remainder(
            self.gait_phase + self.dt_s / cfg.observations.gait_period_s, 1.0))
        self._refresh_state()
        self._update_step_state()
        self.terminated.copy_(self._fallen())
        # a fall on the last step is a termination, not a time-out (no bootstrap); leaving the
        # terrain is a time-out: the episode is cut, not failed
        self._cut_overflowed()
        time_outs = ((self.episode_length >= self.max_episode_length) | self._out_of_bounds()
                     | self._cut_now) & ~self.terminated
        self._time_outs_buf.copy_(time_outs)
        self._rewards()
        dones = self.terminated | time_outs
        self._dones_buf.copy_(dones)

        self.command_timer_s -= self.dt_s
        self.push_timer_s -= self.dt_s
        self._resample_commands_due()
        self._push_due()
        self._accumulate_episode_log(dones)
        self._reset_masked(dones)
        self._refresh_state()
        self._observations()

    def _refresh_state(self) -> None:
        """Recompute the state derived from the simulator (in place)."""
        b = self.backend
        self.base_lin_vel_b.copy_(world_to_body(b.base_quat, b.base_lin_vel_world))
        self.projected_gravity.copy_(projected_gravity(b.base_quat))
        self.feet_height.copy_(b.foot_pos[:, :, 2] - self.foot_stand_height_m)
        self.feet_contact.copy_((b.foot_contact_force > self.cfg.rewards.contact_force_n
                                 ).float())
        self._refresh_terrain_heights()

    def _update_tracked_velocity(self) -> None:
        """Add this step's (vx, vy, yaw rate) to the window; update ``tracked_vel_b``."""
        sample = torch.cat([self.base_lin_vel_b[:, :2], self.base_ang_vel_b[:, 2:3]], dim=1)
        if self._vel_window.shape[1] == 1:  # no window (the default): the velocity itself
            self.tracked_vel_b.copy_(sample)
            return
        replaced = self._vel_window.index_select(1, self._vel_window_idx).squeeze(1)
        self._vel_window_sum.add_(sample - replaced)
        self._vel_window.index_copy_(1, self._vel_window_idx, sample.unsqueeze(1))
        self._vel_window_idx.add_(1).remainder_(self._vel_window.shape[1])
        self._vel_window_count.add_(1.0).clamp_(max=float(self._vel_window.shape[1]))
        self.tracked_vel_b.copy_(self._vel_window_sum / self._vel_window_count.unsqueeze(1))

    def _update_step_state(self) -> None:
        """Update finite differences, air times and the gait targets: once per policy step."""
        b = self.backend
        self.joint_acc.copy_((b.joint_vel - self.last_joint_vel) / self.dt_s)
        self.last_joint_vel.copy_(b.joint_vel)
        feet_pos = b.foot_pos
        self.feet_vel.copy_((feet_pos - self.last_feet_pos) / self.dt_s)
        self.last_feet_pos.copy_(feet_pos)
        self._update_tracked_velocity()
        contact = self.feet_contact > 0.5
        contact_filt = contact | self.last_feet_contact
        self.last_feet_contact.copy_(contact)
        self.feet_first_contact.copy_(((self.feet_air_time > 0) & contact_filt).float())
        self.feet_air_time += self.dt_s
        self.feet_air_time_at_touchdown.copy_(self.feet_air_time)
        self.feet_air_time *= ~contact_filt
        rew = self.cfg.rewards
        moving = torch.norm(self.commands, dim=1) > rew.moving_command_threshold
        disturbed = torch.norm(self.base_lin_vel_b[:, :2], dim=1) > rew.disturbed_speed_m_s
        self.moving_command.copy_(moving.float())
        self.gait_active.copy_((moving | disturbed).float())
        self.standing.copy_(1.0 - self.gait_active)
        phase = torch.remainder(self.gait_phase.unsqueeze(1) + self.foot_phase_offset, 1.0)
        swing = (phase >= 0.5).float()
        profile = torch.sin(math.pi * (phase - 0.5).clamp(min=0.0) / 0.5)
        self.desired_feet_height.copy_(rew.swing_height_m * profile * swing
                                       * self.gait_active.unsqueeze(1))
        yaw = yaw_from_quat(self.base_quat)
        rel = feet_pos[:, 1, :2] - feet_pos[:, 0, :2] if self.num_feet >= 2 else \
            torch.zeros_like(feet_pos[:, 0, :2])
        self.feet_lateral_distance.copy_(torch.abs(-torch.sin(yaw) * rel[:, 0]
                                                   + torch.cos(yaw) * rel[:, 1]))

    def _cut_overflowed(self) -> None:
        """
        Mark the worlds whose buffers overflowed in this step for a cut (``_cut_now``).

        With ``overflow_tolerance`` > 0 and a backend that tells which worlds overflowed: a
        world's episode ends (as a time-out) at the step its overflow bit appears; the bit
        stays until the host check (:meth:`check_overflow`) counts and clears it, and
        ``_overflow_handled`` keeps it from ending the next episode too.
        """
        over = self.backend.overflowed_worlds() if self.cfg.overflow_tolerance > 0 else None
        if over is None:
            return
        self._cut_now.copy_(over & ~self._overflow_handled)
        self._overflow_handled.logical_or_(over)

    def _fallen(self) -> torch.Tensor:
        """Return the envs that fell (too low, too tilted) or whose physics went non-finite."""
        too_low = self.base_height < self.cfg.fall_height_fraction * \
            self.robot.nominal_base_height_m
        too_tilted = self.projected_gravity[:, 2] > -math.cos(self.cfg.fall_tilt_rad)
        b = self.backend
        non_finite = ~(torch.isfinite(b.base_pos).all(dim=1)
                       & torch.isfinite(b.base_quat).all(dim=1)
                       & torch.isfinite(b.joint_pos).all(dim=1)
                       & torch.isfinite(b.joint_vel).all(dim=1))
        return too_low | too_tilted | non_finite

    def _out_of_bounds(self) -> torch.Tensor:
        """Return the envs whose base left the terrain's bounds (all False on flat ground)."""
        if self._bounds_xy is None:
            return torch.zeros_like(self.terminated)
        xy, lim = self.backend.base_pos[:, :2], self._bounds_xy
        return ((xy[:, 0] < lim[0]) | (xy[:, 0] > lim[1]) | (xy[:, 1] < lim[2])
                | (xy[:, 1] > lim[3]))

    def _rewards(self) -> None:
        """Write the step reward into ``_rewards_buf``; add each term to its episode sum."""
        total = torch.zeros(self.num_envs, device=self.device)
        for name, fn, scale in self.reward_terms:
            # a world whose physics went non-finite terminates this step; keep its reward finite
            value = torch.nan_to_num(fn(self) * (scale * self.dt_s), nan=0.0, posinf=0.0,
                                     neginf=0.0)
            self.episode_sums[name] += value
            total += value
        self._rewards_buf.copy_(total)
        lin_err = torch.norm(self.commands[:, :2] - self.base_lin_vel_b[:, :2], dim=1)
        yaw_err = torch.abs(self.commands[:, 2] - self.base_ang_vel_b[:, 2])
        self._step_log_buf.copy_(torch.stack([lin_err.mean(), yaw_err.mean()]))

    def check_overflow(self) -> Dict[str, Any]:
        """
        Return the backend's overflow report; raise SimOverflowError if buffers overflowed.

        Within ``EnvConfig.overflow_tolerance`` it counts the overflowed worlds instead, whose
        episodes ended at the step of their overflow (:meth:`_cut_overflowed`), and returns the
        report with their number under ``'cut_worlds'``.
        """
        tolerance = self.cfg.overflow_tolerance
        worlds = self.backend.overflowed_worlds() if tolerance > 0 else None
        report = self.backend.check_overflow()
        if worlds is not None:
            with self.backend.sim_stream():
                self._overflow_handled.zero_()  # the bits were cleared with the check
        if report.get('overflow') and worlds is not None and not report.get('invalid_inputs'):
            count = int(worlds.sum())
            if 0 < count <= tolerance * self.num_envs:
                self.overflow_cut_worlds += count
                print(f'[env] {count} of {self.num_envs} worlds overflowed their contact or '
                      f'constraint buffers (within the tolerance of {tolerance:g}): their '
                      f'episodes ended there ({self.overflow_cut_worlds} so far); {report}',
                      flush=True)
                return {**report, 'cut_worlds': count}
        raise_if_overflow(report)
        return report

    def close(self) -> None:
        """Release the simulator."""
        close = getattr(self.backend, 'close', None)
        if close is not None:
            close()
