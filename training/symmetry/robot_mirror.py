"""
Which joint and which foot of a robot mirror which, found from its MuJoCo model.

No naming convention is assumed: in the zero pose, with the base at the origin, the reflection
``S = diag(1, -1, 1)`` through the base's x-z plane must take every actuated joint's anchor to
the anchor of its mirror joint (itself for a joint on the mid-plane, such as a torso yaw). A
hinge axis is a pseudo-vector, so it reflects to ``-S a = (-a_x, a_y, -a_z)``: the mirror joint's
axis is along it (sign +1: a pitch joint) or against it (sign -1: roll and yaw joints). A
rotation ``q`` of the joint is then the rotation ``sign * q`` of its mirror.

The mirror is checked against ``robot.yaml`` and the model: the default pose, PD gains, effort
and velocity limits, rotor inertia and joint ranges of mirrored joints must agree, or the
mirrored action (a position offset scaled per joint) would not mean the mirrored command. The
dynamics are checked by simulation (:func:`check_mirrored_dynamics`): the robot in the air
driven by random efforts and its mirror driven by the mirrored efforts must move as mirror
images, which fails for asymmetric masses, centres of mass, inertias, joint damping or
friction (randomization scales these about their nominal values, so a nominal asymmetry
would stay in every episode).
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

from humanoid_rl_ros.robot.description import RobotConfig
from humanoid_rl_ros.robot.mujoco_model import (base_qpos_adr, body_ids, default_qpos,
                                                joint_dof_adr, joint_qpos_adr)
import mujoco
import numpy as np

from .signed_permutation import SignedPermutation

_REFLECT = np.array([1.0, -1.0, 1.0])
"""The reflection through the x-z plane of the base (REP-103: y points left)."""


class SymmetryError(ValueError):
    """The robot (or the observation) is not left-right symmetric in a way the mirror needs."""


@dataclass(frozen=True)
class RobotMirror:
    """The left-right mirror of a robot's joints (policy order) and feet (``foot_links``)."""

    joints: SignedPermutation
    """Joint ``i`` of the mirrored robot is ``sign[i] *`` joint ``perm[i]`` of the robot."""
    feet: Tuple[int, ...]
    """Foot ``k`` of the mirrored robot is foot ``feet[k]`` of the robot."""
    joint_names: Tuple[str, ...]
    """The joints in policy order (for messages and reports)."""

    def pairs(self) -> List[Tuple[str, str, float]]:
        """Return ``(joint, mirror joint, sign)`` for every joint, in policy order."""
        return [(self.joint_names[i], self.joint_names[p], s)
                for i, (p, s) in enumerate(zip(self.joints.perm, self.joints.sign))]


def _zero_pose_kinematics(model: mujoco.MjModel, robot: RobotConfig) -> mujoco.MjData:
    """Return data of the zero pose (every joint at its qpos0) with the base at the origin."""
    data = mujoco.MjData(model)
    data.qpos[:] = model.qpos0
    adr = base_qpos_adr(model, robot)
    data.qpos[adr:adr + 7] = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
    mujoco.mj_kinematics(model, data)
    return data


def _depth(model: mujoco.MjModel, body: int) -> int:
    depth = 0
    while body > 0:
        body = int(model.body_parentid[body])
        depth += 1
    return depth


def _mirror_joint(i: int, names: Sequence[str], jids: np.ndarray, model: mujoco.MjModel,
                  data: mujoco.MjData, anchor_tol_m: float, axis_tol: float
                  ) -> Tuple[int, float]:
    """
    Return ``(index, sign)`` of the joint mirroring joint ``i`` (policy indices).

    The mirror joint's origin lies within ``anchor_tol_m`` of the reflected anchor and its axis
    along the reflected axis. (Matching axis lines instead of origins would pair every pitch
    joint with itself: its axis line passes through its own reflected origin.)
    """
    jid = int(jids[i])
    hinge = model.jnt_type[jid] == mujoco.mjtJoint.mjJNT_HINGE
    if not hinge and model.jnt_type[jid] != mujoco.mjtJoint.mjJNT_SLIDE:
        raise SymmetryError(f'symmetry: joint {names[i]!r} is neither a hinge nor a slide')
    target = _REFLECT * data.xanchor[jid]
    # an axis of rotation is a pseudo-vector (-S a); a slide direction a polar one (S a)
    axis = (-_REFLECT if hinge else _REFLECT) * data.xaxis[jid]
    found, nearest = [], (np.inf, None, 0.0)
    for k, other in enumerate(jids):
        if model.jnt_type[other] != model.jnt_type[jid]:
            continue
        along = float(np.dot(data.xaxis[other], axis))
        distance = float(np.linalg.norm(data.xanchor[other] - target))
        if abs(along) >= 1.0 - axis_tol and distance <= anchor_tol_m:
            found.append((k, 1.0 if along > 0 else -1.0))
        if distance < nearest[0]:
            nearest = (distance, names[k], along)
    if len(found) > 1:  # joints sharing anchor and axis: the one as deep in the tree
        depth = _depth(model, int(model.jnt_bodyid[jid]))
        same_depth = [f for f in found
                      if _depth(model, int(model.jnt_bodyid[jids[f[0]]])) == depth]
        found = same_depth if same_depth else found
    if len(found) != 1:
        what = 'no joint' if not found else f'{len(found)} joints ({[names[f[0]] for f in found]})'
        close = ('' if nearest[1] is None else f'; the nearest, {nearest[1]!r}, is '
                 f'{nearest[0]:.4f} m off with its axis at cos {nearest[2]:+.3f}')
        raise SymmetryError(
            f'symmetry: {what} mirrors joint {names[i]!r}: expected one actuated joint at the '
            f'reflected anchor {np.round(target, 4).tolist()} m (base frame, zero pose, within '
            f'{anchor_tol_m} m) with its axis along +/-{np.round(axis, 3).tolist()}{close}; '
            f'the robot is not left-right symmetric about the base x-z plane. Turn '
            f'ppo.symmetry_augmentation off for this robot')
    return found[0]


