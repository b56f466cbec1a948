"""
The policy node's control logic as a pure state machine (no ROS imports).

The ROS node (:mod:`humanoid_rl_ros.ros.policy_node`) feeds this class the newest sensor values and
calls :meth:`Controller.step` once per physics tick (every ``contract.physics_dt_s`` of ROS
time). Every method takes the current time ``now_s`` [s] from the caller; nothing here reads a
wall clock, so the same code runs under ``use_sim_time``. ``docs/SAFETY.md`` draws the state
diagram and lists every fault with its response and parameters.

This file is longer than 500 lines: the state machine, the inputs it checks and the control law
it switches (stand ramp, policy steps, PD, damping) work on one set of state (the newest
samples, the ramp, the policy target), documented here once. What stands alone is elsewhere:
the fault rules in :mod:`humanoid_rl_ros.core.safety`, the settings in
:mod:`humanoid_rl_ros.core.controller_config`.

API (what the node calls)
-------------------------
Inputs. ``now_s`` is the ROS time [s] at which the message was received; ``stamp_ns`` is its
``header.stamp`` as integer nanoseconds (:func:`humanoid_rl_ros.core.timebase.stamp_to_ns`), or
``None`` (the default: a message without a header) or 0 (an unstamped header); both skip the
header-stamp check:

* :meth:`Controller.update_joint_state` ``(names, position_rad, velocity_rad_s, now_s,
  stamp_ns=None)``;
* :meth:`Controller.update_odom` ``(quat_wxyz, lin_vel_body_m_s, ang_vel_body_rad_s, now_s,
  stamp_ns=None)``;
* :meth:`Controller.update_imu` ``(quat_wxyz, ang_vel_body_rad_s, now_s, stamp_ns=None)``;
* :meth:`Controller.update_cmd_vel` ``(vx_m_s, vy_m_s, wz_rad_s, now_s, stamp_ns=None)``
  (``stamp_ns`` of a ``TwistStamped``).

Control: :meth:`Controller.step` ``(now_s)`` returns the efforts [N*m] in policy order, or
``None`` while inactive (publish nothing).

Transitions: :meth:`Controller.activate` ``(now_s)`` (raises :class:`ControllerError`),
:meth:`Controller.deactivate` ``()``, :meth:`Controller.fault` ``(reason)`` (immediate damping)
and the requests, each returning ``(accepted, message)`` for a ``std_srvs/Trigger`` service:
:meth:`Controller.request_walk`, :meth:`Controller.request_stand`,
:meth:`Controller.request_damping` and :meth:`Controller.recover`, all ``(now_s)``.

Status (for diagnostics): :attr:`Controller.state`; :attr:`Controller.fault_reason` (why
damping); :attr:`Controller.stand_reason` (why standing after a sustained fault);
:attr:`Controller.hold_reason` (the transient fault being ridden out); :attr:`Controller.note`
(why a walk request waits); :attr:`Controller.cmd_note`, :attr:`Controller.stamp_note`,
:attr:`Controller.clock_note` (information only); :attr:`Controller.walk_requested`,
:attr:`Controller.policy_steps`; :meth:`Controller.command`, :meth:`Controller.joint_state`
(the newest joint state and its problem), :meth:`Controller.joint_state_problem`,
:meth:`Controller.walking_input_problem`, :meth:`Controller.tilt_problem` and
:meth:`Controller.tilt_rad`, all ``(now_s)``.

Configuration: :class:`ControllerConfig`; the node may replace ``Controller.config`` at any
time (nothing derived from it is cached).

States (:class:`ControllerState`)
---------------------------------
* ``INACTIVE``: :meth:`Controller.step` returns ``None``; nothing is published.
* ``STANDING``: the PD target ramps linearly from the measured joint positions to the
  contract's default pose over ``stand_ramp_s``, then holds it; the policy does not run. The
  ramp starts at the first :meth:`Controller.step` after entering the state (not at the time of
  the transition, which under ``use_sim_time`` may come before the first ``/clock``), and never
  at a time <= 0: ROS time is 0 until a time source has received ``/clock``, so such ticks hold
  the measured pose and the ramp starts at the first tick with a valid time. A pending walk
  request starts walking once the ramp is complete and the joint state and the walking inputs
  (odometry/IMU) are healthy.
* ``WALKING``: the policy runs every ``decimation`` ticks (its first run is on the first walking
  tick); PD runs every tick from the newest joint state and the newest policy target.
* ``DAMPING``: only where standing is impossible (see below). Effort =
  ``-damping_kd_scale * kd * qd``, clamped to the limits, where ``qd`` is the newest joint
  velocity if the joint state is fresh and zero otherwise (a stale velocity is never turned into
  a constant torque). Latched until :meth:`Controller.recover`.

Graded response to faults (while standing or walking)
-----------------------------------------------------
:mod:`humanoid_rl_ros.core.safety` classifies faults and grades the response (its docstring
gives the rules): a transient fault is held on the last good input (:attr:`hold_reason`);
odometry/IMU unusable for ``fault_hold_s`` while walking stands the robot (:attr:`stand_reason`;
walking again on :meth:`Controller.request_walk`, or by itself with ``auto_resume_walk``);
``DAMPING`` only where standing is impossible: a joint state unusable for ``fault_hold_s``, a
tilt past ``max_tilt_rad``, a policy failure (exception, non-finite or wrongly sized action), a
non-finite computed effort, :meth:`Controller.request_damping` or :meth:`Controller.fault`. A
header stamp that goes back is accepted (:attr:`stamp_note`); a backwards jump of ROS time keeps
input ages and the stand ramp's progress (:attr:`clock_note`).

Recovery from damping is explicit: :meth:`Controller.recover` returns to ``STANDING`` (ramping
from the measured pose) once a healthy joint state is present and the base is not tilted past
the limit; otherwise it refuses and says why. Walking must then be requested again.

Commands: ``(vx, vy, wz)`` are clamped to the contract's trained ranges; a command older than
``cmd_vel_timeout_s`` (or none at all) counts as zero; a non-finite command is ignored and counts
as zero (the robot keeps balancing instead of collapsing).

Every effort returned is finite and within ``±effort_limit_nm``; this is checked before return.
"""

