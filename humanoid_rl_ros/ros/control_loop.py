"""
The policy node's control path in a thread of its own: a wait set over the control entities only.

:class:`ControlLoop` takes the control subscriptions (sensor streams, ``/clock``) and timers out
of the executor's hands (:class:`ControlGroup`) and runs them in one thread, reading the sensor
streams from their serialized bytes (:func:`raw_handler`, :func:`raw_clock_handler`, with the
readers of :mod:`humanoid_rl_ros.ros.cdr`).
"""

from contextlib import ExitStack
import os
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

from humanoid_rl_ros.ros import cdr
from humanoid_rl_ros.ros.ros_conversions import header_stamp_ns
from rclpy.callback_groups import CallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.guard_condition import GuardCondition
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rclpy.time_source import TimeSource
from rosgraph_msgs.msg import Clock as ClockMsg

try:  # the wait-set binding rclpy's own executors use; without it the executor runs everything
    from rclpy.impl.implementation_singleton import rclpy_implementation as rclpy_impl
except ImportError:  # pragma: no cover - other rclpy layouts
    rclpy_impl = None
"""rclpy's C binding (wait sets, raw publishing), or None where this rclpy does not expose it."""

STOP_TIMEOUT_S = 2.0
"""[s wall] The longest :meth:`ControlLoop.stop` waits for the control thread to end."""