def _check_joint_facts(robot: RobotConfig, model: mujoco.MjModel, jids: np.ndarray,
                       joints: SignedPermutation, rel_tol: float, abs_tol_rad: float) -> None:
    """Raise SymmetryError where mirrored joints' robot.yaml facts or ranges disagree."""
    specs = robot.joints
    for i, (p, s) in enumerate(zip(joints.perm, joints.sign)):
        a, b = specs[i], specs[p]
        pairs = [('default_pos_rad', a.default_pos_rad, s * b.default_pos_rad, abs_tol_rad)]
        for field in ('kp_nm_per_rad', 'kd_nms_per_rad', 'effort_limit_nm',
                      'velocity_limit_rad_s', 'armature_kg_m2'):
            va, vb = getattr(a, field), getattr(b, field)
            pairs.append((field, va, vb, rel_tol * max(abs(va), abs(vb), 1e-9)))
        if model.jnt_limited[jids[i]]:
            lo, hi = sorted(s * model.jnt_range[jids[p]])
            pairs += [('range low [model]', model.jnt_range[jids[i], 0], lo, abs_tol_rad),
                      ('range high [model]', model.jnt_range[jids[i], 1], hi, abs_tol_rad)]
        for field, va, vb, tol in pairs:
            if abs(va - vb) > tol:
                raise SymmetryError(
                    f'symmetry: joint {a.name!r} mirrors {b.name!r} (sign {s:+.0f}) but its '
                    f'{field} is {va:g}, the mirrored value {vb:g}: make them agree in '
                    f'robot.yaml / the description, or turn ppo.symmetry_augmentation off')


