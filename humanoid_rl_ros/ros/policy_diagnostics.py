"""
The policy node's ``/diagnostics`` status: its key/values, level and message.

:func:`status_values` lists what a monitor needs (lifecycle and controller state, the fault,
the effective command, input health, rates); :func:`diagnostic_array` turns them into the
``diagnostic_msgs/DiagnosticArray`` the node publishes; :class:`StateChanges` follows the
controller's state tick by tick (since when, and its log lines). No rclpy here (messages only;
the logger is passed in).
"""

from typing import Dict, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from humanoid_rl_ros.core.controller import ControllerState
from humanoid_rl_ros.core.timebase import ns_to_stamp


def format_ns(time_ns: Optional[int]) -> str:
    """Return a ROS time [ns] as exact decimal seconds ('' for None)."""
    if time_ns is None:
        return ''
    sec, nsec = ns_to_stamp(abs(time_ns))
    return f'{"-" if time_ns < 0 else ""}{sec}.{nsec:09d}'


class PolicyRate:
    """The policy rate [Hz]: policy steps per second of ROS time between two updates."""

    def __init__(self) -> None:
        """Start with no mark (rate 0)."""
        self.reset()

    def reset(self) -> None:
        """Forget the mark; the rate is 0 until two updates."""
        self._mark_s: Optional[float] = None
        self._mark_steps = 0
        self.hz = 0.0

    def update(self, now_s: float, policy_steps: int) -> None:
        """Take the steps since the last update over the ROS time since it [s]."""
        if self._mark_s is not None and now_s > self._mark_s:
            self.hz = (policy_steps - self._mark_steps) / (now_s - self._mark_s)
        self._mark_s, self._mark_steps = now_s, policy_steps


class StateChanges:
    """
    The controller's state as the control ticks see it: since when, and a log line per change.

    The state's entry time is the ROS time of the first tick that ran in it (``state_since_s``
    on ``/diagnostics``); a new hold reason is logged (throttled) as a warning, a new state as
    an error (damping), a warning (a fault stand) or information.
    """

    def __init__(self) -> None:
        """Start with no state seen, no hold reason and no idle stand."""
        self.hold = ''
        self.idle = False
        self.reset()

    def reset(self) -> None:
        """Forget the state (the next tick counts as a change); the hold reason is kept."""
        self.state = None
        self.since_ns: Optional[int] = None

    def tick(self, controller, now_ns: int, logger) -> bool:
        """
        Log what changed at the tick at ROS time ``now_ns``.

        Return whether the state, or whether the idle stand holds, changed (the node then
        publishes its diagnostics at once).
        """
        if controller.hold_reason != self.hold:
            self.hold = controller.hold_reason
            if self.hold:
                logger.warning(self.hold, throttle_duration_sec=1.0)
        idle_changed = controller.idle_standing != self.idle
        if idle_changed:
            self.idle = controller.idle_standing
            if controller.idle_note:
                logger.info(controller.idle_note)
        if controller.state is self.state:
            return idle_changed
        self.since_ns = now_ns
        if controller.state is ControllerState.DAMPING:
            logger.error(f'damping: {controller.fault_reason}; call ~/recover once the robot '
                         'can stand')
        elif controller.stand_reason:
            logger.warning(f'standing: {controller.stand_reason}')
        else:
            logger.info(f'state: {controller.state.value}')
        self.state = controller.state
        return True


def _format_tilt(tilt_rad: Optional[float]) -> str:
    return 'unknown (no fresh orientation)' if tilt_rad is None else f'{tilt_rad:.4f}'


def status_values(*, lifecycle_state: str, controller, last_error: str, policy: str,
                  now_s: float, policy_rate_hz: float, control_thread: str,
                  state_since_ns: Optional[int], waiting_for: str = '',
                  cmd_vel=None) -> Dict[str, str]:
    """
    Return the diagnostic key/values of the policy node.

    ``controller`` is the :class:`~humanoid_rl_ros.core.controller.Controller` (None while
    unconfigured); ``state_since_ns`` the ROS time of the first tick in the current state;
    ``waiting_for`` what bring-up or the control timer waits for ('' if nothing); ``cmd_vel``
    the :class:`~humanoid_rl_ros.ros.cmd_vel_types.CmdVelChoice` of the subscription.
    """
    values = {'lifecycle_state': lifecycle_state,
              'state': controller.state.value if controller is not None else 'inactive',
              'fault_reason': controller.fault_reason if controller is not None else '',
              'last_error': last_error,
              'waiting_for': waiting_for,
              'policy': policy}
    if cmd_vel is not None:
        values.update({'cmd_vel_type': cmd_vel.note, 'cmd_vel_warning': cmd_vel.warning})
    if controller is not None:
        command = controller.command(now_s)
        values.update({
            'policy_rate_hz': f'{policy_rate_hz:.1f}',
            'control_thread': control_thread,
            'policy_steps': str(controller.policy_steps),
            'state_since_s': format_ns(state_since_ns),
            'walk_requested': str(controller.walk_requested),
            'note': controller.note,
            'stand_reason': controller.stand_reason,
            'hold_reason': controller.hold_reason,
            'stamp_note': controller.stamp_note,
            'clock_note': controller.clock_note,
            'tilt_rad': _format_tilt(controller.tilt_rad(now_s)),
            'command_vx_m_s': f'{command[0]:.6g}',
            'command_vy_m_s': f'{command[1]:.6g}',
            'command_wz_rad_s': f'{command[2]:.6g}',
            'cmd_vel_note': controller.cmd_note,
            'joint_states': controller.joint_state_problem(now_s) or 'ok',
            'walking_inputs': controller.walking_input_problem(now_s) or 'ok',
            'idle_stand': ('off' if controller.config.idle_stand_after_s <= 0.0 else
                           'holding (policy paused)' if controller.idle_standing else
                           'ready' if controller.state is ControllerState.WALKING else
                           'not walking'),
            'idle_note': controller.idle_note,
        })
    return values


def diagnostic_array(name: str, hardware_id: str, values: Dict[str, str],
                     loop_failure: str, stamp) -> DiagnosticArray:
    """
    Return one status: ERROR on damping, an error or a dead control loop; WARN while inactive.

    WARN too while active and standing after a sustained fault (``stand_reason``), riding out a
    transient one (``hold_reason``), with a ``cmd_vel_warning`` (publishers not heard) or a
    ``waiting_for``. The message is ``<lifecycle>/<state>`` and the most pressing reason (fault,
    error, dead loop, stand reason, hold reason, cmd_vel warning, what it waits for, controller
    note).
    """
    lifecycle_state, state = values['lifecycle_state'], values['state']
    status = DiagnosticStatus(name=name, hardware_id=hardware_id)
    if state == 'damping' or values['last_error'] or loop_failure:
        status.level = DiagnosticStatus.ERROR
    elif (lifecycle_state != 'active' or values.get('waiting_for')
          or values.get('cmd_vel_warning') or values.get('stand_reason')
          or values.get('hold_reason')):
        status.level = DiagnosticStatus.WARN
    else:
        status.level = DiagnosticStatus.OK
    waiting = values.get('waiting_for')
    reason = (values['fault_reason'] or values['last_error'] or loop_failure
              or values.get('stand_reason') or values.get('hold_reason')
              or values.get('cmd_vel_warning') or (f'waiting for {waiting}' if waiting else '')
              or values.get('note', ''))
    status.message = f'{lifecycle_state}/{state}' + (f': {reason}' if reason else '')
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array
