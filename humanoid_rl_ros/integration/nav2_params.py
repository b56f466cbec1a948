r"""
Nav2 parameters generated from the policy contract and the robot: limits are never typed by hand.

The policy walks only within the command ranges it was trained on (the contract's ``commands``:
forward ``vx``, sideways ``vy``, yaw rate ``wz``; the policy node clamps to them). This module
turns those ranges and the robot description into ``config/nav2_params.yaml``:

* **speed limits**: MPPI's ``vx_min``/``vx_max``/``vy_max``/``wz_max`` and the velocity
  smoother's ``min_velocity``/``max_velocity``. MPPI takes one symmetric ``vy_max`` and
  ``wz_max``, so those are the smaller magnitude of the trained range's two ends.
* **acceleration limits**, one rule for every axis (:func:`command_limits`)::

      accel = max(|low|, |high|) / rise_time_s        (default rise_time_s = 1.0 s)

  i.e. a full-range command change is spread over ``rise_time_s``, about the time the walking
  robot takes to reach a new command (the demo scores tracking only from 1 s after a change).
  Deceleration limits are the same magnitudes, negative. The limits keep Nav2 from asking for
  velocity changes the body cannot follow (training stepped the command, so steps are safe, just
  not tracked faster).
* **the policy's command envelope** (optional, ``--envelope``: the JSON of ``python -m
  training.robustness.envelope``): a policy may not follow every command of its trained ranges.
  Per axis and direction the limits become the end of the longest run of followed commands
  (:func:`followed_band`), and the spin behaviour's ``min_rotational_vel`` its start on the
  yaw axis, so that Nav2 neither asks for a turn the robot stands through nor for a speed it
  overshoots (:func:`envelope_limits`).
* **holonomic control**: MPPI with ``motion_model: Omni`` (the robot walks sideways) and
  ``min_y_velocity_threshold`` small, so the controller server keeps ``vy``.
* **frames and topics**: ``robot_base_frame``/``base_frame_id`` = the robot's base link from
  ``robot.yaml`` (``pelvis`` for Kestrel); odometry on ``odom`` (the sim node's and Isaac Sim's
  topic); ``enable_stamped_cmd_vel: true``, Nav2 Kilted's default (TwistStamped).
* **footprint**: the xy bounding box of every robot geom at the default pose, in the base frame
  (:func:`footprint_box_m`, from the MuJoCo model of the robot), rounded outward to 1 mm.

Costmaps hold only an inflation layer and a rolling window, so the file works without a map or
sensors (walking in free space); add your static map and sensor layers for a real site
(docs/NAV2.md). Generate with::

    python -m humanoid_rl_ros.integration.nav2_params --policy models/humanoid_walk.yaml \\
        --envelope benchmarks/envelope/envelope.json --out config/nav2_params.yaml

``--check`` compares instead of writing (exit status 1 when the file is stale).
"""

from dataclasses import dataclass
import json
import math
from pathlib import Path
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from humanoid_rl_ros.core.contract import (CommandRanges, graph_sha256, PolicyContract,
                                           read_contract)
from humanoid_rl_ros.robot.description import load_robot, RobotConfig
from humanoid_rl_ros.robot.mujoco_model import build_mujoco_model
import mujoco
import numpy as np
import yaml

__all__ = [
    'command_limits',
    'CommandLimits',
    'envelope_limits',
    'followed_band',
    'footprint_box_m',
    'footprint_polygon',
    'generate',
    'main',
    'Nav2KitConfig',
    'nav2_parameters',
    'base_frame',
    'render_yaml',
    'stamped_cmd_vel',
]

_DECIMALS = 6
"""Derived numbers are rounded to this many decimals (no 0.30000000000000004 in the file)."""


