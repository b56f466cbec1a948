"""
Bring your own robot: draft ``robot.yaml`` from a URDF or MJCF description, then check it.

Usage::

    python -m training.robot_init draft path/to/robot.urdf --out models/robots/my_robot
    python -m training.robot_init draft path/to/scene.xml --out models/robots/my_robot
    python -m training.robot_init validate models/robots/my_robot

``draft`` reads the description with MuJoCo's compiler (URDF and MJCF alike) and writes
``robot.yaml`` beside a reference to the description:

- joints: every hinge joint, in the description's tree order (the policy order);
- limits: position range from the joint; effort limit from the URDF ``<limit effort>`` (MuJoCo
  stores it as the joint's actuator force range), else from the MJCF actuator driving the joint
  (``gear * ctrlrange`` or its ``forcerange``); velocity limit from the URDF ``<limit velocity>``
  (MJCF has none: a placeholder is written and flagged);
- rotor inertia (``armature_kg_m2``): the description's joint armature, where it gives one;
- PD gains by the rule documented in ``models/robots/kestrel/robot.yaml`` (mjlab's): from the
  joint's reflected inertia J, natural frequency w = 2 pi 10 Hz and damping ratio zeta = 2,
  ``kp = J w^2``, ``kd = 2 zeta J w``. J is the armature where the description gives one; where it
  does not, the joint-space inertia the joint moves at the default pose (the diagonal of MuJoCo's
  mass matrix), and the draft says so: a real actuator's rotor inertia belongs there;
- the default pose: a keyframe named ``home``, ``stand``, ``standing`` or ``default``, else zero
  clipped into each joint's range (other keyframes, e.g. ``squat``, are not standing poses);
- values the description lacks can be given per joint on the command line
  (``--armature-kg-m2 knee=0.065 ...``, ``--default-pos-rad knee=0.4 ...``); gains follow them;
- the base link: the body that carries the free joint, else the root link;
- the feet: the two lowest leaf bodies at the default pose, one on each side (a guess, flagged);
- the nominal base height: measured by standing the robot under its drafted gains.

``validate`` (and the end of ``draft``) loads the config through the same loader as training and
the nodes, then holds the default pose for 10 s under the PD gains on flat ground. It reports the
fall time if any, the height error, the share of samples at an effort limit per joint and the
joints that fought hardest, and prints what to fix.
"""

from dataclasses import dataclass, field
import math
import os
from pathlib import Path
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
import xml.etree.ElementTree as ElementTree

from humanoid_rl_ros.core.policy_math import pd_effort
from humanoid_rl_ros.robot.description import load_robot, RobotConfig, RobotConfigError
from humanoid_rl_ros.robot.mujoco_model import (build_mujoco_model, default_qpos,
                                                joint_dof_adr, joint_qpos_adr)
import mujoco
import numpy as np
import tyro
import yaml

NATURAL_FREQUENCY_HZ = 10.0
"""Closed-loop natural frequency of the drafted PD gains [Hz] (mjlab's G1 rule)."""
DAMPING_RATIO = 2.0
"""Damping ratio of the drafted PD gains (mjlab's G1 rule)."""
PLACEHOLDER_VELOCITY_LIMIT_RAD_S = 20.0
"""Velocity limit written where the description gives none [rad/s]; flagged for the user."""
KEYFRAME_NAMES = ('home', 'stand', 'standing', 'default')
"""Keyframe names taken as the default pose, in order of preference."""
STAND_DURATION_S = 10.0
"""How long the check holds the default pose [s]."""


