"""
The policy node's parameters: the one table of names, types, defaults and ranges; validation.

:data:`PARAMS` is where every default lives: the presets under ``config/`` list only what they
change, and a parameter a file leaves out takes its default from here when the node declares it
(:func:`declare_parameters`). :func:`parameter_problem` checks one value (the node's
on-set-parameters callback and its configure use it), :func:`controller_config` maps the
parameters onto :class:`~humanoid_rl_ros.core.controller.ControllerConfig`.
"""

import math
from typing import Any, Callable, Dict, Optional, Tuple

from humanoid_rl_ros.core.controller import ControllerConfig, ORIENTATION_SOURCES
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType)

OUTPUT_TYPES = ('joint_state', 'float64_array')
"""Accepted values of the ``output_type`` parameter."""
OUTPUT_MODES = ('effort', 'position')
"""Accepted values of the ``output_mode`` parameter."""
CONTROL_TRIGGERS = ('timer', 'joint_states')
"""Accepted values of the ``control_trigger`` parameter."""
CMD_VEL_TYPES = ('auto', 'twist', 'stamped')
"""Accepted values of the ``cmd_vel_type`` parameter."""

CHOICES: Dict[str, Tuple[str, ...]] = {
    'output_type': OUTPUT_TYPES,
    'output_mode': OUTPUT_MODES,
    'orientation_source': ORIENTATION_SOURCES,
    'control_trigger': CONTROL_TRIGGERS,
    'cmd_vel_type': CMD_VEL_TYPES,
}
"""String parameters with a fixed set of values."""

_CONTROLLER = ControllerConfig()
"""The controller's defaults: the node's controller parameters take them (one source)."""

