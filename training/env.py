"""
Vectorized velocity-tracking locomotion task for any robot given as description + robot.yaml.

All state lives in torch tensors on one device, shared zero-copy with the simulator backend
(MuJoCo Warp by default); nothing goes through the CPU in the step loop. The observation and the
PD law come from :mod:`humanoid_rl_ros.policy_math`, the same definitions the ROS node runs, and
the observation order is written into the policy contract by :meth:`LocomotionEnv.contract`.
"""

import math
from typing import Any, Dict, List, Optional, Tuple

from humanoid_rl_ros.contract import CommandRanges, ObsTermSpec, PolicyContract
from humanoid_rl_ros.policy_math import (
    action_to_joint_targets, build_observation, observation_inputs, observation_scale,
    projected_gravity, world_to_body, yaw_from_quat)
from humanoid_rl_ros.robot import (
    body_ids, build_mujoco_model, default_qpos, joint_qpos_adr, load_robot, RobotConfig)
import mujoco
import numpy as np
import torch
from training.backends import make_backend
from training.backends.base import raise_if_overflow, SimBackend
from training.config import EnvConfig
from training.rewards import REWARD_TERMS
from training.vec_env import VecEnv

POSTURE_EXCLUDED = ('hip_yaw', 'hip_pitch', 'knee', 'ankle_pitch')
"""Joints whose names contain these are free of the posture term (they walk and turn)."""


OVERFLOW_CHECK_INTERVAL = 100
"""Policy steps between reads of the simulator's overflow counters (each read is a sync)."""


def _uniform(low: float, high: float, shape: Tuple[int, ...], device: torch.device
             ) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, device=device)


