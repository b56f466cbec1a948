"""
The policy node's control logic as a pure state machine (no ROS imports).

The ROS node (:mod:`humanoid_rl_ros.ros.policy_node`) feeds this class the newest sensor values and
calls :meth:`Controller.step` once per physics tick (every ``contract.physics_dt_s`` of ROS
time). Every method takes the current time ``now_s`` [s] from the caller; nothing here reads a
wall clock, so the same code runs under ``use_sim_time``.

States (:class:`ControllerState`):

* ``INACTIVE``: :meth:`Controller.step` returns ``None``; nothing is published.
* ``STANDING``: the PD target ramps linearly from the measured joint positions to the
  contract's default pose over ``stand_ramp_s``, then holds it. The ramp starts at the first
  :meth:`Controller.step` after entering the state (not at the time of the transition, which
  under ``use_sim_time`` may come before the first ``/clock``), and never at a time <= 0: ROS
  time is 0 until a time source has received ``/clock``, so such ticks hold the measured pose
  and the ramp starts at the first tick with a valid time. A pending walk request starts
  walking once the ramp is complete and the walking inputs (odometry/IMU) are fresh.
* ``WALKING``: the policy runs every ``decimation`` ticks (its first run is on the first walking
  tick); PD runs every tick from the newest joint state and the newest policy target.
* ``DAMPING``: entered on any fault (stale, missing or non-finite input; a policy failure).
  Effort = ``-damping_kd_scale * kd * qd``, clamped to the limits, where ``qd`` is the newest
  joint velocity if the joint state is fresh and zero otherwise (a stale velocity is never
  turned into a constant torque). The fault is latched.

Recovery from damping is explicit: :meth:`Controller.recover` returns to ``STANDING`` (ramping
from the measured pose) once a fresh, complete and finite joint state is present; otherwise it
refuses and says why. Walking must then be requested again (:meth:`Controller.request_walk`).

Commands: ``(vx, vy, wz)`` are clamped to the contract's trained ranges; a command older than
``cmd_vel_timeout_s`` (or none at all) counts as zero; a non-finite command is ignored and counts
as zero (the robot keeps balancing instead of collapsing).

Staleness is measured from the time each message was *received* (the ``now_s`` passed to the
``update_*`` methods), not from header stamps, whose clock may differ from the node's.

Every effort returned is finite and within ``±effort_limit_nm``; this is checked before return.
"""

from dataclasses import dataclass
import enum
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from humanoid_rl_ros.core import policy_math
from humanoid_rl_ros.core.contract import PolicyContract
import numpy as np

ORIENTATION_SOURCES = ('odom', 'imu')
"""Accepted values of :attr:`ControllerConfig.orientation_source`."""


class ControllerState(enum.Enum):
    """The controller's operating state."""

    INACTIVE = 'inactive'
    STANDING = 'standing'
    WALKING = 'walking'
    DAMPING = 'damping'


class ControllerError(ValueError):
    """A controller input or configuration is unusable; the message names the problem."""


@dataclass(frozen=True)
class ControllerConfig:
    """Tunable controller settings (the node maps its parameters onto these)."""

    stand_ramp_s: float = 2.0
    """Time to ramp from the measured pose to the default pose when standing [s]."""
    joint_state_timeout_s: float = 0.1
    """A joint state older than this while active is a fault [s]."""
    odom_timeout_s: float = 0.1
    """Odometry older than this while walking is a fault [s] (if the policy needs odometry)."""
    imu_timeout_s: float = 0.1
    """IMU data older than this while walking is a fault [s] (``orientation_source='imu'``)."""
    cmd_vel_timeout_s: float = 0.5
    """A velocity command older than this counts as zero [s]."""
    damping_kd_scale: float = 1.0
    """Damping gain in the damping state, as a multiple of the contract's kd [-]."""
    orientation_source: str = 'odom'
    """Where base orientation and angular velocity come from: ``'odom'`` or ``'imu'``."""

    def validate(self) -> None:
        """Raise :class:`ControllerError` naming the first invalid field."""
        for name in ('stand_ramp_s', 'damping_kd_scale'):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0:
                raise ControllerError(f'{name} must be finite and >= 0, got {value}')
        for name in ('joint_state_timeout_s', 'odom_timeout_s', 'imu_timeout_s',
                     'cmd_vel_timeout_s'):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0.0:
                raise ControllerError(f'{name} must be finite and > 0, got {value}')
        if self.orientation_source not in ORIENTATION_SOURCES:
            raise ControllerError(f'orientation_source must be one of {ORIENTATION_SOURCES}, '
                                  f'got {self.orientation_source!r}')


