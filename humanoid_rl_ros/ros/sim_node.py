"""
MuJoCo sim node: a stand-in for Isaac Sim's ROS 2 bridge (or the robot) on the CPU.

It simulates a robot (``models/robots/<robot>/``) with :class:`MujocoRobotSim` and speaks the
topics of Isaac Sim's ROS 2 bridge:

* publishes ``joint_states`` (``sensor_msgs/JointState``: name, position [rad], velocity
  [rad/s], effort [N*m] applied), ``odom`` (``nav_msgs/Odometry``, ground truth: frame
  ``odom_frame_id``, child frame the base link; pose in ``odom``, twist in the child frame per
  REP-105 / ``nav_msgs/Odometry``), ``imu`` (``sensor_msgs/Imu`` in the base link frame:
  orientation, angular velocity, linear acceleration = specific force, 9.81 m/s^2 up at rest),
  ``/clock`` (``rosgraph_msgs/Clock``, sim time) and TF ``odom -> base link`` on ``/tf``
  (``publish_tf``, default true) where ``tf2_msgs`` is importable. ``tf2_msgs`` has no PyPI
  wheel: without a ROS 2 install it is not, and the node says so once in its log and in its
  ``/diagnostics`` status (``tf``, level WARN); ``robot_state_publisher`` adds the links below
  the base link from ``joint_states`` (``sim_walk.launch.py`` starts it);
* applies efforts from ``joint_command``: a ``sensor_msgs/JointState`` matched by name
  (``command_type: joint_state``, Isaac Sim's articulation controller) or a
  ``std_msgs/Float64MultiArray`` in ``command_joint_order`` (``command_type: float64_array``,
  ros2_control's ``forward_command_controller``). Bad commands (non-finite, wrong length,
  unknown or missing joints) are rejected with a throttled warning naming the problem and are
  never applied. Accepted commands hold for ``command_timeout_s`` of sim time, then zero.
  With ``drive_mode: position`` the commands are joint position targets instead (the
  ``JointState``'s ``position``, or the array): every physics tick the sim's drives apply the
  PD law ``clip(kp * (target - q) - kd * qd)`` with the robot's gains and effort limits (those
  of ``robot.yaml``, which a policy contract trained on the robot carries), as a drive that runs
  its own PD does; without a fresh target they go limp (zero effort).

Modes (``mode``):

* ``realtime``: a wall-clock timer steps physics at ``1 / physics_dt_s`` (catching up after a
  late callback, at most ``max_catch_up_ticks`` per call) and publishes the state every
  ``1 / publish_rate_hz``.
* ``lockstep``: one physics tick per command; with ``lockstep_ticks_per_command`` N > 1 (the
  policy's decimation, for position targets sent at the policy rate) up to N ticks after the
  command's stamp, so the next command, due then, comes for a published state; see
  :class:`~humanoid_rl_ros.sim.sim_logic.LockstepGate` for the handshake with a controller on
  ``/clock`` under ``use_sim_time``.

``/diagnostics`` (every ``diagnostics_period_s`` of wall time): mode, sim time, ticks, rejected
commands, frames and whether TF is published.

Services: ``~/reset`` (``std_srvs/Trigger``: default pose at the origin, command cleared; the
clock keeps running forward) and ``~/push`` (``std_srvs/Trigger``: add a horizontal base
velocity of ``push_velocity_m_s`` in a random direction). With ``push_interval_s > 0`` the
sim pushes every ``push_interval_s`` of sim time.

Parameter defaults live in ``config/sim_node.yaml``.
"""