@dataclass(frozen=True)
class CommandLimits:
    """Velocity and acceleration limits for Nav2, derived from a contract's command ranges."""

    vx_m_s: Tuple[float, float]
    """Forward velocity range (low, high) [m/s]."""
    vy_m_s: Tuple[float, float]
    """Leftward velocity range (low, high) [m/s]."""
    wz_rad_s: Tuple[float, float]
    """Yaw rate range (low, high) [rad/s]."""
    ax_m_s2: float
    """Forward acceleration limit (deceleration: the same, negative) [m/s^2]."""
    ay_m_s2: float
    """Sideways acceleration limit [m/s^2]."""
    az_rad_s2: float
    """Yaw acceleration limit [rad/s^2]."""

    @property
    def vy_symmetric_m_s(self) -> float:
        """Return the largest |vy| allowed in both directions [m/s] (MPPI's ``vy_max``)."""
        return min(-self.vy_m_s[0], self.vy_m_s[1])

    @property
    def wz_symmetric_rad_s(self) -> float:
        """Return the largest |wz| allowed in both directions [rad/s] (MPPI's ``wz_max``)."""
        return min(-self.wz_rad_s[0], self.wz_rad_s[1])


def _round(value: float) -> float:
    return round(float(value), _DECIMALS) + 0.0  # + 0.0: no -0.0 in the file


def command_limits(commands: CommandRanges, rise_time_s: float = 1.0) -> CommandLimits:
    """
    Return Nav2's limits for a contract's command ranges.

    Velocity limits are the ranges themselves. Each axis' acceleration limit is
    ``max(|low|, |high|) / rise_time_s`` (a full-range change spread over ``rise_time_s``).
    Every range must contain 0 (a robot that cannot stand still cannot be navigated), and
    ``rise_time_s`` must be finite and > 0; otherwise ``ValueError`` names the problem.
    """
    if not (math.isfinite(rise_time_s) and rise_time_s > 0.0):
        raise ValueError(f'rise_time_s must be finite and > 0, got {rise_time_s}')
    ranges = {'lin_vel_x_m_s': commands.lin_vel_x_m_s, 'lin_vel_y_m_s': commands.lin_vel_y_m_s,
              'ang_vel_z_rad_s': commands.ang_vel_z_rad_s}
    for name, (low, high) in ranges.items():
        if not low <= 0.0 <= high:
            raise ValueError(f'commands.{name}: range [{low}, {high}] must contain 0 for Nav2')
    accel = {name: _round(max(-low, high) / rise_time_s) for name, (low, high) in ranges.items()}
    return CommandLimits(
        vx_m_s=(_round(commands.lin_vel_x_m_s[0]), _round(commands.lin_vel_x_m_s[1])),
        vy_m_s=(_round(commands.lin_vel_y_m_s[0]), _round(commands.lin_vel_y_m_s[1])),
        wz_rad_s=(_round(commands.ang_vel_z_rad_s[0]), _round(commands.ang_vel_z_rad_s[1])),
        ax_m_s2=accel['lin_vel_x_m_s'], ay_m_s2=accel['lin_vel_y_m_s'],
        az_rad_s2=accel['ang_vel_z_rad_s'])


def followed_band(commands: Sequence[float], followed: Sequence[bool],
                  sign: float) -> Optional[Tuple[float, float]]:
    """
    Return the magnitudes ``(start, end)`` of the commands followed on one side of one axis.

    ``commands`` are the commands of an envelope sweep (:mod:`training.robustness.envelope`),
    ``followed`` whether each was followed; ``sign`` picks the side (+1 or -1; zero commands
    are left out). The band is the longest run of consecutive followed commands on that side
    (the one of larger magnitudes when two are as long). ``None``: none followed.
    """
    if len(commands) != len(followed):
        raise ValueError(f'{len(commands)} commands but {len(followed)} followed flags')
    side = sorted((abs(c), bool(f)) for c, f in zip(commands, followed) if c * sign > 0.0)
    best: Optional[Tuple[float, float]] = None
    best_len, run_start, run_len = 0, 0.0, 0
    for magnitude, ok in side:
        if not ok:
            run_len = 0
            continue
        if run_len == 0:
            run_start = magnitude
        run_len += 1
        if run_len >= best_len:
            best_len, best = run_len, (run_start, magnitude)
    return best


