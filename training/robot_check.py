"""
Does a robot stand on its gains? Hold the default pose under PD on flat ground and report.

:func:`stand_check` runs the robot's config (as training and the nodes load it) in CPU MuJoCo:
the default pose held for 10 s under the PD gains. The :class:`StandReport` gives the fall time
if any, the height error, the share of samples at an effort limit per joint and the joints that
fought hardest; :func:`format_report` prints it with what to fix. ``python -m
training.robot_init validate`` runs it, and ``draft`` at its end (:mod:`training.robot_init`).
"""

from dataclasses import dataclass
import math
from typing import Dict, List, Optional, Sequence

from humanoid_rl_ros.robot.description import RobotConfig
from humanoid_rl_ros.sim.mujoco_sim import MujocoRobotSim
import numpy as np

STAND_DURATION_S = 10.0
"""How long the check holds the default pose [s]."""

SETTLE_S = 1.0
"""Settling time before the push and the height error count [s]."""

FALL_TILT_RAD = math.radians(45.0)
"""Tilt of the base from upright past which the robot counts as fallen [rad]."""


@dataclass
class StandReport:
    """What happened when the robot held its default pose under its PD gains."""

    duration_s: float
    """Time simulated [s]."""
    fell: bool
    """Whether the base tilted past 45 degrees or dropped below half its nominal height."""
    fall_time_s: Optional[float]
    """When it fell [s], if it did."""
    final_base_height_m: float
    """Base height at the end (or at the fall) [m]."""
    max_height_error_m: Optional[float]
    """
    Largest deviation of the base height from the nominal one after 1 s of settling [m].

    ``None`` where none was measured: the run ended (a fall, non-finite efforts, a short
    ``duration_s``) before the settling was over, or the base was pushed.
    """
    min_uprightness: float
    """Smallest cosine between the base z axis and the world z axis."""
    drift_m: float
    """Horizontal distance the base moved [m]."""
    saturated_share: Dict[str, float]
    """Share of samples at the effort limit, per joint (only joints that reached it)."""
    worst_tracking_rad: Dict[str, float]
    """The five joints farthest from their default position at the end [rad]."""
    all_finite: bool
    """Whether every effort was finite."""

    @property
    def ok(self) -> bool:
        """Return whether the robot stood: no fall, height within 5 cm, efforts finite."""
        return (not self.fell and not self._height_off and self.all_finite
                and max(self.saturated_share.values(), default=0.0) < 0.05)

    @property
    def _height_off(self) -> bool:
        """Return whether the measured height error is 5 cm or more (False if not measured)."""
        return self.max_height_error_m is not None and self.max_height_error_m >= 0.05

    def advice(self, robot: RobotConfig) -> List[str]:
        """Return what to fix, one line each (empty when the robot stands)."""
        out = []
        no_armature = [j.name for j in robot.joints if j.armature_kg_m2 == 0.0]
        if (self.fell or self.saturated_share) and no_armature:
            out.append(f'{len(no_armature)} joints have no rotor inertia '
                       f'(armature_kg_m2 = 0, e.g. {no_armature[0]}): put the reflected inertia '
                       'of each actuator (rotor inertia x gear ratio^2) there and redraft '
                       '(--armature-kg-m2); explicit PD at 200 Hz needs it to stay stable and '
                       'stiff')
        if not self.all_finite:
            out.append('efforts became non-finite: check the gains and the description '
                       '(masses, inertias) for zero or huge values')
        if self.fell:
            weak = ', '.join(list(self.worst_tracking_rad)[:3])
            out.append(f'the robot fell after {self.fall_time_s:.2f} s: raise kp (and kd with '
                       f'it) on the joints that sagged most ({weak}), or move the default pose '
                       'so the centre of mass is over the feet')
        elif self._height_off:
            out.append(f'the base settled {self.max_height_error_m:.3f} m away from '
                       f'nominal_base_height_m ({robot.nominal_base_height_m} m): set it to '
                       f'{self.final_base_height_m:.3f}')
        busiest = sorted(self.saturated_share.items(), key=lambda kv: -kv[1])[:3]
        for name, share in busiest:
            if share >= 0.05:
                out.append(f'{name} is at its effort limit {100 * share:.0f} % of the time: '
                           'the default pose needs more torque there than the limit gives; '
                           'change the pose or check effort_limit_nm')
        return out


