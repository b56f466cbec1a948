"""
Waypoint following as Nav2 would drive the robot: the pure pursuit logic and a closed-loop run.

The unit tests check :mod:`humanoid_rl_ros.integration.pure_pursuit` with hand-computed numbers
and on an ideal (kinematic) robot. The closed-loop test starts the MuJoCo sim node and the policy
node (the shipped trained policy) as processes in lock-step, exactly as the walking demo does,
and a controller client that, like Nav2's controller server, reads ``/odom`` and publishes
``cmd_vel`` at 20 Hz of sim time (TwistStamped or Twist). The course: 2 m forward, a 90 degree
turn in place, 2 m forward, 2 m backwards, a 90 degree turn back. Every waypoint must be reached
within 0.3 m, and the robot must not fall.
"""

import math
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from humanoid_rl_ros.core.contract import CommandRanges, read_contract
from humanoid_rl_ros.core.timebase import stamp_to_ns
from humanoid_rl_ros.demo.runner import ClosedLoopConfig, node_commands
from humanoid_rl_ros.integration.nav2_params import command_limits
from humanoid_rl_ros.integration.pure_pursuit import (fit_into_ranges, lookahead_point,
                                                      PurePursuit, PursuitConfig, rate_limit,
                                                      Waypoint, world_to_body, wrap_angle)
from humanoid_rl_ros.robot.description import load_robot, models_dir
from humanoid_rl_ros.ros.ros_conversions import make_twist
from nav_msgs.msg import Odometry
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAINED = models_dir() / 'humanoid_walk.yaml'
COURSE = (
    Waypoint(2.0, 0.0, 0.0),              # 2 m forward
    Waypoint(2.0, 0.0, math.pi / 2),      # turn left 90 degrees in place
    Waypoint(2.0, 2.0, math.pi / 2),      # 2 m forward (now along +y)
    Waypoint(2.0, 0.0, math.pi / 2),      # 2 m backwards
    Waypoint(2.0, 0.0, 0.0),              # turn right 90 degrees in place
)
REACH_M = 0.3
CMD_PERIOD_NS = 50_000_000  # 20 Hz of sim time, Nav2's default controller_frequency


def _limits():
    return command_limits(CommandRanges((-0.6, 1.2), (-0.5, 0.5), (-1.0, 1.0)))


# --- pure logic ---------------------------------------------------------------------------


def test_wrap_angle() -> None:
    """Angles wrap into [-pi, pi): 3pi/2 is -pi/2, -3pi/2 is pi/2."""
    assert wrap_angle(1.5 * math.pi) == pytest.approx(-0.5 * math.pi)
    assert wrap_angle(-1.5 * math.pi) == pytest.approx(0.5 * math.pi)
    assert wrap_angle(0.25) == pytest.approx(0.25)


def test_lookahead_point_slides_along_the_segment_and_stops_at_the_goal() -> None:
    """Projection + lookahead on (0,0)->(2,0); capped at the goal; a turn in place aims at it."""
    assert lookahead_point((0, 0), (2, 0), (0.5, 0.3), 0.4) == pytest.approx((0.9, 0.0))
    assert lookahead_point((0, 0), (2, 0), (-1.0, 0.0), 0.4) == pytest.approx((0.4, 0.0))
    assert lookahead_point((0, 0), (2, 0), (1.9, -0.1), 0.4) == pytest.approx((2.0, 0.0))
    assert lookahead_point((2, 0), (2, 0), (1.9, 0.1), 0.4) == (2, 0)


def test_world_velocity_in_the_body_frame() -> None:
    """Facing +y, a world -y velocity is walking backwards; world +x is walking right."""
    assert world_to_body(0.0, -0.5, math.pi / 2) == pytest.approx((-0.5, 0.0))
    assert world_to_body(0.5, 0.0, math.pi / 2) == pytest.approx((0.0, -0.5))


def test_fit_into_ranges_keeps_the_direction() -> None:
    """(1.0, 1.0) must shrink to vy 0.5, so vx 0.5 too; backwards -1.2 -> -0.6; wz clamped."""
    limits = _limits()
    assert fit_into_ranges((1.0, 1.0, 3.0), limits) == pytest.approx((0.5, 0.5, 1.0))
    assert fit_into_ranges((-1.2, 0.2, -2.0), limits) == pytest.approx((-0.6, 0.1, -1.0))
    assert fit_into_ranges((0.3, -0.2, 0.1), limits) == pytest.approx((0.3, -0.2, 0.1))


