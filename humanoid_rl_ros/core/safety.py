"""
How the controller tells a usable input from a fault, and how it grades its response (pure).

:class:`humanoid_rl_ros.core.controller.Controller` keeps one :class:`InputTrack` per input
topic and asks this module whether each is usable, whether the base is tilted too far, and
what to do about a fault; the state transitions themselves stay in the controller.
``docs/SAFETY.md`` lists every fault with its response and parameters.

Fault classification
--------------------
An input is *unusable* while its newest message was refused (non-finite, wrong size, a required
joint missing or named twice: :class:`JointStateReader`; an orientation that is not a rotation:
:func:`check_orientation_sample`) or its newest usable message is older than its timeout
(:meth:`InputTrack.problem_at`). Age counts from arrival (``now_s``) and, with header stamps
checked, only a message whose header stamp differs from the previous one's counts as arrived
(:meth:`InputTrack.arrive`): a driver re-sending frozen data (same stamp) goes stale after the
timeout although it keeps arriving.

Graded response (:func:`grade_response`, while standing or walking)
-------------------------------------------------------------------
1. Transient (unusable for less than ``fault_hold_s``, counted from the first tick that found
   it unusable, :class:`FaultHold`): hold the last good input and carry on in the same state.
   Walking: the policy keeps running on the newest usable odometry/IMU sample (freezing the
   targets instead would stop the gait mid-stride, with a foot in the air); while the joint
   state is older than its timeout the policy is paused, its last target held, and the PD's
   velocity term dropped (``qd = 0``): both would otherwise run open loop on frozen feedback.
2. Sustained odometry/IMU fault while walking (``fault_hold_s`` or longer): stand, the policy
   stopped, PD ramping from the measured pose to the default pose. Walking resumes only on a
   walk request, or by itself once the inputs are healthy again when ``auto_resume_walk`` is
   set.
3. Damping only where standing is impossible: a joint state unusable for ``fault_hold_s`` or
   longer (a lost or duplicated joint, stale, non-finite: standing needs joint feedback), the
   base tilted past ``max_tilt_rad`` (:func:`tilt_problem`), and (decided by the controller) a
   policy failure, a non-finite computed effort, or a request.

Clocks
------
Header stamps are compared only with the same topic's previous stamp, never with the node's
clock (their clocks may differ), so a stamp far in the future faults nothing; a stamp earlier
than the previous one (the publisher's clock was reset, or a reordered message) is accepted and
becomes the new reference. When the node's ROS time jumps backwards (a sim reset, a bag loop,
:func:`backwards_jump`), every stored time is shifted by the jump, so each input keeps its age
and the stand ramp its progress; a forward jump makes the inputs look old for one tick, which
the hold rides out until the next messages arrive.
"""

import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from humanoid_rl_ros.core import policy_math
from humanoid_rl_ros.core.controller_config import ControllerError
import numpy as np


def age_s(time_s: float, now_s: float) -> float:
    """Return ``now_s - time_s`` [s] (never negative: stored times follow clock jumps)."""
    return max(0.0, now_s - time_s)


