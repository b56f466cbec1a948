"""
The policy node: a ROS 2 lifecycle node that runs an exported locomotion policy.

It wires topics, timers, services and parameters; all computation lives in the pure modules
:mod:`humanoid_rl_ros.core.controller` (state machine), :mod:`humanoid_rl_ros.core.policy_runtime`
(onnxruntime) and :mod:`humanoid_rl_ros.core.policy_math` (observation/PD math). Its parts:
:mod:`~humanoid_rl_ros.ros.policy_params` (the parameter table and its checks),
:mod:`~humanoid_rl_ros.ros.control_loop` (the control path's thread, on serialized messages),
:mod:`~humanoid_rl_ros.ros.sensor_inputs` (the sensor subscriptions),
:mod:`~humanoid_rl_ros.ros.cmd_vel_input` (``cmd_vel`` of the type its publishers send),
:mod:`~humanoid_rl_ros.ros.command_output` (efforts, or position targets, out),
:mod:`~humanoid_rl_ros.ros.bringup` (what configure and autostart wait for),
:mod:`~humanoid_rl_ros.ros.policy_services` (the ``Trigger`` services) and
:mod:`~humanoid_rl_ros.ros.policy_diagnostics` (the ``/diagnostics`` status).

Lifecycle (``rclpy.lifecycle``; managed with the standard ``~/change_state`` services):

* ``configure``: load the policy (``policy`` parameter) and check its ONNX against its contract;
  wait up to ``joint_state_wait_s`` for the first ``joint_states`` and check every policy joint
  is there. Any problem fails the transition (the node stays *unconfigured*) and is logged and
  published on ``/diagnostics`` with the problem named.
* ``activate``: the controller goes to *standing* (ramp to the default pose); with
  ``start_walking_on_activate`` it walks once the ramp completes.
* ``deactivate``: one final command is sent, then nothing more is published: zero effort, or in
  ``output_mode: position`` a hold on the measured joint positions (nothing where the joint
  state is unusable; :meth:`~humanoid_rl_ros.ros.command_output.CommandOutput.final_command`).
* ``shutdown``: from active, the same final command first (waited for until subscribers have
  it); also when the process is stopped with SIGINT or SIGTERM (``node_main``). Each wait in it
  is bounded: for the node's lock, for the acknowledgement, for the control thread.
* ``autostart`` (parameter): configure + activate right after start-up, under any clock:
  configure is retried while no ``joint_states`` arrive, and activation waits for a
  ``joint_states`` received fresh on the node clock (``/clock`` at zero, held, running from any
  value or jumping; or wall time). ``/diagnostics`` ``waiting_for`` says what it waits for.

Controller states while active: standing, walking, damping, with the controller's graded
response to faults (docs/SAFETY.md): a transient fault is ridden out on the last good input
(``hold_reason``), a sustained odometry/IMU fault stands the robot (``stand_reason``), damping
only where standing is impossible (joint feedback lost, tilt past ``max_tilt_rad``, a policy
failure) or on request. Every sensor message's header stamp goes to the controller (a driver
re-sending frozen data goes stale, ``use_header_stamps``). Services (``std_srvs/Trigger``,
relative to the node name): ``~/walk``, ``~/stand``, ``~/recover``, ``~/damp``.
``/diagnostics`` carries the state and ``state_since_s``, the ROS time of the control tick that
first ran in it (exact decimal seconds), so a monitor that matches the node's publisher late
(DDS discovery on a loaded machine can take seconds) still learns when walking began.

Recovery from damping: fix the input (e.g. restart the joint-state publisher), then call
``~/recover`` -> standing; then ``~/walk``. Alternatively deactivate + activate the node.
"""

import gc
import math
import sys
import threading
import time
from typing import Dict, Optional, Sequence