_ENVELOPE_AXES = (('vx_m_s', 'vx'), ('vy_m_s', 'vy'), ('wz_rad_s', 'wz'))


def _moves(command: float, reached: Optional[float]) -> bool:
    """Return whether the robot moved the commanded way at half the command or more."""
    return reached is not None and reached * math.copysign(1.0, command) >= 0.5 * abs(command)


def envelope_limits(limits: CommandLimits,
                    envelope: Mapping[str, Any]) -> Tuple[CommandLimits, float]:
    """
    Narrow ``limits`` to the commands a policy follows; return them and the least spin rate.

    ``envelope`` is the report of ``python -m training.robustness.envelope`` (its ``axes``:
    per axis the swept ``runs``, each with the velocity ``reached``, and their ``followed``
    flags). A command counts here when it is followed and the robot moves its way at half the
    commanded speed or more (a small command is "followed" within the tolerance by standing
    still). Each velocity limit becomes the end of that direction's :func:`followed_band`,
    never beyond the trained range; a swept direction with no such command gets 0. The second
    value is the yaw bands' larger start [rad/s]: the smallest yaw rate the robot turns at both
    ways. ``ValueError`` where the envelope lacks an axis or a direction, or the policy does
    not turn both ways.
    """
    axes = envelope.get('axes') or {}
    ranges: Dict[str, Tuple[float, float]] = {}
    starts: Dict[str, Tuple[float, float]] = {}
    for key, name in _ENVELOPE_AXES:
        if key not in axes:
            raise ValueError(f'the envelope has no {key} axis (sweep every axis)')
        runs = axes[key]['runs']
        commands = [float(run['command']) for run in runs]
        for sign, side in ((-1.0, 'negative'), (1.0, 'positive')):
            if not any(c * sign > 0.0 for c in commands):
                raise ValueError(f'the envelope sweeps no {side} {key} command')
        followed = [bool(ok) and _moves(c, (run.get('reached') or {}).get(key))
                    for c, ok, run in zip(commands, axes[key]['followed'], runs)]
        low, high = getattr(limits, key)
        neg = followed_band(commands, followed, -1.0)
        pos = followed_band(commands, followed, +1.0)
        ranges[name] = (_round(max(low, -neg[1])) if neg else 0.0,
                        _round(min(high, pos[1])) if pos else 0.0)
        starts[name] = (neg[0] if neg else math.inf, pos[0] if pos else math.inf)
    spin = max(starts['wz'])
    if not math.isfinite(spin):
        raise ValueError('the envelope shows the policy turning on the spot one way at most: '
                         'Nav2 cannot align it with a goal heading')
    narrowed = CommandLimits(vx_m_s=ranges['vx'], vy_m_s=ranges['vy'], wz_rad_s=ranges['wz'],
                             ax_m_s2=limits.ax_m_s2, ay_m_s2=limits.ay_m_s2,
                             az_rad_s2=limits.az_rad_s2)
    if spin > narrowed.wz_symmetric_rad_s:
        raise ValueError(f'the policy turns from {spin:g} rad/s but follows yaw rates only up '
                         f'to {narrowed.wz_symmetric_rad_s:g} both ways')
    return narrowed, _round(spin)