class InputTrack:
    """One input topic: its newest usable sample, when it arrived, and its header stamps."""

    __slots__ = ('name', 'value', 'time_s', 'tilt_rad', 'problem', 'stamp_ns', 'frozen_since_s')

    def __init__(self, name: str) -> None:
        """Create an empty track for the topic ``name`` (nothing received)."""
        self.name = name
        self.value: Optional[Tuple[np.ndarray, ...]] = None  # the newest usable sample
        self.time_s = -math.inf  # its arrival [s]
        self.tilt_rad = 0.0  # its base tilt from upright [rad] (orientation inputs)
        self.problem = ''  # why the newest arrived message was refused ('' if it was used)
        self.stamp_ns: Optional[int] = None  # header stamp of the newest arrived message [ns]
        self.frozen_since_s: Optional[float] = None  # first re-send of that stamp [s]

    def shift(self, delta_s: float) -> None:
        """Shift every stored time by ``delta_s`` [s] (the clock jumped by it)."""
        self.time_s += delta_s
        if self.frozen_since_s is not None:
            self.frozen_since_s += delta_s

    def arrive(self, stamp_ns: Optional[int], now_s: float,
               use_header_stamps: bool) -> Tuple[bool, str]:
        """
        Return whether a message stamped ``stamp_ns`` is new, and a note on its stamp.

        A message is not new when header stamps are checked and its stamp equals the previous
        one (a re-send: the track starts or keeps counting how long the stamp is frozen).
        ``stamp_ns`` None or 0 (unstamped) always counts as new. The note is '' unless the
        stamp went back (then accepted as the new reference, and said so).
        """
        if not stamp_ns or not use_header_stamps:
            self.frozen_since_s = None
            return True, ''
        previous = self.stamp_ns
        if stamp_ns == previous:
            if self.frozen_since_s is None:
                self.frozen_since_s = now_s
            return False, ''
        note = ''
        if previous is not None and stamp_ns < previous:
            note = (f'{self.name} header stamp went back {(previous - stamp_ns) * 1e-9:.3f} s '
                    f'at ROS time {now_s:.3f} s (publisher clock reset or reordered message); '
                    'accepted')
        self.stamp_ns = stamp_ns
        self.frozen_since_s = None
        return True, note

    def store(self, value: Tuple[np.ndarray, ...], now_s: float) -> None:
        """Keep ``value`` as the newest usable sample, arrived at ``now_s`` [s]."""
        self.problem = ''
        self.value = value
        self.time_s = now_s

    def fresh(self, now_s: float, timeout_s: float) -> bool:
        """Return whether a usable sample exists and is no older than ``timeout_s`` [s]."""
        return self.value is not None and age_s(self.time_s, now_s) <= timeout_s

    def problem_at(self, now_s: float, timeout_s: float, param: str) -> str:
        """Return why the track is unusable at ``now_s`` ('' if its newest sample is usable)."""
        if self.problem:
            return self.problem
        if self.value is None:
            return f'no {self.name} received'
        age = age_s(self.time_s, now_s)
        if age <= timeout_s:
            return ''
        text = f'{self.name} stale: {age:.3f} s old > {param} {timeout_s} s'
        if self.frozen_since_s is not None:
            text += (f' (header stamp frozen at {self.stamp_ns * 1e-9:.9f} s: re-sent for '
                     f'{age_s(self.frozen_since_s, now_s):.3f} s without advancing)')
        return text


def backwards_jump(latest_s: float, now_s: float, dt_s: float) -> Tuple[float, str]:
    """
    Return how far ROS time went back from ``latest_s`` to ``now_s``, and a note.

    The shift [s] is ``now_s - latest_s`` when negative (add it to every stored time so that
    ages are kept), else 0. The note is '' unless the jump is longer than ``dt_s`` [s]: smaller
    ones are callers reading the clock out of order.
    """
    if now_s >= latest_s:
        return 0.0, ''
    shift = now_s - latest_s
    note = (f'ROS time jumped back {-shift:.3f} s to {now_s:.3f} s; input ages and the stand '
            'ramp were kept') if -shift > dt_s else ''
    return shift, note


# ------------------------------------------------------------------------------------ messages
def match_joint_indices(required: Sequence[str], available: Sequence[str]) -> np.ndarray:
    """
    Return, for each required joint, its index in ``available``.

    Extra names in ``available`` are ignored, also when repeated. Raise
    :class:`ControllerError` naming every missing joint and every required joint that
    ``available`` names more than once (which of its values would be the joint's?).
    """
    lookup: Dict[str, int] = {}
    repeated: Dict[str, None] = {}  # insertion-ordered set
    for i, name in enumerate(available):
        if name in lookup:
            repeated[name] = None
        else:
            lookup[name] = i
    missing = [name for name in required if name not in lookup]
    duplicated = [name for name in required if name in repeated]
    problems = []
    if missing:
        problems.append(f'joint_states lacks required joint(s): {", ".join(missing)}')
    if duplicated:
        problems.append(f'joint_states names required joint(s) more than once: '
                        f'{", ".join(duplicated)}')
    if problems:
        raise ControllerError('; '.join(problems))
    return np.array([lookup[name] for name in required], dtype=np.int64)


