"""
What the MuJoCo Warp backend reads from the robot's ``mujoco.MjModel``.

- :func:`index_model`: the addresses of the base, the joints (policy order) and the feet,
  checked against the robot (the model must follow
  ``humanoid_rl_ros.robot.mujoco_model.build_mujoco_model``'s conventions);
- :func:`default_contact_sizes`: contact and constraint buffers per world for the worst case
  of one robot (mujoco_warp 4.0 holds contacts in one pool of ``nconmax * num_envs`` shared by
  all worlds and caps constraint rows per world, ``njmax``);
- :func:`foot_normal_force_kernel`: sums, per world, the normal force of every contact onto
  the foot that owns one of its geoms;
- :func:`subtree_matrix`: which bodies each body's subtree mass sums (for mass randomization).
"""

from dataclasses import dataclass
import math
from typing import Any, Tuple

import mujoco
import numpy as np
import warp as wp

# Upper bound of contacts one robot geom can make with a plane (mujoco_warp 4.0
# collision_primitive: plane-box returns up to 8 points, plane-cylinder and plane-convex 4,
# plane-capsule 2, plane-sphere and plane-ellipsoid 1).
_PLANE_CONTACTS = {
    int(mujoco.mjtGeom.mjGEOM_SPHERE): 1,
    int(mujoco.mjtGeom.mjGEOM_CAPSULE): 2,
    int(mujoco.mjtGeom.mjGEOM_ELLIPSOID): 1,
    int(mujoco.mjtGeom.mjGEOM_CYLINDER): 4,
    int(mujoco.mjtGeom.mjGEOM_BOX): 8,
    int(mujoco.mjtGeom.mjGEOM_MESH): 4,
}
_MAX_CONTACTS_PER_PAIR = 8
# Budget for robot self-contacts (arms touching the torso...) when self collision is on.
_SELF_CONTACT_BUDGET = 16


def _collides(mjm: mujoco.MjModel, g1: int, g2: int) -> bool:
    """Return True when the contype/conaffinity bits of two geoms allow a contact."""
    return bool((mjm.geom_contype[g1] & mjm.geom_conaffinity[g2])
                or (mjm.geom_contype[g2] & mjm.geom_conaffinity[g1]))


def default_contact_sizes(mjm: mujoco.MjModel) -> Tuple[int, int]:
    """
    Return ``(nconmax, njmax)`` per world sized for the worst case of one robot.

    ``nconmax`` sums, over robot geoms that can touch a world geom, the most contacts that
    geom type makes with a plane (boxes 8: a foot box flat on the floor gives up to 8), plus
    a budget of ``4 * pairs`` (at most 16) for allowed self-collision pairs.  ``njmax`` is
    ``nconmax`` times the constraint rows of one contact (pyramidal cone: ``2 (condim - 1)``,
    elliptic: ``condim``) plus joint-limit, dof-friction, tendon-limit and equality rows.
    """
    world = [g for g in range(mjm.ngeom) if mjm.geom_bodyid[g] == 0]
    robot = [g for g in range(mjm.ngeom) if mjm.geom_bodyid[g] != 0]
    ncon = 0
    for g in robot:
        best = 0
        for w in world:
            if not _collides(mjm, g, w):
                continue
            if int(mjm.geom_type[w]) == int(mujoco.mjtGeom.mjGEOM_PLANE):
                best = max(best, _PLANE_CONTACTS.get(int(mjm.geom_type[g]), 4))
            else:
                best = max(best, _MAX_CONTACTS_PER_PAIR)
        ncon += best
    filter_parent = not (int(mjm.opt.disableflags) & int(mujoco.mjtDisableBit.mjDSBL_FILTERPARENT))
    excluded = {int(s) for s in mjm.exclude_signature}
    self_pairs = 0
    for i, g1 in enumerate(robot):
        for g2 in robot[i + 1:]:
            b1 = int(mjm.body_weldid[mjm.geom_bodyid[g1]])
            b2 = int(mjm.body_weldid[mjm.geom_bodyid[g2]])
            if b1 == b2 or not _collides(mjm, g1, g2):
                continue
            if filter_parent and (mjm.body_weldid[mjm.body_parentid[b1]] == b2
                                  or mjm.body_weldid[mjm.body_parentid[b2]] == b1):
                continue
            lo, hi = min(b1, b2), max(b1, b2)
            if (lo << 16) + hi in excluded:
                continue
            self_pairs += 1
    ncon += min(4 * self_pairs, _SELF_CONTACT_BUDGET)
    nconmax = max(4, int(math.ceil(ncon / 4.0) * 4))

    condim = int(mjm.geom_condim.max()) if mjm.ngeom else 3
    if int(mjm.opt.cone) == int(mujoco.mjtCone.mjCONE_PYRAMIDAL):
        rows_per_contact = 1 if condim == 1 else 2 * (condim - 1)
    else:
        rows_per_contact = condim
    eq_rows = 6 * int(mjm.neq)
    other = (int(np.count_nonzero(mjm.jnt_limited)) + int(np.count_nonzero(mjm.dof_frictionloss))
             + int(np.count_nonzero(mjm.tendon_limited)) + eq_rows)
    njmax = int(math.ceil((nconmax * rows_per_contact + other) / 8.0) * 8)
    return nconmax, njmax