import enum
import math
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

from humanoid_rl_ros.core import idle_stand, policy_math, safety
from humanoid_rl_ros.core.contract import PolicyContract
from humanoid_rl_ros.core.controller_config import (ControllerConfig, ControllerError,
                                                    ORIENTATION_SOURCES)
from humanoid_rl_ros.core.safety import age_s, InputTrack, match_joint_indices
import numpy as np

__all__ = ['clamp_command', 'Controller', 'ControllerConfig', 'ControllerError',
           'ControllerState', 'JointSample', 'match_joint_indices', 'ORIENTATION_SOURCES']


FORWARD_JUMP_TICKS = 10
"""A step of ROS time longer than this many physics ticks counts as a forward clock jump."""


class JointSample(NamedTuple):
    """A joint state in policy order, and why it is unusable ('' if it is usable)."""

    q_rad: np.ndarray
    qd_rad_s: np.ndarray
    problem: str


class ControllerState(enum.Enum):
    """The controller's operating state."""

    INACTIVE = 'inactive'
    STANDING = 'standing'
    WALKING = 'walking'
    DAMPING = 'damping'


def clamp_command(command: Sequence[float], contract: PolicyContract) -> np.ndarray:
    """Clamp ``(vx [m/s], vy [m/s], wz [rad/s])`` to the contract's trained ranges."""
    low, high = contract.commands.as_bounds()
    return policy_math.clamp(np.asarray(command, dtype=np.float64), low, high)