class JointReading(NamedTuple):
    """What one ``joint_states`` message gives the controller."""

    problem: str
    """Why the message is unusable ('' if usable)."""
    value: Optional[Tuple[np.ndarray, np.ndarray]]
    """``(q [rad], qd [rad/s])`` in policy order if usable, else None."""
    damping_qd_rad_s: Optional[np.ndarray]
    """Finite joint velocities to damp with (0 where unknown), or None: keep the previous."""


class JointStateReader:
    """Picks the policy's joints out of ``joint_states`` messages and refuses unusable ones."""

    def __init__(self, joint_names: Sequence[str]) -> None:
        """Read the joints ``joint_names`` (policy order) from messages naming them."""
        self.joint_names: Tuple[str, ...] = tuple(joint_names)
        # joint names of the newest message -> (indices of the policy joints, or None, problem)
        self._index_cache: Tuple[Tuple[str, ...], Optional[np.ndarray], str] = ((), None, '')

    def read(self, names: Sequence[str], position: Sequence[float],
             velocity: Sequence[float]) -> JointReading:
        """
        Read a message's ``position`` [rad] and ``velocity`` [rad/s], in the order of ``names``.

        A missing or repeated required joint, a missing velocity field or a non-finite value
        makes it unusable. Damping velocities are still taken from the joints that it names
        exactly once with a finite velocity, unless its fields disagree in length.
        """
        names = tuple(names)
        if len(position) != len(names):
            return JointReading(f'joint_states has {len(names)} names but {len(position)} '
                                'positions', None, None)
        if len(velocity) != len(names):
            return JointReading(f'joint_states has {len(names)} names but {len(velocity)} '
                                'velocities (the policy needs joint velocities)', None, None)
        cached_names, index, problem = self._index_cache
        if cached_names != names:
            try:
                index, problem = match_joint_indices(self.joint_names, names), ''
            except ControllerError as exc:
                index, problem = None, str(exc)
            self._index_cache = (names, index, problem)
        if index is None:
            return JointReading(problem, None, self._named_once_velocity(names, velocity))
        q = np.asarray(position, dtype=np.float64)[index]
        qd = np.asarray(velocity, dtype=np.float64)[index]
        if not (policy_math.all_finite(q) and policy_math.all_finite(qd)):
            bad = [self.joint_names[i]
                   for i in np.flatnonzero(~(np.isfinite(q) & np.isfinite(qd)))]
            return JointReading(f'non-finite joint_states value for joint(s): {", ".join(bad)}',
                                None, np.where(np.isfinite(qd), qd, 0.0))
        return JointReading('', (q, qd), qd)

    def _named_once_velocity(self, names: Sequence[str],
                             velocity: Sequence[float]) -> np.ndarray:
        """Return the finite velocities of the policy joints named exactly once (0 others)."""
        lookup: Dict[str, int] = {}
        for i, name in enumerate(names):
            lookup[name] = -1 if name in lookup else i
        qd = np.zeros(len(self.joint_names))
        for j, name in enumerate(self.joint_names):
            i = lookup.get(name, -1)
            if i >= 0 and math.isfinite(velocity[i]):
                qd[j] = velocity[i]
        return qd


def check_orientation_sample(name: str, quat_wxyz: np.ndarray,
                             vectors: Sequence[np.ndarray]) -> Tuple[str, Optional[np.ndarray]]:
    """
    Return ``(problem, unit quaternion)`` for an orientation + vectors sample of input ``name``.

    The problem is '' and the quaternion normalized when every value is finite and the
    quaternion's norm is within (0.5, 1.5); otherwise the problem says why and the quaternion is
    None.
    """
    if not (policy_math.all_finite(quat_wxyz)
            and all(policy_math.all_finite(v) for v in vectors)):
        return f'non-finite {name} value', None
    norm = math.sqrt(float(np.dot(quat_wxyz, quat_wxyz)))
    if not 0.5 < norm < 1.5:
        return f'{name} orientation quaternion has norm {norm:.3f} (not a rotation)', None
    return '', quat_wxyz / norm


