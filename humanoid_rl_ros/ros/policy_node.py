"""
The policy node: a ROS 2 lifecycle node that runs an exported locomotion policy.

It wires topics, timers, services and parameters; all computation lives in the pure modules
:mod:`humanoid_rl_ros.core.controller` (state machine), :mod:`humanoid_rl_ros.core.policy_runtime`
(onnxruntime) and :mod:`humanoid_rl_ros.core.policy_math` (observation/PD math).

Lifecycle (``rclpy.lifecycle``; managed with the standard ``~/change_state`` services):

* ``configure``: load the policy (``policy`` parameter) and check its ONNX against its contract;
  wait up to ``joint_state_wait_s`` for the first ``joint_states`` and check every policy joint
  is there. Any problem fails the transition (the node stays *unconfigured*) and is logged and
  published on ``/diagnostics`` with the problem named.
* ``activate``: the controller goes to *standing* (ramp to the default pose); with
  ``start_walking_on_activate`` it walks once the ramp completes.
* ``deactivate``: one zero-effort command is sent, then nothing more is published.
* ``autostart`` (parameter): configure + activate right after start-up.

Controller states while active: standing, walking, damping (see the controller module). Services
(``std_srvs/Trigger``, relative to the node name): ``~/walk``, ``~/stand``, ``~/recover``.
``/diagnostics`` carries the state and ``state_since_s``, the ROS time of the control tick that
first ran in it (exact decimal seconds), so a monitor that matches the node's publisher late
(DDS discovery on a loaded machine can take seconds) still learns when walking began.

Recovery from damping: fix the input (e.g. restart the joint-state publisher), then call
``~/recover`` -> standing; then ``~/walk``. Alternatively deactivate + activate the node.
"""

from array import array
from contextlib import ExitStack
import gc
import math
import os
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist, TwistStamped
from humanoid_rl_ros.core.controller import (Controller, ControllerConfig, ControllerError,
                                             ControllerState, match_joint_indices,
                                             ORIENTATION_SOURCES)
from humanoid_rl_ros.core.policy_math import all_finite
from humanoid_rl_ros.core.policy_runtime import PolicyLoadError, PolicyRuntime
from humanoid_rl_ros.core.timebase import ns_to_stamp
from humanoid_rl_ros.ros import cdr
from humanoid_rl_ros.ros.node_main import run_node
from humanoid_rl_ros.ros.ros_conversions import (imu_to_arrays, joint_state_to_arrays,
                                                 make_float64_array, odometry_to_arrays,
                                                 twist_to_command)
from nav_msgs.msg import Odometry
import numpy as np
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
import rclpy
from rclpy.callback_groups import CallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.guard_condition import GuardCondition
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.time_source import TimeSource
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

OUTPUT_TYPES = ('joint_state', 'float64_array')
"""Accepted values of the ``output_type`` parameter."""
CONTROL_TRIGGERS = ('timer', 'joint_states')
"""Accepted values of the ``control_trigger`` parameter."""

# Topic names are relative, so a namespace or a remap (``-r joint_states:=/robot/js``) moves them.
JOINT_STATES_TOPIC = 'joint_states'
ODOM_TOPIC = 'odom'
IMU_TOPIC = 'imu'
CMD_VEL_TOPIC = 'cmd_vel'
JOINT_COMMAND_TOPIC = 'joint_command'
DIAGNOSTICS_TOPIC = '/diagnostics'

# Sensor inputs use the sensor-data QoS (best effort, keep last 5): a best-effort reader matches
# both reliable and best-effort writers (Isaac Sim's bridge, ros2_control's broadcaster, the sim
# node), and a late sample is useless for control anyway; staleness is detected by timeouts.
SENSOR_QOS = qos_profile_sensor_data
# Commands in and out use the ROS default (reliable, keep last 10), which Nav2, teleop,
# Isaac Sim's articulation controller and forward_command_controller all use.
COMMAND_QOS = QoSProfile(depth=10)

