"""Tests of the MuJoCo sim node over real rclpy/DDS with real MuJoCo (lock-step mode)."""

import math
import time

from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.sim.robot_sim import quat_wxyz_conjugate, quat_wxyz_multiply
from humanoid_rl_ros.sim.sim_logic import CommandError
from humanoid_rl_ros.sim.sim_logic import CommandHold
from humanoid_rl_ros.sim.sim_logic import efforts_from_array
from humanoid_rl_ros.sim.sim_logic import efforts_from_joint_state
from humanoid_rl_ros.sim.sim_logic import LockstepGate
from nav_msgs.msg import Odometry
import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

ROBOT = load_robot('kestrel')
NAMES = list(ROBOT.joint_names)
DT_NS = 5_000_000
WAIT_S = 20.0  # generous deadline for DDS delivery on a slow CI box (not a timing assertion)


# ------------------------------------------------------------------ pure logic


def test_joint_state_command_matched_by_name():
    rng = np.random.default_rng(0)
    effort = rng.uniform(-5, 5, len(NAMES))
    perm = rng.permutation(len(NAMES))
    out = efforts_from_joint_state([NAMES[i] for i in perm], effort[perm], NAMES)
    np.testing.assert_array_equal(out, effort)


@pytest.mark.parametrize('names,effort,match', [
    (NAMES[:-1], [0.0] * 20, 'missing joints: right_elbow_joint'),
    (NAMES + ['tail'], [0.0] * 22, 'unknown joints: tail'),
    (NAMES, [0.0] * 20, '21 names but 20 efforts'),
    (NAMES, [0.0] * 20 + [math.nan], "effort of joint 'right_elbow_joint' is nan"),
    (NAMES[:-1] + [NAMES[0]], [0.0] * 21, 'named twice'),
])
def test_bad_joint_state_commands_are_named(names, effort, match):
    with pytest.raises(CommandError, match=match):
        efforts_from_joint_state(names, effort, NAMES)


def test_array_command_checks():
    with pytest.raises(CommandError, match='3 efforts but 21 joints'):
        efforts_from_array([0.0, 1.0, 2.0], NAMES)
    bad = [0.0] * 21
    bad[4] = math.inf
    with pytest.raises(CommandError, match="effort 4 \\('left_ankle_pitch_joint'\\) is inf"):
        efforts_from_array(bad, NAMES)


def test_command_hold_times_out_to_zero():
    hold = CommandHold(2, timeout_s=0.01)
    assert hold.effort_at(0)[1] is False
    hold.update(np.array([1.0, -2.0]), now_ns=100)
    effort, fresh = hold.effort_at(100 + 10_000_000)
    assert fresh and effort.tolist() == [1.0, -2.0]
    effort, fresh = hold.effort_at(100 + 10_000_001)
    assert not fresh and effort.tolist() == [0.0, 0.0]


def test_lockstep_gate_pre_roll_then_one_tick_per_command():
    gate = LockstepGate(idle_timeout_s=1.0)
    gate.published(0, wall_ns=0)
    assert gate.idle_action(wall_ns=999_999_999) is None
    assert gate.idle_action(wall_ns=1_000_000_000) == 'advance_clock'  # pre-roll, no physics
    assert gate.idle_action(wall_ns=3_000_000_000) is None  # not awaiting until published
    gate.published(DT_NS, wall_ns=3_000_000_000)
    assert gate.command(stamp_ns=DT_NS) is True
    assert gate.command(stamp_ns=DT_NS) is False  # a second command for the same state
    gate.published(2 * DT_NS, wall_ns=4_000_000_000)
    assert gate.command(stamp_ns=DT_NS) is True  # older stamp: applied, counted
    assert gate.stale_stamp_commands == 1
    gate.published(3 * DT_NS, wall_ns=5_000_000_000)
    assert gate.idle_action(wall_ns=6_000_000_000) == 'step'  # after pre-roll: physics step
    assert LockstepGate(0.0).idle_action(wall_ns=10**15) is None


# ------------------------------------------------------------------ ROS rig