from diagnostic_msgs.msg import DiagnosticArray
from humanoid_rl_ros.core.controller import Controller, ControllerError, match_joint_indices
from humanoid_rl_ros.core.policy_runtime import PolicyLoadError, PolicyRuntime
from humanoid_rl_ros.ros import bringup, policy_params, policy_services
from humanoid_rl_ros.ros.cmd_vel_input import CmdVelInput
from humanoid_rl_ros.ros.command_output import CommandOutput, OutputConfigError
from humanoid_rl_ros.ros.control_loop import ControlGroup, ControlLoop
from humanoid_rl_ros.ros.node_main import run_node, stop_requested
from humanoid_rl_ros.ros.policy_diagnostics import (diagnostic_array, PolicyRate,
                                                    StateChanges, status_values)
from humanoid_rl_ros.ros.ros_conversions import header_stamp_ns, joint_state_to_arrays
from humanoid_rl_ros.ros.sensor_inputs import SensorInputs
import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data, QoSProfile

# Topic names are relative, so a namespace or a remap (``-r cmd_vel:=/nav/cmd_vel``) moves them.
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
AUTOSTART_PERIOD_S = 0.05
"""[s wall] How often autostart takes its next step (configure, or activate once fit)."""
SHUTDOWN_LOCK_WAIT_S = 2.0
"""[s wall] The longest shutdown waits for the node's lock (held by a control callback that does
not return: shutdown then sends no final command and goes on)."""
FINAL_COMMAND_WAIT_S = 3.5
"""[s wall] The longest shutdown waits for subscribers to acknowledge the final command (Fast
DDS acknowledges at its writer's heartbeat, every 3 s by default; ``ros2 launch`` sends SIGTERM
5 s after SIGINT)."""