# name: (type, default, description, read_only, (from, to) range or None)
_PARAMS = {
    'policy': (ParameterType.PARAMETER_STRING, '',
               'Policy contract path (<policy>.yaml, its .onnx sibling) or a policy name '
               'looked up as models/<name>.yaml in the package share folder.', True, None),
    'autostart': (ParameterType.PARAMETER_BOOL, False,
                  'Configure and activate right after start-up (no lifecycle manager needed).',
                  True, None),
    'start_walking_on_activate': (ParameterType.PARAMETER_BOOL, False,
                                  'Request walking on activation; it starts once the stand ramp '
                                  'completes and odometry is fresh.', False, None),
    'output_type': (ParameterType.PARAMETER_STRING, 'joint_state',
                    'Effort output: joint_state (sensor_msgs/JointState names+effort on '
                    'joint_command, Isaac Sim articulation controller) or float64_array '
                    '(std_msgs/Float64MultiArray in output_joint_order, ros2_control '
                    'forward_command_controller with interface_name effort).', True, None),
    'output_joint_order': (ParameterType.PARAMETER_STRING_ARRAY, [''],
                           'Joint order of the float64_array output (the joints list of the '
                           'ros2_control forward_command_controller). Empty: policy order. '
                           'Joints not in the policy get 0 N*m.',
                           True, None),
    'orientation_source': (ParameterType.PARAMETER_STRING, 'odom',
                           'Base orientation and angular velocity from odom (nav_msgs/Odometry) '
                           'or imu (sensor_msgs/Imu on imu). Linear velocity always comes from '
                           'odom.', True, None),
    'cmd_vel_stamped': (ParameterType.PARAMETER_BOOL, False,
                        'cmd_vel is geometry_msgs/TwistStamped (Nav2 Kilted and newer) instead '
                        'of geometry_msgs/Twist (Nav2 Jazzy/Humble, teleop).', True, None),
    'control_trigger': (ParameterType.PARAMETER_STRING, 'timer',
                        'timer: one control tick per physics_dt_s of ROS time (a timer on the '
                        'node clock, so use_sim_time works). joint_states: one tick per '
                        'joint_states message (lowest latency; use only when joint_states '
                        'arrive once per physics step), with a timer watchdog for staleness.',
                        True, None),
    'stand_ramp_s': (ParameterType.PARAMETER_DOUBLE, 2.0,
                     'Time to ramp from the measured pose to the default pose [s].', False,
                     (0.0, 60.0)),
    'joint_state_timeout_s': (ParameterType.PARAMETER_DOUBLE, 0.1,
                              'joint_states older than this while active -> damping [s].', False,
                              (0.001, 10.0)),
    'odom_timeout_s': (ParameterType.PARAMETER_DOUBLE, 0.1,
                       'odom older than this while walking -> damping [s].', False,
                       (0.001, 10.0)),
    'imu_timeout_s': (ParameterType.PARAMETER_DOUBLE, 0.1,
                      'imu older than this while walking -> damping [s] (orientation_source '
                      'imu).', False, (0.001, 10.0)),
    'cmd_vel_timeout_s': (ParameterType.PARAMETER_DOUBLE, 0.5,
                          'A cmd_vel older than this counts as zero [s].', False, (0.001, 60.0)),
    'damping_kd_scale': (ParameterType.PARAMETER_DOUBLE, 1.0,
                         'Damping state gain as a multiple of the contract kd [-]: effort = '
                         '-scale * kd * qd.', False, (0.0, 10.0)),
    'joint_state_wait_s': (ParameterType.PARAMETER_DOUBLE, 10.0,
                           'How long configure waits for the first joint_states [s] '
                           '(wall time).', False, (0.1, 600.0)),
    'diagnostics_period_s': (ParameterType.PARAMETER_DOUBLE, 1.0,
                             'Period of the /diagnostics status [s] (ROS time).', True,
                             (0.01, 60.0)),
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

_CONTROLLER_PARAMS = ('stand_ramp_s', 'joint_state_timeout_s', 'odom_timeout_s', 'imu_timeout_s',
                      'cmd_vel_timeout_s', 'damping_kd_scale')


try:  # the wait-set binding rclpy's own executors use; without it the executor runs everything
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
except ImportError:  # pragma: no cover - other rclpy layouts
    _rclpy = None


class _ControlGroup(CallbackGroup):
    """
    Callback group of the control path's entities: only the :class:`_ControlLoop` runs them.

    An executor never waits on nor executes an entity of this group, also before the loop has
    started (messages wait in the subscription's queue), so no control callback ever runs
    outside the loop's thread.
    """

    def can_execute(self, entity) -> bool:
        """Return False: executors leave the group's entities alone."""
        return False

    def beginning_execution(self, entity) -> bool:
        """Return False: executors leave the group's entities alone."""
        return False

    def ending_execution(self, entity) -> None:
        """Do nothing (nothing is ever executed)."""


class _ControlLoop:
    """
    Run the control path (sensor and command subscriptions, ``/clock``, timers) in a thread.

    rclpy's executors rebuild a wait set over every entity of the node (a lifecycle node with
    parameter, lifecycle and Trigger services, publisher and subscription event handlers) and
    wrap each callback in a task on every wake-up: measured on the 2-vCPU dev box, 0.13-0.2 ms
    from a message's publication to its callback, against 0.02 ms for a wait set over the one
    subscription. A control tick takes several wake-ups (``odom``, ``joint_states``, ``/clock``,
    then the timer it made ready), so this loop waits on only the control entities, takes each
    ready message and calls the node's callbacks directly, and checks the timer right after the
    callbacks, so that a ``/clock`` message that makes a tick due runs it in the same wake-up.
    Subscriptions with a raw handler (the sensor streams and ``/clock``) are taken as serialized
    bytes and read by :mod:`humanoid_rl_ros.ros.cdr` (rclpy's field-by-field conversion to message
    objects cost 23-93 us per message on the dev box, twice that between ticks).

    The timers run in the order given (the control timer first, then the diagnostics timer,
    whose work then follows a tick's publish). The node's executor (any executor, spinning in
    any thread) keeps services, parameters and lifecycle transitions, and the diagnostics timer
    while the loop is not running. Callbacks run under the node's lock.
    """

    _WAIT_TIMEOUT_NS = 100_000_000  # re-check the context (shutdown) at least every 0.1 s
    _EVENT_POLL_NS = 100_000_000

    def __init__(self, node: 'PolicyNode', group: _ControlGroup, lock: threading.RLock) -> None:
        """Prepare a loop for ``node`` (not started)."""
        self._node = node
        self._group = group
        self._lock = lock
        self._subs: List = []
        self._raw_handlers: Dict = {}  # subscription -> handler of its serialized messages
        self._num_inputs = 0
        self._timers: List = []
        self._events: List = []  # QoS event handlers of the control subscriptions (the loop's)
        self._moved: List = []  # (entity, its original callback group)
        self._thread: Optional[threading.Thread] = None
        self._guard: Optional[GuardCondition] = None
        self._stop = False
        self.priority = 0  # SCHED_FIFO priority of the thread (0: normal scheduling)
        self.priority_status = ''  # what the thread's scheduling is, for diagnostics
        self.failure = ''  # why the thread stopped on its own ('' while it runs or was stopped)

    @staticmethod
    def available() -> bool:
        """Return whether this rclpy exposes what the loop needs."""
        return _rclpy is not None and hasattr(_rclpy, 'WaitSet')

    @property
    def running(self) -> bool:
        """Return whether the loop's thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, subscriptions: Sequence, timers: Sequence,
              raw_handlers: Optional[Dict] = None) -> None:
        """
        Own ``subscriptions``, ``timers`` and the node's ``/clock`` subscription; run.

        ``raw_handlers`` maps subscriptions to callbacks that take the serialized message
        (``bytes``) instead of the message object.
        """
        self.stop()
        self._subs = list(subscriptions)
        self._raw_handlers = dict(raw_handlers or {})
        self._num_inputs = len(self._subs)
        self._timers = list(timers)
        for sub in self._node.subscriptions:
            # The time source's /clock subscription (use_sim_time): its callback sets the ROS
            # time that the control timer runs on, so it belongs to the control path.
            if (isinstance(getattr(sub.callback, '__self__', None), TimeSource)
                    and sub not in self._subs):
                self._subs.append(sub)
                self._raw_handlers[sub] = _raw_clock_handler(sub.callback)
        # Event handlers (incompatible QoS/type warnings) go with their subscription: an
        # executor waiting on the events of a subscription it does not take from woke up at
        # once, again and again, while a message was waiting (seen with Fast DDS). The control
        # subscriptions are created without handlers (PolicyNode._configure); the loop
        # makes its own, which no executor sees, and polls them every _EVENT_POLL_NS (an event
        # stays pending until taken). The /clock subscription's handlers are only withheld
        # from the executor: they are not the loop's to wait on (a handler keeps the index of
        # the last wait set it was added to, and the executor may still be in a wait with it).
        for sub in subscriptions:
            self._events.extend(SubscriptionEventCallbacks().create_event_handlers(
                self._group, sub.handle, sub.topic_name))
        withheld = [handler for sub in self._subs if sub not in subscriptions
                    for handler in getattr(sub, 'event_handlers', ())]
        for entity in self._subs + self._timers + withheld:
            if entity.callback_group is not self._group:
                self._moved.append((entity, entity.callback_group))
                entity.callback_group = self._group
        self._stop = False
        self.failure = ''
        self._guard = GuardCondition(None, None, context=self._node.context)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f'{self._node.get_name()}_control')
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; give what it took from the executor back (/clock, diagnostics)."""
        thread = self._thread
        if thread is not None:
            self._stop = True
            self._guard.trigger()
            if thread is not threading.current_thread():
                thread.join()
            self._guard.destroy()
            self._thread = None
            self._guard = None
        self._give_back()
        for handler in self._events:
            handler.destroy()
        self._subs, self._timers, self._events, self._moved = [], [], [], []
        self._raw_handlers = {}

    def _give_back(self) -> None:
        """Return the entities moved into the loop's group to their groups; wake the executor."""
        for entity, group in self._moved:
            entity.callback_group = group
        self._moved = []
        executor = self._node.executor
        if executor is not None:
            executor.wake()  # it rebuilds its wait set with them

    def _set_priority(self, logger) -> None:
        """Make this thread SCHED_FIFO at ``self.priority`` where the OS permits it."""
        if self.priority <= 0:
            self.priority_status = 'normal (SCHED_OTHER)'
            return
        try:
            # pid 0: the calling thread (Linux schedules threads individually)
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.priority))
        except (AttributeError, OSError) as exc:  # not Linux, or no CAP_SYS_NICE / rtprio
            self.priority_status = (f'normal: SCHED_FIFO {self.priority} refused '
                                    f'({type(exc).__name__}: {exc})')
            logger.warning(f'control_thread_priority {self.priority}: could not make the '
                           f'control thread SCHED_FIFO ({exc}); running at normal priority. '
                           'Grant CAP_SYS_NICE or an rtprio limit (limits.conf) to use it.')
            return
        self.priority_status = f'SCHED_FIFO {self.priority}'
        logger.info(f'control thread runs SCHED_FIFO at priority {self.priority}')

    def _run(self) -> None:
        logger = self._node.get_logger()
        context = self._node.context
        self._set_priority(logger)
        subs, timers, events = self._subs, self._timers, self._events
        try:
            with ExitStack() as stack:
                # Hold every handle for the loop's lifetime (stop() joins before they go away).
                for entity in subs + timers + [self._guard]:
                    stack.enter_context(entity.handle)
                for handler in events:
                    stack.enter_context(handler)
                stack.enter_context(context.handle)
                wait_set = _rclpy.WaitSet(len(subs), 1, len(timers), 0, 0, 0, context.handle)
                event_wait_set = _rclpy.WaitSet(0, 0, 0, 0, 0, len(events), context.handle)
                next_event_poll_ns = 0
                sub_handles = [sub.handle for sub in subs]
                takes = [(sub.handle.take_message, sub.msg_type, sub in self._raw_handlers,
                          self._raw_handlers.get(sub, sub.callback)) for sub in subs]
                input_takes = takes[:self._num_inputs]  # without /clock (appended last)
                timer_handles = [(tmr.handle, tmr.callback) for tmr in timers]
                guard_handle = self._guard.handle
                while not self._stop and context.ok():
                    wait_set.clear_entities()
                    for handle in sub_handles:
                        wait_set.add_subscription(handle)
                    for handle, _ in timer_handles:
                        wait_set.add_timer(handle)
                    wait_set.add_guard_condition(guard_handle)
                    wait_set.wait(self._WAIT_TIMEOUT_NS)
                    if self._stop:
                        break
                    if events and time.monotonic_ns() >= next_event_poll_ns:
                        next_event_poll_ns = time.monotonic_ns() + self._EVENT_POLL_NS
                        self._poll_events(event_wait_set, events)
                    with self._lock:
                        for index, (take, msg_type, raw, callback) in enumerate(takes):
                            if wait_set.is_ready('subscription', index):
                                taken = take(msg_type, raw)
                                if taken is not None:
                                    self._call(callback, taken[0])
                        for handle, callback in timer_handles:
                            if handle.is_timer_ready():
                                # Take inputs that arrived since the wait returned first: a
                                # joint state published before the /clock that made this tick
                                # due can be delivered after it (another DDS path).
                                for take, msg_type, raw, input_callback in input_takes:
                                    taken = take(msg_type, raw)
                                    if taken is not None:
                                        self._call(input_callback, taken[0])
                                handle.call_timer()
                                self._call(callback)
        except Exception as exc:  # noqa: B902 - a dead control thread must be reported
            if not self._stop and context.ok():
                failure = f'control loop stopped: {type(exc).__name__}: {exc}'
                logger.error(failure)
                # The executor takes the diagnostics timer (and /clock) back, so /diagnostics
                # goes on, at level ERROR, naming the failure (control_thread).
                with self._lock:
                    self._give_back()
                    self.failure = failure
                    self._node.publish_diagnostics()

    def _poll_events(self, wait_set, events: Sequence) -> None:
        wait_set.clear_entities()
        for handler in events:
            handler.add_to_wait_set(wait_set)
        wait_set.wait(0)
        for handler in events:
            if handler.is_ready(wait_set):
                data = handler.take_data()
                if data:
                    with self._lock:
                        self._call(_run_to_completion, handler.execute(data))

    def _call(self, callback, *args) -> None:
        try:
            callback(*args)
        except Exception as exc:  # noqa: B902 - keep controlling; report the failing callback
            if not self._node.context.ok():
                return  # shutting down (e.g. Ctrl-C): publishing fails, nothing to report
            self._node.get_logger().error(
                f'control callback {getattr(callback, "__name__", callback)} raised '
                f'{type(exc).__name__}: {exc}', throttle_duration_sec=1.0)