def missing_joints(required: Sequence[str], available: Sequence[str]) -> List[str]:
    """Return the names in ``required`` that are absent from ``available`` (in required order)."""
    have = set(available)
    return [name for name in required if name not in have]


def match_joint_indices(required: Sequence[str], available: Sequence[str]) -> np.ndarray:
    """
    Return, for each required joint, its index in ``available``.

    Extra names in ``available`` are ignored. Raise :class:`ControllerError` naming every
    missing joint.
    """
    lookup: Dict[str, int] = {}
    for i, name in enumerate(available):
        lookup.setdefault(name, i)
    missing = [name for name in required if name not in lookup]
    if missing:
        raise ControllerError(f'joint_states lacks required joint(s): {", ".join(missing)}')
    return np.array([lookup[name] for name in required], dtype=np.int64)


def clamp_command(command: Sequence[float], contract: PolicyContract) -> np.ndarray:
    """Clamp ``(vx [m/s], vy [m/s], wz [rad/s])`` to the contract's trained ranges."""
    low, high = contract.commands.as_bounds()
    return policy_math.clamp(np.asarray(command, dtype=np.float64), low, high)


@dataclass
class _Stamped:
    """A value with the time it was received [s]."""

    value: Tuple[np.ndarray, ...]
    time_s: float


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
        self.note = ''
        self.walk_requested = False
        self.policy_steps = 0
        self._tick = 0
        self._gait_phase = 0.0
        self._last_action = np.zeros(n)  # the clipped policy output (float64)
        self._q_target = self.default_pos_rad.copy()
        self._ramp_start_pos = self.default_pos_rad.copy()
        self._ramp_start_s: Optional[float] = None  # None: starts at the next valid step
        self._joint: Optional[_Stamped] = None  # (q, qd) of the newest healthy joint state
        self._joint_problem = ''  # why the newest joint state was unusable ('' if fine)
        self._damping_qd = np.zeros(n)  # finite joint velocity from the newest message
        self._damping_qd_time_s = -math.inf
        self._odom: Optional[_Stamped] = None  # (quat wxyz, lin vel body, ang vel body)
        self._odom_problem = ''
        self._imu: Optional[_Stamped] = None  # (quat wxyz, ang vel body)
        self._imu_problem = ''
        self._cmd: Optional[_Stamped] = None  # (vx, vy, wz) clamped
        self.cmd_note = ''
        self._index_cache: Tuple[Tuple[str, ...], Optional[np.ndarray]] = ((), None)

    # ----------------------------------------------------------------------------- inputs
    def update_joint_state(self, names: Sequence[str], position: Sequence[float],
                           velocity: Sequence[float], now_s: float) -> None:
        """
        Store a joint state (any order, extra joints ignored) received at ``now_s``.

        A missing required joint, a missing velocity field or a non-finite value makes the
        message unusable; that is a fault while active (see :meth:`step`).
        """
        names = tuple(names)
        if len(position) != len(names):
            self._joint_problem = (f'joint_states has {len(names)} names but {len(position)} '
                                   'positions')
            return
        if len(velocity) != len(names):
            self._joint_problem = (f'joint_states has {len(names)} names but {len(velocity)} '
                                   'velocities (the policy needs joint velocities)')
            return
        cached_names, index = self._index_cache
        if cached_names != names or index is None:
            try:
                index = match_joint_indices(self.joint_names, names)
            except ControllerError as exc:
                self._joint_problem = str(exc)
                self._index_cache = (names, None)
                self._update_damping_qd_partial(names, velocity, now_s)
                return
            self._index_cache = (names, index)
        q = np.asarray(position, dtype=np.float64)[index]
        qd = np.asarray(velocity, dtype=np.float64)[index]
        self._damping_qd_time_s = now_s
        if not (policy_math.all_finite(q) and policy_math.all_finite(qd)):
            self._damping_qd = np.where(np.isfinite(qd), qd, 0.0)
            bad = [self.joint_names[i]
                   for i in np.flatnonzero(~(np.isfinite(q) & np.isfinite(qd)))]
            self._joint_problem = f'non-finite joint_states value for joint(s): {", ".join(bad)}'
            return
        self._damping_qd = qd
        self._joint_problem = ''
        self._joint = _Stamped((q, qd), now_s)

    def _update_damping_qd_partial(self, names: Sequence[str], velocity: Sequence[float],
                                   now_s: float) -> None:
        """Keep damping on the joints that are present when a required joint is missing."""
        lookup = {name: i for i, name in enumerate(names)}
        qd = np.zeros(len(self.joint_names))
        for j, name in enumerate(self.joint_names):
            i = lookup.get(name)
            if i is not None and math.isfinite(velocity[i]):
                qd[j] = velocity[i]
        self._damping_qd = qd
        self._damping_qd_time_s = now_s

    def update_odom(self, quat_wxyz: Sequence[float], lin_vel_body_m_s: Sequence[float],
                    ang_vel_body_rad_s: Sequence[float], now_s: float) -> None:
        """Store odometry: base orientation and body-frame (child frame) twist."""
        quat = np.asarray(quat_wxyz, dtype=np.float64)
        value = (np.asarray(lin_vel_body_m_s, dtype=np.float64),
                 np.asarray(ang_vel_body_rad_s, dtype=np.float64))
        unit_quat, self._odom_problem = _check_base(quat, value, 'odom')
        if unit_quat is not None:
            self._odom = _Stamped((unit_quat,) + value, now_s)

    def update_imu(self, quat_wxyz: Sequence[float], ang_vel_body_rad_s: Sequence[float],
                   now_s: float) -> None:
        """Store IMU orientation and body-frame angular velocity."""
        quat = np.asarray(quat_wxyz, dtype=np.float64)
        ang_vel = np.asarray(ang_vel_body_rad_s, dtype=np.float64)
        unit_quat, self._imu_problem = _check_base(quat, (ang_vel,), 'imu')
        if unit_quat is not None:
            self._imu = _Stamped((unit_quat, ang_vel), now_s)

    def update_cmd_vel(self, vx_m_s: float, vy_m_s: float, wz_rad_s: float,
                       now_s: float) -> None:
        """Store a velocity command (clamped to the trained ranges) received at ``now_s``."""
        raw = np.array([vx_m_s, vy_m_s, wz_rad_s], dtype=np.float64)
        if not np.all(np.isfinite(raw)):
            self._cmd = None
            self.cmd_note = f'non-finite cmd_vel {raw.tolist()} ignored (command is zero)'
            return
        clamped = clamp_command(raw, self.contract)
        self.cmd_note = ('' if np.array_equal(clamped, raw) else
                         f'cmd_vel {raw.tolist()} clamped to trained range {clamped.tolist()}')
        self._cmd = _Stamped((clamped,), now_s)

    def command(self, now_s: float) -> np.ndarray:
        """Return the effective ``(vx, vy, wz)`` command at ``now_s`` (zero if timed out)."""
        if self._cmd is None or _age(self._cmd.time_s, now_s) > self.config.cmd_vel_timeout_s:
            return np.zeros(3)
        return self._cmd.value[0].copy()

    # ----------------------------------------------------------------------------- health
    def joint_state_problem(self, now_s: float) -> str:
        """Return why the joint state is unusable at ``now_s`` ('' if healthy)."""
        if self._joint_problem:
            return self._joint_problem
        if self._joint is None:
            return 'no joint_states received'
        age = _age(self._joint.time_s, now_s)
        if age > self.config.joint_state_timeout_s:
            return _describe_age('joint_states', age, 'joint_state_timeout_s',
                                 self.config.joint_state_timeout_s)
        return ''

    def walking_input_problem(self, now_s: float) -> str:
        """Return why odometry/IMU are unusable for the policy at ``now_s`` ('' if healthy)."""
        if not self.needs_base:
            return ''
        needs_odom = self.needs_lin_vel or self.config.orientation_source == 'odom'
        if needs_odom:
            problem = _stamped_problem(self._odom, self._odom_problem, now_s,
                                       self.config.odom_timeout_s, 'odom', 'odom_timeout_s')
            if problem:
                return problem
        if self.config.orientation_source == 'imu':
            return _stamped_problem(self._imu, self._imu_problem, now_s,
                                    self.config.imu_timeout_s, 'imu', 'imu_timeout_s')
        return ''

    # ----------------------------------------------------------------------------- transitions
    def activate(self, now_s: float) -> None:
        """Go from ``INACTIVE`` to ``STANDING``; raise :class:`ControllerError` if not possible."""
        if self.state is not ControllerState.INACTIVE:
            raise ControllerError(f'activate: controller is {self.state.value}, not inactive')
        problem = self.joint_state_problem(now_s)
        if problem:
            raise ControllerError(f'cannot activate: {problem}')
        self.fault_reason = ''
        self._enter_standing(now_s)

    def deactivate(self) -> None:
        """Go to ``INACTIVE`` from any state (clears the fault and any walk request)."""
        self.state = ControllerState.INACTIVE
        self.fault_reason = ''
        self.walk_requested = False
        self.note = ''

    def request_walk(self, now_s: float) -> Tuple[bool, str]:
        """
        Ask to walk; return ``(accepted, message)``.

        Accepted in ``STANDING`` (walking starts when the ramp completes and odometry is fresh)
        and in ``WALKING`` (no-op). Refused in ``INACTIVE`` and ``DAMPING``.
        """
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
        if self.state is ControllerState.WALKING:
            self._enter_standing(now_s)
            return True, 'standing'
        if self.state is ControllerState.STANDING:
            self.walk_requested = False
            return True, 'standing (walk request cleared)'
        if self.state is ControllerState.DAMPING:
            return False, f'in damping ({self.fault_reason}); call recover first'
        return False, 'controller is inactive; activate the node first'

    def recover(self, now_s: float) -> Tuple[bool, str]:
        """Leave ``DAMPING`` for ``STANDING`` if the joint state is healthy; return the outcome."""
        if self.state is not ControllerState.DAMPING:
            return False, f'not in damping (state is {self.state.value}); nothing to recover'
        problem = self.joint_state_problem(now_s)
        if problem:
            return False, f'cannot recover: {problem}'
        previous = self.fault_reason
        self.fault_reason = ''
        self._enter_standing(now_s)
        return True, f'recovered from damping ({previous}); standing'

    def fault(self, reason: str) -> None:
        """Enter ``DAMPING`` with ``reason`` (no-op when inactive or already damping)."""
        if self.state in (ControllerState.INACTIVE, ControllerState.DAMPING):
            return
        self.state = ControllerState.DAMPING
        self.fault_reason = reason
        self.walk_requested = False

    def _enter_standing(self, now_s: float) -> None:
        # The ramp's start time and pose are taken at the first step with a valid time (see
        # _start_ramp_if_pending), not here: ``now_s`` of a transition may be a not-yet-valid
        # ROS time (0 before /clock) or long before the first control tick.
        self.state = ControllerState.STANDING
        self.walk_requested = False
        self._ramp_start_pos = (self._joint.value[0].copy() if self._joint is not None
                                else self.default_pos_rad.copy())
        self._ramp_start_s = None
        self.note = ''

    def _start_ramp_if_pending(self, now_s: float) -> None:
        if self._ramp_start_s is not None or self._joint is None:
            return
        self._ramp_start_pos = self._joint.value[0].copy()
        if now_s > 0.0:  # ROS time 0: no /clock yet; hold the measured pose until it is valid
            self._ramp_start_s = now_s

    def _enter_walking(self) -> None:
        self.state = ControllerState.WALKING
        self.walk_requested = False
        self._tick = 0
        self._gait_phase = 0.0
        self._last_action = np.zeros(self.contract.action_dim)
        self._q_target = self.default_pos_rad.copy()
        self.note = ''

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
        if self.state is ControllerState.INACTIVE:
            return None
        if self.state is not ControllerState.DAMPING:
            problem = self.joint_state_problem(now_s)
            if problem:
                self.fault(problem)
        if self.state is ControllerState.STANDING:
            self._start_ramp_if_pending(now_s)
            fraction = self.stand_ramp_fraction(now_s)
            if fraction >= 1.0 and self.walk_requested:
                problem = self.walking_input_problem(now_s)
                self.note = f'walk pending: {problem}' if problem else ''
                if not problem:
                    self._enter_walking()
        if self.state is ControllerState.WALKING:
            problem = self.walking_input_problem(now_s)
            if problem:
                self.fault(problem)
        if self.state is ControllerState.STANDING:
            fraction = self.stand_ramp_fraction(now_s)
            start = self._ramp_start_pos
            target = start + (self.default_pos_rad - start) * fraction
            effort = self._pd(target)
        elif self.state is ControllerState.WALKING:
            if self._tick % self.decimation == 0:
                try:
                    self._run_policy(now_s)
                except Exception as exc:  # noqa: B902 - any policy failure must end in damping
                    self.fault(f'policy step failed: {exc}')
            if self.state is ControllerState.WALKING:
                effort = self._pd(self._q_target)
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

    def _pd(self, target: np.ndarray) -> np.ndarray:
        q, qd = self._joint.value
        return np.asarray(policy_math.pd_effort(target, q, qd, self.kp_nm_per_rad,
                                                self.kd_nms_per_rad, self.effort_limit_nm),
                          dtype=np.float64)

    def _damping_effort(self, now_s: float) -> np.ndarray:
        fresh = _age(self._damping_qd_time_s, now_s) <= self.config.joint_state_timeout_s
        qd = self._damping_qd if fresh else np.zeros_like(self._damping_qd)
        effort = -self.config.damping_kd_scale * self.kd_nms_per_rad * qd
        effort = np.where(np.isfinite(effort), effort, 0.0)
        return policy_math.clamp(effort, -self.effort_limit_nm, self.effort_limit_nm)

    def observation_inputs(self, now_s: float) -> Dict[str, np.ndarray]:
        """Return the raw (unscaled) observation inputs keyed by term name at ``now_s``."""
        q, qd = self._joint.value
        if self.config.orientation_source == 'imu' and self._imu is not None:
            quat, ang_vel = self._imu.value
        elif self._odom is not None:
            quat, ang_vel = self._odom.value[0], self._odom.value[2]
        else:
            quat, ang_vel = np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(3)
        lin_vel = self._odom.value[1] if self._odom is not None else np.zeros(3)
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

    def _run_policy(self, now_s: float) -> None:
        inputs = self.observation_inputs(now_s)
        obs = policy_math.build_observation(self.contract.obs_terms, inputs,
                                            clip=self.contract.obs_clip, scale=self._obs_scale)
        obs = np.asarray(obs, dtype=np.float32).reshape(-1)
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