def test_rate_limit_uses_the_nav2_acceleration_limits() -> None:
    """At 20 Hz: vx moves 1.2 * 0.05 = 0.06, vy 0.025, wz 0.05 per step at most."""
    limits = _limits()
    assert rate_limit((0.0, 0.0, 0.0), (1.0, -1.0, 1.0), limits, 0.05) == pytest.approx(
        (0.06, -0.025, 0.05))
    assert rate_limit((0.5, 0.0, 0.0), (0.52, 0.01, -0.01), limits, 0.05) == pytest.approx(
        (0.52, 0.01, -0.01))


def test_first_command_heads_for_the_waypoint_and_turns() -> None:
    """Behind and left of a waypoint ahead-right: the first (rate-limited) step points there."""
    pursuit = PurePursuit([Waypoint(2.0, 0.0, -0.5)], _limits(), PursuitConfig(), start=(0, 0))
    vx, vy, wz = pursuit.update(0.0, 0.0, 0.0, dt_s=10.0)  # long dt: no rate limit
    assert (vx, vy) == pytest.approx((0.5, 0.0))  # lookahead point (0.4, 0): straight ahead
    assert wz == pytest.approx(-0.75)             # 1.5 / s * -0.5 rad


def test_waypoint_is_reached_only_with_position_and_heading() -> None:
    """Within 0.15 m but 0.3 rad off: still active; at the heading: the next one is active."""
    pursuit = PurePursuit([Waypoint(1.0, 0.0, 0.0), Waypoint(1.0, 1.0, 0.0)], _limits(),
                          start=(0, 0))
    pursuit.update(0.9, 0.0, 0.3, dt_s=0.05)
    assert pursuit.index == 0
    pursuit.update(0.9, 0.0, 0.1, dt_s=0.05)
    assert pursuit.index == 1 and not pursuit.done
    pursuit.update(1.0, 0.95, 0.0, dt_s=0.05)
    assert pursuit.done


def test_an_ideal_robot_follows_the_course() -> None:
    """A kinematic robot that does what it is told reaches every waypoint, backwards leg too."""
    limits = _limits()
    pursuit = PurePursuit(COURSE, limits, start=(0.0, 0.0))
    x = y = yaw = 0.0
    dt = 0.05
    min_vx = 0.0
    closest = [math.inf] * len(COURSE)
    for _ in range(int(60.0 / dt)):
        if not pursuit.done:
            i = pursuit.index
            closest[i] = min(closest[i], pursuit.errors(x, y, yaw)[0])
        vx, vy, wz = pursuit.update(x, y, yaw, dt)
        if pursuit.done:
            break
        min_vx = min(min_vx, vx)
        c, s = math.cos(yaw), math.sin(yaw)
        x, y, yaw = x + (c * vx - s * vy) * dt, y + (s * vx + c * vy) * dt, yaw + wz * dt
    assert pursuit.done
    assert max(closest) <= 0.15
    assert min_vx < -0.3  # the backwards leg is walked backwards, not turned around


def test_config_rejects_non_positive_values() -> None:
    """A zero lookahead is refused by name."""
    with pytest.raises(ValueError, match='lookahead_m'):
        PursuitConfig(lookahead_m=0.0)


# --- closed loop: sim node + policy node + a 20 Hz controller client ----------------------