import math
from typing import List, Optional

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from diagnostic_msgs.msg import KeyValue
from humanoid_rl_ros.core.policy_math import pd_effort
from humanoid_rl_ros.core.timebase import NSEC_PER_SEC
from humanoid_rl_ros.core.timebase import stamp_to_ns
from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.ros.node_main import run_node
from humanoid_rl_ros.ros.ros_conversions import make_imu
from humanoid_rl_ros.ros.ros_conversions import make_joint_state
from humanoid_rl_ros.ros.ros_conversions import make_odometry
from humanoid_rl_ros.ros.ros_conversions import make_transform
from humanoid_rl_ros.ros.ros_conversions import time_msg
from humanoid_rl_ros.sim.mujoco_sim import MujocoRobotSim
from humanoid_rl_ros.sim.sim_logic import CommandError
from humanoid_rl_ros.sim.sim_logic import CommandHold
from humanoid_rl_ros.sim.sim_logic import efforts_from_array
from humanoid_rl_ros.sim.sim_logic import efforts_from_joint_state
from humanoid_rl_ros.sim.sim_logic import joint_index
from humanoid_rl_ros.sim.sim_logic import LockstepGate
from humanoid_rl_ros.sim.sim_logic import reorder
from nav_msgs.msg import Odometry
import numpy as np
from rcl_interfaces.msg import FloatingPointRange
from rcl_interfaces.msg import ParameterDescriptor
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock
from rclpy.clock import ClockType
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Imu
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_msgs.msg import Header
from std_srvs.srv import Trigger

MODES = ('realtime', 'lockstep')
COMMAND_TYPES = ('joint_state', 'float64_array')
DRIVE_MODES = ('effort', 'position')
WARN_THROTTLE_S = 2.0
RUNTIME_PARAMS = ('command_timeout_s', 'push_interval_s', 'push_velocity_m_s')
"""Parameters that may change while the node runs (checked in ``_on_set_parameters``)."""


