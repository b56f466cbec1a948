#!/usr/bin/env python3
"""
Latency of the policy node vs a bare echo node, and whether it holds 200 Hz / 500 Hz.

This is one file of about 600 lines on purpose: it is one measurement. The simulator stand-in
(:class:`Bench`), the reference nodes it starts (this same file, run with ``--role echo`` or
``--role lean_echo``), the statistics and the report serve nothing else, and every figure in
``benchmarks/RESULTS.md`` is reproduced by running this one file.

One run measures, on the same machine and the same transport (rclpy, the default RMW):

* a bare **echo node** (a separate process): subscribes ``joint_states``, publishes a
  ``sensor_msgs/JointState`` on ``joint_command`` with the same header stamp;
* with ``--lean-echo``, a **lean echo** (a separate process): a wait set over
  ``joint_states`` whose messages' bytes it publishes back on ``joint_command`` as they came
  (no executor, no message objects; the floor of a Python node on this transport, by the
  means the policy node's control loop uses);
* the **policy node** (a separate process, the installed module): a randomly initialized
  policy with the shipped policy's network size whose contract sets
  ``physics_dt_s = 1 / rate``, walking (the policy runs every
  ``decimation`` ticks, PD every tick), ``use_sim_time`` on this benchmark's ``/clock``.

This process plays the simulator, as Isaac Sim or the sim node do: every control tick ``k`` it
publishes ``odom``, ``imu``, ``joint_states`` (all stamped ``t_k = k / rate``) and then
``/clock = t_k``, paced by the wall clock at ``rate``. The policy node's control timer runs on
ROS time, so it fires when ``/clock`` reaches ``t_k`` and stamps its command with ``now = t_k``
(the echo copies the joint state's stamp). A command is matched to its tick by that stamp
(commands with an unknown stamp are matched to the oldest unanswered tick).

Latency of tick ``k`` = receipt of its command here - publication of its ``joint_states`` here:
the system clock read just before the publish call, and the RMW's reception timestamp of the
command (``MessageInfo['received_timestamp']``, stamped by the DDS layer when the sample
arrives, so the time this Python process takes to get to the message is not counted). Two
transport hops for both nodes, so the difference is mostly the node's own processing (clock
handling, timer, observation, ONNX, PD, publishing), with two differences of path that work in
opposite directions: the echo is a plain rclpy node (``rclpy.spin``, message objects), whose
executor wake-up costs more than the policy node's own wait loop on serialized messages; and
the policy node (timer trigger) can only tick once ``/clock`` has arrived, which this process
publishes after ``joint_states``, so its figure also holds that publish. A tick is **missed**
when its command arrives more than one control period after its joint state was published, or
never; the missed ticks are split into **late** (it came after that) and **skipped** (it never
came, by the end of the phase), so a node that falls behind and one that drops ticks look
different. *Late publishes* count the ticks this process published more than half a period
after they were due.

**Alternating chunks** (``--chunk-s``): instead of one block per node, the echo and the policy
node are measured in alternating chunks (echo, policy, policy, echo, ...; each chunk starts its
node, waits until it answers and walks, warms up 1 s, then measures), until each has
``--duration-s`` of measurement. A load change on a shared machine then hits both nodes alike
instead of one phase. The per-node figures are over all of its chunks together (percentiles of
the pooled latencies, summed tick counts); every chunk is also listed in the JSON.

``--priority N`` starts the policy node with ``control_thread_priority:=N`` (SCHED_FIFO for its
control thread where permitted; the echo node always runs at normal priority, as a plain rclpy
node would).

Usage (from the source checkout, venv active)::

    python benchmarks/node_latency.py                      # 60 s per phase, 200 and 500 Hz
    python benchmarks/node_latency.py --duration-s 10 --out /tmp/latency.json
    python benchmarks/node_latency.py --duration-s 60 --chunk-s 10   # alternating chunks
"""

import dataclasses
import json
import os
from pathlib import Path
import platform
import signal
import subprocess
import sys
import time
from typing import Dict, List, Literal, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import Twist  # noqa: E402
from humanoid_rl_ros.core.provenance import git_commit  # noqa: E402
from humanoid_rl_ros.core.timebase import ns_to_stamp, NSEC_PER_SEC, stamp_to_ns  # noqa: E402
from humanoid_rl_ros.ros.node_main import run_node  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Imu  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
import tyro  # noqa: E402