def _raw_handler(read: Callable[[bytes], Optional[tuple]], msg_type,
                 to_arrays: Callable, use: Callable) -> Callable[[bytes], None]:
    """
    Return a handler of serialized ``msg_type`` messages: ``use(*fields)``.

    The fields come from ``read`` (a :mod:`humanoid_rl_ros.ros.cdr` reader, whose first field, the
    stamp, is dropped) or, for data it does not read (not plain CDR), from rclpy's
    deserialization and ``to_arrays`` (the :mod:`humanoid_rl_ros.ros.ros_conversions` function the
    message callbacks use).
    """
    def handle(data: bytes) -> None:
        fields = read(data)
        if fields is None:
            use(*to_arrays(deserialize_message(data, msg_type)))
        else:
            use(*fields[1:])
    handle.__name__ = f'{msg_type.__name__}_bytes_handler'  # named in the loop's error log
    return handle


def _raw_clock_handler(callback):
    """Return a handler of serialized ``/clock`` messages that calls the time source's callback."""
    msg = ClockMsg()  # reused: the time source copies the stamp into a Time

    def on_clock(data: bytes) -> None:
        stamp = cdr.read_time(data)
        if stamp is None:
            callback(deserialize_message(data, ClockMsg))
            return
        msg.clock.sec, msg.clock.nanosec = stamp
        callback(msg)
    return on_clock