class Rig:
    """A sim node and a probe node in one executor; the probe records what the sim publishes."""

    def __init__(self, **params):
        from humanoid_rl_ros.ros.sim_node import SimNode
        overrides = {'mode': 'lockstep', 'lockstep_idle_timeout_s': 0.0}
        overrides.update(params)
        self.sim = SimNode(parameter_overrides=[
            Parameter(k, value=v) for k, v in overrides.items()])
        self.probe = rclpy.create_node('probe')
        self.js, self.odom, self.imu, self.clock = [], [], [], []
        self.probe.create_subscription(JointState, 'joint_states', self.js.append, 100)
        self.probe.create_subscription(Odometry, 'odom', self.odom.append, 100)
        self.probe.create_subscription(Imu, 'imu', self.imu.append, 100)
        self.probe.create_subscription(Clock, '/clock', self.clock.append, 100)
        if overrides.get('command_type', 'joint_state') == 'joint_state':
            self.cmd_js = self.probe.create_publisher(JointState, 'joint_command', 10)
        else:
            self.cmd_js = self.probe.create_publisher(Float64MultiArray, 'joint_command', 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.sim)
        self.executor.add_node(self.probe)

    def spin_until(self, cond, what):
        deadline = time.monotonic() + WAIT_S
        while not cond():
            assert time.monotonic() < deadline, f'timed out waiting for {what}'
            self.executor.spin_once(timeout_sec=0.05)

    def connect(self):
        """Wait for discovery, and re-publish until the probe sees a state."""
        self.spin_until(lambda: self.sim.pub_clock.get_subscription_count() > 0 and
                        self.cmd_js.get_subscription_count() > 0, 'discovery')
        if self.sim.mode == 'lockstep':
            self.sim._publish_state()  # re-send the state the probe may have missed
        self.spin_until(lambda: self.clock and self.odom and self.js and self.imu, 'first state')

    def command_and_wait(self, msg):
        """Publish one command and wait for the resulting state."""
        n = len(self.clock)
        self.cmd_js.publish(msg)
        self.spin_until(lambda: len(self.clock) > n, 'state after command')

    def close(self):
        self.executor.shutdown()
        self.sim.destroy_node()
        self.probe.destroy_node()


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


def _command(names, effort, stamp=None):
    msg = JointState()
    msg.name = list(names)
    msg.effort = [float(e) for e in effort]
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


def _ns(stamp):
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def _rotate(q, v):
    qv = np.concatenate([[0.0], v])
    return quat_wxyz_multiply(quat_wxyz_multiply(q, qv), quat_wxyz_conjugate(q))[1:]


def _wxyz(o):
    return np.array([o.w, o.x, o.y, o.z])


@pytest.mark.ros
def test_publishes_bridge_topics_with_frames(ros):
    rig = Rig()
    try:
        rig.connect()
        js, odom, imu, clock = rig.js[-1], rig.odom[-1], rig.imu[-1], rig.clock[-1]
        assert list(js.name) == NAMES
        assert len(js.position) == len(js.velocity) == len(js.effort) == len(NAMES)
        np.testing.assert_allclose(js.position, ROBOT.default_pos_rad, atol=1e-9)
        assert odom.header.frame_id == 'odom' and odom.child_frame_id == ROBOT.base_link
        assert imu.header.frame_id == ROBOT.base_link
        assert _ns(odom.header.stamp) == _ns(js.header.stamp) == _ns(clock.clock)
        assert odom.pose.pose.position.z == pytest.approx(ROBOT.nominal_base_height_m, abs=0.05)
        assert np.linalg.norm(_wxyz(imu.orientation)) == pytest.approx(1.0)
        acc = imu.linear_acceleration
        assert all(math.isfinite(v) for v in (acc.x, acc.y, acc.z))
    finally:
        rig.close()


def _tf2_msgs_importable() -> bool:
    try:
        import tf2_msgs.msg  # noqa: F401 - only whether it imports
    except ImportError:
        return False
    return True


