"""
The mirror of the actor's observation and of the action, built from the contract's terms.

Each observation term has one rule in :data:`TERM_MIRROR_RULES`, stated in the frames of
:func:`humanoid_rl_ros.core.policy_math.observation_inputs` (base link frame, REP-103):
reflecting through the x-z plane negates the y component of a vector (velocity, gravity) and
the x and z components of a pseudo-vector (angular velocity); the command ``(vx, vy, wz)`` is a
vector in x, y and a yaw rate. Joint terms take the joint mirror. The gait clock: the mirrored
robot's left foot does what the right foot did, so its clock is shifted by the difference of
the two feet's phase offsets; half a cycle negates ``(sin, cos)``.

A term without a rule raises :class:`~training.symmetry.robot_mirror.SymmetryError` naming it:
a new observation term must say how it mirrors before augmentation can use it.
"""

from typing import Dict, Sequence, Tuple, Union

from humanoid_rl_ros.core.contract import ObsTermSpec

from .robot_mirror import RobotMirror, SymmetryError
from .signed_permutation import SignedPermutation

JOINTS = 'joints'
"""Rule of a per-joint term: the robot's joint mirror."""
GAIT_PHASE = 'gait_phase'
"""Rule of the gait clock's (sin, cos): shifted by the mirrored feet's phase offset."""

TERM_MIRROR_RULES: Dict[str, Union[Tuple[float, ...], str]] = {
    'base_lin_vel': (1.0, -1.0, 1.0),       # vector, base frame
    'base_ang_vel': (-1.0, 1.0, -1.0),      # pseudo-vector, base frame
    'projected_gravity': (1.0, -1.0, 1.0),  # vector, base frame
    'velocity_command': (1.0, -1.0, -1.0),  # vx, vy, yaw rate
    'joint_pos': JOINTS,
    'joint_vel': JOINTS,
    'last_action': JOINTS,
    'gait_phase': GAIT_PHASE,
}
"""How each actor observation term mirrors: per-component signs, or a named rule."""


def gait_phase_mirror(mirror: RobotMirror, foot_phase_offsets: Sequence[float]
                      ) -> SignedPermutation:
    """
    Return the mirror of the gait clock's ``(sin, cos)`` for feet with these phase offsets.

    Foot ``k`` of the mirrored robot is foot ``mirror.feet[k]``: its clock must read
    ``phase + offset[feet[k]] - offset[k]`` for every ``k``, the same shift for all feet, and
    the mirror applied twice must give the clock back, so the shift is 0 or half a cycle.
    """
    offsets = [float(o) for o in foot_phase_offsets]
    if len(offsets) != len(mirror.feet):
        raise SymmetryError(f'symmetry: {len(offsets)} foot phase offsets for '
                            f'{len(mirror.feet)} feet')
    shifts = {round((offsets[m] - offsets[k]) % 1.0, 9) % 1.0
              for k, m in enumerate(mirror.feet)}
    if shifts == {0.0}:
        return SignedPermutation.identity(2)
    if shifts == {0.5}:
        return SignedPermutation.signs((-1.0, -1.0))
    raise SymmetryError(f'symmetry: the gait clock cannot be mirrored: mirrored feet differ '
                        f'in phase by {sorted(shifts)} cycles (0 or 0.5 needed; offsets '
                        f'{offsets}, foot mirror {mirror.feet})')


def term_mirror(term: ObsTermSpec, mirror: RobotMirror,
                foot_phase_offsets: Sequence[float]) -> SignedPermutation:
    """Return the mirror of one observation term (a block of ``term.size`` components)."""
    rule = TERM_MIRROR_RULES.get(term.name)
    if rule is None:
        raise SymmetryError(f'symmetry: observation term {term.name!r} has no mirror rule '
                            f'(training.symmetry.TERM_MIRROR_RULES); add one or turn '
                            f'ppo.symmetry_augmentation off')
    if rule == JOINTS:
        block = mirror.joints
    elif rule == GAIT_PHASE:
        block = gait_phase_mirror(mirror, foot_phase_offsets)
    else:
        block = SignedPermutation.signs(rule)
    if block.size != term.size:
        raise SymmetryError(f'symmetry: observation term {term.name!r} has {term.size} '
                            f'components, its mirror rule {block.size}')
    scale = [float(x) for x in term.scale] if len(term.scale) == term.size else None
    if scale is not None and any(scale[i] != scale[p] for i, p in enumerate(block.perm)):
        raise SymmetryError(f'symmetry: observation term {term.name!r} scales mirrored '
                            f'components differently ({scale}); the scaled observation would '
                            f'not mirror')
    return block


def observation_mirror(terms: Sequence[ObsTermSpec], mirror: RobotMirror,
                       foot_phase_offsets: Sequence[float],
                       history_length: int = 1) -> SignedPermutation:
    """Return the mirror of the actor's input: each frame of ``terms``, ``history_length`` deep."""
    frame = SignedPermutation.concat([term_mirror(t, mirror, foot_phase_offsets) for t in terms])
    return SignedPermutation.concat([frame] * int(history_length))


def action_mirror(mirror: RobotMirror) -> SignedPermutation:
    """Return the mirror of the action (one position offset per joint, policy order)."""
    return mirror.joints
