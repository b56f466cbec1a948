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
joints that fought hardest, and prints what to fix. That check is :mod:`training.robot_check`;
this module drafts the config and is the command line.
"""

from dataclasses import dataclass, field
import math
import os
from pathlib import Path
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
import xml.etree.ElementTree as ElementTree

from humanoid_rl_ros.robot.description import load_robot, RobotConfig, RobotConfigError
import mujoco
import numpy as np
from training.robot_check import format_report, measure_base_height, stand_check, StandReport
import tyro
import yaml

__all__ = ['DAMPING_RATIO', 'Draft', 'draft_robot', 'DraftArgs', 'format_report', 'GainRule',
           'init_robot', 'KEYFRAME_NAMES', 'main', 'measure_base_height', 'NATURAL_FREQUENCY_HZ',
           'PLACEHOLDER_VELOCITY_LIMIT_RAD_S', 'stand_check', 'StandReport', 'ValidateArgs',
           'write_robot_yaml']

NATURAL_FREQUENCY_HZ = 10.0
"""Closed-loop natural frequency of the drafted PD gains [Hz] (mjlab's G1 rule)."""
DAMPING_RATIO = 2.0
"""Damping ratio of the drafted PD gains (mjlab's G1 rule)."""
PLACEHOLDER_VELOCITY_LIMIT_RAD_S = 20.0
"""Velocity limit written where the description gives none [rad/s]; flagged for the user."""
KEYFRAME_NAMES = ('home', 'stand', 'standing', 'default')
"""Keyframe names taken as the default pose, in order of preference."""


@dataclass
class Draft:
    """A drafted robot config and what the user must check."""

    config: Dict[str, Any]
    """The content of ``robot.yaml``."""
    notes: List[str] = field(default_factory=list)
    """What was guessed or is missing, one line each."""


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