class Controller:
    """
    Inactive/standing/walking/damping state machine around one policy.

    ``policy`` maps an observation ``float32[obs_dim]`` to an action ``float32[action_dim]``
    (e.g. :meth:`humanoid_rl_ros.core.policy_runtime.PolicyRuntime.act`); it may raise on failure.
    """

    def __init__(self, contract: PolicyContract, policy: Callable[[np.ndarray], np.ndarray],
                 config: Optional[ControllerConfig] = None) -> None:
        """Create an inactive controller for ``contract`` running ``policy``."""
        self.contract = contract
        self.policy = policy
        self.config = config or ControllerConfig()
        self.config.validate()
        n = contract.num_joints
        self.joint_names: Tuple[str, ...] = tuple(contract.joint_names)
        self.default_pos_rad = np.asarray(contract.default_pos_rad, dtype=np.float64)
        self.action_scale_rad = np.asarray(contract.action_scale_rad, dtype=np.float64)
        self.kp_nm_per_rad = np.asarray(contract.kp_nm_per_rad, dtype=np.float64)
        self.kd_nms_per_rad = np.asarray(contract.kd_nms_per_rad, dtype=np.float64)
        self.effort_limit_nm = np.asarray(contract.effort_limit_nm, dtype=np.float64)
        self.dt_s = float(contract.physics_dt_s)
        self.decimation = int(contract.decimation)
        terms = contract.term_names()
        self.needs_lin_vel = 'base_lin_vel' in terms
        self.needs_base = bool({'base_lin_vel', 'base_ang_vel', 'projected_gravity'} & set(terms))
        self.uses_gait_phase = 'gait_phase' in terms
        self._obs_scale = policy_math.observation_scale(contract.obs_terms)  # once, not per tick

        self.state = ControllerState.INACTIVE
        self.fault_reason = ''
        """Why the controller is damping ('' otherwise)."""
        self.stand_reason = ''
        """The sustained fault that stopped walking ('' unless standing because of one)."""
        self.hold_reason = ''
        """The transient fault being ridden out on the last good input ('' if none)."""
        self.note = ''
        """Why a walk request is still pending ('' if none)."""
        self.stamp_note = ''
        """The newest header stamp that went backwards and was accepted as the new reference."""
        self.clock_note = ''
        """The newest backwards jump of ROS time (stored times were shifted by it)."""
        self.cmd_note = ''
        """What happened to the newest velocity command (clamped or ignored; '' if used)."""
        self.walk_requested = False
        self.policy_steps = 0
        self.idle_standing = False
        """Walking, with the policy paused: PD holds the default pose (idle stand)."""
        self.idle_note = ''
        """Why the newest idle stand started or ended ('' before the first)."""
        self.policy_restarts = 0
        """How often the policy was (re)started: each walk, each end of an idle stand."""
        self._idle_sample_s: Optional[float] = None  # time of the filters' newest sample [s]
        self._idle_since_s: Optional[float] = None  # zero command and calm base since [s]
        self._idle_filter = idle_stand.MotionFilter(self.config.idle_filter_s)
        self._idle_exit_filter = idle_stand.MotionFilter(self.config.idle_exit_filter_s)
        self._idle_ramp_start_s = 0.0
        self._idle_ramp_start_pos = self.default_pos_rad.copy()
        self._tick = 0
        self._gait_phase = 0.0
        self._last_action = np.zeros(n)  # the clipped policy output (float64)
        self._history: Optional[np.ndarray] = None  # [H, frame] stacked observations
        self._q_target = self.default_pos_rad.copy()
        self._zero_qd = np.zeros(n)
        self._ramp_start_pos = self.default_pos_rad.copy()
        self._ramp_start_s: Optional[float] = None  # None: starts at the next valid step
        self._latest_s = -math.inf  # the latest ROS time seen by any method [s]
        self._joint_hold = safety.FaultHold()  # since the first tick, unusable joint state
        self._walk_hold = safety.FaultHold()  # since the first walking tick, bad odometry/IMU
        self._tilt_hold = safety.FaultHold()  # since the first tick past max_tilt_rad
        self._required_joints = frozenset(self.joint_names)
        self._joints = InputTrack('joint_states')  # value: (q [rad], qd [rad/s])
        self._joint_reader = safety.JointStateReader(self.joint_names)
        self._damping_qd = np.zeros(n)  # finite joint velocity from the newest message
        self._damping_qd_time_s = -math.inf
        self._odom = InputTrack('odom')  # value: (quat wxyz, lin vel body, ang vel body)
        self._imu = InputTrack('imu')  # value: (quat wxyz, ang vel body)
        self._cmd = InputTrack('cmd_vel')  # value: ((vx, vy, wz) clamped,); None if non-finite

    # ----------------------------------------------------------------------------- time
    def _observe_clock(self, now_s: float) -> None:
        """Follow ROS time; on a backwards jump shift every stored time so ages are kept."""
        shift, note = safety.backwards_jump(self._latest_s, now_s, self.dt_s)
        if (self._ramp_start_s is not None and math.isfinite(self._latest_s)
                and now_s - self._latest_s > FORWARD_JUMP_TICKS * self.dt_s):
            # a forward jump (a clock step, a sim /clock skip) advances the stand ramp by one
            # tick, not by the jump: the PD target never leaps to the default pose
            self._ramp_start_s += now_s - self._latest_s - self.dt_s
        jumped = now_s - self._latest_s > FORWARD_JUMP_TICKS * self.dt_s
        if math.isfinite(self._latest_s) and jumped:
            # the idle stand's ramp advances one tick; calm time does not count across the jump
            self._idle_ramp_start_s += now_s - self._latest_s - self.dt_s
            self._idle_since_s = None
        self._latest_s = now_s
        if shift:
            for track in (self._joints, self._odom, self._imu, self._cmd):
                track.shift(shift)
            self._joint_hold.shift(shift)
            self._walk_hold.shift(shift)
            self._tilt_hold.shift(shift)
            self._damping_qd_time_s += shift
            if self._ramp_start_s is not None:
                self._ramp_start_s += shift
            if self._idle_since_s is not None:
                self._idle_since_s += shift
            if self._idle_sample_s is not None:
                self._idle_sample_s += shift
            self._idle_ramp_start_s += shift
        if note:
            self.clock_note = note

    def _arrived(self, track: InputTrack, stamp_ns: Optional[int], now_s: float) -> bool:
        """Return whether a message with ``stamp_ns`` is new (not a re-send of the last one)."""
        arrived, note = track.arrive(stamp_ns, now_s, self.config.use_header_stamps)
        if note:
            self.stamp_note = note
        return arrived

    # ----------------------------------------------------------------------------- inputs
    def update_joint_state(self, names: Sequence[str], position: Sequence[float],
                           velocity: Sequence[float], now_s: float,
                           stamp_ns: Optional[int] = None) -> None:
        """
        Store a joint state (any order, extra joints ignored) received at ``now_s`` [s].

        ``position`` [rad] and ``velocity`` [rad/s] are in the order of ``names``; ``stamp_ns``
        is the header stamp [ns] (None or 0: unstamped). A missing or repeated required joint, a
        missing velocity field or a non-finite value makes the message unusable (see the
        module's graded response). A message that names none of the required joints (another
        driver on the same topic, e.g. a gripper's) is ignored, stamp included.
        """
        self._observe_clock(now_s)
        if not any(name in self._required_joints for name in names):
            return  # another driver's message on the topic (e.g. a gripper's): not ours
        track = self._joints
        if not self._arrived(track, stamp_ns, now_s):
            return
        reading = self._joint_reader.read(names, position, velocity)
        if reading.damping_qd_rad_s is not None:
            self._damping_qd = reading.damping_qd_rad_s
            self._damping_qd_time_s = now_s
        if reading.problem:
            track.problem = reading.problem
        else:
            track.store(reading.value, now_s)

    def update_odom(self, quat_wxyz: Sequence[float], lin_vel_body_m_s: Sequence[float],
                    ang_vel_body_rad_s: Sequence[float], now_s: float,
                    stamp_ns: Optional[int] = None) -> None:
        """Store odometry: base orientation and body-frame (child frame) twist, stamped [ns]."""
        self._observe_clock(now_s)
        if self._arrived(self._odom, stamp_ns, now_s):
            value = (np.asarray(lin_vel_body_m_s, dtype=np.float64),
                     np.asarray(ang_vel_body_rad_s, dtype=np.float64))
            self._store_base(self._odom, np.asarray(quat_wxyz, dtype=np.float64), value, now_s)

    def update_imu(self, quat_wxyz: Sequence[float], ang_vel_body_rad_s: Sequence[float],
                   now_s: float, stamp_ns: Optional[int] = None) -> None:
        """Store IMU orientation and body-frame angular velocity, stamped [ns]."""
        self._observe_clock(now_s)
        if self._arrived(self._imu, stamp_ns, now_s):
            value = (np.asarray(ang_vel_body_rad_s, dtype=np.float64),)
            self._store_base(self._imu, np.asarray(quat_wxyz, dtype=np.float64), value, now_s)

    def _store_base(self, track: InputTrack, quat: np.ndarray,
                    vectors: Tuple[np.ndarray, ...], now_s: float) -> None:
        """Store an orientation + vectors sample, or say in ``track.problem`` why not."""
        problem, unit = safety.check_orientation_sample(track.name, quat, vectors)
        if problem:
            track.problem = problem
            return
        track.store((unit,) + vectors, now_s)
        track.tilt_rad = safety.tilt_from_upright_rad(unit)

    def update_cmd_vel(self, vx_m_s: float, vy_m_s: float, wz_rad_s: float,
                       now_s: float, stamp_ns: Optional[int] = None) -> None:
        """Store a velocity command (clamped to the trained ranges) received at ``now_s``."""
        self._observe_clock(now_s)
        if not self._arrived(self._cmd, stamp_ns, now_s):
            self.cmd_note = (f'cmd_vel header stamp {stamp_ns} ns re-sent; not a new command '
                             '(it times out after cmd_vel_timeout_s)')
            return
        raw = np.array([vx_m_s, vy_m_s, wz_rad_s], dtype=np.float64)
        if not np.all(np.isfinite(raw)):
            self._cmd.value = None
            self.cmd_note = f'non-finite cmd_vel {raw.tolist()} ignored (command is zero)'
            return
        clamped = clamp_command(raw, self.contract)
        self.cmd_note = ('' if np.array_equal(clamped, raw) else
                         f'cmd_vel {raw.tolist()} clamped to trained range {clamped.tolist()}')
        self._cmd.store((clamped,), now_s)

    def command(self, now_s: float) -> np.ndarray:
        """Return the effective ``(vx, vy, wz)`` command at ``now_s`` (zero if timed out)."""
        cmd = self._cmd
        if cmd.value is None or age_s(cmd.time_s, now_s) > self.config.cmd_vel_timeout_s:
            return np.zeros(3)
        return cmd.value[0].copy()

    # ----------------------------------------------------------------------------- health
    def joint_state_problem(self, now_s: float) -> str:
        """Return why the joint state is unusable at ``now_s`` ('' if healthy)."""
        return self._joints.problem_at(now_s, self.config.joint_state_timeout_s,
                                       'joint_state_timeout_s')

    def joint_state(self, now_s: float) -> JointSample:
        """
        Return the newest usable joint state and whether it is usable at ``now_s``.

        ``q_rad`` and ``qd_rad_s`` are in policy order (NaN before the first usable message;
        do not modify them); ``problem`` is :meth:`joint_state_problem` (stale, the newest
        message refused, none yet; '' if healthy).
        """
        value = self._joints.value
        if value is None:
            value = (np.full(len(self.joint_names), np.nan),) * 2
        return JointSample(value[0], value[1], self.joint_state_problem(now_s))

    def walking_input_problem(self, now_s: float) -> str:
        """Return why odometry/IMU are unusable for the policy at ``now_s`` ('' if healthy)."""
        if not self.needs_base:
            return ''
        needs_odom = self.needs_lin_vel or self.config.orientation_source == 'odom'
        if needs_odom:
            problem = self._odom.problem_at(now_s, self.config.odom_timeout_s, 'odom_timeout_s')
            if problem:
                return problem
        if self.config.orientation_source == 'imu':
            return self._imu.problem_at(now_s, self.config.imu_timeout_s, 'imu_timeout_s')
        return ''

    def tilt_rad(self, now_s: float) -> Optional[float]:
        """Return the base's tilt from upright [rad], or None without a fresh orientation."""
        if self.config.orientation_source == 'imu':
            track, timeout_s = self._imu, self.config.imu_timeout_s
        else:
            track, timeout_s = self._odom, self.config.odom_timeout_s
        return track.tilt_rad if track.fresh(now_s, timeout_s) else None

    def tilt_problem(self, now_s: float) -> str:
        """Return why the base is too tilted to stand at ``now_s`` ('' if not, or unknown)."""
        return safety.tilt_problem(self.tilt_rad(now_s), self.config.max_tilt_rad,
                                   self.config.orientation_source)

    # ----------------------------------------------------------------------------- transitions
    def activate(self, now_s: float) -> None:
        """Go from ``INACTIVE`` to ``STANDING``; raise :class:`ControllerError` if not possible."""
        self._observe_clock(now_s)
        if self.state is not ControllerState.INACTIVE:
            raise ControllerError(f'activate: controller is {self.state.value}, not inactive')
        problem = self.joint_state_problem(now_s) or self.tilt_problem(now_s)
        if problem:
            raise ControllerError(f'cannot activate: {problem}')
        self.fault_reason = ''
        self._enter_standing()

    def deactivate(self) -> None:
        """Go to ``INACTIVE`` from any state (clears the fault and any walk request)."""
        self.state = ControllerState.INACTIVE
        self.fault_reason = ''
        self.stand_reason = ''
        self.hold_reason = ''
        self.walk_requested = False
        self.note = ''
        self._end_idle('deactivated')

    def request_walk(self, now_s: float) -> Tuple[bool, str]:
        """
        Ask to walk; return ``(accepted, message)``.

        Accepted in ``STANDING`` (walking starts when the ramp completes and the inputs are
        healthy) and in ``WALKING`` (no-op). Refused in ``INACTIVE`` and ``DAMPING``.
        """
        self._observe_clock(now_s)
        if self.state is ControllerState.WALKING:
            return True, 'already walking'
        if self.state is ControllerState.STANDING:
            self.walk_requested = True
            return True, ('walk requested: starts when the stand ramp completes and inputs '
                          'are fresh')
        if self.state is ControllerState.DAMPING:
            return False, f'in damping ({self.fault_reason}); call recover first'
        return False, 'controller is inactive; activate the node first'

    def request_stand(self, now_s: float) -> Tuple[bool, str]:
        """Ask to stand; from ``WALKING`` this ramps from the measured pose to the default pose."""
        self._observe_clock(now_s)
        if self.state is ControllerState.WALKING:
            self._enter_standing()
            return True, 'standing'
        if self.state is ControllerState.STANDING:
            self.walk_requested = False
            self.stand_reason = ''
            return True, 'standing (walk request cleared)'
        if self.state is ControllerState.DAMPING:
            return False, f'in damping ({self.fault_reason}); call recover first'
        return False, 'controller is inactive; activate the node first'

    def request_damping(self, now_s: float) -> Tuple[bool, str]:
        """Go to ``DAMPING`` on request (from standing or walking); return the outcome."""
        self._observe_clock(now_s)
        if self.state is ControllerState.DAMPING:
            return True, f'already damping ({self.fault_reason})'
        if self.state is ControllerState.INACTIVE:
            return False, 'controller is inactive; activate the node first'
        self.fault('damping requested')
        return True, 'damping (call recover to stand again)'

    def recover(self, now_s: float) -> Tuple[bool, str]:
        """Leave ``DAMPING`` for ``STANDING`` if the robot can stand; return the outcome."""
        self._observe_clock(now_s)
        if self.state is not ControllerState.DAMPING:
            return False, f'not in damping (state is {self.state.value}); nothing to recover'
        problem = self.joint_state_problem(now_s) or self.tilt_problem(now_s)
        if problem:
            return False, f'cannot recover: {problem}'
        previous = self.fault_reason
        self.fault_reason = ''
        self._enter_standing()
        return True, f'recovered from damping ({previous}); standing'

    def fault(self, reason: str) -> None:
        """Enter ``DAMPING`` with ``reason`` (no-op when inactive or already damping)."""
        if self.state in (ControllerState.INACTIVE, ControllerState.DAMPING):
            return
        self.state = ControllerState.DAMPING
        self._end_idle('a fault: damping')
        self.fault_reason = reason
        self.stand_reason = ''
        self.hold_reason = ''
        self.walk_requested = False
        self.note = ''

    def _enter_standing(self) -> None:
        # The ramp's start time and pose are taken at the first step with a valid time (see
        # _start_ramp_if_pending), not here: the time of a transition may be a not-yet-valid
        # ROS time (0 before /clock) or long before the first control tick.
        self.state = ControllerState.STANDING
        self.walk_requested = False
        self._end_idle('standing')
        self.stand_reason = ''
        self.hold_reason = ''
        self._ramp_start_pos = (self._joints.value[0].copy() if self._joints.value is not None
                                else self.default_pos_rad.copy())
        self._ramp_start_s = None
        self._joint_hold.clear()
        self._walk_hold.clear()
        self._tilt_hold.clear()
        self.note = ''

    def _start_ramp_if_pending(self, now_s: float) -> None:
        if self._ramp_start_s is not None or self._joints.value is None:
            return
        self._ramp_start_pos = self._joints.value[0].copy()
        if now_s > 0.0:  # ROS time 0: no /clock yet; hold the measured pose until it is valid
            self._ramp_start_s = now_s

    def _enter_walking(self) -> None:
        self.state = ControllerState.WALKING
        self.walk_requested = False
        self.stand_reason = ''
        self.hold_reason = ''
        self._restart_policy()
        self._walk_hold.clear()
        self.note = ''

    def _end_idle(self, why: str) -> None:
        """Note the end of a holding idle stand (the caller decides what follows)."""
        if self.idle_standing:
            self.idle_note = f'idle stand ended at t={self._latest_s:.3f} s: {why}'
        self.idle_standing = False

    def _reset_idle(self, keep_motion_filter: bool = False) -> None:
        """Forget the calm time and the exit filter (and the enter filter unless kept)."""
        self._idle_since_s = None
        if not keep_motion_filter:
            self._idle_filter.reset()
            self._idle_sample_s = None
        self._idle_exit_filter.reset()

    def _restart_policy(self, keep_motion_filter: bool = False) -> None:
        """Start the policy as at the start of a walk (also when an idle stand ends)."""
        self.idle_standing = False
        self.policy_restarts += 1
        self._reset_idle(keep_motion_filter)
        self._tick = 0
        self._gait_phase = 0.0
        self._last_action = np.zeros(self.contract.action_dim)
        self._history = None  # a walk starts with its first frame repeated, as an episode does
        self._q_target = self.default_pos_rad.copy()

    def _stand_after_fault(self, problem: str) -> None:
        """Stop the policy and stand (PD ramp to the default pose) after a sustained fault."""
        self._enter_standing()
        self.stand_reason = (f'{problem}; standing (policy stopped), '
                             + ('walking resumes once the inputs are healthy'
                                if self.config.auto_resume_walk else 'call walk to resume'))
        self.walk_requested = self.config.auto_resume_walk

    def _check_inputs(self, now_s: float, joint_problem: str) -> None:
        """Apply the graded response to the inputs at ``now_s`` (standing or walking)."""
        walking = self.state is ControllerState.WALKING
        response = safety.grade_response(
            now_s, self.config.fault_hold_s, self._joint_hold, joint_problem,
            self.tilt_problem(now_s), self._walk_hold,
            self.walking_input_problem(now_s) if walking else None, self._tilt_hold)
        if response.damp:
            self.fault(response.damp)
            return
        if response.stand:
            self._stand_after_fault(response.stand)
        self.hold_reason = response.hold

    # ----------------------------------------------------------------------------- step
    def stand_ramp_fraction(self, now_s: float) -> float:
        """Return the stand ramp progress in [0, 1] at ``now_s`` (0 until the ramp starts)."""
        if self.config.stand_ramp_s <= 0.0:
            return 1.0
        if self._ramp_start_s is None:
            return 0.0
        return min(1.0, max(0.0, (now_s - self._ramp_start_s) / self.config.stand_ramp_s))

    def step(self, now_s: float) -> Optional[np.ndarray]:
        """
        Advance one physics tick at ``now_s``; return efforts [N*m] in policy order.

        Return ``None`` when inactive (publish nothing).
        """
        self._observe_clock(now_s)
        if self.state is ControllerState.INACTIVE:
            return None
        joint_problem = ''  # why the joint state is unusable now (not looked at while damping)
        if self.state is not ControllerState.DAMPING:
            joint_problem = self.joint_state_problem(now_s)
            self._check_inputs(now_s, joint_problem)
        fraction = 0.0  # the stand ramp's progress (standing only)
        if self.state is ControllerState.STANDING:
            self._start_ramp_if_pending(now_s)
            fraction = self.stand_ramp_fraction(now_s)
            if self.walk_requested and fraction >= 1.0:
                problem = joint_problem or self.walking_input_problem(now_s)
                self.note = f'walk pending: {problem}' if problem else ''
                if not problem:
                    self._enter_walking()
        effort = self._zero_qd
        if self.state is ControllerState.STANDING:
            start = self._ramp_start_pos
            effort = self._pd(start + (self.default_pos_rad - start) * fraction, now_s)
        elif self.state is ControllerState.WALKING and self._idle_stand_holds(now_s):
            effort = self._pd(self._q_target, now_s)
        elif self.state is ControllerState.WALKING:
            # the policy needs current joint feedback; on an older joint state its last target
            # is held (see the module docstring)
            if self._tick % self.decimation == 0 and self._joint_state_fresh(now_s):
                try:
                    self._run_policy(now_s)
                except Exception as exc:  # noqa: B902 - any policy failure must end in damping
                    self.fault(f'policy step failed: {exc}')
            if self.state is ControllerState.WALKING:
                effort = self._pd(self._q_target, now_s)
                self._tick += 1
                if self.uses_gait_phase:
                    self._gait_phase = (self._gait_phase
                                        + self.dt_s / float(self.contract.gait_period_s)) % 1.0
        if self.state is not ControllerState.DAMPING and not policy_math.all_finite(effort):
            self.fault('computed a non-finite effort')
        if self.state is ControllerState.DAMPING:
            effort = self._damping_effort(now_s)
        # the last line of defence, kept under python -O: never a non-finite effort
        if not policy_math.all_finite(effort):
            effort = np.where(np.isfinite(effort), effort, 0.0)
        return policy_math.clamp(effort, -self.effort_limit_nm, self.effort_limit_nm)

    def _idle_stand_holds(self, now_s: float) -> bool:
        """Run the idle stand's rules while walking; return whether it holds (PD, no policy)."""
        if self.config.idle_stand_after_s > 0.0:
            return self._update_idle_stand(now_s)
        if self.idle_standing:  # turned off while holding: hand back as on any other exit
            self._end_idle_to_policy('idle stand turned off')
        elif self._idle_since_s is not None or self._idle_sample_s is not None:
            self._reset_idle()
        return False

    def _end_idle_to_policy(self, reason: str) -> None:
        """End a holding idle stand: restart the policy with a foot in mid-swing."""
        self._end_idle(reason)
        self._restart_policy(keep_motion_filter=True)
        if self.uses_gait_phase:
            self._gait_phase = self.config.idle_restart_phase

    def _filtered_motions(self, now_s: float
                          ) -> Tuple[idle_stand.BaseMotion, idle_stand.BaseMotion]:
        """Feed this tick's base motion to both idle filters; return (enter, exit) motions."""
        ang_vel = self._base_inputs(now_s)[1]
        odom_fresh = self._odom.fresh(now_s, self.config.odom_timeout_s)
        sample = (ang_vel, self.tilt_rad(now_s),
                  self._odom.value[1][:2] if odom_fresh else None)
        # the time since the previous sample (ticks may be skipped), at least one tick
        dt_s = self.dt_s if self._idle_sample_s is None else min(
            max(now_s - self._idle_sample_s, self.dt_s), 1.0)
        return (self._idle_filter.update(*sample, dt_s),
                self._idle_exit_filter.update(*sample, dt_s))

    def _update_idle_stand(self, now_s: float) -> bool:
        """
        Start or end the idle stand at ``now_s`` (walking, idle stand on); return whether it holds.

        While it holds, ``_q_target`` is the PD target: the ramp from the measured pose to the
        default pose (:mod:`humanoid_rl_ros.core.idle_stand` gives the rules).
        """
        cfg = self.config
        zero = idle_stand.is_zero_command(self.command(now_s), cfg.idle_command_threshold)
        self._idle_filter.time_constant_s = cfg.idle_filter_s
        self._idle_exit_filter.time_constant_s = cfg.idle_exit_filter_s
        # the enter filter judges "calm enough to stop"; a push must hand over at once: a short
        # filter (or none) for the exit limits, kept warm every tick so that the first held
        # tick is not judged on one raw sample
        motion, motion_now = self._filtered_motions(now_s)
        if self.idle_standing:
            # an unknown orientation keeps the hold (the graded response stands the robot if
            # the input stays unusable): a standing robot is not made to step blind
            reason = ('a non-zero command' if not zero
                      else idle_stand.beyond(motion_now, cfg.idle_exit_limits()))
            if reason:
                self._idle_sample_s = now_s
                self._end_idle_to_policy(reason)
                return False
        elif not zero or not idle_stand.calm(motion, cfg.idle_enter_limits()) \
                or self.hold_reason:
            self._idle_since_s = None  # moving, or riding out a fault: never stop the policy
        elif self._idle_since_s is None:
            self._idle_since_s = now_s
        elif (now_s - self._idle_since_s >= cfg.idle_stand_after_s
              and self._tick % self.decimation == 0 and self._joint_state_fresh(now_s)
              and (not self.uses_gait_phase or idle_stand.near_touchdown(
                  self._gait_phase, cfg.idle_touchdown_phases, cfg.idle_phase_window))):
            self.idle_standing = True
            self._idle_ramp_start_s = now_s
            self._idle_ramp_start_pos = self._joints.value[0].copy()
            self.idle_note = (f'idle stand from t={now_s:.3f} s: zero command and a calm base '
                              f'for {cfg.idle_stand_after_s:g} s; policy paused')
        self._idle_sample_s = now_s
        if not self.idle_standing:
            return False
        ramp_s = cfg.idle_stand_ramp_s
        fraction = 1.0 if ramp_s <= 0.0 else min(1.0, max(
            0.0, (now_s - self._idle_ramp_start_s) / ramp_s))
        start = self._idle_ramp_start_pos
        self._q_target = start + (self.default_pos_rad - start) * fraction
        return True

    def _joint_state_fresh(self, now_s: float) -> bool:
        """Return whether the newest usable joint state is within its timeout."""
        return age_s(self._joints.time_s, now_s) <= self.config.joint_state_timeout_s

    def _pd(self, target: np.ndarray, now_s: float) -> np.ndarray:
        q, qd = self._joints.value
        if not self._joint_state_fresh(now_s):
            qd = self._zero_qd  # a stale velocity would be a constant torque
        return np.asarray(policy_math.pd_effort(target, q, qd, self.kp_nm_per_rad,
                                                self.kd_nms_per_rad, self.effort_limit_nm),
                          dtype=np.float64)

    def _damping_effort(self, now_s: float) -> np.ndarray:
        fresh = age_s(self._damping_qd_time_s, now_s) <= self.config.joint_state_timeout_s
        qd = self._damping_qd if fresh else self._zero_qd
        effort = -self.config.damping_kd_scale * self.kd_nms_per_rad * qd
        effort = np.where(np.isfinite(effort), effort, 0.0)
        return policy_math.clamp(effort, -self.effort_limit_nm, self.effort_limit_nm)

    def observation_inputs(self, now_s: float) -> Dict[str, np.ndarray]:
        """Return the raw (unscaled) observation inputs keyed by term name at ``now_s``."""
        q, qd = self._joints.value
        quat, ang_vel, lin_vel = self._base_inputs(now_s)
        return policy_math.observation_inputs(
            base_quat_wxyz=np.asarray(quat, dtype=np.float64),
            base_lin_vel_body_m_s=np.asarray(lin_vel, dtype=np.float64),
            base_ang_vel_body_rad_s=np.asarray(ang_vel, dtype=np.float64),
            command=self.command(now_s),
            joint_pos_rad=q,
            default_joint_pos_rad=self.default_pos_rad,
            joint_vel_rad_s=qd,
            last_action=self._last_action,
            gait_phase=np.float64(self._gait_phase) if self.uses_gait_phase else None)

    def _base_inputs(self, now_s: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the newest base quaternion (wxyz), angular and linear velocity (body frame)."""
        odom, imu = self._odom.value, self._imu.value
        if self.config.orientation_source == 'imu' and imu is not None:
            quat, ang_vel = imu
        elif odom is not None:
            quat, ang_vel = odom[0], odom[2]
        else:
            quat, ang_vel = np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(3)
        lin_vel = odom[1] if odom is not None else np.zeros(3)
        return quat, ang_vel, lin_vel

    def _run_policy(self, now_s: float) -> None:
        inputs = self.observation_inputs(now_s)
        frame = policy_math.build_observation(self.contract.obs_terms, inputs,
                                              clip=self.contract.obs_clip, scale=self._obs_scale)
        length = int(self.contract.history_length or 1)
        if length > 1:
            self._history = (policy_math.init_history(frame, length) if self._history is None
                             else policy_math.push_history(self._history, frame))
            frame = policy_math.flatten_history(self._history)
        obs = np.asarray(frame, dtype=np.float32).reshape(-1)
        if obs.shape != (self.contract.obs_dim,):
            raise ControllerError(f'observation has shape {obs.shape}, contract says '
                                  f'({self.contract.obs_dim},)')
        action = np.asarray(self.policy(obs), dtype=np.float64).reshape(-1)
        if action.shape != (self.contract.action_dim,) or not policy_math.all_finite(action):
            raise ControllerError('policy returned a non-finite or wrongly sized action')
        # the last_action term holds the clipped action, as in training
        limit = self.contract.action_clip
        self._last_action = policy_math.clamp(action, -limit, limit)
        self._q_target = policy_math.action_to_joint_targets(
            self._last_action, self.default_pos_rad, self.action_scale_rad, limit)
        self.policy_steps += 1

    @property
    def gait_phase(self) -> float:
        """Return the gait phase in [0, 1) (advanced by ``dt`` per walking tick)."""
        return self._gait_phase

    @property
    def q_target_rad(self) -> np.ndarray:
        """Return the newest policy joint target [rad] in policy order."""
        return self._q_target.copy()