@wp.kernel
def foot_normal_force_kernel(
    nacon: wp.array(dtype=int),
    contact_worldid: wp.array(dtype=int),
    contact_geom: wp.array(dtype=wp.vec2i),
    contact_dim: wp.array(dtype=int),
    contact_efc_address: wp.array2d(dtype=int),
    efc_force: wp.array2d(dtype=float),
    pyramidal: int,
    geom_foot: wp.array(dtype=int),
    out: wp.array2d(dtype=float),
):
    """Accumulate each contact's normal force [N] onto the foot owning one of its geoms."""
    cid = wp.tid()
    if cid >= nacon[0]:
        return
    adr = contact_efc_address[cid, 0]
    if adr < 0:
        return
    geoms = contact_geom[cid]
    f0 = int(-1)
    f1 = int(-1)
    if geoms[0] >= 0:
        f0 = geom_foot[geoms[0]]
    if geoms[1] >= 0:
        f1 = geom_foot[geoms[1]]
    if f0 < 0 and f1 < 0:
        return
    world = contact_worldid[cid]
    nrow = efc_force.shape[1]
    dim = contact_dim[cid]
    normal = float(0.0)
    if pyramidal != 0 and dim > 1:
        # pyramidal cone: the normal force is the sum of the 2 (dim - 1) edge forces
        for i in range(2 * (dim - 1)):
            if adr + i < nrow:
                normal += efc_force[world, adr + i]
    elif adr < nrow:
        normal = efc_force[world, adr]
    if f0 >= 0:
        wp.atomic_add(out, world, f0, normal)
    if f1 >= 0 and f1 != f0:
        wp.atomic_add(out, world, f1, normal)


@dataclass(frozen=True)
class ModelIndex:
    """Addresses of the robot in an MjModel (arrays are int64 numpy, robot orders)."""

    base_body: int
    """Body id of the base link."""
    base_qadr: int
    """qpos address of the base's free joint: position [3], then the wxyz quaternion [4]."""
    base_vadr: int
    """qvel address of the base's free joint: linear [3], then angular velocity [3]."""
    joint_qadr: np.ndarray
    """qpos address of each joint [J], policy order."""
    joint_vadr: np.ndarray
    """qvel address of each joint [J], policy order."""
    foot_bodies: np.ndarray
    """Body id of each foot link [F], robot.foot_links order."""
    geom_foot: np.ndarray
    """Foot index of each geom [ngeom] (int32), -1 for geoms of no foot."""
    pyramidal: int
    """1 when the friction cone is pyramidal (a contact's normal force spans several rows)."""
    mass_chain: np.ndarray
    """The base body and its ancestors: their subtree masses change with the base mass."""