NSEC = NSEC_PER_SEC
ECHOES = ('echo', 'lean echo')


# ---------------------------------------------------------------------------- echo node role
def run_echo_node() -> None:
    """Run the bare echo node: joint_states in, JointState with the same stamp out."""
    def make_node():
        node = rclpy.create_node('echo_node')
        pub = node.create_publisher(JointState, 'joint_command', 10)

        def on_state(msg: JointState) -> None:
            out = JointState()
            out.header.stamp = msg.header.stamp
            out.name = msg.name
            out.effort = [0.0] * len(msg.name)
            pub.publish(out)

        # The same QoS the policy node uses for joint_states (sensor data, best effort).
        node.create_subscription(JointState, 'joint_states', on_state, qos_profile_sensor_data)
        return node

    run_node(make_node)


def run_lean_echo_node() -> None:
    """
    Run the lean echo: a wait set over ``joint_states``, each message's bytes sent back as is.

    The floor of a Python node on this transport (no executor, no message objects), the same
    means the policy node's control loop uses; the received message, stamp included, is the
    command.
    """
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

    def spin(node) -> None:
        pub = node.create_publisher(JointState, 'joint_command', 10)
        sub = node.create_subscription(JointState, 'joint_states', lambda msg: None,
                                       qos_profile_sensor_data)
        with sub.handle, node.context.handle:
            wait_set = _rclpy.WaitSet(1, 0, 0, 0, 0, 0, node.context.handle)
            while rclpy.ok():
                wait_set.clear_entities()
                wait_set.add_subscription(sub.handle)
                wait_set.wait(100_000_000)
                taken = sub.handle.take_message(JointState, True)
                if taken is not None:
                    pub.publish(taken[0])

    run_node(lambda: rclpy.create_node('lean_echo_node'), spin=spin)


# ---------------------------------------------------------------------------- benchmark
@dataclasses.dataclass
class PhaseResult:
    """Measurements of one node at one rate."""

    node: str
    rate_hz: float
    duration_s: float
    ticks: int
    answered: int
    missed: int
    late_publishes: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    final_state: str = ''
    load_avg_1min: tuple = ()
    """The 1-minute load average at the start and the end of the measured window."""
    late: int = 0
    """Missed ticks whose command still arrived (after the next tick was due)."""
    skipped: int = 0
    """Missed ticks whose command never arrived (by the end of the measured window)."""
    chunks: int = 1
    """Measured chunks pooled into this result."""
    matched_to_oldest: int = 0
    """Commands whose stamp matched no unanswered tick, counted for the oldest one (the
    joint_states trigger stamps with the last ``/clock``, one tick behind)."""
    missed_near_late_publish: int = 0
    """Missed ticks that this process published late, or whose next tick it published late
    (two ticks' ``/clock`` back to back: the node's ``/clock`` subscription keeps only the
    newest, so a timer on ROS time skips one)."""