def footprint_box_m(robot: RobotConfig) -> Tuple[Tuple[float, float], Tuple[float, float]]:
    """
    Return the robot's xy bounding box ``((x_min, y_min), (x_max, y_max))`` [m] in its base frame.

    The MuJoCo model of the robot is posed at its default keyframe (base upright at the nominal
    height, joints at the default pose); the box covers the 8 corners of every robot geom's
    bounding box (``geom_aabb``, visual and collision geoms alike), the floor excluded.
    """
    model = build_mujoco_model(robot)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    base = model.body(robot.base_link).id
    base_pos = data.xpos[base]
    base_rot = data.xmat[base].reshape(3, 3)
    signs = np.array([[sx, sy, sz] for sx in (-1.0, 1.0) for sy in (-1.0, 1.0)
                      for sz in (-1.0, 1.0)])
    points = []
    for geom in range(model.ngeom):
        if model.geom_bodyid[geom] == 0:
            continue  # world geoms (the floor)
        center, half = model.geom_aabb[geom, :3], model.geom_aabb[geom, 3:]
        local = signs * half + center
        world = data.geom_xpos[geom] + local @ data.geom_xmat[geom].reshape(3, 3).T
        points.append((world - base_pos) @ base_rot)  # into the base frame
    xy = np.concatenate(points)[:, :2]
    low, high = xy.min(axis=0), xy.max(axis=0)
    return (float(low[0]), float(low[1])), (float(high[0]), float(high[1]))


def footprint_polygon(box: Tuple[Tuple[float, float], Tuple[float, float]],
                      step_m: float = 0.001) -> List[List[float]]:
    """Return the box as Nav2's footprint polygon (counter-clockwise), rounded outward."""
    (x_min, y_min), (x_max, y_max) = box

    def down(v: float) -> float:
        return _round(math.floor(round(v / step_m, 9)) * step_m)

    def up(v: float) -> float:
        return _round(math.ceil(round(v / step_m, 9)) * step_m)

    x0, y0, x1, y1 = down(x_min), down(y_min), up(x_max), up(y_max)
    return [[x1, y1], [x0, y1], [x0, y0], [x1, y0]]


@dataclass
class Nav2KitConfig:
    """Generate Nav2's parameter file from a policy contract and its robot."""

    policy: Path = Path('models/humanoid_walk.yaml')
    """Policy contract (``<policy>.yaml``); its command ranges set the limits."""
    out: Path = Path('config/nav2_params.yaml')
    """Output file; ``-`` writes to stdout."""
    robot: str = ''
    """Robot name, folder or robot.yaml; empty: the contract's robot."""
    check: bool = False
    """Compare with ``out`` instead of writing it; exit status 1 when they differ."""
    rise_time_s: float = 1.0
    """Time over which a full-range command change is spread (acceleration rule) [s]."""
    odom_topic: str = 'odom'
    """Odometry topic (the sim node's and Isaac Sim's)."""
    odom_frame: str = 'odom'
    """Odometry frame (the local costmap's and the smoother's fixed frame)."""
    global_frame: str = 'map'
    """Global frame (map -> odom comes from localization, or a static identity in the sim)."""
    enable_stamped_cmd_vel: bool = True
    """TwistStamped on cmd_vel (Nav2 Kilted's default); false for Twist (Jazzy's default)."""
    controller_frequency_hz: float = 20.0
    """Controller server rate [Hz]."""
    footprint_padding_m: float = 0.05
    """Costmap footprint padding [m]: room for the swing feet and the arm swing of walking."""
    xy_goal_tolerance_m: float = 0.25
    """Goal position tolerance [m]."""
    yaw_goal_tolerance_rad: float = 0.25
    """Goal heading tolerance [rad]."""
    envelope: Optional[Path] = None
    """Command envelope of this policy (``python -m training.robustness.envelope``): the speed
    limits are narrowed to the commands it follows and the spin behaviour turns at least as
    fast as it needs to turn at all; none: the contract's trained ranges."""


def _critic(weight: float, **extra: Any) -> Dict[str, Any]:
    return {'enabled': True, 'cost_power': 1, 'cost_weight': weight, **extra}


def base_frame(contract: PolicyContract, robot: RobotConfig) -> str:
    """
    Return the robot's base link: ``robot.yaml``'s, which the contract names too (format 2).

    A contract that names another base link than its robot is refused (``ValueError``).
    """
    named = getattr(contract, 'base_link', None)
    if named is not None and named != robot.base_link:
        raise ValueError(f'the policy contract names base link {named!r} but robot '
                         f'{robot.name!r} has {robot.base_link!r}')
    return robot.base_link