def _run_to_completion(coroutine) -> None:
    """Run a coroutine that does not suspend (an event handler's ``execute``) to its end."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError('an event callback suspended; the control loop runs plain callbacks')


class PolicyNode(LifecycleNode):
    """Lifecycle node running an ONNX locomotion policy through a policy contract."""

    def __init__(self, node_name: str = 'policy_node', **kwargs) -> None:
        """Declare parameters, diagnostics and services; autostart if asked."""
        super().__init__(node_name, **kwargs)
        for name, (ptype, default, description, read_only, float_range) in _PARAMS.items():
            descriptor = ParameterDescriptor(name=name, type=ptype, description=description,
                                             read_only=read_only)
            if float_range is not None and ptype == ParameterType.PARAMETER_INTEGER:
                descriptor.integer_range = [IntegerRange(
                    from_value=float_range[0], to_value=float_range[1], step=1)]
            elif float_range is not None:
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float_range[0], to_value=float_range[1], step=0.0)]
            self.declare_parameter(name, default, descriptor)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._on_parameters_set)

        self.runtime: Optional[PolicyRuntime] = None
        self.controller: Optional[Controller] = None
        self.lifecycle_state = 'unconfigured'
        self.last_error = ''
        self._subs: List = []
        self._raw_handlers: Dict = {}  # control-loop subscription -> serialized-message handler
        self._joint_state_reader = cdr.JointStateReader()
        self._cmd_pub = None
        self._control_timer = None
        self._output_names: List[str] = []
        self._output_index = np.zeros(0, dtype=np.int64)
        self._output_type = 'joint_state'
        self._out_msg = None  # the effort message, built once at configure and reused
        self._out_writer: Optional[cdr.Float64ArrayWriter] = None  # its bytes, if verified
        self._trigger = 'timer'
        self._last_tick_s = -math.inf
        self._rate_mark = (None, 0)
        self._policy_rate_hz = 0.0
        self._last_state = None
        self._state_since_ns: Optional[int] = None  # ROS time the control loop saw it enter
        # The control path runs in its own thread (see _ControlLoop) when this rclpy allows it;
        # its callbacks and everything else touching the controller hold this lock.
        self._lock = threading.RLock()
        self._control_group = _ControlGroup()
        self._control_loop = (_ControlLoop(self, self._control_group, self._lock)
                              if _ControlLoop.available() else None)

        self._diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._diag_timer = self.create_timer(
            float(self.get_parameter('diagnostics_period_s').value), self._on_diag_timer)
        self.create_service(Trigger, '~/walk', self._on_walk)
        self.create_service(Trigger, '~/stand', self._on_stand)
        self.create_service(Trigger, '~/recover', self._on_recover)
        if self.get_parameter('autostart').value:
            # A one-shot steady-clock timer, so autostart also works before /clock runs and
            # while the caller is still setting up (configure blocks waiting for joint_states).
            self._autostart_timer = self.create_timer(
                0.01, self._autostart, clock=Clock(clock_type=ClockType.STEADY_TIME))

    # ------------------------------------------------------------------ parameters
    def _param(self, name: str):
        return self.get_parameter(name).value

    def _controller_config(self, overrides: Optional[Dict[str, object]] = None
                           ) -> ControllerConfig:
        values = {name: float(self._param(name)) for name in _CONTROLLER_PARAMS}
        values['orientation_source'] = str(self._param('orientation_source'))
        values.update(overrides or {})
        config = ControllerConfig(**values)
        config.validate()
        return config

    def _on_set_parameters(self, params) -> SetParametersResult:
        overrides: Dict[str, object] = {}
        for param in params:
            if param.name in _CONTROLLER_PARAMS:
                value = param.value
                if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
                    return SetParametersResult(successful=False,
                                               reason=f'{param.name} must be a finite number')
                overrides[param.name] = float(value)
            elif param.name == 'output_type' and param.value not in OUTPUT_TYPES:
                return SetParametersResult(
                    successful=False, reason=f'output_type must be one of {OUTPUT_TYPES}, got '
                    f'{param.value!r}')
            elif param.name == 'orientation_source' and param.value not in ORIENTATION_SOURCES:
                return SetParametersResult(
                    successful=False, reason=f'orientation_source must be one of '
                    f'{ORIENTATION_SOURCES}, got {param.value!r}')
            elif param.name == 'control_trigger' and param.value not in CONTROL_TRIGGERS:
                return SetParametersResult(
                    successful=False, reason=f'control_trigger must be one of '
                    f'{CONTROL_TRIGGERS}, got {param.value!r}')
        if overrides:
            try:
                config = self._controller_config(overrides)
            except ControllerError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            if self.controller is not None:
                self.controller.config = config
        return SetParametersResult(successful=True)

    def _on_parameters_set(self, params) -> None:
        # use_sim_time creates or destroys the time source's /clock subscription; let the
        # control loop pick up the new one.
        if (any(param.name == 'use_sim_time' for param in params)
                and self._control_loop is not None and self._control_loop.running):
            self._start_control_loop()

    def _start_control_loop(self) -> None:
        if self._control_loop is not None:
            self._control_loop.priority = int(self._param('control_thread_priority'))
            # The diagnostics timer too: it then runs in this thread right after a control
            # tick's publish, instead of in the executor's thread, where its Python work held
            # the GIL (and the lock) while a control tick waited.
            self._control_loop.start(self._subs, [self._control_timer, self._diag_timer],
                                     self._raw_handlers)

    # ------------------------------------------------------------------ lifecycle
    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error(f'autostart: configure failed: {self.last_error}')
            return
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error(f'autostart: activate failed: {self.last_error}')

    def _refuse(self, message: str) -> TransitionCallbackReturn:
        self.last_error = message
        self.get_logger().error(message)
        self._teardown()
        self.publish_diagnostics()
        return TransitionCallbackReturn.FAILURE

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Load and check the policy, subscribe, and check the robot's joints."""
        try:
            return self._configure()
        except Exception as exc:  # noqa: B902 - report any failure instead of a bare ERROR
            return self._refuse(f'configure refused: unexpected {type(exc).__name__}: {exc}')

    def _configure(self) -> TransitionCallbackReturn:
        self.last_error = ''
        for name, allowed in (('output_type', OUTPUT_TYPES),
                              ('orientation_source', ORIENTATION_SOURCES),
                              ('control_trigger', CONTROL_TRIGGERS)):
            if self._param(name) not in allowed:
                return self._refuse(f'configure refused: parameter {name} must be one of '
                                    f'{allowed}, got {self._param(name)!r}')
        try:
            runtime = PolicyRuntime.load(str(self._param('policy')))
        except (PolicyLoadError, ValueError) as exc:
            return self._refuse(f'configure refused: cannot load policy '
                                f'{self._param("policy")!r}: {exc}')
        contract = runtime.contract
        try:
            self.controller = Controller(contract, runtime.act, self._controller_config())
        except ControllerError as exc:
            return self._refuse(f'configure refused: {exc}')
        self.runtime = runtime

        self._output_type = str(self._param('output_type'))
        order = [n for n in self._param('output_joint_order') if n]
        self._output_names = order if order else list(contract.joint_names)
        missing = [n for n in contract.joint_names if n not in self._output_names]
        if self._output_type == 'float64_array' and missing:
            return self._refuse('configure refused: output_joint_order lacks policy joint(s): '
                                + ', '.join(missing))
        extra = [n for n in self._output_names if n not in contract.joint_names]
        if extra and self._output_type == 'float64_array':
            self.get_logger().warning('output_joint_order joints not driven by the policy get '
                                      f'0 N*m: {", ".join(extra)}')
        lookup = {n: i for i, n in enumerate(contract.joint_names)}
        self._output_index = np.array([lookup.get(n, -1) for n in self._output_names])
        self._out_msg = (JointState(name=list(contract.joint_names))
                         if self._output_type == 'joint_state' else
                         make_float64_array(np.zeros(len(self._output_names))))

        self._trigger = str(self._param('control_trigger'))
        # With the control loop, the control subscriptions are its alone, QoS event handlers
        # included (it makes its own; see _ControlLoop.start).
        loop = self._control_loop is not None
        extra = ({'callback_group': self._control_group,
                  'event_callbacks': SubscriptionEventCallbacks(use_default_callbacks=False)}
                 if loop else {})
        js_sub = self.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_joint_states,
                                          SENSOR_QOS, **extra)
        odom_sub = self.create_subscription(Odometry, ODOM_TOPIC, self._on_odom, SENSOR_QOS,
                                            **extra)
        self._subs += [js_sub, odom_sub]
        self._raw_handlers = {
            js_sub: _raw_handler(self._joint_state_reader.read, JointState,
                                 joint_state_to_arrays, self._joint_state_arrays),
            odom_sub: _raw_handler(cdr.read_odometry, Odometry, odometry_to_arrays,
                                   self._odom_arrays)}
        if self._param('orientation_source') == 'imu':
            imu_sub = self.create_subscription(Imu, IMU_TOPIC, self._on_imu, SENSOR_QOS,
                                               **extra)
            self._subs.append(imu_sub)
            self._raw_handlers[imu_sub] = _raw_handler(cdr.read_imu, Imu, imu_to_arrays,
                                                       self._imu_arrays)
        cmd_type = TwistStamped if self._param('cmd_vel_stamped') else Twist
        self._subs.append(self.create_subscription(cmd_type, CMD_VEL_TOPIC, self._on_cmd_vel,
                                                   COMMAND_QOS, **extra))
        out_type = JointState if self._output_type == 'joint_state' else Float64MultiArray
        self._cmd_pub = self.create_lifecycle_publisher(out_type, JOINT_COMMAND_TOPIC,
                                                        COMMAND_QOS)
        self._out_writer = self._verified_effort_writer()

        topic = _resolved_topic(self, js_sub, JOINT_STATES_TOPIC)
        first = self._wait_for_joint_states(topic, float(self._param('joint_state_wait_s')))
        if first is None:
            return self._refuse(f'configure refused: no joint_states received on {topic} within '
                                f'joint_state_wait_s = {self._param("joint_state_wait_s")} s')
        try:
            match_joint_indices(contract.joint_names, first.name)
        except ControllerError as exc:
            return self._refuse(f'configure refused: {exc} (on {topic}; policy '
                                f'{self._param("policy")!r} needs {contract.num_joints} joints)')
        self._on_joint_states(first)
        self._control_timer = self.create_timer(
            contract.physics_dt_s, self._on_timer,
            callback_group=self._control_group if loop else None)
        self.lifecycle_state = 'inactive'
        self._start_control_loop()
        # Everything loaded so far (rclpy, numpy, onnxruntime) lives for the process: move it
        # out of the cyclic GC's generations. A full collection over it took 67 ms on the dev
        # box (measured while torch was still loaded), a pause that lands in some control
        # tick; after the freeze the collector only scans what the control loop allocates
        # (well under 1 ms).
        gc.freeze()
        self.get_logger().info(
            f'configured: policy {runtime.contract_path} ({contract.num_joints} joints, obs '
            f'{contract.obs_dim}, PD {1.0 / contract.physics_dt_s:.0f} Hz, policy '
            f'{1.0 / contract.policy_dt_s:.0f} Hz), output {self._output_type} on '
            f'{_resolved_topic(self, self._cmd_pub, JOINT_COMMAND_TOPIC)}')
        self.publish_diagnostics()
        return TransitionCallbackReturn.SUCCESS

    def _wait_for_joint_states(self, topic: str, timeout_s: float) -> Optional[JointState]:
        """Wait (wall time) for one JointState on ``topic`` using a private helper node."""
        received: List[JointState] = []
        probe = rclpy.create_node(
            f'{self.get_name()}_joint_states_probe', namespace=self.get_namespace(),
            context=self.context, use_global_arguments=False, start_parameter_services=False,
            enable_rosout=False)
        executor = SingleThreadedExecutor(context=self.context)
        try:
            probe.create_subscription(JointState, topic, received.append, SENSOR_QOS)
            executor.add_node(probe)
            deadline = time.monotonic() + timeout_s
            while not received and time.monotonic() < deadline and self.context.ok():
                executor.spin_once(timeout_sec=0.05)
        finally:
            executor.remove_node(probe)
            executor.shutdown()
            probe.destroy_node()
        return received[-1] if received else None

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Start standing (and walking if ``start_walking_on_activate``)."""
        with self._lock:
            return self._activate(state)

    def _activate(self, state: State) -> TransitionCallbackReturn:
        now = self._now_s()
        try:
            self.controller.activate(now)
        except ControllerError as exc:
            self.last_error = f'activate refused: {exc}'
            self.get_logger().error(self.last_error)
            self.publish_diagnostics()
            return TransitionCallbackReturn.FAILURE
        if self._param('start_walking_on_activate'):
            self.controller.request_walk(now)
        self.last_error = ''
        self.lifecycle_state = 'active'
        self._last_state, self._state_since_ns = None, None  # set again by the first tick
        result = super().on_activate(state)
        self.get_logger().info('activated: standing'
                               + (', walking requested' if self.controller.walk_requested
                                  else ''))
        self.publish_diagnostics()
        return result

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Send one zero-effort command, stop the controller and stop publishing."""
        with self._lock:
            return self._deactivate(state)

    def _deactivate(self, state: State) -> TransitionCallbackReturn:
        if self.controller is not None and self._cmd_pub is not None:
            self._publish_effort(np.zeros(self.controller.contract.num_joints))
            self.controller.deactivate()
        self.lifecycle_state = 'inactive'
        self._last_state, self._state_since_ns = None, None
        result = super().on_deactivate(state)
        self.publish_diagnostics()
        return result

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Release the policy, subscriptions, publisher and timer."""
        self._teardown()
        self.lifecycle_state = 'unconfigured'
        self.publish_diagnostics()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """Release everything on shutdown."""
        with self._lock:
            if self.controller is not None and self.lifecycle_state == 'active':
                self._publish_effort(np.zeros(self.controller.contract.num_joints))
                self.lifecycle_state = 'inactive'
        self._teardown()
        self.lifecycle_state = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        """Clean up after an error and go back to unconfigured."""
        self._teardown()
        self.lifecycle_state = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def _teardown(self) -> None:
        if self._control_loop is not None:
            self._control_loop.stop()  # before its entities go away; never under the lock
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self._raw_handlers = {}
        self._joint_state_reader = cdr.JointStateReader()
        if self._control_timer is not None:
            self.destroy_timer(self._control_timer)
            self._control_timer = None
        if self._cmd_pub is not None:
            self.destroy_lifecycle_publisher(self._cmd_pub)
            self._cmd_pub = None
        self.controller = None
        self.runtime = None
        self._out_msg = None
        self._out_writer = None
        self.lifecycle_state = 'unconfigured'
        self._rate_mark = (None, 0)
        self._policy_rate_hz = 0.0
        self._last_state = None
        self._state_since_ns = None

    # ------------------------------------------------------------------ callbacks
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_states(self, msg: JointState) -> None:
        self._joint_state_arrays(*joint_state_to_arrays(msg))

    def _joint_state_arrays(self, names: Sequence[str], position: np.ndarray,
                            velocity: np.ndarray) -> None:
        if self.controller is None:
            return
        now_ns = self.get_clock().now().nanoseconds
        self.controller.update_joint_state(names, position, velocity, now_ns * 1e-9)
        if self._trigger == 'joint_states':
            self._tick(now_ns)

    def _on_odom(self, msg: Odometry) -> None:
        self._odom_arrays(*odometry_to_arrays(msg))

    def _odom_arrays(self, quat_wxyz: np.ndarray, lin_vel_m_s: np.ndarray,
                     ang_vel_rad_s: np.ndarray) -> None:
        if self.controller is not None:
            self.controller.update_odom(quat_wxyz, lin_vel_m_s, ang_vel_rad_s, self._now_s())

    def _on_imu(self, msg: Imu) -> None:
        self._imu_arrays(*imu_to_arrays(msg))

    def _imu_arrays(self, quat_wxyz: np.ndarray, ang_vel_rad_s: np.ndarray) -> None:
        if self.controller is not None:
            self.controller.update_imu(quat_wxyz, ang_vel_rad_s, self._now_s())

    def _on_cmd_vel(self, msg) -> None:
        if self.controller is not None:
            vx, vy, wz = twist_to_command(msg)
            self.controller.update_cmd_vel(vx, vy, wz, self._now_s())

    def _on_timer(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        if self._trigger == 'joint_states' and self.controller is not None:
            # Watchdog only: ticks come from joint_states; tick here once they stop.
            if now_ns * 1e-9 - self._last_tick_s <= self.controller.config.joint_state_timeout_s:
                return
        self._tick(now_ns)

    def _tick(self, now_ns: int) -> None:
        """Run one control tick at ROS time ``now_ns`` and publish the effort first."""
        controller = self.controller
        if controller is None or self.lifecycle_state != 'active':
            return
        now = now_ns * 1e-9
        self._last_tick_s = now
        effort = controller.step(now)
        if effort is None:
            return
        self._publish_effort(effort, now_ns)
        if controller.state is not self._last_state:
            self._state_since_ns = now_ns
            if controller.state is ControllerState.DAMPING:
                self.get_logger().error(f'damping: {controller.fault_reason}; call ~/recover '
                                        'once the input is healthy')
            else:
                self.get_logger().info(f'state: {controller.state.value}')
            self._last_state = controller.state
            self.publish_diagnostics()

    def _publish_effort(self, effort: np.ndarray, now_ns: Optional[int] = None) -> None:
        """
        Publish efforts [N*m] (policy order) stamped ``now_ns`` (default: the clock's now).

        With a verified writer the serialized message is published (see
        :meth:`_verified_effort_writer`); otherwise the message built at configure, of which
        only the stamp and values change (an ``array('d')`` skips rclpy's per-element checks).
        """
        msg = self._out_msg
        if self._cmd_pub is None or msg is None:
            return
        effort = np.asarray(effort, dtype=np.float64)
        if not all_finite(effort):  # The controller guarantees this; never send NaN.
            effort = np.zeros_like(effort)
        if self._output_type == 'joint_state':
            if now_ns is None:
                now_ns = self.get_clock().now().nanoseconds
            values = effort
        else:
            values = np.where(self._output_index >= 0,
                              effort[np.maximum(self._output_index, 0)], 0.0)
        if self._out_writer is not None:
            self._cmd_pub.publish(self._out_writer.write(values, now_ns or 0))
            return
        if self._output_type == 'joint_state':
            msg.header.stamp.sec, msg.header.stamp.nanosec = ns_to_stamp(now_ns)
            msg.effort = array('d', values.tobytes())
        else:
            msg.data = array('d', values.tobytes())
        self._cmd_pub.publish(msg)

    def _verified_effort_writer(self) -> Optional[cdr.Float64ArrayWriter]:
        """
        Return a writer of the effort message's bytes if rclpy reads them back exactly.

        Publishing bytes skips rclpy's conversion of the message (names included) on every
        tick. The writer is used only when this rclpy publishes serialized messages and
        deserializes a sample written with distinctive values and stamp into exactly the
        message the node would publish; otherwise the node publishes the message object.
        """
        if not hasattr(getattr(_rclpy, 'Publisher', None), 'publish_raw'):
            return None
        msg = self._out_msg
        if self._output_type == 'joint_state':
            writer = cdr.Float64ArrayWriter.joint_state(msg.name, msg.header.frame_id)
        else:
            writer = cdr.Float64ArrayWriter.float64_multi_array(
                len(msg.data), msg.layout.dim[0].label)
        sample = 1.0 / 3.0 + 0.25 * np.arange(writer.num_values)
        sample_ns = 1_234_567_890_123_456_789
        expected = deserialize_message(serialize_message(msg), type(msg))
        if self._output_type == 'joint_state':
            expected.header.stamp.sec, expected.header.stamp.nanosec = ns_to_stamp(sample_ns)
            expected.effort = sample.tolist()
        else:
            expected.data = sample.tolist()
        try:
            ok = deserialize_message(writer.write(sample, sample_ns), type(msg)) == expected
        except Exception as exc:  # noqa: B902 - any failure means: publish message objects
            self.get_logger().info(f'publishing effort messages, not bytes: {exc}')
            return None
        if not ok:
            self.get_logger().info('publishing effort messages, not bytes: the bytes written '
                                   'here do not read back as the message')
        return writer if ok else None

    # ------------------------------------------------------------------ services
    def _on_walk(self, request, response):
        return self._service(response, 'request_walk')

    def _on_stand(self, request, response):
        return self._service(response, 'request_stand')

    def _on_recover(self, request, response):
        return self._service(response, 'recover')

    def _service(self, response, method: str):
        with self._lock:
            return self._service_locked(response, method)

    def _service_locked(self, response, method: str):
        if self.controller is None or self.lifecycle_state != 'active':
            response.success = False
            detail = f': {self.last_error}' if self.last_error else ''
            response.message = (f'node is {self.lifecycle_state}; configure and activate it '
                                f'first{detail}')
            return response
        response.success, response.message = getattr(self.controller, method)(self._now_s())
        self.get_logger().info(f'{method}: {response.message}')
        self.publish_diagnostics()
        return response

    # ------------------------------------------------------------------ diagnostics
    def _on_diag_timer(self) -> None:
        with self._lock:
            self._on_diag_timer_locked()

    def _on_diag_timer_locked(self) -> None:
        controller = self.controller
        if controller is not None:
            now = self._now_s()
            mark_t, mark_steps = self._rate_mark
            if mark_t is not None and now > mark_t:
                self._policy_rate_hz = (controller.policy_steps - mark_steps) / (now - mark_t)
            self._rate_mark = (now, controller.policy_steps)
        self.publish_diagnostics()

    def status_values(self) -> Dict[str, str]:
        """Return the diagnostic key/values (state, fault, rates, effective command)."""
        controller = self.controller
        now = self._now_s()
        values = {'lifecycle_state': self.lifecycle_state,
                  'state': controller.state.value if controller is not None else 'inactive',
                  'fault_reason': controller.fault_reason if controller is not None else '',
                  'last_error': self.last_error,
                  'policy': str(self._param('policy'))}
        if controller is not None:
            steps = controller.policy_steps
            command = controller.command(now)
            values.update({
                'policy_rate_hz': f'{self._policy_rate_hz:.1f}',
                'control_thread': ((self._control_loop.failure
                                    or self._control_loop.priority_status)
                                   if self._control_loop is not None else 'executor'),
                'policy_steps': str(steps),
                'state_since_s': _format_ns(self._state_since_ns),
                'walk_requested': str(controller.walk_requested),
                'note': controller.note,
                'command_vx_m_s': f'{command[0]:.6g}',
                'command_vy_m_s': f'{command[1]:.6g}',
                'command_wz_rad_s': f'{command[2]:.6g}',
                'cmd_vel_note': controller.cmd_note,
                'joint_states': controller.joint_state_problem(now) or 'ok',
                'walking_inputs': controller.walking_input_problem(now) or 'ok',
            })
        return values

    def publish_diagnostics(self) -> None:
        """Publish one ``diagnostic_msgs/DiagnosticArray`` describing the node's state."""
        with self._lock:
            self._publish_diagnostics_locked()

    def _publish_diagnostics_locked(self) -> None:
        values = self.status_values()
        status = DiagnosticStatus()
        status.name = f'{self.get_name()}: policy'
        status.hardware_id = (self.controller.contract.robot if self.controller is not None
                              else '')
        state = values['state']
        loop_failure = self._control_loop.failure if self._control_loop is not None else ''
        if state == 'damping' or values['last_error'] or loop_failure:
            status.level = DiagnosticStatus.ERROR
        elif self.lifecycle_state != 'active':
            status.level = DiagnosticStatus.WARN
        else:
            status.level = DiagnosticStatus.OK
        reason = (values['fault_reason'] or values['last_error'] or loop_failure
                  or values.get('note', ''))
        status.message = f'{self.lifecycle_state}/{state}' + (f': {reason}' if reason else '')
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self._diag_pub.publish(array)

    def destroy_node(self) -> None:
        """Stop the control loop, then destroy the node."""
        if self._control_loop is not None:
            self._control_loop.stop()
        super().destroy_node()


def _format_ns(time_ns: Optional[int]) -> str:
    """Return a ROS time [ns] as exact decimal seconds ('' for None)."""
    if time_ns is None:
        return ''
    sec, nsec = ns_to_stamp(abs(time_ns))
    return f'{"-" if time_ns < 0 else ""}{sec}.{nsec:09d}'


def _resolved_topic(node, entity, fallback: str) -> str:
    """Return the fully resolved (remapped) topic name of a publisher or subscription."""
    name = getattr(entity, 'topic_name', None)
    if name:
        return name
    resolve = getattr(node, 'resolve_topic_name', None)
    return resolve(fallback) if resolve is not None else fallback


def main(args: Optional[Sequence[str]] = None) -> None:
    """Run the policy node until shutdown (init -> spin -> destroy_node -> shutdown)."""
    run_node(PolicyNode, args)


if __name__ == '__main__':
    main(sys.argv)