class SimNode(Node):
    """ROS 2 node that runs :class:`MujocoRobotSim` and speaks Isaac Sim's bridge topics."""

    def __init__(self, **kwargs) -> None:
        """Declare the parameters, build the sim and create the topics, services and timers."""
        super().__init__('sim_node', **kwargs)
        self._declare_parameters()
        p = self._params()
        self.mode: str = p['mode']
        self.robot = load_robot(p['robot'])
        self.dt_ns = int(round(p['physics_dt_s'] * NSEC_PER_SEC))
        self.sim = MujocoRobotSim(self.robot, timestep_s=p['physics_dt_s'])
        self.joint_names: List[str] = list(self.robot.joint_names)
        order = list(p['command_joint_order']) or self.joint_names
        try:
            joint_index(order)
            reorder(np.zeros(len(order)), order, self.joint_names)
        except ValueError as exc:
            raise ValueError(f'command_joint_order: {exc}; it must list each of '
                             f'{len(self.joint_names)} robot joints exactly once') from exc
        self.command_joint_order = order
        self.command_type: str = p['command_type']
        self.base_frame_id: str = p['base_frame_id'] or self.robot.base_link
        self.odom_frame_id: str = p['odom_frame_id']
        self.hold = CommandHold(len(self.joint_names), p['command_timeout_s'])
        self.gate = LockstepGate(p['lockstep_idle_timeout_s'], p['lockstep_idle_advance'])
        self.push_interval_ns = int(round(p['push_interval_s'] * NSEC_PER_SEC))
        self.push_velocity_m_s: float = p['push_velocity_m_s']
        self._rng = np.random.default_rng(p['seed'])
        self.publish_every = max(1, int(round(1.0 / (p['publish_rate_hz'] * p['physics_dt_s']))))
        self.max_catch_up_ticks: int = p['max_catch_up_ticks']
        self.drive_mode: str = p['drive_mode']
        self.ticks_per_command: int = max(1, int(p['lockstep_ticks_per_command']))

        self.tick = 0
        """Sim time is ``tick * dt``; it only moves forward (also across resets)."""
        self.physics_ticks = 0
        self.rejected_commands = 0
        self.applied_effort = np.zeros(len(self.joint_names))
        self._last_push_ns = 0
        self._prev_lin_vel_world: Optional[np.ndarray] = None
        self._wall = Clock(clock_type=ClockType.STEADY_TIME)

        self.pub_joint_states = self.create_publisher(JointState, 'joint_states', 10)
        self.pub_odom = self.create_publisher(Odometry, 'odom', 10)
        self.pub_imu = self.create_publisher(Imu, 'imu', 10)
        self.pub_clock = self.create_publisher(ClockMsg, '/clock', 10)
        self.pub_tf = None
        self.tf_status = 'off (publish_tf is false)'
        if p['publish_tf']:
            try:
                from tf2_msgs.msg import TFMessage
            except ImportError as exc:
                self.tf_status = (f'not published: tf2_msgs is not importable ({exc}); it has no '
                                  'PyPI wheel: source a ROS 2 install (ros-<distro>-tf2-msgs) '
                                  f'for TF {self.odom_frame_id} -> {self.base_frame_id}')
                self.get_logger().warning(f'TF {self.tf_status}')
            else:
                self.pub_tf = self.create_publisher(TFMessage, '/tf', 10)
                self._tf_type = TFMessage
                self.tf_status = f'{self.odom_frame_id} -> {self.base_frame_id} on /tf'
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(p['diagnostics_period_s'], self._publish_diagnostics,
                          clock=self._wall)
        if self.command_type == 'joint_state':
            self.sub_cmd = self.create_subscription(
                JointState, 'joint_command', self._on_joint_state_command, 10)
        else:
            self.sub_cmd = self.create_subscription(
                Float64MultiArray, 'joint_command', self._on_array_command, 10)
        self.create_service(Trigger, '~/reset', self._on_reset)
        self.create_service(Trigger, '~/push', self._on_push)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.sim.reset()
        if self.mode == 'realtime':
            self._next_tick_wall_ns = self._wall_ns()
            self.timer = self.create_timer(p['physics_dt_s'], self._on_realtime_timer,
                                           clock=self._wall)
            self._publish_state()
        else:
            self._publish_state()
            # Polls the lock-step gate for the pre-roll / idle rules (wall clock).
            poll_s = max(0.01, min(0.1, p['lockstep_idle_timeout_s'] / 4.0 or 0.1))
            self.timer = self.create_timer(poll_s, self._on_lockstep_poll, clock=self._wall)
        self.get_logger().info(
            f'sim_node: robot {self.robot.name!r} ({len(self.joint_names)} joints), mode '
            f'{self.mode}, dt {p["physics_dt_s"]} s, commands: {self.command_type} '
            f'({self.drive_mode}) on '
            f'{self.sub_cmd.topic_name}')

    # ---------------------------------------------------------------- parameters
    def _declare_parameters(self) -> None:
        def desc(text: str, read_only: bool = True, lo: Optional[float] = None,
                 hi: Optional[float] = None) -> ParameterDescriptor:
            d = ParameterDescriptor(description=text, read_only=read_only)
            if lo is not None:
                d.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi)]
            return d

        self.declare_parameter('robot', 'kestrel', desc(
            'Robot name under models/robots/, a robot folder or a robot.yaml path.'))
        self.declare_parameter('mode', 'lockstep', desc(
            'realtime: step at 1/physics_dt_s on the wall clock; lockstep: one tick per '
            'command (deterministic).'))
        self.declare_parameter('physics_dt_s', 0.005, desc(
            'Physics step [s].', lo=1e-4, hi=0.05))
        self.declare_parameter('publish_rate_hz', 200.0, desc(
            'State publish rate in realtime mode [Hz] (lockstep publishes every tick).',
            lo=1.0, hi=10000.0))
        self.declare_parameter('max_catch_up_ticks', 5, ParameterDescriptor(
            description='Realtime mode: most physics ticks one late timer callback catches up.',
            read_only=True))
        self.declare_parameter('drive_mode', 'effort', desc(
            'effort: commands are efforts [N*m]; position: commands are joint position '
            'targets [rad] and the drives run the PD law with the robot kp, kd and effort '
            'limits every physics tick.'))
        self.declare_parameter('lockstep_ticks_per_command', 1, ParameterDescriptor(
            description='Lockstep: a command is held for this many physics ticks from its stamp '
            '(the policy decimation for position targets sent at the policy rate).',
            read_only=True))
        self.declare_parameter('command_type', 'joint_state', desc(
            'joint_state: sensor_msgs/JointState by name (Isaac Sim); float64_array: '
            'std_msgs/Float64MultiArray in command_joint_order (ros2_control).'))
        self.declare_parameter(
            'command_joint_order', [''], ParameterDescriptor(
                description='Joint order of float64_array commands; empty: robot policy order.',
                type=ParameterType.PARAMETER_STRING_ARRAY, read_only=True))
        self.declare_parameter('command_timeout_s', 0.05, desc(
            'An accepted command holds this long [s of sim time], then efforts are zero.',
            read_only=False, lo=1e-3, hi=10.0))
        self.declare_parameter('lockstep_idle_timeout_s', 1.0, desc(
            'Lockstep: wall time [s] without a command before the clock advances anyway '
            '(pre-roll: physics held; later: one step with the timed-out command). 0: wait '
            'forever.', lo=0.0, hi=3600.0))
        self.declare_parameter('lockstep_idle_advance', True, desc(
            'Lockstep: after the pre-roll, step with the timed-out command when no command came '
            'within lockstep_idle_timeout_s; false: wait for the command (strict lock-step).'))
        self.declare_parameter('odom_frame_id', 'odom', desc('Odometry / TF parent frame.'))
        self.declare_parameter('base_frame_id', '', desc(
            'Base link frame (odom child frame, IMU frame); empty: the robot base link.'))
        self.declare_parameter('publish_tf', True, desc(
            'Publish TF odom -> base link on /tf (where tf2_msgs is importable; the log and '
            '/diagnostics say when it is not).'))
        self.declare_parameter('diagnostics_period_s', 1.0, desc(
            'Period of the /diagnostics status [s of wall time].', lo=0.01, hi=60.0))
        self.declare_parameter('push_interval_s', 0.0, desc(
            'Push the robot every this many seconds of sim time; 0: never.', read_only=False,
            lo=0.0, hi=3600.0))
        self.declare_parameter('push_velocity_m_s', 0.5, desc(
            'Horizontal base velocity added by a push [m/s] (random direction).',
            read_only=False, lo=0.0, hi=10.0))
        self.declare_parameter('seed', 0, ParameterDescriptor(
            description='Seed of the push direction generator.', read_only=True))

    def _params(self) -> dict:
        names = ('robot', 'mode', 'physics_dt_s', 'publish_rate_hz', 'max_catch_up_ticks',
                 'command_type', 'command_joint_order', 'command_timeout_s',
                 'lockstep_idle_timeout_s', 'lockstep_idle_advance', 'odom_frame_id',
                 'base_frame_id', 'publish_tf', 'diagnostics_period_s',
                 'push_interval_s', 'push_velocity_m_s', 'seed', 'drive_mode',
                 'lockstep_ticks_per_command')
        p = {n: self.get_parameter(n).value for n in names}
        p['command_joint_order'] = [n for n in (p['command_joint_order'] or []) if n]
        if p['mode'] not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {p["mode"]!r}')
        if p['drive_mode'] not in DRIVE_MODES:
            raise ValueError(f'drive_mode must be one of {DRIVE_MODES}, got {p["drive_mode"]!r}')
        if p['command_type'] not in COMMAND_TYPES:
            raise ValueError(
                f'command_type must be one of {COMMAND_TYPES}, got {p["command_type"]!r}')
        return p

    def _on_set_parameters(self, params) -> SetParametersResult:
        """
        Validate every runtime-settable parameter, then apply them all (or none).

        rclpy already checks types, read-only flags and the declared ranges before this
        callback runs; the node checks again itself (finite number, within the descriptor's
        range) so that no rclpy version or edge tolerance can hand it a NaN, an infinity or a
        negative timeout. A rejection names the parameter and the problem.
        """
        values = {}
        for param in params:
            if param.name not in RUNTIME_PARAMS:
                continue
            problem = self._runtime_value_problem(param.name, param.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            values[param.name] = float(param.value)
        if 'command_timeout_s' in values:
            self.hold.timeout_ns = int(round(values['command_timeout_s'] * NSEC_PER_SEC))
        if 'push_interval_s' in values:
            self.push_interval_ns = int(round(values['push_interval_s'] * NSEC_PER_SEC))
        if 'push_velocity_m_s' in values:
            self.push_velocity_m_s = values['push_velocity_m_s']
        return SetParametersResult(successful=True)

    def _runtime_value_problem(self, name: str, value) -> str:
        """Return why ``value`` is not valid for runtime parameter ``name`` ('' if valid)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f'{name} must be a number [s or m/s], got {type(value).__name__} {value!r}'
        if not math.isfinite(float(value)):
            return f'{name} must be a finite number, got {value}'
        for bounds in self.describe_parameter(name).floating_point_range:
            lo, hi = sorted((bounds.from_value, bounds.to_value))
            if not lo <= float(value) <= hi:
                return f'{name} must be within [{lo}, {hi}], got {value}'
        return ''

    # ---------------------------------------------------------------- time
    @property
    def now_ns(self) -> int:
        """Return the sim time [ns]."""
        return self.tick * self.dt_ns

    def _wall_ns(self) -> int:
        return self._wall.now().nanoseconds

    # ---------------------------------------------------------------- commands
    def _reject(self, problem: str) -> None:
        self.rejected_commands += 1
        what = 'position targets' if self.drive_mode == 'position' else 'efforts'
        self.get_logger().warning(f'rejected joint_command ({what}): {problem}',
                                  throttle_duration_sec=WARN_THROTTLE_S)

    def _on_joint_state_command(self, msg: JointState) -> None:
        values = msg.position if self.drive_mode == 'position' else msg.effort
        try:
            effort = efforts_from_joint_state(msg.name, values, self.joint_names)
        except CommandError as exc:
            self._reject(str(exc))
            return
        self._accept(effort, stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec))

    def _on_array_command(self, msg: Float64MultiArray) -> None:
        try:
            values = efforts_from_array(msg.data, self.command_joint_order)
        except CommandError as exc:
            self._reject(str(exc))
            return
        self._accept(reorder(values, self.command_joint_order, self.joint_names), 0)

    def _accept(self, command: np.ndarray, stamp_ns: int) -> None:
        """Hold a command (efforts [N*m] or position targets [rad], robot joint order)."""
        self.hold.update(command, self.now_ns)
        if self.mode == 'lockstep' and self.gate.command(stamp_ns):
            # A command holds for ticks_per_command ticks from its stamp (its control tick):
            # step to there, at least one tick, so the next one (due then) lands on a state.
            span_ns = self.ticks_per_command * self.dt_ns
            until_ns = min((stamp_ns or self.now_ns) + span_ns, self.now_ns + span_ns)
            self._advance(step_physics=True)
            while self.now_ns < until_ns:
                self._advance(step_physics=True)

    # ---------------------------------------------------------------- stepping
    def _on_realtime_timer(self) -> None:
        now = self._wall_ns()
        ticks = 0
        while self._next_tick_wall_ns <= now and ticks < self.max_catch_up_ticks:
            self._step_physics()
            self.tick += 1
            ticks += 1
            self._next_tick_wall_ns += self.dt_ns
            if self.tick % self.publish_every == 0:
                self._publish_state()
        if self._next_tick_wall_ns <= now:
            # Too far behind: drop the backlog rather than spiral (sim runs slower than real time).
            self._next_tick_wall_ns = now + self.dt_ns

    def _on_lockstep_poll(self) -> None:
        action = self.gate.idle_action(self._wall_ns())
        if action == 'advance_clock' and self.sub_cmd.get_publisher_count() == 0:
            # No controller yet: re-send the same state and clock (for late joiners) without
            # moving time, so the controller starts at a sim time that does not depend on how
            # long its process took to come up.
            self._publish_state()
        elif action == 'advance_clock':
            self._advance(step_physics=False)
        elif action == 'step':
            self.get_logger().warning(
                f'lockstep: no command for lockstep_idle_timeout_s; stepping with the held '
                f'command ({self.gate.idle_advances} idle steps so far)',
                throttle_duration_sec=WARN_THROTTLE_S)
            self._advance(step_physics=True)

    def _advance(self, step_physics: bool) -> None:
        if step_physics:
            self._step_physics()
        self.tick += 1
        self._publish_state()

    def _step_physics(self) -> None:
        command, fresh = self.hold.effort_at(self.now_ns)
        effort = command
        if self.drive_mode == 'position':  # the drives run the PD law on their targets
            robot = self.robot
            effort = (pd_effort(command, self.sim.joint_pos_rad, self.sim.joint_vel_rad_s,
                                robot.kp_nm_per_rad, robot.kd_nms_per_rad, robot.effort_limit_nm)
                      if fresh else np.zeros(len(self.joint_names)))
        if self.push_interval_ns > 0 and self.now_ns - self._last_push_ns >= self.push_interval_ns:
            self._last_push_ns = self.now_ns
            self._push()
        self.sim.step(effort)
        self.physics_ticks += 1

    def _push(self) -> None:
        angle = self._rng.uniform(0.0, 2.0 * math.pi)
        dv = self.push_velocity_m_s * np.array([math.cos(angle), math.sin(angle), 0.0])
        self.sim.add_base_velocity(dv)
        self.get_logger().info(f'push: base velocity += ({dv[0]:+.2f}, {dv[1]:+.2f}) m/s')

    # ---------------------------------------------------------------- publishing
    def _publish_state(self) -> None:
        t_ns = self.now_ns
        stamp = time_msg(t_ns)
        st = self.sim.state()
        self.pub_joint_states.publish(make_joint_state(
            self.joint_names, st.joint_pos_rad, st.joint_vel_rad_s, st.joint_effort_nm, stamp))
        self.pub_odom.publish(make_odometry(
            st.base_pos_m, st.base_quat_wxyz, st.base_lin_vel_body_m_s,
            st.base_ang_vel_body_rad_s, stamp, self.odom_frame_id, self.base_frame_id))
        self.pub_imu.publish(make_imu(st.base_quat_wxyz, st.base_ang_vel_body_rad_s,
                                      st.imu_lin_acc_m_s2, stamp, self.base_frame_id))
        if self.pub_tf is not None:
            self.pub_tf.publish(self._tf_type(transforms=[make_transform(
                st.base_pos_m, st.base_quat_wxyz, stamp, self.odom_frame_id,
                self.base_frame_id)]))
        # /clock last: a controller's sim-time timer fires only after the state is out.
        self.pub_clock.publish(ClockMsg(clock=stamp))
        if self.mode == 'lockstep':
            self.gate.published(t_ns, self._wall_ns())

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(
            name=f'{self.get_name()}: sim', hardware_id=self.robot.name,
            level=DiagnosticStatus.OK if self.pub_tf is not None or self.tf_status.startswith(
                'off') else DiagnosticStatus.WARN)
        status.message = f'{self.mode}, sim time {self.now_ns / NSEC_PER_SEC:.3f} s' + (
            '' if status.level == DiagnosticStatus.OK else f'; TF {self.tf_status}')
        values = {'mode': self.mode, 'sim_time_s': f'{self.now_ns / NSEC_PER_SEC:.9f}',
                  'physics_ticks': str(self.physics_ticks),
                  'rejected_commands': str(self.rejected_commands),
                  'odom_frame_id': self.odom_frame_id, 'base_frame_id': self.base_frame_id,
                  'tf': self.tf_status}
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        self.pub_diag.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                              status=[status]))

    # ---------------------------------------------------------------- services
    def _on_reset(self, request, response):
        self.sim.reset()
        self.hold.clear()
        self.gate.restart_pre_roll()
        self._last_push_ns = self.now_ns
        self._publish_state()
        response.success = True
        response.message = f'reset to the default pose at sim time {self.now_ns / 1e9:.3f} s'
        self.get_logger().info(response.message)
        return response

    def _on_push(self, request, response):
        self._push()
        response.success = True
        response.message = f'pushed with {self.push_velocity_m_s} m/s'
        return response


def main(args: Optional[List[str]] = None) -> None:
    """Run the sim node until Ctrl-C (``ros2 run humanoid_rl_ros sim_node``)."""
    run_node(SimNode, args)


if __name__ == '__main__':
    main()
