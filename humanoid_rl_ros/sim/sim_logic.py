"""
Pure logic of the MuJoCo sim node (no ROS imports): command checks, hold/timeout, lock-step.

The sim node (:mod:`humanoid_rl_ros.ros.sim_node`) wires these to topics and timers.

Command checks
    An effort command is applied only when it is complete and finite. A ``JointState`` command is
    matched by name (any order); it must name every actuated joint exactly once, carry one effort
    per name and name no unknown joint. A ``Float64MultiArray`` command carries one effort per
    joint of a configured order. Anything else raises :class:`CommandError` whose message names
    the problem (the joint, the lengths, the bad value); the node logs it and applies nothing.

Hold and timeout
    :class:`CommandHold` keeps the newest accepted command for ``timeout_s`` of sim time; after
    that the effort is zero (the robot goes limp rather than applying stale torques).

Lock-step
    :class:`LockstepGate` advances the sim one physics tick per command. See its docstring for
    the handshake with a controller that runs on ``/clock`` under ``use_sim_time``.
"""

import math
from typing import Dict, Optional, Sequence, Tuple

from humanoid_rl_ros.core.timebase import NSEC_PER_SEC
import numpy as np


class CommandError(ValueError):
    """An effort command cannot be applied; the message names the problem."""


def joint_index(joint_order: Sequence[str]) -> Dict[str, int]:
    """Return ``{name: index}`` for a joint order, refusing duplicate names."""
    index: Dict[str, int] = {}
    for i, name in enumerate(joint_order):
        if name in index:
            raise ValueError(f'joint order names {name!r} twice')
        index[name] = i
    return index


def efforts_from_joint_state(names: Sequence[str], effort: Sequence[float],
                             joint_order: Sequence[str]) -> np.ndarray:
    """
    Return the efforts [N*m] of a ``JointState`` command in ``joint_order``.

    Raises :class:`CommandError` naming the problem when names and efforts differ in length, a
    name is unknown or repeated, a joint of ``joint_order`` is missing, or an effort is not finite.
    """
    names = list(names)
    values = np.asarray(effort, dtype=float).reshape(-1)
    if len(names) != values.size:
        raise CommandError(f'{len(names)} names but {values.size} efforts')
    order = joint_index(joint_order)
    out = np.full(len(joint_order), math.nan)
    seen = set()
    unknown = []
    for name, value in zip(names, values):
        if name in seen:
            raise CommandError(f'joint {name!r} is named twice')
        seen.add(name)
        if name not in order:
            unknown.append(name)
            continue
        if not math.isfinite(value):
            raise CommandError(f'effort of joint {name!r} is {value}')
        out[order[name]] = value
    if unknown:
        raise CommandError(f'unknown joints: {", ".join(unknown)}')
    missing = [n for n in joint_order if n not in seen]
    if missing:
        raise CommandError(f'missing joints: {", ".join(missing)}')
    return out


def efforts_from_array(data: Sequence[float], joint_order: Sequence[str]) -> np.ndarray:
    """
    Return the efforts [N*m] of a ``Float64MultiArray`` command laid out in ``joint_order``.

    Raises :class:`CommandError` on a wrong length or a non-finite entry (naming the joint).
    """
    values = np.asarray(data, dtype=float).reshape(-1)
    if values.size != len(joint_order):
        raise CommandError(
            f'{values.size} efforts but {len(joint_order)} joints in command_joint_order')
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise CommandError(f'effort {i} ({joint_order[i]!r}) is {values[i]}')
    return values.copy()


def reorder(values: np.ndarray, from_order: Sequence[str], to_order: Sequence[str]) -> np.ndarray:
    """Return ``values`` given in ``from_order`` rearranged into ``to_order`` (same names)."""
    index = joint_index(from_order)
    missing = [n for n in to_order if n not in index]
    if missing or len(from_order) != len(to_order):
        raise ValueError(f'joint orders differ: missing {missing}, '
                         f'{len(from_order)} vs {len(to_order)} joints')
    return np.asarray(values, dtype=float)[[index[n] for n in to_order]]


class CommandHold:
    """The newest accepted effort command, held for a timeout of sim time, then zero."""

    def __init__(self, num_joints: int, timeout_s: float) -> None:
        """Hold commands of ``num_joints`` efforts for ``timeout_s`` [s] (> 0)."""
        if not (math.isfinite(timeout_s) and timeout_s > 0.0):
            raise ValueError(f'command timeout_s must be finite and > 0, got {timeout_s}')
        self.num_joints = num_joints
        self.timeout_ns = int(round(timeout_s * NSEC_PER_SEC))
        self._effort = np.zeros(num_joints)
        self._stamp_ns: Optional[int] = None

    def update(self, effort: np.ndarray, now_ns: int) -> None:
        """Store an accepted command received at sim time ``now_ns`` [ns]."""
        effort = np.asarray(effort, dtype=float).reshape(-1)
        if effort.size != self.num_joints or not np.all(np.isfinite(effort)):
            raise CommandError('held command must be finite with one effort per joint')
        self._effort = effort.copy()
        self._stamp_ns = now_ns

    def clear(self) -> None:
        """Forget the held command (e.g. on reset)."""
        self._effort = np.zeros(self.num_joints)
        self._stamp_ns = None

    def effort_at(self, now_ns: int) -> Tuple[np.ndarray, bool]:
        """Return ``(effort, fresh)``: the held effort, or zeros when none or timed out."""
        if self._stamp_ns is None or now_ns - self._stamp_ns > self.timeout_ns:
            return np.zeros(self.num_joints), False
        return self._effort.copy(), True