# name: (type, default, description, read_only, (from, to) range or None)
PARAMS: Dict[str, Tuple[int, Any, str, bool, Optional[Tuple[float, float]]]] = {
    'policy': (ParameterType.PARAMETER_STRING, '',
               'Policy contract path (<policy>.yaml, its .onnx sibling) or a policy name '
               'looked up as models/<name>.yaml in the package share folder.', True, None),
    'autostart': (ParameterType.PARAMETER_BOOL, False,
                  'Configure and activate right after start-up (no lifecycle manager needed). '
                  'Configure is retried while no joint_states arrive; activation waits for a '
                  'joint_states received fresh on the node clock, whatever /clock does '
                  '(/diagnostics waiting_for says what it waits for).', True, None),
    'start_walking_on_activate': (ParameterType.PARAMETER_BOOL, False,
                                  'Request walking on activation; it starts once the stand ramp '
                                  'completes and odometry is fresh.', False, None),
    'output_type': (ParameterType.PARAMETER_STRING, 'joint_state',
                    'Effort output: joint_state (sensor_msgs/JointState names+effort on '
                    'joint_command, Isaac Sim articulation controller) or float64_array '
                    '(std_msgs/Float64MultiArray in output_joint_order, ros2_control '
                    'forward_command_controller with interface_name effort).', True, None),
    'output_mode': (ParameterType.PARAMETER_STRING, 'effort',
                    'effort: efforts every control tick (the PD law runs in the node, as '
                    'trained). position: joint position targets every decimation ticks (the '
                    'policy rate), with zero velocities, for drives that run the contract PD '
                    'law themselves (its kp, kd and effort limits; a ros2_control '
                    'forward_command_controller with interface_name position for '
                    'float64_array). Deactivating sends nothing in position mode (the drives '
                    'hold their last target).', True, None),
    'output_joint_order': (ParameterType.PARAMETER_STRING_ARRAY, [''],
                           'Joint order of the float64_array output (the joints list of the '
                           'ros2_control forward_command_controller). Empty: policy order. '
                           'Joints not in the policy get 0 N*m.',
                           True, None),
    'orientation_source': (ParameterType.PARAMETER_STRING, 'odom',
                           'Base orientation and angular velocity from odom (nav_msgs/Odometry) '
                           'or imu (sensor_msgs/Imu on imu). Linear velocity always comes from '
                           'odom.', True, None),
    'cmd_vel_type': (ParameterType.PARAMETER_STRING, 'auto',
                     'Message type of cmd_vel. auto: the type its publishers send, checked '
                     'every 0.5 s (geometry_msgs/TwistStamped from Nav2 Kilted and newer, '
                     'geometry_msgs/Twist from Nav2 Jazzy/Humble and teleop; TwistStamped '
                     'while there is none); /diagnostics warns of publishers not heard (both '
                     'types at once). twist or stamped: that type only.', True, None),
    'cmd_vel_stamped': (ParameterType.PARAMETER_BOOL, False,
                        'Older form of cmd_vel_type: true is cmd_vel_type stamped; false '
                        'leaves the choice to cmd_vel_type.', True, None),
    'control_trigger': (ParameterType.PARAMETER_STRING, 'timer',
                        'timer: one control tick per physics_dt_s of ROS time (a timer on the '
                        'node clock, so use_sim_time works). joint_states: one tick per '
                        'joint_states message (lowest latency; use only when joint_states '
                        'arrive once per physics step), with a timer watchdog for staleness.',
                        True, None),
    'stand_ramp_s': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.stand_ramp_s,
                     'Time to ramp from the measured pose to the default pose [s].', False,
                     (0.0, 60.0)),
    'joint_state_timeout_s': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.joint_state_timeout_s,
                              'joint_states older than this is unusable [s]: held for '
                              'fault_hold_s, then damping.', False, (0.001, 10.0)),
    'odom_timeout_s': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.odom_timeout_s,
                       'odom older than this is unusable while walking [s]: held for '
                       'fault_hold_s, then the robot stands (policy stopped).', False,
                       (0.001, 10.0)),
    'imu_timeout_s': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.imu_timeout_s,
                      'imu older than this is unusable while walking [s] (orientation_source '
                      'imu): held for fault_hold_s, then the robot stands.', False,
                      (0.001, 10.0)),
    'cmd_vel_timeout_s': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.cmd_vel_timeout_s,
                          'A cmd_vel older than this counts as zero [s].', False, (0.001, 60.0)),
    'damping_kd_scale': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.damping_kd_scale,
                         'Damping state gain as a multiple of the contract kd [-]: effort = '
                         '-scale * kd * qd.', False, (0.0, 10.0)),
    'fault_hold_s': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.fault_hold_s,
                     'How long an unusable input is ridden out on its last good value before '
                     'the fault counts as sustained [s] (then: damping for joint_states, a '
                     'supported stand for odom/imu); 0: every fault is sustained at once.',
                     False, (0.0, 10.0)),
    'max_tilt_rad': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.max_tilt_rad,
                     'Damping when the base tilts further from upright than this [rad] '
                     '(standing is impossible); pi turns the check off.', False,
                     (0.01, math.pi)),
    'auto_resume_walk': (ParameterType.PARAMETER_BOOL, _CONTROLLER.auto_resume_walk,
                         'After a sustained odom/imu fault stood the robot up, walk again by '
                         'itself once the inputs are healthy (false: wait for ~/walk).', False,
                         None),
    'use_header_stamps': (ParameterType.PARAMETER_BOOL, _CONTROLLER.use_header_stamps,
                          'Count a sensor message as new only if its header stamp differs from '
                          'the previous one (a driver re-sending frozen data goes stale); '
                          'unstamped (zero) headers always count.', False, None),
    'idle_stand_after_s': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.idle_stand_after_s,
                           'Idle stand [s]: while walking, after a zero command and a calm base '
                           'for this long, pause the policy at a touchdown of its gait clock and '
                           'hold the default pose on PD; a command or a push hands back to the '
                           'policy (docs/SAFETY.md gives the measured trade-off). 0: off.',
                           False, (0.0, 60.0)),
    'idle_stand_ramp_s': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.idle_stand_ramp_s,
                          'Idle stand: ramp from the measured pose to the default pose [s].',
                          False, (0.0, 10.0)),
    'idle_exit_ang_vel_rad_s': (ParameterType.PARAMETER_DOUBLE,
                                _CONTROLLER.idle_exit_ang_vel_rad_s,
                                'Idle stand: hand back to the policy when the base angular '
                                'speed exceeds this [rad/s].', False, (0.01, 20.0)),
    'idle_exit_tilt_rad': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.idle_exit_tilt_rad,
                           'Idle stand: hand back to the policy when the base tilts more than '
                           'this [rad].', False, (0.01, 1.5)),
    'idle_exit_speed_m_s': (ParameterType.PARAMETER_DOUBLE, _CONTROLLER.idle_exit_speed_m_s,
                            'Idle stand: hand back to the policy when the planar base speed '
                            '(from odom, where fresh) exceeds this [m/s].', False, (0.01, 10.0)),
    'joint_state_wait_s': (ParameterType.PARAMETER_DOUBLE, 10.0,
                           'How long configure waits for the first joint_states [s] '
                           '(wall time).', False, (0.1, 600.0)),
    'diagnostics_period_s': (ParameterType.PARAMETER_DOUBLE, 1.0,
                             'Period of the /diagnostics status [s] (wall time, so it comes '
                             'also while /clock stands still).', True, (0.01, 60.0)),
    'control_thread_priority': (ParameterType.PARAMETER_INTEGER, 0,
                                'SCHED_FIFO real-time priority of the control thread (1-99; 0: '
                                'normal scheduling). Needs CAP_SYS_NICE or an rtprio limit '
                                '(e.g. "@realtime - rtprio 98" in /etc/security/limits.conf); '
                                'where that is not permitted the node logs a warning and runs '
                                'at normal priority. Only this thread: the DDS threads that '
                                'deliver its inputs keep theirs (the launch argument '
                                'realtime_priority makes the whole process SCHED_FIFO).',
                                True, (0, 99)),
}
"""Every parameter of the policy node: name -> (type, default, description, read-only, range)."""