# ------------------------------------------------------------------------------------ tilt
def tilt_from_upright_rad(unit_quat_wxyz: np.ndarray) -> float:
    """Return the angle [rad] between the body z axis and world up for a unit quaternion."""
    # acos of the rotation matrix's zz, 1 - 2 (x^2 + y^2), which is -projected_gravity(q)[2]
    # in scalars (0.4 against 22 us)
    _, x, y, _ = unit_quat_wxyz.tolist()
    return math.acos(max(-1.0, min(1.0, 1.0 - 2.0 * (x * x + y * y))))


def tilt_problem(tilt_rad: Optional[float], max_tilt_rad: float, source: str) -> str:
    """Return why a base tilted ``tilt_rad`` (None: unknown) cannot stand ('' if it can)."""
    if tilt_rad is None or tilt_rad <= max_tilt_rad:
        return ''
    return (f'base tilted {tilt_rad:.3f} rad from upright > max_tilt_rad {max_tilt_rad:.3f} rad '
            f'({source})')


# ------------------------------------------------------------------------------------ grading
class FaultHold:
    """Since when one input has been unusable: the first tick that found it so."""

    __slots__ = ('since_s',)

    def __init__(self) -> None:
        """Start with no fault."""
        self.since_s: Optional[float] = None

    def unusable_s(self, problem: str, now_s: float) -> float:
        """Track ``problem`` ('' if none) at ``now_s``; return how long it has lasted [s]."""
        if not problem:
            self.since_s = None
            return 0.0
        if self.since_s is None:
            self.since_s = now_s
        return now_s - self.since_s

    def shift(self, delta_s: float) -> None:
        """Shift the stored time by ``delta_s`` [s] (the clock jumped by it)."""
        if self.since_s is not None:
            self.since_s += delta_s

    def clear(self) -> None:
        """Forget the fault (a new state starts counting afresh)."""
        self.since_s = None


class Response(NamedTuple):
    """The graded response to the inputs at one tick (all '': carry on)."""

    damp: str = ''
    """Why the robot must damp ('' if it need not)."""
    stand: str = ''
    """Why a walking robot must stop the policy and stand ('' if it need not)."""
    hold: str = ''
    """The transient faults ridden out on the last good input ('' if none)."""


TILT_HOLD_S = 0.05
"""How long a tilt past the limit must last before it damps [s]: one wrong orientation sample
(an estimator re-initialising, a corrupted message) is ridden out, a real fall is not."""


def grade_response(now_s: float, hold_s: float, joint_hold: FaultHold, joint_problem: str,
                   tilt: str, walk_hold: FaultHold,
                   walking_problem: Optional[str],
                   tilt_hold: Optional[FaultHold] = None) -> Response:
    """
    Grade the response to the inputs at ``now_s`` for a standing or walking robot.

    ``joint_problem``, ``tilt`` and ``walking_problem`` are why the joint state, the base tilt
    and the odometry/IMU are unusable ('' if not; ``walking_problem`` None when not walking:
    its hold is then left as it is). ``hold_s`` is ``fault_hold_s`` [s]; the holds count how
    long each fault has lasted. A sustained joint fault damps; so does a tilt that lasts
    :data:`TILT_HOLD_S` (at once without ``tilt_hold``); the walking inputs are then not looked
    at.
    """
    held: List[str] = []
    unusable_s = joint_hold.unusable_s(joint_problem, now_s)
    if joint_problem:
        if unusable_s >= hold_s:
            return Response(damp=f'{joint_problem} (unusable for {unusable_s:.3f} s >= '
                                 f'fault_hold_s {hold_s} s; standing needs joint feedback)')
        held.append(joint_problem)
    tilted_s = tilt_hold.unusable_s(tilt, now_s) if tilt_hold is not None else 0.0
    if tilt:
        if tilt_hold is None or tilted_s >= TILT_HOLD_S - 1e-9:  # float sums of ticks
            return Response(damp=tilt)
        held.append(tilt)
    stand = ''
    if walking_problem is not None:
        unusable_s = walk_hold.unusable_s(walking_problem, now_s)
        if walking_problem and unusable_s >= hold_s:
            stand = (f'{walking_problem} (unusable for {unusable_s:.3f} s >= fault_hold_s '
                     f'{hold_s} s)')
        elif walking_problem:
            held.append(walking_problem)
    return Response(stand=stand,
                    hold=f'holding the last good input: {"; ".join(held)}' if held else '')
