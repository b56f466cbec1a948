"""
Which message type to take ``cmd_vel`` as, from the types its publishers send (no rclpy).

Nav2 publishes ``geometry_msgs/TwistStamped`` on ``cmd_vel`` from Kilted on and
``geometry_msgs/Twist`` on Jazzy and Humble (teleop too). DDS matches a subscription only with
publishers of its own type, so a node subscribed with the other type hears nothing, silently.
:func:`choose_cmd_vel_type` picks the type from the publishers the ROS graph lists on the topic
(``cmd_vel_type: auto``) or checks them against a forced one, and says when some publisher will
not be heard.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

TWIST = 'geometry_msgs/msg/Twist'
TWIST_STAMPED = 'geometry_msgs/msg/TwistStamped'
FORCED = {'twist': TWIST, 'stamped': TWIST_STAMPED}
"""``cmd_vel_type`` values that force a type -> the type."""
DEFAULT_TYPE = TWIST_STAMPED
"""Taken in ``auto`` while no publisher is there: what Nav2 Kilted and newer send."""


@dataclass(frozen=True)
class CmdVelChoice:
    """The type to subscribe with, and what to tell about it."""

    msg_type: str
    """The message type to subscribe with (:data:`TWIST` or :data:`TWIST_STAMPED`)."""
    note: str
    """What was chosen and why (for diagnostics)."""
    warning: str = ''
    """Publishers that will not be heard ('' if every publisher is heard)."""


def _short(msg_type: str) -> str:
    return msg_type.rsplit('/', 1)[-1]


def _list(publishers: Sequence[Tuple[str, str]], msg_type: str) -> str:
    return ', '.join(sorted({name for name, t in publishers if t == msg_type})) or '?'


def choose_cmd_vel_type(mode: str, publishers: Sequence[Tuple[str, str]],
                        current: Optional[str] = None) -> CmdVelChoice:
    """
    Return the ``cmd_vel`` type for ``mode`` given the topic's ``(node name, type)`` publishers.

    ``auto``: the type of the publishers; none yet: ``current`` (the type subscribed now) or
    :data:`DEFAULT_TYPE`; both types at once: ``current`` if it is one of them, else
    TwistStamped, with a warning naming the publishers not heard. ``twist`` / ``stamped``:
    that type, with a warning if a publisher sends another one.
    """
    types = {t for _, t in publishers}
    if mode in FORCED:
        chosen = FORCED[mode]
        note = f'{_short(chosen)} (cmd_vel_type {mode})'
    elif mode != 'auto':
        raise ValueError(f'cmd_vel_type must be auto, twist or stamped, got {mode!r}')
    else:
        known = types & {TWIST, TWIST_STAMPED}
        if not known:
            chosen = current or DEFAULT_TYPE
            note = (f'{_short(chosen)} (auto: no publisher yet; follows the type of the '
                    'first one)')
        elif len(known) == 1:
            chosen = known.pop()
            note = f'{_short(chosen)} (auto: the type of its publishers)'
        else:
            chosen = current if current in known else TWIST_STAMPED
            note = f'{_short(chosen)} (auto: publishers of both types)'
    unheard = sorted(types - {chosen})
    warning = ''
    if unheard:
        warning = ('cmd_vel publishers not heard (subscribed as ' + _short(chosen) + '): '
                   + '; '.join(f'{_list(publishers, t)} send {t}' for t in unheard))
    return CmdVelChoice(chosen, note, warning)