class PolicyNode(LifecycleNode):
    """Lifecycle node running an ONNX locomotion policy through a policy contract."""

    def __init__(self, node_name: str = 'policy_node', **kwargs) -> None:
        """Declare parameters, diagnostics and services; autostart if asked."""
        super().__init__(node_name, **kwargs)
        policy_params.declare_parameters(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._on_parameters_set)

        self.runtime: Optional[PolicyRuntime] = None
        self.controller: Optional[Controller] = None
        self.lifecycle_state = 'unconfigured'
        self.last_error = ''
        self._inputs: Optional[SensorInputs] = None
        self._cmd_vel: Optional[CmdVelInput] = None
        self._output: Optional[CommandOutput] = None
        self._control_timer = None
        self._trigger = 'timer'
        self._last_tick_s = -math.inf
        self._last_tick_wall_s = 0.0  # [s] time.monotonic() of the newest tick (or activation)
        self._waiting_for = ''  # what configure waits for ('' if nothing)
        self._policy_rate = PolicyRate()
        self._states = StateChanges()  # the controller state the control ticks saw, since when
        # The control path runs in its own thread (see ControlLoop) when this rclpy allows it;
        # its callbacks and everything else touching the controller hold this lock.
        self._lock = threading.RLock()
        self._control_group = ControlGroup()
        self._control_loop = (ControlLoop(self, self._control_group, self._lock)
                              if ControlLoop.available() else None)

        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        # Wall time: the status also comes while /clock stands still (paused sim, no /clock).
        self._diag_timer = self.create_timer(
            float(self.get_parameter('diagnostics_period_s').value), self._on_diag_timer,
            clock=steady)
        policy_services.create_services(self, self._lock, self._now_s)
        self._autostart = (bringup.Autostart(self, AUTOSTART_PERIOD_S, self._activation_problem)
                           if self.get_parameter('autostart').value else None)

    # ------------------------------------------------------------------ parameters
    def _param(self, name: str):
        return self.get_parameter(name).value

    def _on_set_parameters(self, params) -> SetParametersResult:
        overrides, problem = policy_params.controller_overrides(params)
        if overrides and not problem:
            try:
                config = policy_params.controller_config(self._param, overrides)
            except ControllerError as exc:
                problem = str(exc)
            else:
                if self.controller is not None:
                    self.controller.config = config
        return SetParametersResult(successful=not problem, reason=problem)

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
            self._control_loop.start(self._inputs.subscriptions,
                                     [self._control_timer, self._diag_timer],
                                     self._inputs.raw_handlers)

    # ------------------------------------------------------------------ lifecycle
    def _activation_problem(self) -> str:
        """Return why activating now would be refused ('' if it would not, or not inactive)."""
        with self._lock:
            if self.controller is None or self.lifecycle_state != 'inactive':
                return ''
            return self.controller.joint_state_problem(self._now_s())

    def _refuse(self, message: str, retry: bool = False) -> TransitionCallbackReturn:
        """
        Fail configure with ``message`` (logged, on /diagnostics); tear down.

        ``retry``: a failure autostart retries (no joint_states yet): with autostart it is
        what the node waits for, a warning, not an error.
        """
        self._waiting_for = ''
        if self._autostart is not None and self._autostart.refused(message, retry):
            self.get_logger().warning(f'{message}; autostart retries')
        else:
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
        for name, allowed in policy_params.CHOICES.items():
            if self._param(name) not in allowed:
                return self._refuse(f'configure refused: parameter {name} must be one of '
                                    f'{allowed}, got {self._param(name)!r}')
        try:
            runtime = PolicyRuntime.load(str(self._param('policy')))
        except (PolicyLoadError, ValueError) as exc:
            return self._refuse(f'configure refused: cannot load policy '
                                f'{self._param("policy")!r}: {exc}')
        contract = runtime.contract
        output_type = str(self._param('output_type'))
        try:
            self.controller = Controller(contract, runtime.act,
                                         policy_params.controller_config(self._param))
            cmd_vel_mode = policy_params.cmd_vel_mode(self._param)
            self._output = CommandOutput(
                self, output_type, contract.joint_names, self._param('output_joint_order'),
                JOINT_COMMAND_TOPIC, COMMAND_QOS, str(self._param('output_mode')),
                contract.policy_dt_s, contract.physics_dt_s)
        except (ControllerError, OutputConfigError, ValueError) as exc:
            return self._refuse(f'configure refused: {exc}')
        self.runtime = runtime

        self._trigger = str(self._param('control_trigger'))
        # With the control loop, the control subscriptions are its alone, QoS event handlers
        # included (it makes its own; see ControlLoop.start).
        loop = self._control_loop is not None
        extra = ({'callback_group': self._control_group,
                  'event_callbacks': SubscriptionEventCallbacks(use_default_callbacks=False)}
                 if loop else {})
        self._inputs = SensorInputs(
            self, SENSOR_QOS, use_imu=self._param('orientation_source') == 'imu',
            on_joint_state=self._joint_state_arrays, on_odom=self._odom_arrays,
            on_imu=self._imu_arrays, **extra)
        self._cmd_vel = CmdVelInput(self, CMD_VEL_TOPIC, COMMAND_QOS, cmd_vel_mode,
                                    self._on_cmd_vel)

        topic = self._inputs.joint_states_topic
        wait_s = float(self._param('joint_state_wait_s'))

        def on_wait(waiting_for: str) -> None:
            self._waiting_for = waiting_for
            self.publish_diagnostics()

        first = bringup.wait_for_joint_states(self, topic, SENSOR_QOS, wait_s, on_wait,
                                              float(self._param('diagnostics_period_s')),
                                              joint_names=contract.joint_names)
        if first is None and stop_requested():  # the process is stopping: not a failure
            self._waiting_for = ''
            self._teardown()
            self.get_logger().info('configure stopped: the process is stopping')
            return TransitionCallbackReturn.FAILURE
        if first is None:
            return self._refuse(f'configure refused: no joint_states received on {topic} within '
                                f'joint_state_wait_s = {wait_s} s', retry=True)
        self._waiting_for = ''
        try:
            match_joint_indices(contract.joint_names, first.name)
        except ControllerError as exc:
            return self._refuse(f'configure refused: {exc} (on {topic}; policy '
                                f'{self._param("policy")!r} needs {contract.num_joints} joints)')
        self._joint_state_arrays(*joint_state_to_arrays(first), header_stamp_ns(first))
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
            f'{1.0 / contract.policy_dt_s:.0f} Hz), output {output_type} '
            f'({self._output.mode}) on '
            f'{self._output.topic_name}, cmd_vel on {self._cmd_vel.topic_name} as '
            f'{self._cmd_vel.choice.note}; ' + contract.training.delay_tolerance_note(
                pd_in_drive=self._output.mode == 'position'))
        self.publish_diagnostics()
        return TransitionCallbackReturn.SUCCESS

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
        self._states.reset()  # set again by the first tick
        self._waiting_for = ''
        self._last_tick_wall_s = time.monotonic()  # no tick yet: counts from activation
        result = super().on_activate(state)
        self.get_logger().info('activated: standing'
                               + (', walking requested' if self.controller.walk_requested
                                  else ''))
        self.publish_diagnostics()
        return result

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Send the final command (:meth:`_final_command`), stop the controller and publishing."""
        with self._lock:
            return self._deactivate(state)

    def _deactivate(self, state: State) -> TransitionCallbackReturn:
        if self.controller is not None and self._output is not None:
            sent = self._final_command()
            if sent:
                self.get_logger().info(f'deactivating: final command sent: {sent}')
            self.controller.deactivate()
        self.lifecycle_state = 'inactive'
        self._states.reset()
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
        """
        Send deactivate's final command if active, wait for it to arrive; release everything.

        Also on SIGINT and SIGTERM (:mod:`~humanoid_rl_ros.ros.node_main`). Every wait is
        bounded: for the lock (:data:`SHUTDOWN_LOCK_WAIT_S`), for the acknowledgement
        (:data:`FINAL_COMMAND_WAIT_S`) and for the control thread
        (:data:`~humanoid_rl_ros.ros.control_loop.STOP_TIMEOUT_S`).
        """
        sent = ''
        if self._lock.acquire(timeout=SHUTDOWN_LOCK_WAIT_S):
            try:
                if self.controller is not None and self.lifecycle_state == 'active':
                    sent = self._final_command()
                self.lifecycle_state = 'inactive'  # no control tick publishes after it
            finally:
                self._lock.release()
        else:
            self.lifecycle_state = 'inactive'
            self.get_logger().error(
                f'shutdown: the node lock was not free within {SHUTDOWN_LOCK_WAIT_S} s (a control '
                'callback does not return): no final command sent')
        if sent:
            delivered = self._output.wait_delivered(FINAL_COMMAND_WAIT_S)
            self.get_logger().info(f'final command sent: {sent}' + (
                ', acknowledged' if delivered else
                f', not acknowledged by every subscriber within {FINAL_COMMAND_WAIT_S} s'))
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
        if self._inputs is not None:
            self._inputs.destroy()
            self._inputs = None
        if self._cmd_vel is not None:
            self._cmd_vel.destroy()
            self._cmd_vel = None
        if self._control_timer is not None:
            self.destroy_timer(self._control_timer)
            self._control_timer = None
        if self._output is not None:
            self._output.destroy()
            self._output = None
        self.controller = None
        self.runtime = None
        self.lifecycle_state = 'unconfigured'
        self._policy_rate.reset()
        self._states.reset()

    # ------------------------------------------------------------------ callbacks
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _joint_state_arrays(self, names: Sequence[str], position: np.ndarray,
                            velocity: np.ndarray, stamp_ns: Optional[int] = None) -> None:
        if self.controller is None:
            return
        now_ns = self.get_clock().now().nanoseconds
        self.controller.update_joint_state(names, position, velocity, now_ns * 1e-9, stamp_ns)
        if self._trigger == 'joint_states':
            self._tick(now_ns)

    def _odom_arrays(self, quat_wxyz: np.ndarray, lin_vel_m_s: np.ndarray,
                     ang_vel_rad_s: np.ndarray, stamp_ns: Optional[int] = None) -> None:
        if self.controller is not None:
            self.controller.update_odom(quat_wxyz, lin_vel_m_s, ang_vel_rad_s, self._now_s(),
                                        stamp_ns)

    def _imu_arrays(self, quat_wxyz: np.ndarray, ang_vel_rad_s: np.ndarray,
                    stamp_ns: Optional[int] = None) -> None:
        if self.controller is not None:
            self.controller.update_imu(quat_wxyz, ang_vel_rad_s, self._now_s(), stamp_ns)

    def _on_cmd_vel(self, vx_m_s: float, vy_m_s: float, wz_rad_s: float,
                    stamp_ns: Optional[int] = None) -> None:
        with self._lock:  # cmd_vel comes in the executor's thread, not the control loop's
            if self.controller is not None:
                self.controller.update_cmd_vel(vx_m_s, vy_m_s, wz_rad_s, self._now_s(),
                                               stamp_ns)

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
        self._last_tick_wall_s = time.monotonic()
        effort = controller.step(now)
        if effort is None:
            return
        self._output.control_tick(controller, effort, now_ns)
        if self._states.tick(controller, now_ns, self.get_logger()):
            self.publish_diagnostics()

    def _final_command(self) -> str:
        """
        Publish the command the drives keep after this node; return what it was ('' if none).

        Zero effort, or in position mode a hold on the measured joint positions; nothing in
        position mode where the joint state is unusable (the drives keep the last target).
        """
        if self._output is None:
            return ''
        now_ns = self.get_clock().now().nanoseconds
        sent = self._output.final_command(self.controller, now_ns)
        if not sent:
            problem = self.controller.joint_state_problem(now_ns * 1e-9)
            self.get_logger().warning(f'no final command: the joint state is unusable '
                                      f'({problem}); the drives keep the last target')
        return sent

    # ------------------------------------------------------------------ diagnostics
    def _on_diag_timer(self) -> None:
        with self._lock:
            if self.controller is not None:
                self._policy_rate.update(self._now_s(), self.controller.policy_steps)
            self.publish_diagnostics()

    def status_values(self) -> Dict[str, str]:
        """Return the diagnostic key/values (state, fault, rates, effective command)."""
        loop = self._control_loop
        return status_values(
            lifecycle_state=self.lifecycle_state, controller=self.controller,
            last_error=self.last_error, policy=str(self._param('policy')), now_s=self._now_s(),
            policy_rate_hz=self._policy_rate.hz,
            control_thread=(loop.failure or loop.priority_status) if loop is not None
            else 'executor',
            state_since_ns=self._states.since_ns, waiting_for=self._waiting_for_now(),
            cmd_vel=self._cmd_vel.choice if self._cmd_vel is not None else None)

    def _waiting_for_now(self) -> str:
        """Return what bring-up, or the control timer of an active node, waits for."""
        if self.lifecycle_state != 'active':
            return self._waiting_for or (self._autostart.waiting_for
                                         if self._autostart is not None else '')
        return bringup.stalled_ticks(time.monotonic() - self._last_tick_wall_s,
                                     self.get_clock().now().nanoseconds,
                                     bool(self._param('use_sim_time')))

    def publish_diagnostics(self) -> None:
        """Publish one ``diagnostic_msgs/DiagnosticArray`` describing the node's state."""
        with self._lock:
            controller = self.controller
            self._diag_pub.publish(diagnostic_array(
                f'{self.get_name()}: policy',
                controller.contract.robot if controller is not None else '',
                self.status_values(),
                self._control_loop.failure if self._control_loop is not None else '',
                self.get_clock().now().to_msg()))

    def destroy_node(self) -> None:
        """Stop the control loop, then destroy the node (also one whose __init__ failed)."""
        loop = getattr(self, '_control_loop', None)
        if loop is not None:
            loop.stop()
        super().destroy_node()


def main(args: Optional[Sequence[str]] = None) -> None:
    """Run the policy node until shutdown (init -> spin -> destroy_node -> shutdown)."""
    run_node(PolicyNode, args)


if __name__ == '__main__':
    main(sys.argv)
