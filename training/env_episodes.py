"""
Episodes of the locomotion task: random numbers, masked resets, commands, pushes, statistics.

:class:`EpisodeMixin` is the part of :class:`training.env.LocomotionEnv` that starts and ends
episodes inside the captured step: the per-step random slab (every random number of a step,
drawn by one ``uniform_`` outside the graph), masked resets with the domain randomization,
velocity-command sampling and resampling, pushes, and the finished episodes' statistics.  Like
the rest of the step it uses fixed shapes, masked full-width writes and no host syncs.

It works on the env's state: ``cfg``, ``robot``, ``backend``, ``device``, ``num_envs``,
``num_actions`` and the persistent buffers that ``LocomotionEnv._init_buffers`` allocates.
"""

import math
from typing import Any, Dict, List, Tuple

import torch
from training.backends.base import SimBackend
from training.config import EnvConfig


class EpisodeMixin:
    """Random slab, masked resets, commands, pushes and episode statistics of the env."""

    cfg: EnvConfig
    backend: SimBackend
    device: torch.device
    num_envs: int
    num_actions: int
    _dr_unsupported: List[str]

    def _init_random_layout(self) -> None:
        """
        Lay out the per-step random slab [N, R]: one ``uniform_`` per step fills it.

        Every random number a step (or a reset) may use is a fixed column range of this slab,
        drawn OUTSIDE the captured graph, so each replay reads fresh numbers.
        """
        a = self.num_actions
        widths = [('reset_yaw', 1), ('reset_height', 1), ('reset_lin_vel', 2),
                  ('reset_joint', a), ('reset_gain', a), ('reset_strength', a),
                  ('reset_friction', 1), ('reset_mass', 1), ('reset_phase', 1),
                  ('reset_cmd', 3), ('reset_standing', 1), ('reset_hold', 1),
                  ('reset_push', 1), ('cmd', 3), ('standing', 1), ('hold', 1),
                  ('push_vel', 2), ('push_interval', 1)]
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
        pos = torch.stack([zero, zero, self.robot.nominal_base_height_m
                           + self._u('reset_height', 0.0, 0.02)], dim=1)
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
        self.episode_length.masked_fill_(mask, 0)
        self._episode_sums_all.masked_fill_(mask.unsqueeze(0), 0.0)
        self.gait_phase.copy_(torch.where(mask, self._u('reset_phase'), self.gait_phase))
        cmd, hold_s = self._sample_commands('reset_cmd', 'reset_standing', 'reset_hold')
        self.commands.copy_(torch.where(m1, cmd, self.commands))
        self.command_timer_s.copy_(torch.where(mask, hold_s, self.command_timer_s))
        self.push_timer_s.copy_(torch.where(
            mask, self._u('reset_push', *cfg.randomization.push_interval_s), self.push_timer_s))

    @torch.compiler.disable
    def _backend_reset(self, mask: torch.Tensor, **state: torch.Tensor) -> None:
        """Write the reset state into the simulator (eager: simulator code is not compiled)."""
        self.backend.reset_masked(mask, **state)

    def _randomize_masked(self, mask: torch.Tensor) -> None:
        """Draw the per-env domain randomization of the envs where ``mask`` is True."""
        r, m1, b = self.cfg.randomization, mask.unsqueeze(1), self.backend
        if r.pd_gain_scale:
            self.gain_scale.copy_(torch.where(
                m1, self._u('reset_gain', *r.pd_gain_scale_range), self.gain_scale))
        else:
            self.gain_scale.masked_fill_(m1, 1.0)
        if r.motor_strength:
            self.strength_scale.copy_(torch.where(
                m1, self._u('reset_strength', *r.motor_strength_range), self.strength_scale))
        else:
            self.strength_scale.masked_fill_(m1, 1.0)
        b.kp.copy_(torch.where(m1, self.kp * self.gain_scale, b.kp))
        b.kd.copy_(torch.where(m1, self.kd * self.gain_scale, b.kd))
        b.effort_limit.copy_(torch.where(m1, self.effort_limit * self.strength_scale,
                                         b.effort_limit))
        if r.friction and 'friction' not in self._dr_unsupported:
            self._try_dr('friction', b.set_friction_masked, mask,
                         self._u('reset_friction', *r.friction_range))
        if r.added_base_mass and 'added_base_mass' not in self._dr_unsupported:
            self._try_dr('added_base_mass', b.set_base_mass_offset_masked, mask,
                         self._u('reset_mass', *r.added_base_mass_kg))

    @torch.compiler.disable
    def _try_dr(self, name: str, setter: Any, mask: torch.Tensor, values: torch.Tensor
                ) -> None:
        """Apply one simulator-side randomization; switch it off if the backend lacks it."""
        try:
            setter(mask, values)
        except NotImplementedError as exc:
            self._dr_unsupported.append(name)
            print(f'[env] domain randomization {name!r} is off: {exc}')

    def _sample_commands(self, cmd_key: str, standing_key: str, hold_key: str
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return fresh commands [N, 3] and their hold times [N] [s] from the random slab."""
        c = self.cfg.commands
        cmd = self._u(cmd_key, self.cmd_low, self.cmd_high)
        small = torch.norm(cmd[:, :2], dim=1) < c.small_command_m_s
        cmd[:, :2] *= (~small).unsqueeze(1)
        standing = self._u(standing_key) < c.standing_fraction
        cmd *= (~standing).unsqueeze(1)
        return cmd, self._u(hold_key, *c.resample_interval_s)

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
        return log

    def _resample_commands_due(self) -> None:
        """Resample the commands whose hold time ran out (masked: no host sync)."""
        due = (self.command_timer_s <= 0).unsqueeze(1)
        cmd, hold_s = self._sample_commands('cmd', 'standing', 'hold')
        self.commands.copy_(torch.where(due, cmd, self.commands))
        self.command_timer_s.copy_(torch.where(due[:, 0], hold_s, self.command_timer_s))

    def _push_due(self) -> None:
        r = self.cfg.randomization
        if not r.pushes:
            return
        due = self.push_timer_s <= 0
        push = self._u('push_vel', -r.push_lin_vel_m_s, r.push_lin_vel_m_s)
        self.backend.base_lin_vel_world[:, :2] += push * due.unsqueeze(1)
        self.push_timer_s.copy_(torch.where(
            due, self._u('push_interval', *r.push_interval_s), self.push_timer_s))