@pytest.mark.ros
def test_tf_odom_to_base_link_is_published_or_its_absence_said(ros):
    """TF odom -> base link where tf2_msgs imports; otherwise the log and /diagnostics say so."""
    rig = Rig()
    diags, tfs = [], []
    rig.probe.create_subscription(DiagnosticArray, '/diagnostics', diags.append, 10)
    if _tf2_msgs_importable():
        from tf2_msgs.msg import TFMessage
        rig.probe.create_subscription(TFMessage, '/tf', tfs.append, 100)
    try:
        rig.connect()
        rig.spin_until(lambda: diags and (tfs or not _tf2_msgs_importable()),
                       'diagnostics (and TF)')
        status = diags[-1].status[0]
        values = {kv.key: kv.value for kv in status.values}
        assert values['base_frame_id'] == ROBOT.base_link
        if _tf2_msgs_importable():
            assert values['tf'] == f'odom -> {ROBOT.base_link} on /tf'
            edge = tfs[-1].transforms[0]
            assert (edge.header.frame_id, edge.child_frame_id) == ('odom', ROBOT.base_link)
            odom = next(o for o in reversed(rig.odom)
                        if _ns(o.header.stamp) == _ns(edge.header.stamp))
            assert edge.transform.translation.z == odom.pose.pose.position.z
            assert _wxyz(edge.transform.rotation).tolist() == _wxyz(
                odom.pose.pose.orientation).tolist()
        else:
            assert values['tf'].startswith('not published: tf2_msgs is not importable')
            assert status.level == DiagnosticStatus.WARN
            assert 'TF not published: tf2_msgs is not importable' in status.message
    finally:
        rig.close()


@pytest.mark.ros
def test_odom_twist_is_in_the_child_frame(ros):
    """Let the limp robot tumble; the world velocity must equal R(q) * twist (REP-105)."""
    rig = Rig()
    try:
        rig.connect()
        zero = _command(NAMES, np.zeros(len(NAMES)))
        for _ in range(160):
            rig.command_and_wait(zero)
        checked = 0
        for prev, cur in zip(rig.odom[-60:-1], rig.odom[-59:]):
            q = _wxyz(cur.pose.pose.orientation)
            p0, p1 = (np.array([m.pose.pose.position.x, m.pose.pose.position.y,
                                m.pose.pose.position.z]) for m in (prev, cur))
            v_body = np.array([cur.twist.twist.linear.x, cur.twist.twist.linear.y,
                               cur.twist.twist.linear.z])
            v_world_fd = (p1 - p0) / (DT_NS * 1e-9)
            if np.linalg.norm(v_world_fd) < 0.05:
                continue
            np.testing.assert_allclose(_rotate(q, v_body), v_world_fd, atol=0.02)
            checked += 1
        tilt = math.degrees(2 * math.acos(min(1.0, abs(rig.odom[-1].pose.pose.orientation.w))))
        assert checked > 5, 'the robot did not move'
        assert tilt > 10.0, 'the robot did not rotate, so the frame check proves nothing'
    finally:
        rig.close()


@pytest.mark.ros
def test_applies_shuffled_joint_state_command_by_name(ros):
    rig = Rig()
    try:
        rig.connect()
        effort = np.linspace(-3.0, 3.0, len(NAMES))
        perm = np.random.default_rng(1).permutation(len(NAMES))
        rig.command_and_wait(_command([NAMES[i] for i in perm], effort[perm]))
        np.testing.assert_allclose(rig.js[-1].effort, effort, atol=1e-9)
    finally:
        rig.close()


@pytest.mark.ros
def test_float64_array_command_in_configured_order(ros):
    order = list(reversed(NAMES))
    rig = Rig(command_type='float64_array', command_joint_order=order)
    try:
        rig.connect()
        effort = np.linspace(-3.0, 3.0, len(NAMES))  # policy order
        rig.command_and_wait(Float64MultiArray(data=list(effort[::-1])))
        np.testing.assert_allclose(rig.js[-1].effort, effort, atol=1e-9)
    finally:
        rig.close()