class ControlGroup(CallbackGroup):
    """
    Callback group of the control path's entities: only the :class:`ControlLoop` runs them.

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


class ControlLoop:
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

    def __init__(self, node: Node, group: ControlGroup, lock: threading.RLock) -> None:
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
        self._stop = threading.Event()  # the running thread's; a new one per start()
        self.priority = 0  # SCHED_FIFO priority of the thread (0: normal scheduling)
        self.priority_status = ''  # what the thread's scheduling is, for diagnostics
        self.failure = ''  # why the thread stopped on its own ('' while it runs or was stopped)

    @staticmethod
    def available() -> bool:
        """Return whether this rclpy exposes what the loop needs."""
        return rclpy_impl is not None and hasattr(rclpy_impl, 'WaitSet')

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
                self._raw_handlers[sub] = raw_clock_handler(sub.callback)
        # Event handlers (incompatible QoS/type warnings) go with their subscription: an
        # executor waiting on the events of a subscription it does not take from woke up at
        # once, again and again, while a message was waiting (seen with Fast DDS). The control
        # subscriptions are created without handlers (by the policy node); the loop
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
        self._stop = threading.Event()
        self.failure = ''
        self._guard = GuardCondition(None, None, context=self._node.context)
        self._thread = threading.Thread(target=self._run, args=(self._stop,), daemon=True,
                                        name=f'{self._node.get_name()}_control')
        self._thread.start()

    def stop(self) -> bool:
        """
        Stop the thread; give what it took from the executor back (/clock, diagnostics).

        The wait for the thread is bounded (:data:`STOP_TIMEOUT_S`): a thread stuck in a
        callback is logged at ERROR and left behind (a daemon thread, told to stop; it runs
        no further tick once the callback returns). Return whether the thread stopped (True
        also when none ran).
        """
        thread = self._thread
        stopped = True
        if thread is not None:
            self._stop.set()
            self._guard.trigger()
            if thread is not threading.current_thread():
                thread.join(timeout=STOP_TIMEOUT_S)
                stopped = not thread.is_alive()
            if not stopped:
                self._node.get_logger().error(
                    f'control thread {thread.name} did not stop within {STOP_TIMEOUT_S} s (a '
                    'control callback does not return); stopping without it')
            self._guard.destroy()  # destroyed once the thread lets go of it
            self._thread = None
            self._guard = None
        self._give_back()
        for handler in self._events:
            handler.destroy()
        self._subs, self._timers, self._events, self._moved = [], [], [], []
        self._raw_handlers = {}
        return stopped

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

    def _run(self, stop: threading.Event) -> None:
        logger = self._node.get_logger()
        context = self._node.context
        self._set_priority(logger)
        subs, timers, events = self._subs, self._timers, self._events

        def call(callback, *args) -> None:
            # stop() may have given up on this thread while a callback hung: once it returns,
            # nothing more is run (the node may be torn down by then)
            if not stop.is_set():
                self._call(callback, *args)

        try:
            with ExitStack() as stack:
                # Hold every handle for the loop's lifetime: destroying one waits until this
                # thread lets go of it (stop() joins first, or gives up on a hung thread).
                for entity in subs + timers + [self._guard]:
                    stack.enter_context(entity.handle)
                for handler in events:
                    stack.enter_context(handler)
                stack.enter_context(context.handle)
                wait_set = rclpy_impl.WaitSet(len(subs), 1, len(timers), 0, 0, 0, context.handle)
                event_wait_set = rclpy_impl.WaitSet(0, 0, 0, 0, 0, len(events), context.handle)
                next_event_poll_ns = 0
                sub_handles = [sub.handle for sub in subs]
                takes = [(sub.handle.take_message, sub.msg_type, sub in self._raw_handlers,
                          self._raw_handlers.get(sub, sub.callback)) for sub in subs]
                input_takes = takes[:self._num_inputs]  # without /clock (appended last)
                timer_handles = [(tmr.handle, tmr.callback) for tmr in timers]
                guard_handle = self._guard.handle
                while not stop.is_set() and context.ok():
                    wait_set.clear_entities()
                    for handle in sub_handles:
                        wait_set.add_subscription(handle)
                    for handle, _ in timer_handles:
                        wait_set.add_timer(handle)
                    wait_set.add_guard_condition(guard_handle)
                    wait_set.wait(self._WAIT_TIMEOUT_NS)
                    if stop.is_set():
                        break
                    if events and time.monotonic_ns() >= next_event_poll_ns:
                        next_event_poll_ns = time.monotonic_ns() + self._EVENT_POLL_NS
                        self._poll_events(event_wait_set, events)
                    with self._lock:
                        for index, (take, msg_type, raw, callback) in enumerate(takes):
                            if wait_set.is_ready('subscription', index):
                                taken = take(msg_type, raw)
                                if taken is not None:
                                    call(callback, taken[0])
                        for handle, callback in timer_handles:
                            if handle.is_timer_ready():
                                # Take inputs that arrived since the wait returned first: a
                                # joint state published before the /clock that made this tick
                                # due can be delivered after it (another DDS path).
                                for take, msg_type, raw, input_callback in input_takes:
                                    taken = take(msg_type, raw)
                                    if taken is not None:
                                        call(input_callback, taken[0])
                                handle.call_timer()
                                call(callback)
        except Exception as exc:  # noqa: B902 - a dead control thread must be reported
            if not stop.is_set() and context.ok():
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


def raw_handler(read: Callable[[bytes], Optional[tuple]], msg_type,
                to_arrays: Callable, use: Callable) -> Callable[[bytes], None]:
    """
    Return a handler of serialized ``msg_type`` messages: ``use(*fields, stamp_ns)``.

    The fields come from ``read`` (a :mod:`humanoid_rl_ros.ros.cdr` reader, whose first field is
    the header stamp [ns], passed last) or, for data it does not read (not plain CDR), from
    rclpy's deserialization and ``to_arrays`` (the :mod:`humanoid_rl_ros.ros.ros_conversions`
    function the message callbacks use) and the message's header stamp.
    """
    def handle(data: bytes) -> None:
        fields = read(data)
        if fields is None:
            msg = deserialize_message(data, msg_type)
            use(*to_arrays(msg), header_stamp_ns(msg))
        else:
            use(*fields[1:], fields[0])
    handle.__name__ = f'{msg_type.__name__}_bytes_handler'  # named in the loop's error log
    return handle


def raw_clock_handler(callback):
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
