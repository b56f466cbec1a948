"""
The demo's rclpy node: ``cmd_vel`` out as Nav2 would send it; odometry, efforts, diagnostics in.

:class:`ScenarioDriver` publishes the scenario's command at 20 Hz of sim time (on each
odometry message, stamped with its sim time), starts the scenario clock (t0) at the policy
node's first walking tick, and records the odometry and the efforts it sees. It also makes the
policy node's lifecycle transitions (``~/change_state``) for
:func:`humanoid_rl_ros.demo.closed_loop.run_closed_loop`.
"""

import time
from typing import List, Optional, Sequence, Tuple

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from geometry_msgs.msg import TwistStamped
from humanoid_rl_ros.core.timebase import stamp_to_ns
from humanoid_rl_ros.demo.processes import DemoError
from humanoid_rl_ros.demo.scenario import command_at
from humanoid_rl_ros.demo.scenario import DemoLog
from humanoid_rl_ros.demo.scenario import parse_time_ns
from humanoid_rl_ros.demo.scenario import Segment
from humanoid_rl_ros.ros.ros_conversions import make_twist
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from nav_msgs.msg import Odometry
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState

CMD_VEL_PERIOD_NS = 50_000_000
"""cmd_vel every 50 ms of sim time: Nav2's default controller_frequency is 20 Hz."""