@pytest.mark.ros
def test_rejects_bad_commands_and_never_applies_them(ros):
    rig = Rig()
    try:
        rig.connect()
        start_tick = rig.sim.tick
        nan = np.full(len(NAMES), 1.0)
        nan[3] = math.nan
        bad = [_command(NAMES, nan), _command(NAMES[:-1], np.ones(20)),
               _command(NAMES, np.ones(20)), _command(NAMES + ['x'], np.ones(22))]
        for msg in bad:
            rig.cmd_js.publish(msg)
        rig.spin_until(lambda: rig.sim.rejected_commands == len(bad), 'rejections')
        # Rejected: no tick in lock-step, nothing applied.
        assert rig.sim.tick == start_tick
        rig.command_and_wait(_command(NAMES, np.full(len(NAMES), 2.0)))
        assert rig.sim.tick == start_tick + 1
        np.testing.assert_allclose(rig.js[-1].effort, 2.0)
        assert all(math.isfinite(e) for m in rig.js for e in m.effort)
    finally:
        rig.close()


@pytest.mark.ros
def test_lockstep_advances_exactly_one_tick_per_command(ros):
    rig = Rig()
    try:
        rig.connect()
        t0 = _ns(rig.clock[-1].clock)
        for i in range(1, 11):
            rig.command_and_wait(_command(NAMES, np.zeros(len(NAMES)),
                                          stamp=rig.js[-1].header.stamp))
            assert _ns(rig.clock[-1].clock) == t0 + i * DT_NS
        # Nothing more arrives without a command (idle advance disabled in this rig).
        n = len(rig.clock)
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            rig.executor.spin_once(timeout_sec=0.05)
        assert len(rig.clock) == n
        assert rig.sim.physics_ticks == 10
        assert rig.sim.gate.stale_stamp_commands == 0
    finally:
        rig.close()


@pytest.mark.ros
def test_lockstep_pre_roll_advances_clock_without_physics(ros):
    rig = Rig(lockstep_idle_timeout_s=0.05)
    try:
        rig.connect()
        rig.spin_until(lambda: len(rig.clock) >= 4, 'pre-roll ticks')
        assert rig.sim.physics_ticks == 0
        z = [m.pose.pose.position.z for m in rig.odom]
        assert max(z) == min(z)  # held in the initial pose
        stamps = [_ns(m.clock) for m in rig.clock]
        assert all(b - a in (0, DT_NS) for a, b in zip(stamps, stamps[1:]))
    finally:
        rig.close()


@pytest.mark.ros
def test_reset_service_restores_default_pose(ros):
    rig = Rig()
    try:
        rig.connect()
        zero = _command(NAMES, np.zeros(len(NAMES)))
        for _ in range(60):
            rig.command_and_wait(zero)
        z_fallen = rig.odom[-1].pose.pose.position.z
        assert z_fallen < ROBOT.nominal_base_height_m - 0.05
        t_before = _ns(rig.clock[-1].clock)
        client = rig.probe.create_client(Trigger, 'sim_node/reset')
        rig.spin_until(client.service_is_ready, 'reset service')
        future = client.call_async(Trigger.Request())
        rig.spin_until(future.done, 'reset response')
        assert future.result().success
        rig.spin_until(lambda: _ns(rig.odom[-1].header.stamp) >= t_before and
                       rig.odom[-1].pose.pose.position.z > z_fallen + 0.05, 'reset state')
        pos = rig.odom[-1].pose.pose.position
        assert (pos.x, pos.y) == pytest.approx((0.0, 0.0), abs=1e-9)
        assert pos.z == pytest.approx(ROBOT.nominal_base_height_m, abs=0.05)
        np.testing.assert_allclose(rig.js[-1].position, ROBOT.default_pos_rad, atol=1e-9)
        assert _ns(rig.clock[-1].clock) >= t_before  # the clock never goes back
    finally:
        rig.close()


@pytest.mark.ros
def test_realtime_mode_runs_on_its_own_and_goes_limp_without_commands(ros):
    rig = Rig(mode='realtime', publish_rate_hz=100.0)
    try:
        rig.connect()
        n0 = len(rig.clock)
        rig.spin_until(lambda: len(rig.clock) >= n0 + 20, 'realtime ticks')
        stamps = [_ns(m.clock) for m in rig.clock[n0:]]
        assert stamps == sorted(stamps) and stamps[-1] > stamps[0]
        # Published every 2nd physics tick (100 Hz of a 200 Hz sim).
        assert all((b - a) % (2 * DT_NS) == 0 for a, b in zip(stamps, stamps[1:]))
        assert all(e == 0.0 for m in rig.js for e in m.effort)
    finally:
        rig.close()