def nav2_parameters(contract: PolicyContract, robot: RobotConfig, cfg: Nav2KitConfig,
                    envelope: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """
    Return the parameter tree of Nav2's navigation servers (``<node>: ros__parameters:``).

    With ``envelope`` (the policy's command envelope report), the speed limits and the spin
    behaviour's least yaw rate come from it (:func:`envelope_limits`).
    """
    limits = command_limits(contract.commands, cfg.rise_time_s)
    min_spin = _round(min(0.4, limits.wz_symmetric_rad_s))
    if envelope is not None:
        limits, min_spin = envelope_limits(limits, envelope)
    footprint = str(footprint_polygon(footprint_box_m(robot)))
    base = base_frame(contract, robot)
    stamped = bool(cfg.enable_stamped_cmd_vel)
    vx, vy, wz = limits.vx_m_s, limits.vy_m_s, limits.wz_rad_s
    ax, ay, az = limits.ax_m_s2, limits.ay_m_s2, limits.az_rad_s2
    inflation = {'plugin': 'nav2_costmap_2d::InflationLayer', 'cost_scaling_factor': 3.0,
                 'inflation_radius': 0.55}

    def costmap(frame: str, size_m: int, update_hz: float) -> Dict[str, Any]:
        return {'ros__parameters': {
            'global_frame': frame, 'robot_base_frame': base, 'rolling_window': True,
            'width': size_m, 'height': size_m, 'resolution': 0.05,
            'update_frequency': update_hz, 'publish_frequency': update_hz,
            'footprint': footprint, 'footprint_padding': cfg.footprint_padding_m,
            'track_unknown_space': False, 'always_send_full_costmap': True,
            'plugins': ['inflation_layer'], 'inflation_layer': dict(inflation)}}

    return {
        'bt_navigator': {'ros__parameters': {
            'global_frame': cfg.global_frame, 'robot_base_frame': base,
            'odom_topic': cfg.odom_topic, 'bt_loop_duration': 10,
            'default_server_timeout': 20, 'navigators': ['navigate_to_pose',
                                                         'navigate_through_poses'],
            'navigate_to_pose': {'plugin': 'nav2_bt_navigator::NavigateToPoseNavigator'},
            'navigate_through_poses': {
                'plugin': 'nav2_bt_navigator::NavigateThroughPosesNavigator'}}},
        'controller_server': {'ros__parameters': {
            'controller_frequency': cfg.controller_frequency_hz,
            'odom_topic': cfg.odom_topic,
            'enable_stamped_cmd_vel': stamped,
            # Holonomic: keep small vy (Nav2's example 0.5 zeroes vy for differential drive).
            'min_x_velocity_threshold': 0.001, 'min_y_velocity_threshold': 0.001,
            'min_theta_velocity_threshold': 0.001, 'failure_tolerance': 0.3,
            'progress_checker_plugins': ['progress_checker'],
            'goal_checker_plugins': ['general_goal_checker'],
            'controller_plugins': ['FollowPath'],
            'progress_checker': {'plugin': 'nav2_controller::SimpleProgressChecker',
                                 'required_movement_radius': 0.5,
                                 'movement_time_allowance': 10.0},
            'general_goal_checker': {'plugin': 'nav2_controller::SimpleGoalChecker',
                                     'stateful': True,
                                     'xy_goal_tolerance': cfg.xy_goal_tolerance_m,
                                     'yaw_goal_tolerance': cfg.yaw_goal_tolerance_rad},
            'FollowPath': {
                'plugin': 'nav2_mppi_controller::MPPIController',
                'motion_model': 'Omni',
                'time_steps': 56, 'model_dt': 1.0 / cfg.controller_frequency_hz,
                'batch_size': 2000, 'iteration_count': 1,
                'vx_max': vx[1], 'vx_min': vx[0], 'vy_max': limits.vy_symmetric_m_s,
                'wz_max': limits.wz_symmetric_rad_s,
                'ax_max': ax, 'ax_min': -ax, 'ay_max': ay, 'ay_min': -ay, 'az_max': az,
                'vx_std': 0.2, 'vy_std': 0.2, 'wz_std': 0.4,
                'temperature': 0.3, 'gamma': 0.015, 'prune_distance': 1.7,
                'transform_tolerance': 0.1, 'visualize': False,
                'critics': ['ConstraintCritic', 'CostCritic', 'GoalCritic', 'GoalAngleCritic',
                            'PathAlignCritic', 'PathFollowCritic', 'PathAngleCritic',
                            'PreferForwardCritic', 'TwirlingCritic'],
                'ConstraintCritic': _critic(4.0),
                'CostCritic': _critic(3.81, consider_footprint=True),
                'GoalCritic': _critic(5.0, threshold_to_consider=1.4),
                'GoalAngleCritic': _critic(3.0, threshold_to_consider=0.5),
                'PathAlignCritic': _critic(14.0, threshold_to_consider=0.5),
                'PathFollowCritic': _critic(5.0, threshold_to_consider=1.4),
                'PathAngleCritic': _critic(2.0, threshold_to_consider=0.5),
                # Walking backwards is slower than forwards: prefer forward, mildly.
                'PreferForwardCritic': _critic(3.0, threshold_to_consider=0.5),
                'TwirlingCritic': _critic(10.0)}}},
        'local_costmap': {'local_costmap': costmap(cfg.odom_frame, 4, 5.0)},
        'global_costmap': {'global_costmap': costmap(cfg.global_frame, 40, 1.0)},
        'planner_server': {'ros__parameters': {
            'expected_planner_frequency': 20.0, 'planner_plugins': ['GridBased'],
            'GridBased': {'plugin': 'nav2_navfn_planner::NavfnPlanner', 'tolerance': 0.5,
                          'use_astar': False, 'allow_unknown': True}}},
        'smoother_server': {'ros__parameters': {
            'smoother_plugins': ['simple_smoother'],
            'simple_smoother': {'plugin': 'nav2_smoother::SimpleSmoother',
                                'tolerance': 1.0e-10, 'max_its': 1000,
                                'do_refinement': True}}},
        'behavior_server': {'ros__parameters': {
            'enable_stamped_cmd_vel': stamped,
            'local_frame': cfg.odom_frame, 'global_frame': cfg.global_frame,
            'robot_base_frame': base, 'transform_tolerance': 0.1,
            'local_costmap_topic': 'local_costmap/costmap_raw',
            'global_costmap_topic': 'global_costmap/costmap_raw',
            'local_footprint_topic': 'local_costmap/published_footprint',
            'global_footprint_topic': 'global_costmap/published_footprint',
            'cycle_frequency': 10.0,
            'behavior_plugins': ['spin', 'backup', 'drive_on_heading', 'wait'],
            'spin': {'plugin': 'nav2_behaviors::Spin'},
            'backup': {'plugin': 'nav2_behaviors::BackUp'},
            'drive_on_heading': {'plugin': 'nav2_behaviors::DriveOnHeading'},
            'wait': {'plugin': 'nav2_behaviors::Wait'},
            'simulate_ahead_time': 2.0,
            'max_rotational_vel': limits.wz_symmetric_rad_s,
            'min_rotational_vel': min_spin,
            'rotational_acc_lim': az}},
        'waypoint_follower': {'ros__parameters': {
            'loop_rate': 20, 'stop_on_failure': False,
            'waypoint_task_executor_plugin': 'wait_at_waypoint',
            'wait_at_waypoint': {'plugin': 'nav2_waypoint_follower::WaitAtWaypoint',
                                 'enabled': True, 'waypoint_pause_duration': 200}}},
        'velocity_smoother': {'ros__parameters': {
            'enable_stamped_cmd_vel': stamped,
            'smoothing_frequency': cfg.controller_frequency_hz,
            'scale_velocities': True, 'feedback': 'OPEN_LOOP',
            'max_velocity': [vx[1], vy[1], wz[1]],
            'min_velocity': [vx[0], vy[0], wz[0]],
            'max_accel': [ax, ay, az], 'max_decel': [-ax, -ay, -az],
            'odom_topic': cfg.odom_topic, 'odom_duration': 0.1,
            'deadband_velocity': [0.0, 0.0, 0.0], 'velocity_timeout': 1.0}},
        'collision_monitor': {'ros__parameters': {
            'enable_stamped_cmd_vel': stamped,
            'base_frame_id': base, 'odom_frame_id': cfg.odom_frame,
            'cmd_vel_in_topic': 'cmd_vel_smoothed', 'cmd_vel_out_topic': 'cmd_vel',
            'state_topic': 'collision_monitor_state', 'transform_tolerance': 0.2,
            'source_timeout': 1.0, 'base_shift_correction': True, 'stop_pub_timeout': 2.0,
            'polygons': ['FootprintApproach'],
            'FootprintApproach': {'type': 'polygon', 'action_type': 'approach',
                                  'footprint_topic': '/local_costmap/published_footprint',
                                  'time_before_collision': 1.2,
                                  'simulation_time_step': 0.1, 'min_points': 6,
                                  'visualize': False, 'enabled': True},
            # No range sensor on the robot model: the source is declared but disabled.
            'observation_sources': ['scan'],
            'scan': {'type': 'scan', 'topic': 'scan', 'min_height': 0.15,
                     'max_height': 2.0, 'enabled': False}}},
        'docking_server': {'ros__parameters': {
            'enable_stamped_cmd_vel': stamped,
            'base_frame': base, 'fixed_frame': cfg.odom_frame,
            'dock_plugins': ['simple_charging_dock'],
            'simple_charging_dock': {'plugin': 'opennav_docking::SimpleChargingDock'},
            'controller': {'v_linear_min': 0.1, 'v_linear_max': _round(min(0.3, vx[1])),
                           'v_angular_max': limits.wz_symmetric_rad_s}}},
    }


class _Dumper(yaml.SafeDumper):
    """Block mappings, flow lists (``max_velocity: [1.2, 0.5, 1.0]``)."""


_Dumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence('tag:yaml.org,2002:seq', data,
                                                         flow_style=True))