@dataclass
class Draft:
    """A drafted robot config and what the user must check."""

    config: Dict[str, Any]
    """The content of ``robot.yaml``."""
    notes: List[str] = field(default_factory=list)
    """What was guessed or is missing, one line each."""


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
    max_height_error_m: float
    """Largest deviation of the base height from the nominal one after 1 s of settling [m]."""
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
        return (not self.fell and self.max_height_error_m < 0.05 and self.all_finite
                and max(self.saturated_share.values(), default=0.0) < 0.05)

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
            no_armature = [j.name for j in robot.joints if j.armature_kg_m2 == 0.0]
            out.append(f'the robot fell after {self.fall_time_s:.2f} s: raise kp (and kd with '
                       f'it) on the joints that sagged most ({weak}), or move the default pose '
                       'so the centre of mass is over the feet')
        elif self.max_height_error_m >= 0.05:
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


@dataclass(frozen=True)
class GainRule:
    """PD gains from reflected inertia: ``kp = J w^2``, ``kd = 2 zeta J w``, ``w = 2 pi f``."""

    natural_frequency_hz: float = NATURAL_FREQUENCY_HZ
    """Closed-loop natural frequency f [Hz]."""
    damping_ratio: float = DAMPING_RATIO
    """Damping ratio zeta."""
    physics_dt_s: float = 0.005
    """Physics step the PD law runs at [s]; explicit PD needs ``2 zeta w dt < 2``."""

    def __post_init__(self) -> None:
        """Refuse a rule that explicit PD at ``physics_dt_s`` cannot run stably."""
        omega = 2.0 * math.pi * self.natural_frequency_hz
        if not (self.natural_frequency_hz > 0.0 and self.damping_ratio > 0.0):
            raise RobotConfigError('natural_frequency_hz and damping_ratio must be > 0')
        if 2.0 * self.damping_ratio * omega * self.physics_dt_s >= 2.0:
            raise RobotConfigError(
                f'gains with f = {self.natural_frequency_hz} Hz and zeta = {self.damping_ratio} '
                f'are unstable under explicit PD at dt = {self.physics_dt_s} s '
                f'(kd dt / J = {2 * self.damping_ratio * omega * self.physics_dt_s:.2f} >= 2): '
                'lower one of them')

    def gains(self, inertia_kg_m2: float) -> Tuple[float, float]:
        """Return (kp [N*m/rad], kd [N*m*s/rad]) for a reflected inertia J [kg*m^2]."""
        omega = 2.0 * math.pi * self.natural_frequency_hz
        return inertia_kg_m2 * omega ** 2, 2.0 * self.damping_ratio * inertia_kg_m2 * omega


def _urdf_velocity_limits(path: Path) -> Dict[str, float]:
    """Return ``{joint: velocity limit [rad/s]}`` from a URDF's ``<limit velocity>``."""
    limits = {}
    for joint in ElementTree.parse(path).getroot().iter('joint'):
        limit = joint.find('limit')
        if limit is not None and limit.get('velocity') is not None:
            limits[joint.get('name')] = float(limit.get('velocity'))
    return limits


def _base_body(model: 'mujoco.MjModel') -> int:
    """Return the body with the free joint, else the first child of the world."""
    for j in range(model.njnt):
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
            return int(model.jnt_bodyid[j])
    for b in range(1, model.nbody):
        if model.body_parentid[b] == 0:
            return b
    raise RobotConfigError('the description has no body under the world')


def _effort_limit(model: 'mujoco.MjModel', joint_id: int) -> Optional[float]:
    """Return the joint's effort limit [N*m] from its force range or its actuator, if any."""
    if model.jnt_actfrclimited[joint_id]:
        low, high = model.jnt_actfrcrange[joint_id]
        return float(min(-low, high))
    for a in range(model.nu):
        if (model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT
                and model.actuator_trnid[a, 0] == joint_id):
            gear = abs(float(model.actuator_gear[a, 0]))
            if model.actuator_forcelimited[a]:
                low, high = model.actuator_forcerange[a]
                return float(min(-low, high))
            if model.actuator_ctrllimited[a]:
                low, high = model.actuator_ctrlrange[a]
                return gear * float(min(-low, high))
    return None