def index_model(mjm: mujoco.MjModel, robot: Any) -> ModelIndex:
    """Find base, joint, actuator and foot indices of ``robot``; raise ValueError on a mismatch."""
    base = mujoco.mj_name2id(mjm, mujoco.mjtObj.mjOBJ_BODY, robot.base_link)
    if base < 0:
        raise ValueError(f'base link {robot.base_link!r} is not a body of the model')
    jnt = int(mjm.body_jntadr[base])
    if jnt < 0 or int(mjm.jnt_type[jnt]) != int(mujoco.mjtJoint.mjJNT_FREE):
        raise ValueError(f'base link {robot.base_link!r} has no free joint')
    jq, jv = [], []
    for i, name in enumerate(robot.joint_names):
        j = mujoco.mj_name2id(mjm, mujoco.mjtObj.mjOBJ_JOINT, name)
        if j < 0:
            raise ValueError(f'joint {name!r} is not in the MuJoCo model')
        if int(mjm.jnt_type[j]) not in (int(mujoco.mjtJoint.mjJNT_HINGE),
                                        int(mujoco.mjtJoint.mjJNT_SLIDE)):
            raise ValueError(f'joint {name!r} must be a hinge or slide joint')
        jq.append(int(mjm.jnt_qposadr[j]))
        jv.append(int(mjm.jnt_dofadr[j]))
        if i >= mjm.nu or (int(mjm.actuator_trntype[i]) != int(mujoco.mjtTrn.mjTRN_JOINT)
                           or mjm.actuator_trnid[i, 0] != j
                           or mjm.actuator_gear[i, 0] != 1.0):
            raise ValueError(
                f'actuator {i} must be a gear-1 joint motor on {name!r} (policy order), '
                'as built by humanoid_rl_ros.robot.mujoco_model.build_mujoco_model')
    if mjm.nu != len(robot.joint_names):
        raise ValueError(f'model has {mjm.nu} actuators, robot has {len(robot.joint_names)} '
                         'joints')
    feet = []
    for name in robot.foot_links:
        b = mujoco.mj_name2id(mjm, mujoco.mjtObj.mjOBJ_BODY, name)
        if b < 0:
            raise ValueError(f'foot link {name!r} is not a body of the model (merged away '
                             'by fusestatic?)')
        feet.append(int(b))
    geom_foot = np.full(mjm.ngeom, -1, dtype=np.int32)
    for f, b in enumerate(feet):
        geom_foot[mjm.geom_bodyid == b] = f
    # base mass randomization: the base and its ancestors' subtree masses change
    chain, b = [], int(base)
    while True:
        chain.append(b)
        if b == 0:
            break
        b = int(mjm.body_parentid[b])
    return ModelIndex(
        base_body=int(base), base_qadr=int(mjm.jnt_qposadr[jnt]),
        base_vadr=int(mjm.jnt_dofadr[jnt]), joint_qadr=np.asarray(jq, dtype=np.int64),
        joint_vadr=np.asarray(jv, dtype=np.int64), foot_bodies=np.asarray(feet, dtype=np.int64),
        geom_foot=geom_foot,
        pyramidal=int(int(mjm.opt.cone) == int(mujoco.mjtCone.mjCONE_PYRAMIDAL)),
        mass_chain=np.asarray(chain, dtype=np.int64))


def subtree_matrix(mjm: mujoco.MjModel) -> np.ndarray:
    """
    Return S [nbody, nbody] (float32) with S[b, j] = 1 when body j is in the subtree of b.

    ``body_subtreemass = body_mass @ S.T`` (MuJoCo's ``body_subtreemass``; row 0, the world,
    sums every body).
    """
    n = int(mjm.nbody)
    s = np.zeros((n, n), dtype=np.float32)
    for j in range(n):
        b = j
        while True:
            s[b, j] = 1.0
            if b == 0:
                break
            b = int(mjm.body_parentid[b])
    return s