class ScenarioDriver:
    """The demo's own rclpy node: cmd_vel out; odom, efforts and diagnostics in."""

    def __init__(self, segments: Sequence[Segment], cmd_vel_stamped: bool,
                 command_before_start: bool, effort_limit_nm: np.ndarray,
                 joint_names: Sequence[str]) -> None:
        """
        Create the node publishing the commands of ``segments`` (scenario time from t0 on).

        ``cmd_vel_stamped``: publish ``TwistStamped`` instead of ``Twist``;
        ``command_before_start``: send the first segment's command before t0 (else zero);
        ``effort_limit_nm`` of ``joint_names`` scales the efforts seen.
        """
        self.segments = tuple(segments)
        self.cmd_vel_stamped = cmd_vel_stamped
        self.command_before_start = command_before_start
        self.node = rclpy.create_node('walk_demo')
        self.effort_limit = {n: float(v) for n, v in zip(joint_names, effort_limit_nm)}
        self._limit_cache: Tuple[Tuple[str, ...], np.ndarray] = ((), np.zeros(0))
        msg_type = TwistStamped if cmd_vel_stamped else Twist
        self.cmd_pub = self.node.create_publisher(msg_type, 'cmd_vel', 10)
        self.node.create_subscription(Odometry, 'odom', self._on_odom, 1000)
        self.effort_sub = self.node.create_subscription(JointState, 'joint_command',
                                                        self._on_effort, 1000)
        self.diag_sub = self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                                      self._on_diag, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.t0_ns: Optional[int] = None
        self.last_odom_ns: Optional[int] = None
        self.next_cmd_ns = 0
        self.samples: List[Tuple[float, ...]] = []
        # Per effort command: (stamp [ns sim time], all finite, max |effort| / limit). Kept
        # from the start and counted from t0 at the end, so a late t0 loses none of them.
        self.efforts: List[Tuple[int, bool, float]] = []
        self.policy_state = ''
        self.policy_status = ''
        self.idle_stand = ''  # the node's idle stand: off, ready or holding (policy paused)
        self.idle_note = ''  # why the newest idle stand started or ended

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if 'state' not in values:
                continue
            self.policy_state = values['state']
            self.policy_status = status.message
            self.idle_stand = values.get('idle_stand', '')
            self.idle_note = values.get('idle_note', '')
            if self.t0_ns is None and values['state'] == 'walking':
                # The sim time of the node's first walking tick (state_since_s), not this
                # message's stamp: this process may match the node's /diagnostics publisher
                # only seconds after the node started walking (DDS discovery on a loaded
                # machine), and the first status it sees is then a later periodic one.
                since_ns = parse_time_ns(values.get('state_since_s', ''))
                self.t0_ns = (since_ns if since_ns is not None else
                              stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec))

    def _on_effort(self, msg: JointState) -> None:
        names = tuple(msg.name)
        if self._limit_cache[0] != names:
            # 0 for joints without a known limit: their ratio is not scored.
            self._limit_cache = (names, np.array([self.effort_limit.get(n, 0.0) for n in names]))
        limit = self._limit_cache[1]
        effort = np.asarray(msg.effort, dtype=np.float64)
        finite = bool(np.all(np.isfinite(effort))) and effort.shape == limit.shape
        scored = limit > 0.0
        ratio = (float(np.max(np.abs(effort[scored]) / limit[scored]))
                 if finite and np.any(scored) else 0.0)
        stamp_ns = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
        self.efforts.append((stamp_ns, finite, ratio))

    def scenario_efforts(self) -> Tuple[int, bool, float]:
        """Return (count, all finite, max ratio) of the effort commands stamped from t0 on."""
        rows = [e for e in self.efforts if self.t0_ns is not None and e[0] >= self.t0_ns]
        return (len(rows), all(e[1] for e in rows),
                max((e[2] for e in rows), default=0.0))

    def _on_odom(self, msg: Odometry) -> None:
        t_ns = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
        self.last_odom_ns = t_ns
        t_s = (t_ns - self.t0_ns) * 1e-9 if self.t0_ns is not None else -1.0
        if t_ns >= self.next_cmd_ns:
            self.next_cmd_ns = t_ns - t_ns % CMD_VEL_PERIOD_NS + CMD_VEL_PERIOD_NS
            if t_s < 0.0 and self.command_before_start:
                command = self.segments[0].command()
            else:
                command = command_at(self.segments, t_s)
            self._publish_cmd(command, msg.header.stamp)
        # Every sample is kept with its sim time: the walking diagnostics may arrive after the
        # first walking ticks' odometry, and the log must not depend on that timing.
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        v, w = msg.twist.twist.linear, msg.twist.twist.angular
        self.samples.append((t_ns, p.x, p.y, p.z, q.w, q.x, q.y, q.z, v.x, v.y, w.z))

    def _publish_cmd(self, command: Tuple[float, float, float], stamp) -> None:
        self.cmd_pub.publish(make_twist(*command, stamped=self.cmd_vel_stamped, stamp=stamp))

    def matched(self, node_name: str, subs: Sequence) -> bool:
        """Return whether the subscriptions ``subs`` match ``node_name``'s publishers."""
        for sub in subs:
            publishers = self.node.get_publishers_info_by_topic(sub.topic_name)
            if not any(info.node_name == node_name for info in publishers):
                return False
            if sub.get_publisher_count() < len(publishers):
                return False
        return True

    def change_state(self, node_name: str, transition: int, label: str,
                     deadline: float, check) -> None:
        """Request a lifecycle transition of ``node_name``; raise DemoError if it fails."""
        client = self.node.create_client(ChangeState, f'/{node_name}/change_state')
        try:
            while not client.service_is_ready():
                self.executor.spin_once(timeout_sec=0.05)
                check()
                if time.monotonic() > deadline:
                    raise DemoError(f'{node_name}/change_state not available')
            future = client.call_async(ChangeState.Request(
                transition=Transition(id=transition)))
            while not future.done():
                self.executor.spin_once(timeout_sec=0.05)
                check()
                if time.monotonic() > deadline:
                    raise DemoError(f'{node_name} did not answer the {label} request')
            if not future.result().success:
                raise DemoError(f'{node_name} refused to {label} ({self.policy_status})')
        finally:
            self.node.destroy_client(client)

    def scenario_t_s(self) -> float:
        """Return the scenario time [s] of the newest odometry (-1 before t0)."""
        if self.t0_ns is None or self.last_odom_ns is None:
            return -1.0
        return (self.last_odom_ns - self.t0_ns) * 1e-9

    def scenario_samples(self) -> List[Tuple[float, ...]]:
        """Return the odometry samples stamped from t0 on."""
        if self.t0_ns is None:
            return []
        return [s for s in self.samples if s[0] >= self.t0_ns]

    def log(self) -> DemoLog:
        """Return the scenario's odometry as a :class:`DemoLog` (scenario time)."""
        rows = self.scenario_samples()
        t_s = np.array([(r[0] - self.t0_ns) * 1e-9 for r in rows], dtype=float)
        a = np.array([r[1:] for r in rows], dtype=float).reshape(-1, 10)
        return DemoLog(t_s, a[:, 0:3], a[:, 3:7], a[:, 7:10])

    def close(self) -> None:
        """Shut the executor down and destroy the node."""
        self.executor.shutdown()
        self.node.destroy_node()
