"""
Observations of the locomotion task: the actor's (what a robot measures) and the critic's.

:class:`ObservationMixin` is the part of :class:`training.env.LocomotionEnv` that turns the
simulator state into the two observation vectors, inside the captured step (fixed shapes,
in-place writes, no host reads).  The term list comes from the config through
:func:`actor_obs_terms`; the raw terms, the scaling, the clipping and the history stacking
come from :mod:`humanoid_rl_ros.core.policy_math`, the same functions the policy node runs, and
the contract the exporter writes takes the same term list and history length.

**The actor** sees, by default, what a robot measures without an external velocity estimator
(the hardware-proven humanoid recipes: unitree_rl_gym G1, humanoid-gym, Booster Gym)::

    base_ang_vel       3   gyro, base link frame [rad/s]            scale 0.25
    projected_gravity  3   gravity direction, base link frame       scale 1
    velocity_command   3   (vx, vy, wz)                             scale 2, 2, 0.25
    joint_pos          n   q - q_default [rad]                      scale 1
    joint_vel          n   qd [rad/s]                               scale 0.05
    last_action        n   previous clipped action                  scale 1
    gait_phase         2   sin, cos of the gait clock               scale 1

(``ObservationConfig.use_gait_phase``), stacked ``history_length`` frames deep, oldest first.
With ``ObservationConfig.use_base_lin_vel`` the frame starts with ``base_lin_vel`` (3, scale
2); that input is then trained through an estimator-like error: a per-episode bias and scale
error and a per-episode lag of whole policy steps, with mjlab's +/-0.5 m/s uniform noise on
top.  The actor's inputs pass, in order, through the randomization's sensor model
(``_sensor_model`` of the episodes' code: latency, IMU and encoder biases, each with its own
switch), this velocity error and the per-step uniform noise; the last two are switched by
``DomainRandConfig.obs_noise``.  The critic sees none of it.

**The critic** sees the uncorrupted current frame with ``base_lin_vel`` always, then the
privileged state, in this order (:attr:`ObservationMixin.critic_layout`)::

    feet_height        f   foot height above its standing height [m]
    feet_contact       f   1 where the foot's normal force exceeds contact_force_n
    feet_air_time      f   time since the foot last touched down [s]
    base_height_error  1   base height - nominal [m]
    tracked_velocity   3   with ``rewards.tracking_window_s`` > 0: the (vx, vy, yaw rate) the
                           tracking rewards compare with the command, averaged over the
                           window [m/s, rad/s] (``tracked_vel_b``): those rewards depend on
                           the velocities of the past window, which the critic would not
                           see otherwise (absent without a window)
    terrain_heights    t   with the terrain on: each foot's height above the ground under it,
                           then the base's height above the ground at each scan point minus
                           its nominal height [m] (``EpisodeMixin.terrain_heights``; absent
                           on flat ground)
    kp_kd_scale        n   the episode's PD gain scale per joint
    motor_strength     n   the episode's effort-limit scale per joint
    privileged_params  k   further randomized parameters (below)

**privileged_params** ``[num_envs, k]`` (zeros at start) is the hook for the randomization
code: it declares the parameter names as ``PRIVILEGED_PARAM_NAMES`` (a tuple attribute or
property of the env class or of a base class other than this mixin; none: ``k = 0``) and
writes column ``i`` of ``env.privileged_params`` in place with the value drawn for parameter
``i`` (friction, added mass, centre-of-mass offset, ...) wherever it randomizes an
environment.  The width is fixed when the env is built; the critic reads the buffer every
step.
"""

from typing import Dict, Tuple

from humanoid_rl_ros.core.contract import ObsTermSpec
from humanoid_rl_ros.core.policy_math import (build_observation, gait_phase_features,
                                              observation_scale, push_history)
import torch
from training.config import EnvConfig, ObservationConfig


def actor_obs_terms(cfg: ObservationConfig, num_joints: int) -> Tuple[ObsTermSpec, ...]:
    """Return the actor's observation terms in order (what the contract records)."""
    return _frame_terms(cfg, num_joints, with_base_lin_vel=cfg.use_base_lin_vel)


def critic_obs_terms(cfg: ObservationConfig, num_joints: int) -> Tuple[ObsTermSpec, ...]:
    """Return the critic's observation terms: the actor's with ``base_lin_vel`` always first."""
    return _frame_terms(cfg, num_joints, with_base_lin_vel=True)