class Bench:
    """This process's node: plays the simulator and timestamps the answers."""

    def __init__(self, joint_names: List[str]) -> None:
        self.node = rclpy.create_node('latency_bench')
        self.names = list(joint_names)
        self.pub_js = self.node.create_publisher(JointState, 'joint_states', 10)
        self.pub_odom = self.node.create_publisher(Odometry, 'odom', 10)
        self.pub_imu = self.node.create_publisher(Imu, 'imu', 10)
        self.pub_clock = self.node.create_publisher(Clock, '/clock', 10)
        self.pub_cmd = self.node.create_publisher(Twist, 'cmd_vel', 10)
        # Taken by drain() between ticks, not by an executor: the reception time comes from the
        # RMW, so reacting later costs no precision, and an executor's wake-up per message
        # (0.13-0.2 ms of Python) would compete with the node under test for the CPUs.
        self._inputs = [
            (self.node.create_subscription(JointState, 'joint_command', self._on_cmd, 100),
             self._on_cmd),
            (self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10),
             lambda msg, info: self._on_diag(msg)),
        ]
        self.policy_state = ''
        self.pending: Dict[int, int] = {}  # stamp ns -> publish time ns (system clock)
        self.latency_by_stamp: Dict[int, int] = {}
        self.recording = False
        self.answers = 0
        self.tick = 0
        self.t0_ns = 0
        self.skipped = 0
        self.missed_near_late_publish = 0
        self.matched_to_oldest = 0  # commands whose stamp was no pending tick's
        self.state_msgs = self._make_state_msgs()

    def _make_state_msgs(self):
        js = JointState()
        js.name = self.names
        js.position = [0.0] * len(self.names)
        js.velocity = [0.0] * len(self.names)
        js.effort = [0.0] * len(self.names)
        odom = Odometry()
        odom.header.frame_id = 'odom'
        odom.child_frame_id = 'pelvis'
        odom.pose.pose.orientation.w = 1.0
        imu = Imu()
        imu.header.frame_id = 'pelvis'
        imu.orientation.w = 1.0
        imu.linear_acceleration.z = 9.81
        return js, odom, imu

    def set_pose(self, position: np.ndarray) -> None:
        """Set the joint positions published (the default pose keeps the policy calm)."""
        self.state_msgs[0].position = [float(v) for v in position]

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            for kv in status.values:
                if kv.key == 'state':
                    self.policy_state = kv.value

    def _on_cmd(self, msg: JointState, info: Dict[str, int]) -> None:
        # The RMW's reception time (system clock); drain() runs once per tick, so this
        # process's own clock would add up to a period to every latency.
        now = info.get('received_timestamp', 0)
        if now <= 0:
            raise RuntimeError('this RMW gives no reception timestamps (MessageInfo '
                               "'received_timestamp'); the benchmark needs them")
        self.answers += 1
        stamp = stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
        if stamp not in self.pending:
            if not self.pending:
                return
            stamp = min(self.pending)
            self.matched_to_oldest += 1
        sent = self.pending.pop(stamp)
        if self.recording:
            self.latency_by_stamp[stamp] = now - sent

    def publish_tick(self, t_ns: int) -> None:
        js, odom, imu = self.state_msgs
        sec, nsec = ns_to_stamp(t_ns)
        for msg in (odom, imu, js):
            msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
        self.pub_odom.publish(odom)
        self.pub_imu.publish(imu)
        self.pending[t_ns] = time.time_ns()
        self.pub_js.publish(js)
        clock = Clock()
        clock.clock.sec, clock.clock.nanosec = sec, nsec
        self.pub_clock.publish(clock)
        if self.tick % 10 == 0:
            self.pub_cmd.publish(Twist())

    def latencies_ns(self) -> List[int]:
        """Return the latencies [ns] of the answered ticks of the last recorded run."""
        return list(self.latency_by_stamp.values())

    def drain(self) -> None:
        """Take every command and diagnostics message that has arrived."""
        for sub, callback in self._inputs:
            with sub.handle:
                while True:
                    taken = sub.handle.take_message(sub.msg_type, False)
                    if taken is None:
                        break
                    callback(*taken)

    def run(self, rate_hz: float, duration_s: float, until=None, record: bool = True):
        """Publish ticks at ``rate_hz`` for ``duration_s`` (or until ``until()``)."""
        period_ns = int(round(NSEC / rate_hz))
        self.pending.clear()
        self.latency_by_stamp = {}
        self.matched_to_oldest = 0
        self.recording = record
        start = time.perf_counter_ns()
        n_ticks = int(round(duration_s * rate_hz))
        ticks: List[int] = []
        late = 0
        late_stamps = set()
        k = 0
        while True:
            if until is not None and until():
                break
            if until is None and k >= n_ticks:
                break
            due = start + k * period_ns
            self.drain()
            now = time.perf_counter_ns()
            if now < due:
                time.sleep((due - now) / NSEC)
                now = time.perf_counter_ns()
            self.tick += 1
            t_ns = self.t0_ns + self.tick * period_ns
            if now - due > period_ns // 2:
                late += 1
                late_stamps.add(t_ns)
            self.publish_tick(t_ns)
            ticks.append(t_ns)
            k += 1
            if until is not None and k > n_ticks:
                raise RuntimeError(f'condition not met within {duration_s} s')
        # Let the last answers arrive before judging them.
        time.sleep(2 * period_ns / NSEC)
        self.drain()
        if not record:
            return ticks, late, 0
        self.skipped = sum(1 for t in ticks if t not in self.latency_by_stamp)
        missed = [t for t in ticks if self.latency_by_stamp.get(t, period_ns + 1) > period_ns]
        self.missed_near_late_publish = sum(
            1 for t in missed if t in late_stamps or t + period_ns in late_stamps)
        return ticks, late, len(missed)

    def close(self) -> None:
        self.node.destroy_node()