class _Process:
    """A node process in its own process group, output in a log file."""

    def __init__(self, name: str, argv: List[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f'{name}.log'
        self.log = open(self.log_path, 'w')
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        env['PYTHONPATH'] = os.pathsep.join(
            [str(REPO_ROOT)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def check(self) -> None:
        if self.proc.poll() is not None:
            self.log.flush()
            tail = '\n'.join(self.log_path.read_text().splitlines()[-20:])
            pytest.fail(f'{self.name} exited with {self.proc.returncode}:\n{tail}')

    def stop(self) -> None:
        for sig in (signal.SIGINT, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


class _Client:
    """The controller client: /odom in, cmd_vel out every 50 ms of sim time."""

    def __init__(self, rclpy, stamped: bool, limits, fall_height_m: float) -> None:
        from rclpy.executors import SingleThreadedExecutor
        self.node = rclpy.create_node('waypoint_client')
        self.stamped = stamped
        self.pub = self.node.create_publisher(TwistStamped if stamped else Twist, 'cmd_vel', 10)
        self.node.create_subscription(Odometry, 'odom', self._on_odom, 100)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.pursuit = PurePursuit(COURSE, limits, start=(0.0, 0.0))
        self.fall_height_m = fall_height_m
        self.walking = False
        self.next_cmd_ns: Optional[int] = None
        self.last_ns: Optional[int] = None
        self.walk_start_ns: Optional[int] = None
        self.closest = [math.inf] * len(COURSE)
        self.min_height_m = math.inf
        self.reached_at_s: Dict[int, float] = {}
        self.pose = (0.0, 0.0, 0.0)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if values.get('state') == 'walking':
                self.walking = True

    def _on_odom(self, msg: Odometry) -> None:
        t_ns = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        self.pose = (p.x, p.y, yaw)
        if self.walk_start_ns is not None:
            self.min_height_m = min(self.min_height_m, p.z)
            if not self.pursuit.done:
                i = self.pursuit.index
                self.closest[i] = min(self.closest[i], self.pursuit.errors(p.x, p.y, yaw)[0])
        if self.next_cmd_ns is not None and t_ns < self.next_cmd_ns:
            return
        self.next_cmd_ns = t_ns - t_ns % CMD_PERIOD_NS + CMD_PERIOD_NS
        command = (0.0, 0.0, 0.0)
        if self.walking:
            if self.walk_start_ns is None:
                self.walk_start_ns = t_ns
            dt_s = (t_ns - self.last_ns) * 1e-9 if self.last_ns is not None else 0.05
            before = self.pursuit.index
            command = self.pursuit.update(p.x, p.y, yaw, dt_s)
            for i in range(before, self.pursuit.index):
                self.reached_at_s[i] = (t_ns - self.walk_start_ns) * 1e-9
            self.last_ns = t_ns
        self._publish(command, msg.header.stamp)

    def _publish(self, command, stamp) -> None:
        self.pub.publish(make_twist(*command, stamped=self.stamped, stamp=stamp,
                                    frame_id='pelvis'))

    def sim_s(self) -> float:
        if self.walk_start_ns is None or self.last_ns is None:
            return 0.0
        return (self.last_ns - self.walk_start_ns) * 1e-9

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.skipif(not (TRAINED.is_file() and TRAINED.with_suffix('.onnx').is_file()),
                    reason=f'no trained policy ships ({TRAINED} + .onnx missing)')
@pytest.mark.parametrize('stamped', [True, False], ids=['TwistStamped', 'Twist'])
def test_trained_policy_follows_waypoints(stamped: bool, tmp_path: Path) -> None:
    """Forward, turn, forward, backwards, turn: each waypoint within 0.3 m, no fall."""
    import rclpy
    contract = read_contract(TRAINED)
    robot = load_robot(contract.robot)
    # The demo's node command lines; the policy node starts itself (autostart) and walks once
    # it stands. Strict lock-step: the sim holds the robot (pre-roll) until the first command.
    cfg = ClosedLoopConfig(policy=TRAINED, out_dir=tmp_path, cmd_vel_stamped=stamped,
                           lockstep_idle_timeout_s=0.2, lockstep_idle_advance=False,
                           extra_policy_params={'autostart': 'true'})
    commands = node_commands(cfg, contract.robot)
    rclpy.init()
    client = _Client(rclpy, stamped, command_limits(contract.commands),
                     fall_height_m=0.5 * robot.nominal_base_height_m)
    processes = []
    sim_budget_s = 60.0
    deadline = time.monotonic() + 420.0
    try:
        for name in ('sim_node', 'policy_node'):
            processes.append(_Process(name, commands[name], tmp_path))
        while not client.pursuit.done and client.sim_s() < sim_budget_s:
            client.executor.spin_once(timeout_sec=0.1)
            for proc in processes:
                proc.check()
            if client.min_height_m < client.fall_height_m:
                break
            assert time.monotonic() < deadline, (
                f'wall-time limit: sim time {client.sim_s():.1f} s, pose {client.pose}, '
                f'walking {client.walking}, waypoint {client.pursuit.index}')
    finally:
        for proc in processes:
            proc.stop()
        client.close()
        rclpy.shutdown()
    print(f'reached at sim time [s]: {client.reached_at_s}; closest [m]: '
          f'{[round(c, 3) for c in client.closest]}', file=sys.stderr)
    assert client.min_height_m >= client.fall_height_m, (
        f'fell: base height {client.min_height_m:.2f} m at pose {client.pose}')
    assert client.pursuit.done, (
        f'waypoint {client.pursuit.index} not reached in {sim_budget_s:.0f} s of sim time; '
        f'pose {client.pose}')
    assert max(client.closest) <= REACH_M, f'closest approach per waypoint {client.closest}'
