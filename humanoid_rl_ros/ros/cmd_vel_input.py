"""
The policy node's ``cmd_vel`` subscription, of the type its publishers send.

:class:`CmdVelInput` subscribes with the type :func:`~humanoid_rl_ros.ros.cmd_vel_types.
choose_cmd_vel_type` picks from the publishers the ROS graph lists on the (remapped) topic, and
re-checks them every :data:`CHECK_PERIOD_S` of wall time: a Nav2 or a teleop that starts, stops
or changes type later is followed (the subscription is made again with the other type). The
subscription lives in the node's executor, not in the control loop: ``cmd_vel`` comes at 10-50
Hz and only sets the command the next policy step reads.
"""

from typing import Callable

from geometry_msgs.msg import Twist, TwistStamped
from humanoid_rl_ros.ros.cmd_vel_types import choose_cmd_vel_type, CmdVelChoice, TWIST
from humanoid_rl_ros.ros.ros_conversions import header_stamp_ns, twist_to_command
from rclpy.clock import Clock, ClockType

CHECK_PERIOD_S = 0.5
"""[s wall] How often the publishers' type is checked."""

UNKNOWN_NODE = '_NODE_NAME_UNKNOWN_'
"""The name the ROS graph gives a publisher whose node it does not know yet."""

_TYPES = {TWIST: Twist, 'geometry_msgs/msg/TwistStamped': TwistStamped}


class CmdVelInput:
    """A ``cmd_vel`` subscription that follows its publishers' message type."""

    def __init__(self, node, topic: str, qos, mode: str,
                 on_command: Callable[[float, float, float], None]) -> None:
        """
        Subscribe on ``topic`` (``mode``: auto, twist or stamped); start checking the type.

        ``on_command(vx [m/s], vy [m/s], wz [rad/s], stamp_ns)`` gets every command (the
        header stamp [ns] of a TwistStamped, None for a Twist).
        """
        self._node = node
        self._topic = topic
        self._qos = qos
        self._mode = mode
        self._on_command = on_command
        self.subscription = None
        self.choice = CmdVelChoice('', '')
        self.check()
        self._timer = node.create_timer(CHECK_PERIOD_S, self.check,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))

    @property
    def topic_name(self) -> str:
        """Return the resolved (remapped) topic name."""
        if self.subscription is not None:
            return self.subscription.topic_name
        return self._node.resolve_topic_name(self._topic)

    def publishers(self):
        """Return ``(node name, message type)`` of every publisher on the topic."""
        infos = self._node.get_publishers_info_by_topic(self.topic_name)
        # A publisher is listed a moment before its node's name is known (DDS discovery).
        return [(f'{info.node_namespace.rstrip("/")}/{info.node_name}'
                 if info.node_name != UNKNOWN_NODE else 'a node not yet known', info.topic_type)
                for info in infos]

    def check(self) -> None:
        """Take the type the publishers send; subscribe again if it changed; log a change."""
        current = self.choice.msg_type or None
        choice = choose_cmd_vel_type(self._mode, self.publishers(), current)
        logger = self._node.get_logger()
        if choice.msg_type != current:
            if self.subscription is not None:
                self._node.destroy_subscription(self.subscription)
            self.subscription = self._node.create_subscription(
                _TYPES[choice.msg_type], self._topic, self._on_message, self._qos)
            logger.info(f'cmd_vel: subscribed to {self.subscription.topic_name} as '
                        f'{choice.note}')
        if choice.warning and choice.warning != self.choice.warning:
            logger.warning(choice.warning)
        self.choice = choice

    def _on_message(self, msg) -> None:
        header = getattr(msg, 'header', None)  # TwistStamped; a Twist has no stamp
        self._on_command(*twist_to_command(msg),
                         header_stamp_ns(msg) if header is not None else None)

    def destroy(self) -> None:
        """Stop checking and unsubscribe."""
        self._node.destroy_timer(self._timer)
        if self.subscription is not None:
            self._node.destroy_subscription(self.subscription)
            self.subscription = None