def _frame_terms(cfg: ObservationConfig, a: int, with_base_lin_vel: bool
                 ) -> Tuple[ObsTermSpec, ...]:
    terms = []
    if with_base_lin_vel:
        terms.append(ObsTermSpec('base_lin_vel', 3, (cfg.lin_vel_scale,) * 3))
    terms += [
        ObsTermSpec('base_ang_vel', 3, (cfg.ang_vel_scale,) * 3),
        ObsTermSpec('projected_gravity', 3, (1.0,) * 3),
        ObsTermSpec('velocity_command', 3,
                    (cfg.lin_vel_scale, cfg.lin_vel_scale, cfg.ang_vel_scale)),
        ObsTermSpec('joint_pos', a, (1.0,) * a),
        ObsTermSpec('joint_vel', a, (cfg.joint_vel_scale,) * a),
        ObsTermSpec('last_action', a, (1.0,) * a),
    ]
    if cfg.use_gait_phase:
        terms.append(ObsTermSpec('gait_phase', 2, (1.0, 1.0)))
    return tuple(terms)


class ObservationMixin:
    """The actor's and the critic's observations of the env (see the module docstring)."""

    cfg: EnvConfig
    device: torch.device
    num_envs: int
    num_actions: int
    num_feet: int
    terrain_heights: torch.Tensor

    def _init_observations(self) -> None:
        """Set the term lists, the sizes and every observation buffer (after the env's)."""
        o, n, a, dev = self.cfg.observations, self.num_envs, self.num_actions, self.device
        if o.history_length < 1:
            raise ValueError(f'observations.history_length must be >= 1, got '
                             f'{o.history_length}')
        self.obs_terms = actor_obs_terms(o, a)
        """The actor's terms in order: one frame of its input."""
        self.critic_terms = critic_obs_terms(o, a)
        """The critic's terms in order, before its privileged part."""
        self.obs_scale = torch.as_tensor(observation_scale(self.obs_terms), dtype=torch.float32,
                                         device=dev)
        self.critic_scale = torch.as_tensor(observation_scale(self.critic_terms),
                                            dtype=torch.float32, device=dev)
        self.history_length = int(o.history_length)
        self.frame_dim = int(self.obs_scale.numel())
        self.num_obs = self.history_length * self.frame_dim
        self.privileged_param_names: Tuple[str, ...] = tuple(
            getattr(self, 'PRIVILEGED_PARAM_NAMES', ()))
        """Names of the columns of :attr:`privileged_params` (declared by the randomization)."""
        self.privileged_params = torch.zeros(n, len(self.privileged_param_names), device=dev)
        """Randomized parameters per env [N, k] for the critic; see the module docstring."""
        f = self.num_feet
        terrain = int(self.terrain_heights.shape[1])  # 0 on flat ground
        self.critic_layout: Tuple[Tuple[str, int], ...] = (
            (('terms', int(self.critic_scale.numel())), ('feet_height', f),
             ('feet_contact', f), ('feet_air_time', f), ('base_height_error', 1))
            + ((('tracked_velocity', 3),) if self.cfg.rewards.tracking_window_s > 0 else ())
            + ((('terrain_heights', terrain),) if terrain else ())
            + (('kp_kd_scale', a), ('motor_strength', a),
               ('privileged_params', len(self.privileged_param_names))))
        """The critic observation's parts in order, (name, width)."""
        self.num_critic_obs = sum(width for _, width in self.critic_layout)
        self._obs_history = torch.zeros(n, self.history_length, self.frame_dim, device=dev)
        """The actor's last ``history_length`` frames, oldest first."""
        self._obs_buf = self._obs_history.view(n, self.num_obs)
        self._critic_obs_buf = torch.zeros(n, self.num_critic_obs, device=dev)
        lag_low, lag_high = (int(v) for v in o.lin_vel_lag_steps)
        if not 0 <= lag_low <= lag_high:
            raise ValueError(f'observations.lin_vel_lag_steps must be 0 <= low <= high, got '
                             f'{o.lin_vel_lag_steps}')
        self._lin_vel_error_on = o.use_base_lin_vel and self.cfg.randomization.obs_noise
        """Whether the actor's base_lin_vel goes through the estimator-like error."""
        self._lin_vel_lag_range = (lag_low, lag_high)
        self._lin_vel_bias = torch.zeros(n, 3, device=dev)
        self._lin_vel_scale = torch.ones(n, 3, device=dev)
        self._lin_vel_lag = torch.zeros(n, dtype=torch.long, device=dev)
        self._lin_vel_delay = torch.zeros(n, lag_high + 1, 3, device=dev)
        """The true base velocity of the last ``lag_high + 1`` policy steps, oldest first."""
        self._obs_rand = torch.zeros(n, 7 if self._lin_vel_error_on else 0, device=dev)
        """Per-step uniform draws of the observation model: bias 3, scale 3, lag 1."""

    def _draw_observation_randoms(self) -> None:
        """Refill the observation model's draws (outside any graph, like the random slab)."""
        self._obs_rand.uniform_(0.0, 1.0)

    def _observation_inputs(self) -> Dict[str, torch.Tensor]:
        """
        Return the raw observation terms (policy_math.observation_inputs, capture-safe).

        Same definitions as :func:`humanoid_rl_ros.core.policy_math.observation_inputs` (a test
        checks equality), with projected gravity from ``_refresh_state``: the true state,
        before any noise.
        """
        inputs = {
            'base_lin_vel': self.base_lin_vel_b,
            'base_ang_vel': self.base_ang_vel_b,
            'projected_gravity': self.projected_gravity,
            'velocity_command': self.commands,
            'joint_pos': self.joint_pos - self.default_joint_pos,
            'joint_vel': self.joint_vel,
            'last_action': self.actions,
        }
        if self.cfg.observations.use_gait_phase:
            inputs['gait_phase'] = gait_phase_features(self.gait_phase)
        return inputs

    def _estimated_lin_vel(self, measured: torch.Tensor, restart: torch.Tensor
                           ) -> torch.Tensor:
        """
        Return the base velocity an estimator would report [N, 3] (see the module docstring).

        ``measured`` is the body-frame velocity the sensor model passes on (the true one unless
        the randomization delays the sensors).  Where ``restart`` (a new episode), the bias,
        scale error and lag are drawn afresh and the delay line is filled with ``measured``.
        """
        o, n = self.cfg.observations, self.num_envs
        r = self._obs_rand
        low, high = self._lin_vel_lag_range
        bias = o.lin_vel_bias_m_s * (2.0 * r[:, 0:3] - 1.0)
        scale = 1.0 + o.lin_vel_scale_error * (2.0 * r[:, 3:6] - 1.0)
        lag = (low + torch.floor(r[:, 6] * (high - low + 1))).long().clamp(max=high)
        m1 = restart.unsqueeze(1)
        self._lin_vel_bias.copy_(torch.where(m1, bias, self._lin_vel_bias))
        self._lin_vel_scale.copy_(torch.where(m1, scale, self._lin_vel_scale))
        self._lin_vel_lag.copy_(torch.where(restart, lag, self._lin_vel_lag))
        self._lin_vel_delay.copy_(push_history(self._lin_vel_delay, measured, restart))
        slot = (high - self._lin_vel_lag).view(n, 1, 1).expand(n, 1, 3)
        lagged = torch.gather(self._lin_vel_delay, 1, slot).squeeze(1)
        return lagged * self._lin_vel_scale + self._lin_vel_bias

    def _observations(self) -> None:
        """
        Write the actor's and the critic's observations into their persistent buffers.

        A new episode (``episode_length`` 0, just reset) restarts the actor's history with its
        first frame repeated (policy_math.push_history), as the node does at a walk's start.
        """
        inputs = self._observation_inputs()
        restart = self.episode_length == 0
        critic = build_observation(self.critic_terms, inputs, self._obs_clip, self.critic_scale)
        inputs = self._sensor_model(inputs)
        if self.cfg.randomization.obs_noise:
            inputs = dict(inputs)
            if self._lin_vel_error_on:
                inputs['base_lin_vel'] = self._estimated_lin_vel(inputs['base_lin_vel'],
                                                                 restart)
            noise = self.cfg.observations.noise
            for name in self._noise_terms:
                if name in inputs:
                    inputs[name] = inputs[name] + self._u(f'noise_{name}', -noise[name],
                                                          noise[name])
        frame = build_observation(self.obs_terms, inputs, self._obs_clip, self.obs_scale)
        if self.history_length == 1:
            self._obs_history[:, 0].copy_(frame)
        else:
            self._obs_history.copy_(push_history(self._obs_history, frame, restart))
        parts = {
            'terms': critic, 'feet_height': self.feet_height, 'feet_contact': self.feet_contact,
            'feet_air_time': self.feet_air_time,
            'base_height_error': (self.base_height
                                  - self.robot.nominal_base_height_m).unsqueeze(1),
            'tracked_velocity': self.tracked_vel_b,
            'terrain_heights': self.terrain_heights, 'kp_kd_scale': self.gain_scale,
            'motor_strength': self.strength_scale, 'privileged_params': self.privileged_params}
        self._critic_obs_buf.copy_(torch.cat([parts[name] for name, _ in self.critic_layout],
                                             dim=1))