def mirror_state(model: mujoco.MjModel, robot: RobotConfig, joints: SignedPermutation,
                 qpos: np.ndarray, qvel: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return the mirror ``(qpos, qvel)`` of a state: the base reflected, the joints mapped.

    Base position and world-frame linear velocity are vectors (y negated); the orientation
    ``(w, x, y, z)`` becomes ``(w, -x, y, -z)`` and the body-frame angular velocity, a
    pseudo-vector, ``(-x, y, -z)``.
    """
    adr = base_qpos_adr(model, robot)
    dof = int(model.jnt_dofadr[model.body_jntadr[body_ids(model, [robot.base_link])[0]]])
    qa, da = joint_qpos_adr(model, robot), joint_dof_adr(model, robot)
    q, v = np.array(qpos, dtype=np.float64), np.array(qvel, dtype=np.float64)
    q[adr:adr + 3] = qpos[adr:adr + 3] * _REFLECT
    q[adr + 3:adr + 7] = qpos[adr + 3:adr + 7] * (1.0, -1.0, 1.0, -1.0)
    v[dof:dof + 3] = qvel[dof:dof + 3] * _REFLECT
    v[dof + 3:dof + 6] = qvel[dof + 3:dof + 6] * -_REFLECT
    q[qa] = joints.apply(np.asarray(qpos)[qa])
    v[da] = joints.apply(np.asarray(qvel)[da])
    return q, v


def run_with_mirror(model: mujoco.MjModel, robot: RobotConfig, joints: SignedPermutation,
                    qpos: np.ndarray, qvel: np.ndarray, efforts: np.ndarray
                    ) -> List[Tuple[np.ndarray, np.ndarray, int]]:
    """
    Simulate a state under ``efforts`` [steps, joints] and its mirror under the mirrored ones.

    Returns ``(qpos, qvel, most contacts at any step)`` of the run and of the mirrored run; for
    a left-right symmetric robot the second state is the :func:`mirror_state` of the first.
    """
    runs = []
    for q0, v0, u in [(qpos, qvel, efforts),
                      (*mirror_state(model, robot, joints, qpos, qvel), joints.apply(efforts))]:
        data = mujoco.MjData(model)
        data.qpos[:], data.qvel[:] = q0, v0
        contacts = 0
        for ctrl in u:
            data.ctrl[:] = ctrl
            mujoco.mj_step(model, data)
            contacts = max(contacts, int(data.ncon))
        runs.append((data.qpos.copy(), data.qvel.copy(), contacts))
    return runs


def check_mirrored_dynamics(model: mujoco.MjModel, robot: RobotConfig,
                            joints: SignedPermutation, steps: int = 40,
                            tol_rad: float = 1e-3) -> float:
    """
    Simulate the robot in the air and its mirror; raise SymmetryError if they drift apart.

    Both start in the default pose, 2 m up, and get random efforts of up to 30 % of the
    limits for ``steps`` physics steps, the mirror the mirrored efforts
    (:func:`run_with_mirror`). Returns the largest joint-angle difference from the mirror
    image [rad]; above ``tol_rad`` the error names the joint that drifted most.
    """
    rng = np.random.default_rng(0)
    limits = np.asarray(robot.effort_limit_nm)
    efforts = rng.uniform(-0.3, 0.3, (steps, len(limits))) * limits
    qpos = default_qpos(model, robot, base_pos_m=(0.0, 0.0, 2.0))
    (q1, v1, _), (q2, _, _) = run_with_mirror(model, robot, joints, qpos, np.zeros(model.nv),
                                              efforts)
    qa = joint_qpos_adr(model, robot)
    expected, _ = mirror_state(model, robot, joints, q1, v1)
    diff = np.abs(q2[qa] - expected[qa])
    worst = int(np.argmax(diff))
    if diff[worst] > tol_rad:
        raise SymmetryError(
            f'symmetry: the robot and its mirror image move apart under mirrored efforts '
            f'(joint {robot.joint_names[worst]!r} differs by {diff[worst]:.4f} rad after '
            f'{steps} physics steps in the air): the masses, centres of mass, inertias, joint '
            f'damping or friction of its left and right sides differ. Make them agree or turn '
            f'ppo.symmetry_augmentation off')
    return float(diff[worst])


def robot_mirror(model: mujoco.MjModel, robot: RobotConfig, anchor_tol_m: float = 5e-3,
                 axis_tol: float = 1e-3, rel_tol: float = 1e-3,
                 abs_tol_rad: float = 1e-3) -> RobotMirror:
    """
    Return the robot's left-right mirror, found from ``model`` and checked (module doc).

    ``anchor_tol_m``: how far a reflected joint anchor or foot may lie from its mirror's [m];
    ``axis_tol``: ``1 - |cos|`` allowed between a reflected axis and its mirror's;
    ``rel_tol`` / ``abs_tol_rad``: agreement of mirrored joints' gains and limits (relative) and
    default positions and ranges [rad]. Raises :class:`SymmetryError` naming the joint or foot.
    """
    data = _zero_pose_kinematics(model, robot)
    names = tuple(robot.joint_names)
    jids = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in names])
    found = [_mirror_joint(i, names, jids, model, data, anchor_tol_m, axis_tol)
             for i in range(len(names))]
    joints = SignedPermutation(tuple(k for k, _ in found), tuple(s for _, s in found))
    if not joints.is_involution():
        raise SymmetryError(f'symmetry: the joint mirror found is not its own inverse: '
                            f'{[(names[i], names[k], s) for i, (k, s) in enumerate(found)]}')
    _check_joint_facts(robot, model, jids, joints, rel_tol, abs_tol_rad)
    feet_pos = data.xpos[body_ids(model, robot.foot_links)]
    feet = []
    for k, pos in enumerate(feet_pos):
        dist = np.linalg.norm(feet_pos - _REFLECT * pos, axis=1)
        match = np.flatnonzero(dist <= anchor_tol_m)
        if len(match) != 1:
            raise SymmetryError(
                f'symmetry: foot {robot.foot_links[k]!r} has {len(match)} mirror feet among '
                f'{list(robot.foot_links)} (reflected position {np.round(_REFLECT * pos, 4)} '
                f'm, zero pose, within {anchor_tol_m} m); expected exactly one')
        feet.append(int(match[0]))
    if sorted(feet) != list(range(len(feet))) or any(feet[f] != k for k, f in enumerate(feet)):
        raise SymmetryError(f'symmetry: the feet {list(robot.foot_links)} do not mirror in '
                            f'pairs (found {feet})')
    check_mirrored_dynamics(model, robot, joints)
    return RobotMirror(joints=joints, feet=tuple(feet), joint_names=names)
