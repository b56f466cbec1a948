"""
The ``main`` of a node executable: init rclpy, make the node, spin it, stop it, clean up.

Stopping the process (Ctrl-C: SIGINT; ``ros2 launch`` sends SIGINT, then SIGTERM) must leave
the node a valid context to send its final command in. rclpy's own signal handlers shut the
context down as the signal arrives, before any code of the node runs, so :func:`run_node`
installs its own: SIGINT and SIGTERM only ask the process to stop (:func:`stop_requested`).
The spin loop then ends, a lifecycle node goes through its shutdown transition (the policy
node sends its final command there), the node is destroyed and rclpy shut down. A signal that
comes while the node stops is ignored; what was begun finishes, each wait in it bounded (the
executor's shutdown here; the policy node's waits for its lock, for its final command to be
acknowledged and for its control thread). SIGKILL, a crash or a power loss still end the
process without any of this.
"""

import signal
import threading
from typing import Callable, Optional, Sequence

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a node process cleanly."""
SPIN_TIMEOUT_S = 0.1
"""[s wall] The longest the spin loop waits before it looks at the stop request again."""
EXECUTOR_SHUTDOWN_TIMEOUT_S = 1.0
"""[s wall] How long stopping waits for the executor to finish its work."""

_stop = threading.Event()


def stop_requested() -> bool:
    """
    Return whether the process was asked to stop (SIGINT or SIGTERM under :func:`run_node`).

    Work that blocks inside a callback (e.g. configure waiting for the first ``joint_states``)
    checks this to give up early. The request lasts until :func:`run_node` returns.
    """
    return _stop.is_set()


class _StopSignals:
    """SIGINT/SIGTERM handlers that ask the process to stop, installed for one ``run_node``."""

    def __init__(self, interrupt: bool) -> None:
        """Install the handlers; ``interrupt``: also raise KeyboardInterrupt on the first one."""
        self.interrupt = interrupt
        self.received: Optional[str] = None  # name of the first stop signal
        self.executor: Optional[Executor] = None  # woken on a signal
        self.stopping = False  # from here on a signal only records itself
        self._previous = {}
        _stop.clear()
        if threading.current_thread() is not threading.main_thread():
            return  # Python runs signal handlers in the main thread only
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame) -> None:
        first = not _stop.is_set()
        _stop.set()
        if first:
            self.received = signal.Signals(signum).name
        executor = self.executor
        if executor is not None:
            executor.wake()  # a wait that is about to start returns at once
        if first and self.interrupt and not self.stopping:
            raise KeyboardInterrupt  # a caller's own spin loop ends as on Python's Ctrl-C

    def restore(self) -> None:
        """Put back the handlers that were there before."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


def _spin_until_stopped(node: Node, executor: Executor) -> None:
    """Spin ``node`` until a stop is requested or the context is shut down."""
    executor.add_node(node)
    while not _stop.is_set() and executor.context.ok():
        executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)


def _finish(node: Node) -> None:
    """
    Give ``node`` its last word while the context is valid.

    A lifecycle node takes its shutdown transition (from unconfigured, inactive or active;
    ``on_shutdown`` is where the policy node sends its final command). Any failure is logged.
    """
    if not isinstance(node, LifecycleNode) or not node.context.ok():
        return
    try:
        node.trigger_shutdown()
    except Exception as exc:  # noqa: B902 - e.g. already finalized: nothing more to send
        node.get_logger().warning(f'shutdown transition not taken: {exc}')


def run_node(make_node: Callable[[], Node], args: Optional[Sequence[str]] = None,
             spin: Optional[Callable[[Node], None]] = None) -> None:
    """
    Run a node until SIGINT, SIGTERM or an external shutdown; stop it, shut rclpy down.

    ``make_node`` builds the node after ``rclpy.init(args=args)`` (so ``--ros-args`` apply).
    Without ``spin`` the node spins in a single-threaded executor until a stop signal; then a
    lifecycle node takes its shutdown transition with the context still valid (see the module
    docstring). A custom ``spin(node)`` is interrupted by KeyboardInterrupt on the first stop
    signal (as Python's Ctrl-C does) and may return on its own; the node is stopped the same way.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signals = _StopSignals(interrupt=spin is not None)
    executor = SingleThreadedExecutor() if spin is None else None
    signals.executor = executor
    node = None
    try:
        node = make_node()
        if spin is None:
            _spin_until_stopped(node, executor)
        else:
            spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signals.stopping = True
        try:
            if node is not None:
                if signals.received:
                    node.get_logger().info(f'{signals.received} received: stopping')
                _finish(node)
            if executor is not None:
                signals.executor = None
                executor.shutdown(timeout_sec=EXECUTOR_SHUTDOWN_TIMEOUT_S)
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
        finally:
            signals.restore()
            _stop.clear()  # a later wait in this process (another run_node) must not end at once