class LockstepGate:
    """
    Lock-step handshake: the sim advances one physics tick per command.

    The protocol, for tick ``k`` at sim time ``t_k = k * dt``:

    1. The sim publishes the state of tick ``k`` (``/joint_states``, ``/odom``, ``/imu``,
       stamped ``t_k``) and then ``/clock = t_k``; the gate is now *awaiting* a command.
    2. A controller whose timer runs on ROS time (``use_sim_time``) fires when ``/clock`` reaches
       its next period, computes efforts from the newest state, and publishes one command. It
       should stamp the command with the stamp of the joint state it used (or with ``now``,
       which is ``t_k`` too); a stamp of zero means "unstamped".
    3. The first valid command received while awaiting is applied for tick ``k``: the sim steps
       physics to ``t_{k+1}`` and goes back to 1. A command whose (non-zero) stamp is older than
       ``t_k`` was computed from an older state; it is still applied (one command per state) and
       counted in :attr:`stale_stamp_commands`.

    A timer on ROS time fires at ``t_create + n * dt``; it does not fire at the instant it was
    created. So a controller that starts while the clock stands at ``t_k`` sends nothing for
    tick ``k``, and waiting for it would deadlock. Two rules avoid that:

    * **Pre-roll.** Until the first command arrives (and again after a reset), the sim
      re-publishes its state every ``idle_timeout_s`` of wall time (for late joiners). While
      nobody publishes commands the clock stays put; once a command publisher is matched,
      each re-publication advances the clock by one tick *without stepping physics*: the
      robot is held in its initial pose, as if on a gantry, and neither the sim time at which
      the controller starts nor the physical trajectory depends on how long the controller's
      process took to come up.
    * **Idle advance.** After that, if no command arrives for ``idle_timeout_s`` of wall time
      (a controller that stopped publishing), the sim steps physics once with the held
      command, which times out to zero efforts. A healthy loop never hits this, but a loop
      starved of CPU for that long does; ``idle_advance=False`` makes the sim wait for the
      command instead (strict lock-step: deterministic however slow the machine).
      ``idle_timeout_s = 0`` disables both rules: the sim waits for commands forever.
    """

    def __init__(self, idle_timeout_s: float, idle_advance: bool = True) -> None:
        """Create a gate; ``idle_timeout_s`` [s] of wall time (0: wait forever)."""
        if not (math.isfinite(idle_timeout_s) and idle_timeout_s >= 0.0):
            raise ValueError(f'idle_timeout_s must be finite and >= 0, got {idle_timeout_s}')
        self.idle_timeout_ns = int(round(idle_timeout_s * NSEC_PER_SEC))
        self.idle_advance = bool(idle_advance)
        self.pre_roll = True
        self.awaiting = False
        self.state_stamp_ns = 0
        self._last_activity_wall_ns = 0
        self.stale_stamp_commands = 0
        self.idle_advances = 0
        self.pre_roll_ticks = 0

    def published(self, state_stamp_ns: int, wall_ns: int) -> None:
        """Record that the state stamped ``state_stamp_ns`` was published at ``wall_ns``."""
        self.state_stamp_ns = state_stamp_ns
        self.awaiting = True
        self._last_activity_wall_ns = wall_ns

    def command(self, stamp_ns: int) -> bool:
        """
        Take a valid command stamped ``stamp_ns`` (0: unstamped).

        Return True when it should be applied now, stepping the sim one tick; False when the
        gate is not awaiting (the command only updates the held command).
        """
        if not self.awaiting:
            return False
        if stamp_ns != 0 and stamp_ns < self.state_stamp_ns:
            self.stale_stamp_commands += 1
        self.awaiting = False
        self.pre_roll = False
        return True

    def idle_action(self, wall_ns: int) -> Optional[str]:
        """
        Return what to do when polled at ``wall_ns`` without a command.

        ``None``: keep waiting. ``'advance_clock'``: pre-roll, publish the next tick without
        stepping physics. ``'step'``: step physics with the held (timed-out) command.
        """
        if not self.awaiting or self.idle_timeout_ns == 0:
            return None
        if not (self.pre_roll or self.idle_advance):
            return None
        if wall_ns - self._last_activity_wall_ns < self.idle_timeout_ns:
            return None
        self.awaiting = False
        if self.pre_roll:
            self.pre_roll_ticks += 1
            return 'advance_clock'
        self.idle_advances += 1
        return 'step'

    def restart_pre_roll(self) -> None:
        """Hold physics again until the next command (after a reset)."""
        self.pre_roll = True