def _default_pose(model: 'mujoco.MjModel', joints: Sequence[int]) -> Tuple[np.ndarray, str]:
    """Return the default joint positions [rad] and where they came from."""
    names = [model.key(k).name for k in range(model.nkey)]
    chosen = next((names.index(n) for n in KEYFRAME_NAMES if n in names), None)
    adr = model.jnt_qposadr[list(joints)]
    if chosen is not None:
        return model.key_qpos[chosen][adr].copy(), f'keyframe {names[chosen]!r}'
    pos = np.zeros(len(joints))
    for i, j in enumerate(joints):
        if model.jnt_limited[j]:
            pos[i] = np.clip(0.0, *model.jnt_range[j])
    return pos, 'zero (no keyframe named ' + '/'.join(KEYFRAME_NAMES) + '), clipped into ranges'


def _subtree(model: 'mujoco.MjModel', root: int) -> List[int]:
    """Return the bodies of ``root``'s subtree, ``root`` included."""
    out = [root]
    for b in range(root + 1, model.nbody):
        if model.body_parentid[b] in out:
            out.append(b)
    return out


def _lowest_point_z(model: 'mujoco.MjModel', data: 'mujoco.MjData', geom: int) -> float:
    """Return the lowest world z [m] of a geom's bounding box (its local AABB, rotated)."""
    center, half = model.geom_aabb[geom][:3], model.geom_aabb[geom][3:]
    row = data.geom_xmat[geom].reshape(3, 3)[2]
    return float(data.geom_xpos[geom][2] + row @ center - np.abs(row) @ half)


def _guess_feet(model: 'mujoco.MjModel', data: 'mujoco.MjData', base: int) -> List[str]:
    """Return the lowest leaf body on each side (+y, -y) of the base at the current pose."""
    bodies = _subtree(model, base)
    leaves = [b for b in bodies if not any(model.body_parentid[c] == b for c in bodies)
              and b != base]
    lowest = sorted(leaves, key=lambda b: data.xpos[b][2])
    base_y = data.xpos[base][1]
    left = next((b for b in lowest if data.xpos[b][1] > base_y + 1e-3), None)
    right = next((b for b in lowest if data.xpos[b][1] < base_y - 1e-3), None)
    feet = [b for b in (left, right) if b is not None] or lowest[:2]
    return [model.body(b).name for b in feet]