CONTROLLER_PARAMS = ('stand_ramp_s', 'joint_state_timeout_s', 'odom_timeout_s', 'imu_timeout_s',
                     'cmd_vel_timeout_s', 'damping_kd_scale', 'fault_hold_s', 'max_tilt_rad',
                     'idle_stand_after_s', 'idle_stand_ramp_s', 'idle_exit_ang_vel_rad_s',
                     'idle_exit_tilt_rad', 'idle_exit_speed_m_s')
"""Number parameters that are fields of :class:`ControllerConfig` (settable while running)."""
CONTROLLER_BOOL_PARAMS = ('auto_resume_walk', 'use_header_stamps')
"""Boolean parameters that are fields of :class:`ControllerConfig` (settable while running)."""


def descriptor(name: str) -> ParameterDescriptor:
    """Return the ``ParameterDescriptor`` of parameter ``name`` (with its range, if any)."""
    ptype, _, description, read_only, value_range = PARAMS[name]
    desc = ParameterDescriptor(name=name, type=ptype, description=description,
                               read_only=read_only)
    if value_range is not None and ptype == ParameterType.PARAMETER_INTEGER:
        desc.integer_range = [IntegerRange(from_value=value_range[0], to_value=value_range[1],
                                           step=1)]
    elif value_range is not None:
        desc.floating_point_range = [FloatingPointRange(
            from_value=value_range[0], to_value=value_range[1], step=0.0)]
    return desc


def declare_parameters(node) -> None:
    """Declare every parameter of :data:`PARAMS` on ``node`` (overrides from files apply)."""
    for name, (_, default, _, _, _) in PARAMS.items():
        node.declare_parameter(name, default, descriptor(name))


def parameter_problem(name: str, value: Any) -> str:
    """Return why ``value`` is not valid for parameter ``name`` ('' if it is or not checked)."""
    if name in CONTROLLER_PARAMS:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(float(value))):
            return f'{name} must be a finite number'
    elif name in CHOICES and value not in CHOICES[name]:
        return f'{name} must be one of {CHOICES[name]}, got {value!r}'
    return ''


def controller_overrides(params) -> Tuple[Dict[str, Any], str]:
    """
    Return ``(controller fields, '')`` set by a parameter change, or ``({}, the problem)``.

    ``params`` are ``rclpy.parameter.Parameter`` (name, value); each is checked with
    :func:`parameter_problem`.
    """
    overrides: Dict[str, Any] = {}
    for param in params:
        problem = parameter_problem(param.name, param.value)
        if problem:
            return {}, problem
        if param.name in CONTROLLER_PARAMS:
            overrides[param.name] = float(param.value)
        elif param.name in CONTROLLER_BOOL_PARAMS:
            overrides[param.name] = bool(param.value)
    return overrides, ''


def controller_config(get: Callable[[str], Any],
                      overrides: Optional[Dict[str, object]] = None) -> ControllerConfig:
    """
    Return the validated controller settings from the parameters (``get(name)`` -> value).

    Raise :class:`~humanoid_rl_ros.core.controller.ControllerError` naming an invalid field.
    """
    values: Dict[str, Any] = {name: float(get(name)) for name in CONTROLLER_PARAMS}
    values.update({name: bool(get(name)) for name in CONTROLLER_BOOL_PARAMS})
    values['orientation_source'] = str(get('orientation_source'))
    values.update(overrides or {})
    config = ControllerConfig(**values)
    config.validate()
    return config


def cmd_vel_mode(get: Callable[[str], Any]) -> str:
    """
    Return the ``cmd_vel`` type mode (one of :data:`CMD_VEL_TYPES`) the parameters ask for.

    Raise ``ValueError`` when ``cmd_vel_stamped: true`` contradicts ``cmd_vel_type: twist``.
    """
    mode = str(get('cmd_vel_type'))
    if not bool(get('cmd_vel_stamped')):
        return mode
    if mode == 'twist':
        raise ValueError('cmd_vel_stamped is true but cmd_vel_type is twist; set one of them')
    return 'stamped'
