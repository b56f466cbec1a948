"""
Reward terms of the locomotion task: one small named function each.

Each function takes the environment after its physics step and returns one value per
environment, shape [N]. A term is used when its scale in :class:`training.config.RewardConfig`
is non-zero; each is logged on its own as ``reward/<name>``. Sources of the shapes and default
scales are cited in the config.

Three gates, per environment, computed once per policy step by the env (floats 0/1):

* ``env.moving_command``: the command is a walking command (|command| above
  ``moving_command_threshold``);
* ``env.gait_active``: walking, or disturbed at a zero command (planar base speed above
  ``disturbed_speed_m_s``): the gait clock's terms apply, so a pushed robot steps;
* ``env.standing``: neither (``1 - gait_active``): the stand terms apply, so the robot stands
  with its feet planted instead of marching in place.
"""

from typing import Callable, Dict, TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from training.env import LocomotionEnv


def track_lin_vel(env: 'LocomotionEnv') -> torch.Tensor:
    """
    Reward tracking the planar velocity command: exp(-|err|^2 / sigma^2).

    The velocity is ``env.tracked_vel_b``: averaged over ``rewards.tracking_window_s``.
    """
    err = torch.sum(torch.square(env.commands[:, :2] - env.tracked_vel_b[:, :2]), dim=1)
    return torch.exp(-err / env.cfg.rewards.tracking_sigma ** 2)


def track_ang_vel(env: 'LocomotionEnv') -> torch.Tensor:
    """Reward tracking the yaw-rate command (averaged as above): exp(-err^2 / sigma^2)."""
    err = torch.square(env.commands[:, 2] - env.tracked_vel_b[:, 2])
    return torch.exp(-err / env.cfg.rewards.tracking_sigma ** 2)


def lin_vel_z(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize vertical base velocity [m^2/s^2]."""
    return torch.square(env.base_lin_vel_b[:, 2])


def ang_vel_xy(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize roll and pitch rates [rad^2/s^2]."""
    return torch.sum(torch.square(env.base_ang_vel_b[:, :2]), dim=1)


def orientation(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize tilt: the planar part of the projected gravity."""
    return torch.sum(torch.square(env.projected_gravity[:, :2]), dim=1)


def base_height(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize the base height error to the nominal standing height [m^2]."""
    return torch.square(env.base_height - env.robot.nominal_base_height_m)


def torques(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize squared efforts [N^2 m^2]."""
    return torch.sum(torch.square(env.effort), dim=1)


def dof_acc(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize squared joint accelerations [rad^2/s^4]."""
    return torch.sum(torch.square(env.joint_acc), dim=1)


def action_rate(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize changes of the action between policy steps."""
    return torch.sum(torch.square(env.actions - env.last_actions), dim=1)


def dof_pos_limits(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize joint positions beyond the soft joint limits [rad]."""
    below = (env.soft_pos_limits[0] - env.joint_pos).clamp(min=0.0)
    above = (env.joint_pos - env.soft_pos_limits[1]).clamp(min=0.0)
    return torch.sum(below + above, dim=1)


def posture(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize deviation of the non-sagittal and upper-body joints from the default pose."""
    dev = (env.joint_pos - env.default_joint_pos) * env.posture_mask
    return torch.sum(torch.square(dev), dim=1)


def feet_air_time(env: 'LocomotionEnv') -> torch.Tensor:
    """Reward steps: air time minus its target, paid at touchdown, while a command is given."""
    reward = torch.sum((env.feet_air_time_at_touchdown - env.cfg.rewards.air_time_target_s)
                       * env.feet_first_contact, dim=1)
    return reward * env.moving_command


def feet_slip(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize planar speed of feet in contact [m^2/s^2]."""
    speed_sq = torch.sum(torch.square(env.feet_vel[:, :, :2]), dim=2)
    return torch.sum(speed_sq * env.feet_contact, dim=1)


def feet_phase(env: 'LocomotionEnv') -> torch.Tensor:
    """
    Reward foot heights that follow the gait clock's swing profile while the gait is active.

    Where it is not (standing), the term is constant at its maximum: the clock asks nothing of
    a standing robot, and standing is never paid less than stepping.
    """
    err = torch.sum(torch.square(env.feet_height - env.desired_feet_height), dim=1)
    sigma_m = env.cfg.rewards.feet_phase_sigma_m
    return torch.where(env.gait_active > 0.5, torch.exp(-err / sigma_m ** 2),
                       torch.ones_like(err))


def feet_distance(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize feet closer laterally (in the heading frame) than the minimum width [m]."""
    return (env.cfg.rewards.min_feet_width_m - env.feet_lateral_distance).clamp(min=0.0)


def stand_still(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize joint deviation from the default pose while standing [rad]."""
    dev = torch.sum(torch.abs(env.joint_pos - env.default_joint_pos), dim=1)
    return dev * env.standing


def stand_pose(env: 'LocomotionEnv') -> torch.Tensor:
    """Reward a pose close to the default while standing: exp(-mean((dev / std)^2))."""
    dev = (env.joint_pos - env.default_joint_pos) / env.cfg.rewards.stand_pose_std_rad
    return torch.exp(-torch.mean(torch.square(dev), dim=1)) * env.standing


def stand_feet_contact(env: 'LocomotionEnv') -> torch.Tensor:
    """Reward feet planted while standing: the number of feet in contact."""
    return torch.sum(env.feet_contact, dim=1) * env.standing


def stand_joint_vel(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize joint velocities while standing [rad^2/s^2]."""
    return torch.sum(torch.square(env.joint_vel), dim=1) * env.standing


def termination(env: 'LocomotionEnv') -> torch.Tensor:
    """Penalize falling (time-outs are not terminations)."""
    return env.terminated.float()


REWARD_TERMS: Dict[str, Callable[['LocomotionEnv'], torch.Tensor]] = {
    fn.__name__: fn for fn in (
        track_lin_vel, track_ang_vel, lin_vel_z, ang_vel_xy, orientation, base_height, torques,
        dof_acc, action_rate, dof_pos_limits, posture, feet_air_time, feet_slip, feet_phase,
        feet_distance, stand_still, stand_pose, stand_feet_contact, stand_joint_vel,
        termination)
}
"""Every reward term by name; the config field of the same name holds its scale."""