def _stats(node: str, rate: float, duration: float, ticks: int, late: int, missed: int,
           latency_ns: List[int], skipped: int = 0) -> PhaseResult:
    lat = np.asarray(latency_ns, dtype=float) / 1e6
    if lat.size == 0:
        lat = np.array([np.nan])
    return PhaseResult(node, rate, duration, ticks, len(latency_ns), missed, late,
                       float(np.percentile(lat, 50)), float(np.percentile(lat, 90)),
                       float(np.percentile(lat, 99)), float(np.max(lat)), float(np.mean(lat)),
                       late=missed - skipped, skipped=skipped)


def pool_chunks(chunks: List[PhaseResult], latencies: List[List[int]]) -> PhaseResult:
    """Return one result for a node over its measured chunks (pooled latencies, summed ticks)."""
    first = chunks[0]
    pooled = _stats(first.node, first.rate_hz, sum(c.duration_s for c in chunks),
                    sum(c.ticks for c in chunks), sum(c.late_publishes for c in chunks),
                    sum(c.missed for c in chunks), [v for lat in latencies for v in lat],
                    sum(c.skipped for c in chunks))
    pooled.chunks = len(chunks)
    pooled.missed_near_late_publish = sum(c.missed_near_late_publish for c in chunks)
    pooled.matched_to_oldest = sum(c.matched_to_oldest for c in chunks)
    pooled.final_state = ', '.join(sorted({c.final_state for c in chunks if c.final_state}))
    loads = [v for c in chunks for v in c.load_avg_1min]
    pooled.load_avg_1min = (min(loads), max(loads)) if loads else ()
    return pooled