@pytest.mark.ros
def test_push_service_adds_horizontal_base_velocity(ros):
    rig = Rig(push_velocity_m_s=0.8)
    try:
        rig.connect()
        client = rig.probe.create_client(Trigger, 'sim_node/push')
        rig.spin_until(client.service_is_ready, 'push service')
        future = client.call_async(Trigger.Request())
        rig.spin_until(future.done, 'push response')
        assert future.result().success
        rig.command_and_wait(_command(NAMES, np.zeros(len(NAMES))))
        twist = rig.odom[-1].twist.twist.linear
        # One 5 ms tick after the push: the horizontal speed is still about 0.8 m/s.
        assert math.hypot(twist.x, twist.y) == pytest.approx(0.8, abs=0.1)
    finally:
        rig.close()


def test_strict_lockstep_gate_waits_for_the_command_after_the_pre_roll():
    gate = LockstepGate(0.2, idle_advance=False)
    gate.published(state_stamp_ns=0, wall_ns=0)
    assert gate.idle_action(wall_ns=300_000_000) == 'advance_clock'  # pre-roll still ticks
    gate.published(state_stamp_ns=5_000_000, wall_ns=300_000_000)
    assert gate.command(stamp_ns=5_000_000)
    gate.published(state_stamp_ns=10_000_000, wall_ns=400_000_000)
    assert gate.idle_action(wall_ns=10_000_000_000) is None  # starved, not stepped
    assert gate.idle_advances == 0
    relaxed = LockstepGate(0.2)
    relaxed.published(state_stamp_ns=0, wall_ns=0)
    relaxed.command(stamp_ns=0)
    relaxed.published(state_stamp_ns=5_000_000, wall_ns=0)
    assert relaxed.idle_action(wall_ns=300_000_000) == 'step'


@pytest.mark.ros
def test_bad_runtime_parameter_values_are_rejected_and_named(ros):
    from rcl_interfaces.srv import SetParameters
    rig = Rig()
    try:
        rig.connect()
        client = rig.probe.create_client(SetParameters, 'sim_node/set_parameters')
        rig.spin_until(client.service_is_ready, 'set_parameters service')

        def set_remote(name, value):
            request = SetParameters.Request(parameters=[Parameter(name, value=value)
                                                        .to_parameter_msg()])
            future = client.call_async(request)
            rig.spin_until(future.done, 'set_parameters response')
            return future.result().results[0]

        for value in (-1.0, math.nan, math.inf):
            result = set_remote('command_timeout_s', value)
            assert not result.successful, value
            assert 'command_timeout_s' in result.reason, result.reason
        # A wrong type is refused by rclpy before the node's callback (its reason names the
        # types, not the parameter).
        result = set_remote('command_timeout_s', 'soon')
        assert not result.successful and 'type' in result.reason
        # The node's own check (rclpy's range check runs first over the service, so call the
        # callback directly): NaN is named, never raised, and a mixed batch changes nothing.
        for value, problem in ((math.nan, 'finite'), (-1.0, 'within'), ('1', 'number')):
            result = rig.sim._on_set_parameters([Parameter('command_timeout_s', value=value)])
            assert not result.successful
            assert 'command_timeout_s' in result.reason and problem in result.reason
        result = rig.sim._on_set_parameters([Parameter('push_velocity_m_s', value=0.9),
                                             Parameter('push_interval_s', value=math.nan)])
        assert not result.successful and 'push_interval_s' in result.reason
        assert rig.sim.push_velocity_m_s == 0.5 and rig.sim.push_interval_ns == 0
        # The old timeout is still in force: a command is held and applied, not zeroed.
        assert rig.sim.get_parameter('command_timeout_s').value == 0.05
        assert rig.sim.hold.timeout_ns == 50_000_000
        rig.command_and_wait(_command(NAMES, np.full(len(NAMES), 2.0)))
        np.testing.assert_allclose(rig.js[-1].effort, 2.0)
        # A valid value is accepted and takes effect.
        assert set_remote('command_timeout_s', 0.2).successful
        assert rig.sim.hold.timeout_ns == 200_000_000
    finally:
        rig.close()