def draft_robot(description: Path, name: str, out_dir: Path,
                armature_kg_m2: Optional[Dict[str, float]] = None,
                default_pos_rad: Optional[Dict[str, float]] = None,
                rule: GainRule = GainRule()) -> Draft:
    """
    Draft ``robot.yaml`` content for a URDF or MJCF description (see the module docstring).

    ``armature_kg_m2`` and ``default_pos_rad`` give per-joint values the description lacks
    (or overrides); an unknown joint name raises RobotConfigError.

    The nominal base height is a first estimate (lowest geom at z = 0); :func:`init_robot`
    replaces it with the height measured while standing.
    """
    description = Path(description).resolve()
    if description.suffix.lower() not in ('.urdf', '.xml'):
        raise RobotConfigError(f'{description.name}: expected a .urdf or an MJCF .xml file')
    if not description.is_file():
        raise FileNotFoundError(f'description not found: {description}')
    try:
        model = mujoco.MjModel.from_xml_path(str(description))
    except Exception as exc:  # noqa: B902 - mujoco raises ValueError with the compiler's text
        raise RobotConfigError(f'{description.name}: MuJoCo cannot compile it: {exc}') from exc
    notes: List[str] = []
    base = _base_body(model)
    joints = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    if not joints:
        raise RobotConfigError(f'{description.name}: no revolute (hinge) joints')
    default_pos, pose_source = _default_pose(model, joints)
    joint_names = [model.joint(j).name for j in joints]
    armature_kg_m2 = dict(armature_kg_m2 or {})
    default_pos_rad = dict(default_pos_rad or {})
    for what, given in (('armature_kg_m2', armature_kg_m2), ('default_pos_rad', default_pos_rad)):
        unknown = sorted(set(given) - set(joint_names))
        if unknown:
            raise RobotConfigError(f'{what}: no hinge joint named {unknown} in '
                                   f'{description.name} (joints: {joint_names})')
    for i, jname in enumerate(joint_names):
        default_pos[i] = default_pos_rad.get(jname, default_pos[i])
    notes.append(f'default pose: {pose_source}' + (
        f', {len(default_pos_rad)} joints given on the command line' if default_pos_rad else ''))

    data = mujoco.MjData(model)
    data.qpos[:] = model.qpos0
    data.qpos[model.jnt_qposadr[joints]] = default_pos
    mujoco.mj_forward(model, data)
    mass_matrix = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, mass_matrix)

    velocity = _urdf_velocity_limits(description) if description.suffix.lower() == '.urdf' else {}
    entries, missing_velocity, missing_effort, no_armature = [], [], [], []
    for j, pos in zip(joints, default_pos):
        jname = model.joint(j).name
        dof = int(model.jnt_dofadr[j])
        armature = float(armature_kg_m2.get(jname, model.dof_armature[dof]))
        inertia = armature if armature > 0.0 else float(mass_matrix[dof, dof])
        if armature == 0.0:
            no_armature.append(jname)
        kp, kd = rule.gains(inertia)
        effort = _effort_limit(model, j)
        if effort is None or not math.isfinite(effort) or effort <= 0.0:
            missing_effort.append(jname)
            effort = round(max(kp * 0.5, 1.0), 1)  # half a radian of error saturates it
        vel = velocity.get(jname)
        if vel is None or vel <= 0.0:
            missing_velocity.append(jname)
            vel = PLACEHOLDER_VELOCITY_LIMIT_RAD_S
        entries.append({
            'name': jname, 'default_pos_rad': round(float(pos), 4),
            'kp_nm_per_rad': round(kp, 3), 'kd_nms_per_rad': round(kd, 4),
            'effort_limit_nm': float(effort), 'velocity_limit_rad_s': float(vel),
            'armature_kg_m2': armature})
    if no_armature:
        notes.append(f'no rotor inertia in the description for {len(no_armature)} joints '
                     f'({no_armature[0]}, ...): gains use the link inertia the joint moves at '
                     'the default pose; put the reflected inertia of each actuator in '
                     'armature_kg_m2 and re-run validate')
    if missing_effort:
        notes.append(f'no effort limit for {missing_effort}: a placeholder (kp x 0.5 rad) was '
                     'written; set the actuator datasheet value')
    if missing_velocity:
        notes.append(f'no velocity limit for {len(missing_velocity)} joints: '
                     f'{PLACEHOLDER_VELOCITY_LIMIT_RAD_S} rad/s was written; set the '
                     'datasheet value')
    feet = _guess_feet(model, data, base)
    notes.append(f'foot links guessed as the lowest leaf bodies on each side: {feet}')

    base_z = float(data.xpos[base][2])
    geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] in _subtree(model, base)
             and model.geom_type[g] != mujoco.mjtGeom.mjGEOM_PLANE]
    lowest = min(_lowest_point_z(model, data, g) for g in geoms)
    rel = os.path.relpath(description, Path(out_dir).resolve())
    config = {
        'name': name,
        'description_file': rel,
        'base_link': model.body(base).name,
        'foot_links': feet,
        'nominal_base_height_m': round(max(base_z - lowest, 0.05), 3),
        'joints': entries,
    }
    return Draft(config=config, notes=notes)