def _start(argv: List[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO)] + [
        p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    env['PYTHONUNBUFFERED'] = '1'
    return subprocess.Popen(argv, stdout=open(log, 'w'), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


SHIPPED_POLICY = REPO / 'models' / 'humanoid_walk.yaml'


def make_policy(folder: Path, rate_hz: float) -> Path:
    """
    Export a random policy for kestrel whose contract runs PD at ``rate_hz``.

    Its actor has the hidden layers of the shipped policy (read from its contract's training
    config), so a policy tick costs what the deployed network costs.
    """
    from humanoid_rl_ros.core.contract import placeholder_contract, read_contract
    from humanoid_rl_ros.robot.description import load_robot
    from training.export import export_random_policy
    shipped = read_contract(SHIPPED_POLICY).provenance['config']['runner']['policy']
    template = dataclasses.replace(placeholder_contract(load_robot('kestrel')),
                                   physics_dt_s=1.0 / rate_hz)
    _, contract = export_random_policy(template, folder, f'random_{int(rate_hz)}hz', seed=0,
                                       hidden_dims=tuple(shipped['actor_hidden_dims']))
    return Path(contract)


def run_phase(bench: Bench, kind: str, rate: float, duration: float, work: Path,
              trigger: str = 'timer', priority: int = 0, fifo: int = 0) -> PhaseResult:
    """Start the node under test, warm it up, measure, stop it (latencies in bench)."""
    name = kind if kind in ECHOES else f'policy ({trigger})'
    log = work / f'{kind.replace(" ", "_")}_{trigger}_{int(rate)}hz.log'
    if kind in ECHOES:
        argv = [sys.executable, str(Path(__file__).resolve()), '--role', kind.replace(' ', '_')]
    else:
        policy = make_policy(work / 'policies', rate)
        argv = [sys.executable, '-m', 'humanoid_rl_ros.ros.policy_node', '--ros-args',
                '-p', f'policy:={policy}', '-p', 'use_sim_time:=true', '-p', 'autostart:=true',
                '-p', 'start_walking_on_activate:=true', '-p', 'stand_ramp_s:=0.05',
                '-p', f'control_trigger:={trigger}', '-p', 'cmd_vel_stamped:=false']
        if priority:
            argv += ['-p', f'control_thread_priority:={priority}']
    if fifo:
        argv = ['chrt', '--fifo', str(fifo)] + argv
    proc = _start(argv, log)
    try:
        bench.policy_state = ''
        bench.answers = 0
        if kind in ECHOES:
            ready = (lambda: bench.answers > 20)
        else:
            ready = (lambda: bench.policy_state == 'walking' and bench.answers > 20)
        bench.run(rate, 60.0, until=lambda: ready() or proc.poll() is not None, record=False)
        if proc.poll() is not None:
            raise RuntimeError(f'{name} exited; see {log}:\n{log.read_text()[-2000:]}')
        bench.run(rate, 1.0, record=False)  # warm-up
        load_start = os.getloadavg()[0]
        ticks, late, missed = bench.run(rate, duration, record=True)
        result = _stats(name, rate, duration, len(ticks), late, missed, bench.latencies_ns(),
                        bench.skipped)
        result.missed_near_late_publish = bench.missed_near_late_publish
        result.matched_to_oldest = bench.matched_to_oldest
        result.load_avg_1min = (load_start, os.getloadavg()[0])
        if kind not in ECHOES:
            # A node that falls behind sees its inputs go stale (ROS-time timeouts) and damps:
            # that is a failure to hold the rate, reported, not a benchmark error.
            result.final_state = bench.policy_state
        print(f'  {name:<22} {rate:5.0f} Hz: p50 {result.p50_ms:.3f} ms, p99 '
              f'{result.p99_ms:.3f} ms, max {result.max_ms:.2f} ms, missed {missed}/'
              f'{len(ticks)} (late {result.late}, skipped {result.skipped}; '
              f'{result.missed_near_late_publish} at a late publish), late publishes '
              f'{late}, load {result.load_avg_1min[0]:.2f}-'
              f'{result.load_avg_1min[1]:.2f}'
              + (f', state at end: {result.final_state}' if result.final_state else ''),
              flush=True)
        return result
    finally:
        _stop(proc)


def cpu_name() -> str:
    """Return the CPU model name and core count."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return f'{line.split(":", 1)[1].strip()}, {os.cpu_count()} cores'
    except OSError:
        pass
    return f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores'


@dataclasses.dataclass
class LatencyConfig:
    """Options of the node latency benchmark."""

    lean_echo: bool = False
    """Also measure the lean echo (wait set, serialized messages); report the overhead over it."""
    duration_s: float = 60.0
    """Measured time per node and rate [s]."""
    rates: Tuple[float, ...] = (200.0, 500.0)
    """Control rates to test [Hz]."""
    triggers: Tuple[Literal['timer', 'joint_states'], ...] = ('timer',)
    """Policy node control_trigger values to test."""
    chunk_s: float = 0.0
    """Measure echo and policy node in alternating chunks of this many seconds until each has
    duration_s; 0: one block each."""
    priority: int = 0
    """control_thread_priority of the policy node (SCHED_FIFO 1-99 where permitted; 0: normal)."""
    fifo: int = 0
    """Start every node under test (echoes and policy node) with `chrt --fifo N`, all of its
    threads SCHED_FIFO N, the DDS ones included; 0: normal scheduling."""
    out: Optional[Path] = None
    """Write the results as JSON to this file."""
    work: Path = Path('/tmp/node_latency')
    """Folder for node logs and generated policies."""
    role: Literal['bench', 'echo', 'lean_echo'] = 'bench'
    """What this process is: the benchmark, or one of the echo nodes it starts."""


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark and print/save the results."""
    args = tyro.cli(LatencyConfig, args=argv, prog='python benchmarks/node_latency.py',
                    description=__doc__.split('\n\n')[0].strip())
    if args.role == 'echo':
        run_echo_node()
        return 0
    if args.role == 'lean_echo':
        run_lean_echo_node()
        return 0
    echoes = ['echo', 'lean echo'] if args.lean_echo else ['echo']
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    args.work.mkdir(parents=True, exist_ok=True)
    from humanoid_rl_ros.robot.description import load_robot
    robot = load_robot('kestrel')
    rclpy.init()
    bench = Bench(list(robot.joint_names))
    bench.set_pose(robot.default_pos_rad)
    results: List[PhaseResult] = []
    chunk_results: List[PhaseResult] = []
    print(f'node latency benchmark: {cpu_name()}, Python {platform.python_version()}, '
          f'RMW {os.environ.get("RMW_IMPLEMENTATION", "default (rmw_fastrtps_cpp)")}, '
          f'{args.duration_s:g} s per phase', flush=True)
    try:
        for rate in args.rates:
            if args.chunk_s <= 0.0:
                for echo in echoes:
                    results.append(run_phase(bench, echo, rate, args.duration_s, args.work,
                                             fifo=args.fifo))
                for trigger in args.triggers:
                    results.append(run_phase(bench, 'policy', rate, args.duration_s,
                                             args.work, trigger, args.priority, args.fifo))
                continue
            kinds = [(e, 'timer') for e in echoes] + [('policy', t) for t in args.triggers]
            per_kind = {k: ([], []) for k in kinds}
            n_chunks = max(1, int(round(args.duration_s / args.chunk_s)))
            for i in range(n_chunks):
                # echo first in even rounds, last in odd ones: neither always follows the other
                for kind, trigger in (kinds if i % 2 == 0 else kinds[::-1]):
                    result = run_phase(bench, kind, rate, args.chunk_s, args.work, trigger,
                                       args.priority, args.fifo)
                    per_kind[(kind, trigger)][0].append(result)
                    per_kind[(kind, trigger)][1].append(bench.latencies_ns())
                    chunk_results.append(result)
            for kind in kinds:
                results.append(pool_chunks(*per_kind[kind]))
    except KeyboardInterrupt:
        print('interrupted')
        return 130
    finally:
        bench.close()
        if rclpy.ok():
            rclpy.shutdown()
    print('\nsummary (policy node overhead over the bare echo node, same rate):')
    summary = []
    for rate in args.rates:
        echo = next(r for r in results if r.node == 'echo' and r.rate_hz == rate)
        lean = next((r for r in results if r.node == 'lean echo' and r.rate_hz == rate), None)
        for r in results:
            if r.rate_hz != rate or r.node in ECHOES:
                continue
            row = {'node': r.node, 'rate_hz': rate,
                   'overhead_p50_ms': r.p50_ms - echo.p50_ms,
                   'overhead_p99_ms': r.p99_ms - echo.p99_ms,
                   'ratio_p50': r.p50_ms / echo.p50_ms, 'ratio_p99': r.p99_ms / echo.p99_ms,
                   'holds_rate': r.missed == 0 and r.final_state in ('', 'walking'),
                   'missed': r.missed, 'missed_near_late_publish': r.missed_near_late_publish,
                   'echo_missed': echo.missed,
                   'final_state': r.final_state}
            if lean is not None:
                row.update({'lean_overhead_p50_ms': r.p50_ms - lean.p50_ms,
                            'lean_overhead_p99_ms': r.p99_ms - lean.p99_ms,
                            'lean_echo_missed': lean.missed})
            summary.append(row)
            print(f'  {r.node} @ {rate:g} Hz: overhead p50 {row["overhead_p50_ms"]:+.3f} ms '
                  f'(x{row["ratio_p50"]:.2f}), p99 {row["overhead_p99_ms"]:+.3f} ms '
                  f'(x{row["ratio_p99"]:.2f}); missed ticks {r.missed}/{r.ticks} (late '
                  f'{r.late}, skipped {r.skipped}; {r.missed_near_late_publish} at a late '
                  f'publish of this process; echo {echo.missed}), state '
                  f'{r.final_state} -> {"holds" if row["holds_rate"] else "does NOT hold"} '
                  f'{rate:g} Hz')
            if lean is not None:
                print(f'      over the lean echo: p50 {row["lean_overhead_p50_ms"]:+.3f} ms, '
                      f'p99 {row["lean_overhead_p99_ms"]:+.3f} ms (lean echo missed '
                      f'{lean.missed})')
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            'machine': cpu_name(), 'python': platform.python_version(),
            'commit': git_commit(REPO),
            'duration_s': args.duration_s,
            'chunk_s': args.chunk_s, 'priority': args.priority, 'fifo': args.fifo,
            'phases': [dataclasses.asdict(r) for r in results], 'summary': summary,
            'chunks': [dataclasses.asdict(r) for r in chunk_results],
        }, indent=2) + '\n')
        print(f'results: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
