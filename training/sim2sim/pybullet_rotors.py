"""
Rotor inertia for PyBullet: a geared rotor link per actuated joint, added to the robot's URDF.

Bullet's multibodies have no joint armature (``armature_kg_m2``), and without it the explicit PD
loop at the contract's physics step is unstable (the light distal links oscillate and the robot
falls within a second). :func:`urdf_with_rotors` gives each actuated joint a rotor: a link on the
joint's parent, on the joint's axis, with inertia J / N^2 about that axis, which
:func:`gear_rotors` gears to the joint by a Bullet gear constraint (rotor speed = N x joint
speed). Its kinetic energy is J qd^2 / 2 plus a coupling term J / N times the parent's rotation
about the axis, so the joint-space inertia matches MuJoCo's (rigid bodies plus J on each joint's
diagonal) up to O(1/N) (gear ratio N; see
:meth:`training.sim2sim.pybullet_sim.PyBulletRobotSim.joint_inertia_kg_m2`). The gear
constraints are solved by the same iterative solver as the contacts, so they hold only as well
as it converges. Each rotor adds 0.1 g at its joint's origin to the parent link.
"""

from pathlib import Path
from typing import Dict, Mapping, Tuple
import xml.etree.ElementTree as ElementTree

import numpy as np
import pybullet
from pybullet_utils import bullet_client

ROTOR_MAX_TORQUE_NM = 1e5
"""Force limit of the rotor gear constraints [N*m]: high enough never to bind."""
ROTOR_MASS_KG = 1e-4
"""Mass of each rotor link [kg] (at its joint's origin; Bullet's links need a mass)."""
ROTOR_SUFFIX = '__rotor'
"""Suffix of the rotor links and joints added by :func:`urdf_with_rotors`."""


def _fmt(value: float) -> str:
    return '%.12g' % float(value)


def urdf_with_rotors(urdf_path: Path, armature_kg_m2: Mapping[str, float],
                     gear_ratio: float) -> Tuple[str, Dict[str, str]]:
    """
    Return the URDF text with a rotor for each joint of ``armature_kg_m2``, and the rotors.

    Joint ``j`` with rotor inertia J > 0 gets link and joint ``j + ROTOR_SUFFIX``: a continuous
    joint on ``j``'s parent, at ``j``'s origin and axis, whose link has mass
    :data:`ROTOR_MASS_KG` at that origin and inertia J / N^2 about the axis (0.6 of that about
    the other axes, so the tensor is physical). The caller gears it to ``j`` (rotor speed = N x
    joint speed), which reflects J onto the joint. Relative mesh file names are made absolute
    so the text can be loaded from another folder. The second value maps joint to rotor name.
    """
    root = ElementTree.parse(urdf_path).getroot()
    for mesh in root.iter('mesh'):
        name = mesh.get('filename', '')
        if name and '://' not in name and not Path(name).is_absolute():
            mesh.set('filename', str((urdf_path.parent / name).resolve()))
    joints = {j.get('name'): j for j in root.findall('joint')}
    rotors = {}
    for name, armature in armature_kg_m2.items():
        if armature <= 0.0:
            continue
        if name not in joints:
            raise ValueError(f'joint {name!r} is not in {urdf_path.name}')
        joint = joints[name]
        axis_el, origin = joint.find('axis'), joint.find('origin')
        axis = np.array([float(v) for v in (axis_el.get('xyz') if axis_el is not None
                                            else '1 0 0').split()])
        axis = axis / np.linalg.norm(axis)
        rotor_j = armature / gear_ratio ** 2
        inertia = 0.6 * rotor_j * np.eye(3) + 0.4 * rotor_j * np.outer(axis, axis)
        rotor = name + ROTOR_SUFFIX
        link = ElementTree.SubElement(root, 'link', name=rotor)
        inertial = ElementTree.SubElement(link, 'inertial')
        ElementTree.SubElement(inertial, 'origin', xyz='0 0 0', rpy='0 0 0')
        ElementTree.SubElement(inertial, 'mass', value=_fmt(ROTOR_MASS_KG))
        ElementTree.SubElement(inertial, 'inertia', **{
            key: _fmt(inertia[i, k]) for key, i, k in (
                ('ixx', 0, 0), ('ixy', 0, 1), ('ixz', 0, 2), ('iyy', 1, 1), ('iyz', 1, 2),
                ('izz', 2, 2))})
        rotor_joint = ElementTree.SubElement(root, 'joint', name=rotor, type='continuous')
        ElementTree.SubElement(rotor_joint, 'parent', link=joint.find('parent').get('link'))
        ElementTree.SubElement(rotor_joint, 'child', link=rotor)
        ElementTree.SubElement(rotor_joint, 'origin',
                               xyz=origin.get('xyz', '0 0 0') if origin is not None else '0 0 0',
                               rpy=origin.get('rpy', '0 0 0') if origin is not None else '0 0 0')
        ElementTree.SubElement(rotor_joint, 'axis', xyz=' '.join(_fmt(v) for v in axis))
        rotors[name] = rotor
    ElementTree.indent(root)  # Bullet's XML parser rejects some very long lines
    return ElementTree.tostring(root, encoding='unicode'), rotors


def gear_rotors(client: bullet_client.BulletClient, body: int, joint_index: Mapping[str, int],
                rotors: Mapping[str, str], gear_ratio: float) -> Dict[str, int]:
    """
    Gear each rotor of ``rotors`` (joint name -> rotor name) to its joint; return their indices.

    ``joint_index`` maps the body's joint names (rotors included) to PyBullet joint indices. The
    result maps each geared joint's name to its rotor's joint index.
    """
    ratio = float(gear_ratio)
    rotor_index = {}
    for name, rotor in rotors.items():
        # Bullet's gear constraint: qd_rotor + gearRatio * qd_joint = 0; erp 0: the rotor's
        # angle is irrelevant, only its speed is held
        constraint = client.createConstraint(body, joint_index[rotor], body, joint_index[name],
                                             pybullet.JOINT_GEAR, [1.0, 0.0, 0.0],
                                             [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
        client.changeConstraint(constraint, gearRatio=-ratio, maxForce=ROTOR_MAX_TORQUE_NM,
                                erp=0.0)
        rotor_index[name] = joint_index[rotor]
    return rotor_index