def stamped_cmd_vel(params: Dict[str, Any], default: bool = True) -> bool:
    """
    Return whether Nav2's final ``cmd_vel`` is TwistStamped, per a Nav2 parameter tree.

    The last publisher of ``cmd_vel`` decides: the collision monitor, else the velocity
    smoother, else the controller server; ``default`` (Kilted's: true) when none sets
    ``enable_stamped_cmd_vel``. The launch file passes the result to the policy node.
    """
    for node in ('collision_monitor', 'velocity_smoother', 'controller_server'):
        value = (params.get(node) or {}).get('ros__parameters', {}).get('enable_stamped_cmd_vel')
        if value is not None:
            return bool(value)
    return default


def render_yaml(params: Dict[str, Any], header_lines: Sequence[str]) -> str:
    """Return the parameter tree as YAML text under a ``#`` comment header."""
    header = ''.join(f'# {line}'.rstrip() + '\n' for line in header_lines)
    body = yaml.dump(params, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=99)
    return header + body


def generate(cfg: Nav2KitConfig) -> str:
    """Return the text of the Nav2 parameter file for ``cfg``."""
    contract = read_contract(cfg.policy)
    robot = load_robot(cfg.robot or contract.robot)
    limits = command_limits(contract.commands, cfg.rise_time_s)
    envelope_path = Path(cfg.envelope) if cfg.envelope else None
    envelope = (read_envelope(envelope_path, contract.onnx_path(cfg.policy), robot.name)
                if envelope_path else None)
    box = footprint_box_m(robot)
    envelope_option = f' --envelope {_shown(envelope_path)}' if envelope_path else ''
    header = [
        'Nav2 parameters for the walking humanoid: GENERATED, do not edit by hand.',
        'python -m humanoid_rl_ros.integration.nav2_params --policy '
        f'models/{Path(cfg.policy).name}{envelope_option} --out config/nav2_params.yaml',
        f'Policy contract {Path(cfg.policy).name} (robot {robot.name}): trained commands '
        f'vx {list(limits.vx_m_s)} m/s, vy {list(limits.vy_m_s)} m/s, '
        f'wz {list(limits.wz_rad_s)} rad/s.',
        f'Acceleration rule: accel = max(|low|, |high|) / {cfg.rise_time_s:g} s per axis '
        f'-> [{limits.ax_m_s2:g} m/s^2, {limits.ay_m_s2:g} m/s^2, {limits.az_rad_s2:g} rad/s^2].',
        f'Footprint: xy box of the robot geoms at the default pose, in {robot.base_link} '
        f'(x {box[0][0]:.3f}..{box[1][0]:.3f} m, y {box[0][1]:.3f}..{box[1][1]:.3f} m).',
        f'Frames: {cfg.global_frame} -> {cfg.odom_frame} (localization) -> {robot.base_link} '
        f'(odometry on {cfg.odom_topic}); cmd_vel '
        f'{"TwistStamped" if cfg.enable_stamped_cmd_vel else "Twist"}.',
        'Costmaps: inflation only, rolling windows (no map, no sensors); see docs/NAV2.md.',
    ]
    if envelope is not None:
        followed, spin = envelope_limits(limits, envelope)
        header.insert(3, f'Command envelope {envelope_path.name}: followed vx '
                         f'{list(followed.vx_m_s)} m/s, vy {list(followed.vy_m_s)} m/s, wz '
                         f'{list(followed.wz_rad_s)} rad/s (the speed limits); turns on the spot '
                         f"from {spin:g} rad/s (the spin behaviour's least rate).")
    return render_yaml(nav2_parameters(contract, robot, cfg, envelope), header)