def _age(time_s: float, now_s: float) -> float:
    """
    Return ``now_s - time_s`` [s].

    An input received "in the future" means ROS time jumped backwards (a sim reset, a bag loop):
    it is infinitely old, so it must be received again before it counts as fresh.
    """
    age = now_s - time_s
    return math.inf if age < -1e-9 else max(0.0, age)


def _describe_age(source: str, age: float, param: str, timeout_s: float) -> str:
    if math.isinf(age):
        return f'{source} received before ROS time jumped backwards; waiting for a fresh one'
    return f'{source} stale: {age:.3f} s old > {param} {timeout_s} s'


def _check_base(quat: np.ndarray, vectors: Tuple[np.ndarray, ...],
                source: str) -> Tuple[Optional[np.ndarray], str]:
    """Return ``(unit quaternion, '')`` or ``(None, the problem)`` of a base orientation."""
    if not (policy_math.all_finite(quat) and all(policy_math.all_finite(v) for v in vectors)):
        return None, f'non-finite {source} value'
    norm = math.sqrt(float(np.dot(quat, quat)))
    if not 0.5 < norm < 1.5:
        return None, f'{source} orientation quaternion has norm {norm:.3f} (not a rotation)'
    return quat / norm, ''


def _stamped_problem(value: Optional[_Stamped], problem: str, now_s: float, timeout_s: float,
                     source: str, param: str) -> str:
    if problem:
        return problem
    if value is None:
        return f'no {source} received'
    age = _age(value.time_s, now_s)
    if age > timeout_s:
        return _describe_age(source, age, param, timeout_s)
    return ''