def stand_check(robot: RobotConfig, duration_s: float = STAND_DURATION_S,
                drop_m: float = 0.0,
                push_m_s: Sequence[float] = (0.0, 0.0, 0.0)) -> StandReport:
    """
    Hold the default pose under the robot's PD gains on flat ground and report what happened.

    The base starts upright at the nominal height plus ``drop_m``; after 1 s of settling, an
    optional base velocity change ``push_m_s`` (world frame [m/s]) is applied once. The robot
    runs in :class:`humanoid_rl_ros.sim.mujoco_sim.MujocoRobotSim`, PD to the default pose
    every physics step.
    """
    sim = MujocoRobotSim(robot)
    sim.reset(base_height_m=robot.nominal_base_height_m + drop_m)
    dt = sim.timestep_s
    settle = int(round(SETTLE_S / dt))
    steps = int(round(duration_s / dt))
    pushed = any(push_m_s)
    saturated = np.zeros(robot.num_joints)  # samples at the limit, one per step simulated
    max_err: Optional[float] = None
    min_up, fall_time, finite = 1.0, None, True
    simulated = 0  # physics steps simulated
    for step in range(steps):
        effort = sim.pd_effort_nm()
        if not np.all(np.isfinite(effort)):
            finite = False
            fall_time = step * dt
            break
        saturated += sim.effort_at_limit(effort)
        if step == settle and pushed:
            sim.push(push_m_s)
        sim.step(effort)
        simulated += 1
        min_up = min(min_up, sim.uprightness())
        if step >= settle and not pushed:
            err_m = abs(float(sim.base_pos_m[2]) - robot.nominal_base_height_m)
            max_err = err_m if max_err is None else max(max_err, err_m)
        if sim.fallen(max_tilt_rad=FALL_TILT_RAD):
            fall_time = simulated * dt
            break
    err = np.abs(sim.joint_pos_rad - robot.default_pos_rad)
    worst = np.argsort(-err)[:5]
    share = saturated / max(simulated, 1)
    base = sim.base_pos_m
    return StandReport(
        duration_s=simulated * dt, fell=fall_time is not None, fall_time_s=fall_time,
        final_base_height_m=float(base[2]), max_height_error_m=max_err,
        min_uprightness=min_up, drift_m=float(np.linalg.norm(base[0:2])),
        saturated_share={robot.joint_names[i]: float(share[i])
                         for i in np.flatnonzero(share > 0)},
        worst_tracking_rad={robot.joint_names[i]: float(err[i]) for i in worst},
        all_finite=finite)


def measure_base_height(robot: RobotConfig, settle_s: float = 2.0) -> Optional[float]:
    """Return the base height [m] after standing ``settle_s`` under PD, or None if it fell."""
    report = stand_check(robot, duration_s=settle_s)
    return None if report.fell else report.final_base_height_m


def _height_error_text(report: StandReport) -> str:
    """Return the max height error [m] as printed, or why none was measured."""
    if report.max_height_error_m is not None:
        return f'{report.max_height_error_m:.3f}'
    if report.duration_s <= SETTLE_S:
        return f'not measured: the run ended before {SETTLE_S:g} s of settling'
    return 'not measured: the base was pushed'


def format_report(robot: RobotConfig, report: StandReport) -> str:
    """Return a human-readable summary of a stand check with what to fix."""
    lines = [
        f'robot {robot.name}: {robot.num_joints} joints, base {robot.base_link}, '
        f'feet {list(robot.foot_links)}',
        f'stand {report.duration_s:.1f} s under PD at the default pose: '
        + (f'FELL at {report.fall_time_s:.2f} s' if report.fell else 'stood')
        + f'; base height {report.final_base_height_m:.3f} m (nominal '
        f'{robot.nominal_base_height_m:.3f}, max error {_height_error_text(report)}); '
        f'drift {report.drift_m:.3f} m; min uprightness {report.min_uprightness:.3f}',
        'joints farthest from the default pose [rad]: ' + ', '.join(
            f'{n} {v:.3f}' for n, v in report.worst_tracking_rad.items()),
    ]
    if report.saturated_share:
        lines.append('at the effort limit: ' + ', '.join(
            f'{n} {100 * s:.1f} %' for n, s in report.saturated_share.items()))
    advice = report.advice(robot)
    lines += [f'FIX: {a}' for a in advice] if advice else ['OK: the robot stands on its gains']
    return '\n'.join(lines)