def _shown(path: Path) -> str:
    """Return ``path`` as the header names it: relative to the working directory if inside."""
    if path.is_absolute():
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def read_envelope(path: Path, policy_onnx: Path, robot: str) -> Dict[str, Any]:
    """
    Return a command envelope report, refused (``ValueError``) if it is of another policy.

    The report records the graph it swept (``policy_graph_sha256``: weights included) and the
    robot; both must be this policy's (``policy_onnx``, its ONNX file). A policy retrained
    under the same name has another graph, so its old envelope is refused.
    """
    report = json.loads(Path(path).read_text())
    swept, mine = report.get('policy_graph_sha256'), graph_sha256(policy_onnx)
    if swept != mine or report.get('robot') != robot:
        what = ('records no policy graph' if swept is None
                else f'swept {report.get("policy")} (graph {swept[:12]}, robot '
                     f'{report.get("robot")})')
        raise ValueError(f'{path} {what}, not this policy ({Path(policy_onnx).name}, graph '
                         f'{mine[:12]}, robot {robot}): sweep it with python -m '
                         'training.robustness.envelope')
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write (or ``--check``) the Nav2 parameter file; return the exit status."""
    import tyro
    cfg = tyro.cli(Nav2KitConfig, args=argv, description=__doc__.split('\n\n')[0].strip())
    try:
        text = generate(cfg)
    except ValueError as exc:  # a contract or envelope these limits cannot come from
        print(f'nav2_params: {exc}', file=sys.stderr)
        return 2
    if cfg.check:
        current = cfg.out.read_text() if cfg.out.is_file() else ''
        if current != text:
            print(f'{cfg.out} is stale: regenerate it with python -m '
                  'humanoid_rl_ros.integration.nav2_params', file=sys.stderr)
            return 1
        print(f'{cfg.out} is up to date')
        return 0
    if str(cfg.out) == '-':
        sys.stdout.write(text)
        return 0
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(text)
    print(f'wrote {cfg.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