class LocomotionEnv(VecEnv):
    """Velocity tracking on flat ground for ``cfg.num_envs`` robots at once."""

    def __init__(self, cfg: EnvConfig, backend_name: str = 'mjwarp', device: str = 'cuda:0',
                 backend: Optional[SimBackend] = None) -> None:
        """Build the robots, the simulator backend and every buffer on ``device``."""
        self.cfg = cfg
        self.robot: RobotConfig = load_robot(cfg.robot)
        self.device = torch.device(device)
        self.num_envs = cfg.num_envs
        self.num_actions = len(self.robot.joints)
        self.dt_s = cfg.physics_dt_s * cfg.decimation
        self.max_episode_length = int(math.ceil(cfg.episode_length_s / self.dt_s))
        sim_options = ({'nconmax': cfg.nconmax_per_world, 'njmax': cfg.njmax_per_world}
                       if backend_name == 'mjwarp' else {})
        self.backend = backend or make_backend(backend_name, self.robot, cfg.num_envs, device,
                                               physics_dt_s=cfg.physics_dt_s, **sim_options)
        self.backend_name = backend_name
        self._init_constants()
        self._init_buffers()
        self.obs_terms = self._obs_terms(actor=True)
        self.critic_terms = self._obs_terms(actor=False)
        self.obs_scale = torch.as_tensor(observation_scale(self.obs_terms), dtype=torch.float32,
                                         device=self.device)
        self.critic_scale = torch.as_tensor(observation_scale(self.critic_terms),
                                            dtype=torch.float32, device=self.device)
        self.num_obs = int(self.obs_scale.numel())
        self.num_critic_obs = int(self.critic_scale.numel()) + 2 * self.num_feet + 1
        self.reward_terms = [(name, fn, getattr(cfg.rewards, name))
                             for name, fn in REWARD_TERMS.items()
                             if getattr(cfg.rewards, name) != 0.0]
        self.episode_sums = {name: torch.zeros(self.num_envs, device=self.device)
                             for name, _, _ in self.reward_terms}
        self._dr_unsupported: List[str] = []
        self.steps_taken = 0

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
        model = build_mujoco_model(robot, self.cfg.physics_dt_s)
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

    def _obs_terms(self, actor: bool) -> Tuple[ObsTermSpec, ...]:
        o, a = self.cfg.observations, self.num_actions
        terms = []
        if o.use_base_lin_vel or not actor:
            terms.append(ObsTermSpec('base_lin_vel', 3, (o.lin_vel_scale,) * 3))
        terms += [
            ObsTermSpec('base_ang_vel', 3, (o.ang_vel_scale,) * 3),
            ObsTermSpec('projected_gravity', 3, (1.0,) * 3),
            ObsTermSpec('velocity_command', 3,
                        (o.lin_vel_scale, o.lin_vel_scale, o.ang_vel_scale)),
            ObsTermSpec('joint_pos', a, (1.0,) * a),
            ObsTermSpec('joint_vel', a, (o.joint_vel_scale,) * a),
            ObsTermSpec('last_action', a, (1.0,) * a),
        ]
        if o.use_gait_phase:
            terms.append(ObsTermSpec('gait_phase', 2, (1.0, 1.0)))
        return tuple(terms)

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
            obs_terms=self.obs_terms,
            commands=CommandRanges(tuple(cmd.lin_vel_x_m_s), tuple(cmd.lin_vel_y_m_s),
                                   tuple(cmd.ang_vel_z_rad_s)),
            obs_clip=self.cfg.observations.clip, action_clip=self.cfg.action_clip,
            gait_period_s=(self.cfg.observations.gait_period_s
                           if self.cfg.observations.use_gait_phase else None),
            onnx_file=onnx_file, provenance=dict(provenance or {}))

    # ----------------------------------------------------------------------------- episodes
    def reset(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Reset every environment; return ``(obs, critic_obs)``."""
        self._reset_envs(torch.arange(self.num_envs, device=self.device))
        self._refresh_state()
        return self._observations()

    def _reset_envs(self, env_ids: torch.Tensor) -> None:
        k, a, dev, cfg = len(env_ids), self.num_actions, self.device, self.cfg
        yaw = _uniform(-math.pi, math.pi, (k,), dev)
        quat = torch.stack([torch.cos(yaw / 2), torch.zeros_like(yaw), torch.zeros_like(yaw),
                            torch.sin(yaw / 2)], dim=1)
        pos = torch.zeros(k, 3, device=dev)
        pos[:, 2] = self.robot.nominal_base_height_m + _uniform(0.0, 0.02, (k,), dev)
        lin_vel = torch.zeros(k, 3, device=dev)
        lin_vel[:, :2] = _uniform(-cfg.init_base_vel_m_s, cfg.init_base_vel_m_s, (k, 2), dev)
        joint_pos = self.default_joint_pos + _uniform(
            -cfg.init_joint_noise_rad, cfg.init_joint_noise_rad, (k, a), dev)
        self.backend.reset_envs(env_ids, base_pos=pos, base_quat=quat,
                                base_lin_vel_world=lin_vel,
                                base_ang_vel_body=torch.zeros(k, 3, device=dev),
                                joint_pos=joint_pos, joint_vel=torch.zeros(k, a, device=dev))
        self._randomize(env_ids)
        self.actions[env_ids] = 0.0
        self.last_actions[env_ids] = 0.0
        self.applied_actions[env_ids] = 0.0
        self.last_joint_vel[env_ids] = 0.0
        self.last_feet_pos[env_ids] = self.backend.foot_pos[env_ids]
        self.feet_air_time[env_ids] = 0.0
        self.last_feet_contact[env_ids] = True
        self.episode_length[env_ids] = 0
        self.gait_phase[env_ids] = torch.rand(k, device=dev)
        self._resample_commands(env_ids)
        r = cfg.randomization
        self.push_timer_s[env_ids] = _uniform(*r.push_interval_s, (k,), dev)

    def _randomize(self, env_ids: torch.Tensor) -> None:
        r, k, a, dev = self.cfg.randomization, len(env_ids), self.num_actions, self.device
        self.gain_scale[env_ids] = (_uniform(*r.pd_gain_scale_range, (k, a), dev)
                                    if r.pd_gain_scale else 1.0)
        self.strength_scale[env_ids] = (_uniform(*r.motor_strength_range, (k, a), dev)
                                        if r.motor_strength else 1.0)
        self.backend.kp[env_ids] = self.kp * self.gain_scale[env_ids]
        self.backend.kd[env_ids] = self.kd * self.gain_scale[env_ids]
        self.backend.effort_limit[env_ids] = self.effort_limit * self.strength_scale[env_ids]
        if r.friction and 'friction' not in self._dr_unsupported:
            self._try_dr('friction', self.backend.set_friction, env_ids,
                         _uniform(*r.friction_range, (k,), dev))
        if r.added_base_mass and 'added_base_mass' not in self._dr_unsupported:
            self._try_dr('added_base_mass', self.backend.set_base_mass_offset, env_ids,
                         _uniform(*r.added_base_mass_kg, (k,), dev))

    def _try_dr(self, name: str, setter: Any, env_ids: torch.Tensor, values: torch.Tensor
                ) -> None:
        try:
            setter(env_ids, values)
        except NotImplementedError as exc:
            self._dr_unsupported.append(name)
            print(f'[env] domain randomization {name!r} is off: {exc}')

    def _sample_commands(self, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``k`` fresh commands [k, 3] and their hold times [k] [s]."""
        c, dev = self.cfg.commands, self.device
        cmd = self.cmd_low + (self.cmd_high - self.cmd_low) * torch.rand(k, 3, device=dev)
        small = torch.norm(cmd[:, :2], dim=1) < c.small_command_m_s
        cmd[:, :2] *= (~small).unsqueeze(1)
        standing = torch.rand(k, device=dev) < c.standing_fraction
        cmd *= (~standing).unsqueeze(1)
        return cmd, _uniform(*c.resample_interval_s, (k,), dev)

    def _resample_commands(self, env_ids: torch.Tensor) -> None:
        cmd, hold_s = self._sample_commands(len(env_ids))
        self.commands[env_ids] = cmd
        self.command_timer_s[env_ids] = hold_s

    # ----------------------------------------------------------------------------- stepping
    def step(self, actions: torch.Tensor
             ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Dict[str, Any]]:
        """Apply ``actions`` [N, A], run ``decimation`` physics steps, return the transition."""
        cfg = self.cfg
        self.last_actions.copy_(self.actions)
        self.actions.copy_(actions.clamp(-cfg.action_clip, cfg.action_clip))
        applied = self.applied_actions if cfg.randomization.action_latency else self.actions
        self.backend.q_target.copy_(action_to_joint_targets(
            applied, self.default_joint_pos, self.action_scale, cfg.action_clip))
        self.applied_actions.copy_(self.actions)
        self.backend.step(cfg.decimation)

        self.episode_length += 1
        self.steps_taken += 1
        if self.steps_taken % OVERFLOW_CHECK_INTERVAL == 0:
            self.check_overflow()
        self.gait_phase = torch.remainder(
            self.gait_phase + self.dt_s / cfg.observations.gait_period_s, 1.0)
        self._refresh_state()
        self._update_step_state()
        self.terminated = self._fallen()
        time_outs = self.episode_length >= self.max_episode_length
        rewards, log = self._rewards()
        dones = self.terminated | time_outs

        self.command_timer_s -= self.dt_s
        self.push_timer_s -= self.dt_s
        self._resample_commands_due()
        self._push_due()
        env_ids = dones.nonzero(as_tuple=False).flatten()
        if len(env_ids) > 0:
            log.update(self._episode_log(env_ids))
            self._reset_envs(env_ids)
            self._refresh_state()
        obs, critic_obs = self._observations()
        return obs, critic_obs, rewards, dones, {'time_outs': time_outs, 'log': log}

    def _refresh_state(self) -> None:
        b = self.backend
        self.base_quat = b.base_quat
        self.base_height = b.base_pos[:, 2]
        self.base_lin_vel_b = world_to_body(b.base_quat, b.base_lin_vel_world)
        self.base_ang_vel_b = b.base_ang_vel_body
        self.projected_gravity = projected_gravity(b.base_quat)
        self.joint_pos = b.joint_pos
        self.joint_vel = b.joint_vel
        self.feet_height = b.foot_pos[:, :, 2] - self.foot_stand_height_m
        self.feet_contact = (b.foot_contact_force > self.cfg.rewards.contact_force_n).float()

    def _update_step_state(self) -> None:
        """Update finite differences, air times and the gait targets: once per policy step."""
        b = self.backend
        self.joint_acc = (b.joint_vel - self.last_joint_vel) / self.dt_s
        self.last_joint_vel = b.joint_vel.clone()
        self.effort = b.last_effort
        feet_pos = b.foot_pos
        self.feet_vel = (feet_pos - self.last_feet_pos) / self.dt_s
        self.last_feet_pos = feet_pos.clone()
        contact = self.feet_contact > 0.5
        contact_filt = contact | self.last_feet_contact
        self.last_feet_contact = contact
        self.feet_first_contact = ((self.feet_air_time > 0) & contact_filt).float()
        self.feet_air_time += self.dt_s
        self.feet_air_time_at_touchdown = self.feet_air_time.clone()
        self.feet_air_time *= ~contact_filt
        self.moving_command = (torch.norm(self.commands, dim=1) > 0.05).float()
        phase = torch.remainder(self.gait_phase.unsqueeze(1) + self.foot_phase_offset, 1.0)
        swing = (phase >= 0.5).float()
        profile = torch.sin(math.pi * (phase - 0.5).clamp(min=0.0) / 0.5)
        self.desired_feet_height = (self.cfg.rewards.swing_height_m * profile * swing
                                    * self.moving_command.unsqueeze(1))
        yaw = yaw_from_quat(self.base_quat)
        rel = feet_pos[:, 1, :2] - feet_pos[:, 0, :2] if self.num_feet >= 2 else \
            torch.zeros_like(feet_pos[:, 0, :2])
        self.feet_lateral_distance = torch.abs(-torch.sin(yaw) * rel[:, 0]
                                               + torch.cos(yaw) * rel[:, 1])

    def _fallen(self) -> torch.Tensor:
        too_low = self.base_height < self.cfg.fall_height_fraction * \
            self.robot.nominal_base_height_m
        too_tilted = self.projected_gravity[:, 2] > -math.cos(self.cfg.fall_tilt_rad)
        return too_low | too_tilted

    def _rewards(self) -> Tuple[torch.Tensor, Dict[str, Any]]:
        total = torch.zeros(self.num_envs, device=self.device)
        for name, fn, scale in self.reward_terms:
            value = fn(self) * (scale * self.dt_s)
            self.episode_sums[name] += value
            total += value
        lin_err = torch.norm(self.commands[:, :2] - self.base_lin_vel_b[:, :2], dim=1)
        yaw_err = torch.abs(self.commands[:, 2] - self.base_ang_vel_b[:, 2])
        log = {'track/lin_vel_error_m_s': lin_err.mean(),
               'track/yaw_rate_error_rad_s': yaw_err.mean()}
        return total, log

    def _episode_log(self, env_ids: torch.Tensor) -> Dict[str, Any]:
        log: Dict[str, Any] = {}
        for name in self.episode_sums:
            log[f'reward/{name}'] = self.episode_sums[name][env_ids].mean() / \
                self.cfg.episode_length_s
            self.episode_sums[name][env_ids] = 0.0
        log['episode/length_s'] = self.episode_length[env_ids].float().mean() * self.dt_s
        log['episode/fall_rate'] = self.terminated[env_ids].float().mean()
        return log

    def _resample_commands_due(self) -> None:
        """Resample the commands whose hold time ran out (masked: no host sync)."""
        due = (self.command_timer_s <= 0).unsqueeze(1)
        cmd, hold_s = self._sample_commands(self.num_envs)
        self.commands = torch.where(due, cmd, self.commands)
        self.command_timer_s = torch.where(due[:, 0], hold_s, self.command_timer_s)

    def _push_due(self) -> None:
        r = self.cfg.randomization
        if not r.pushes:
            return
        due = self.push_timer_s <= 0
        push = _uniform(-r.push_lin_vel_m_s, r.push_lin_vel_m_s, (self.num_envs, 2), self.device)
        self.backend.base_lin_vel_world[:, :2] += push * due.unsqueeze(1)
        self.push_timer_s = torch.where(
            due, _uniform(*r.push_interval_s, (self.num_envs,), self.device), self.push_timer_s)

    # ----------------------------------------------------------------------------- observations
    def _observations(self) -> Tuple[torch.Tensor, torch.Tensor]:
        inputs = observation_inputs(
            base_quat_wxyz=self.base_quat, base_lin_vel_body_m_s=self.base_lin_vel_b,
            base_ang_vel_body_rad_s=self.base_ang_vel_b, command=self.commands,
            joint_pos_rad=self.joint_pos, default_joint_pos_rad=self.default_joint_pos,
            joint_vel_rad_s=self.joint_vel, last_action=self.actions,
            gait_phase=self.gait_phase if self.cfg.observations.use_gait_phase else None)
        clip = self.cfg.observations.clip
        critic = build_observation(self.critic_terms, inputs, clip, self.critic_scale)
        if self.cfg.randomization.obs_noise:
            noise = self.cfg.observations.noise
            inputs = {name: value + _uniform(-noise[name], noise[name], value.shape,
                                             self.device) if name in noise else value
                      for name, value in inputs.items()}
        obs = build_observation(self.obs_terms, inputs, clip, self.obs_scale)
        privileged = torch.cat([self.feet_height, self.feet_contact,
                                (self.base_height - self.robot.nominal_base_height_m
                                 ).unsqueeze(1)], dim=1)
        return obs, torch.cat([critic, privileged], dim=1)

    def check_overflow(self) -> Dict[str, Any]:
        """Return the backend's overflow report; raise SimOverflowError if buffers overflowed."""
        report = self.backend.check_overflow()
        raise_if_overflow(report)
        return report

    def close(self) -> None:
        """Release the simulator."""
        close = getattr(self.backend, 'close', None)
        if close is not None:
            close()