def write_robot_yaml(draft: Draft, out_dir: Path, rule: GainRule = GainRule()) -> Path:
    """Write ``robot.yaml`` (with a header naming the gain rule and the notes); return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = [
        f'# {draft.config["name"]}: drafted by python -m training.robot_init; review every line.',
        '# Joints in POLICY ORDER (the tree order of the description).',
        f'# PD gains: kp = J w^2, kd = 2 zeta J w with w = 2 pi {rule.natural_frequency_hz:g} Hz '
        f'and zeta = {rule.damping_ratio:g},',
        '# J = armature_kg_m2 where given, else the joint-space inertia at the default pose.',
        '# effort_limit_nm and velocity_limit_rad_s must equal the URDF <limit> (checked).',
    ] + [f'# NOTE: {n}' for n in draft.notes]
    body = yaml.safe_dump(draft.config, sort_keys=False, default_flow_style=None, width=100)
    path = out_dir / 'robot.yaml'
    path.write_text('\n'.join(header) + '\n' + body)
    return path


def stand_check(robot: RobotConfig, duration_s: float = STAND_DURATION_S,
                drop_m: float = 0.0,
                push_m_s: Sequence[float] = (0.0, 0.0, 0.0)) -> StandReport:
    """
    Hold the default pose under the robot's PD gains on flat ground and report what happened.

    The base starts upright at the nominal height plus ``drop_m``; after 1 s of settling, an
    optional base velocity change ``push_m_s`` (world frame [m/s]) is applied once.
    """
    model = build_mujoco_model(robot)
    data = mujoco.MjData(model)
    data.qpos[:] = default_qpos(model, robot,
                                base_pos_m=(0.0, 0.0, robot.nominal_base_height_m + drop_m))
    mujoco.mj_forward(model, data)
    qadr, dadr = joint_qpos_adr(model, robot), joint_dof_adr(model, robot)
    limit = robot.effort_limit_nm
    dt = model.opt.timestep
    settle = int(round(1.0 / dt))
    steps = int(round(duration_s / dt))
    saturated = np.zeros(robot.num_joints)
    max_err, min_up, fall_time, finite = 0.0, 1.0, None, True
    for step in range(steps):
        effort = pd_effort(robot.default_pos_rad, data.qpos[qadr], data.qvel[dadr],
                           robot.kp_nm_per_rad, robot.kd_nms_per_rad, limit)
        if not np.all(np.isfinite(effort)):
            finite = False
            fall_time = step * dt
            break
        saturated += np.abs(effort) >= limit * (1.0 - 1e-6)
        data.ctrl[:] = effort
        if step == settle and any(push_m_s):
            data.qvel[0:3] += np.asarray(push_m_s, dtype=np.float64)
        mujoco.mj_step(model, data)
        w, x, y, z = data.qpos[3:7]
        up = 1.0 - 2.0 * (x * x + y * y)
        min_up = min(min_up, up)
        if step >= settle and not any(push_m_s):
            max_err = max(max_err, abs(float(data.qpos[2]) - robot.nominal_base_height_m))
        if up < math.cos(math.radians(45.0)) or data.qpos[2] < 0.5 * robot.nominal_base_height_m:
            fall_time = (step + 1) * dt
            break
    done = step + 1
    err = np.abs(data.qpos[qadr] - robot.default_pos_rad)
    worst = np.argsort(-err)[:5]
    share = saturated / max(done, 1)
    return StandReport(
        duration_s=done * dt, fell=fall_time is not None, fall_time_s=fall_time,
        final_base_height_m=float(data.qpos[2]), max_height_error_m=max_err,
        min_uprightness=min_up, drift_m=float(np.linalg.norm(data.qpos[0:2])),
        saturated_share={robot.joint_names[i]: float(share[i])
                         for i in np.flatnonzero(share > 0)},
        worst_tracking_rad={robot.joint_names[i]: float(err[i]) for i in worst},
        all_finite=finite)


def measure_base_height(robot: RobotConfig, settle_s: float = 2.0) -> Optional[float]:
    """Return the base height [m] after standing ``settle_s`` under PD, or None if it fell."""
    report = stand_check(robot, duration_s=settle_s)
    return None if report.fell else report.final_base_height_m


def format_report(robot: RobotConfig, report: StandReport) -> str:
    """Return a human-readable summary of a stand check with what to fix."""
    lines = [
        f'robot {robot.name}: {robot.num_joints} joints, base {robot.base_link}, '
        f'feet {list(robot.foot_links)}',
        f'stand {report.duration_s:.1f} s under PD at the default pose: '
        + (f'FELL at {report.fall_time_s:.2f} s' if report.fell else 'stood')
        + f'; base height {report.final_base_height_m:.3f} m (nominal '
        f'{robot.nominal_base_height_m:.3f}, max error {report.max_height_error_m:.3f}); '
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


def init_robot(description: Path, out_dir: Path, name: Optional[str] = None,
               armature_kg_m2: Optional[Dict[str, float]] = None,
               default_pos_rad: Optional[Dict[str, float]] = None,
               rule: GainRule = GainRule()) -> Tuple[Path, Draft, RobotConfig, StandReport]:
    """Draft, write, load and stand-check a robot; return (yaml path, draft, config, report)."""
    out_dir = Path(out_dir)
    draft = draft_robot(description, name or out_dir.name, out_dir, armature_kg_m2,
                        default_pos_rad, rule)
    path = write_robot_yaml(draft, out_dir, rule)
    robot = load_robot(path)
    height = measure_base_height(robot)
    if height is not None:
        draft.config['nominal_base_height_m'] = round(height, 3)
        draft.notes.append('nominal_base_height_m measured after 2 s standing under the gains')
        path = write_robot_yaml(draft, out_dir, rule)
        robot = load_robot(path)
    else:
        draft.notes.append('nominal_base_height_m is the drop estimate: the robot did not stand')
        path = write_robot_yaml(draft, out_dir, rule)
    return path, draft, robot, stand_check(robot)


@dataclass
class DraftArgs:
    """Draft robot.yaml from a description, then check that the robot stands."""

    description: tyro.conf.Positional[Path]
    """URDF (.urdf) or MJCF (.xml) file of the robot."""
    out: Path
    """Robot folder to write robot.yaml into (e.g. models/robots/<name>)."""
    name: Optional[str] = None
    """Robot name (default: the folder name of --out)."""
    armature_kg_m2: Dict[str, float] = field(default_factory=dict)
    """Reflected rotor inertia per joint [kg*m^2] where the description gives none."""
    default_pos_rad: Dict[str, float] = field(default_factory=dict)
    """Default standing position per joint [rad], overriding the keyframe or zero."""
    natural_frequency_hz: float = NATURAL_FREQUENCY_HZ
    """Natural frequency of the drafted PD gains [Hz]."""
    damping_ratio: float = DAMPING_RATIO
    """Damping ratio of the drafted PD gains."""


@dataclass
class ValidateArgs:
    """Check an existing robot: it loads, and it stands 10 s under its PD gains."""

    robot: tyro.conf.Positional[str]
    """Robot folder, robot.yaml, or a robot name under models/robots/."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; exit status 0 when the robot loads and stands."""
    args: Union[DraftArgs, ValidateArgs] = tyro.extras.subcommand_cli_from_dict(
        {'draft': DraftArgs, 'validate': ValidateArgs}, args=argv,
        prog='python -m training.robot_init', description=__doc__.split('\n\n')[0].strip())
    try:
        if isinstance(args, DraftArgs):
            path, draft, robot, report = init_robot(args.description, args.out, args.name,
                                                    args.armature_kg_m2, args.default_pos_rad,
                                                    GainRule(args.natural_frequency_hz,
                                                             args.damping_ratio))
            print(f'wrote {path}')
            for note in draft.notes:
                print(f'NOTE: {note}')
        else:
            robot = load_robot(args.robot)
            report = stand_check(robot)
    except (RobotConfigError, FileNotFoundError) as exc:
        print(f'ERROR: {exc}', file=sys.stderr)
        return 2
    print(format_report(robot, report))
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
