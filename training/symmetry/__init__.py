"""
Left-right (sagittal-plane) symmetry of a legged robot, for symmetric data augmentation in PPO.

A humanoid walking task is mirror-symmetric: reflecting the whole world through the robot's
x-z plane (REP-103: x forward, y left, z up) turns any state, command and action into another
valid one with the same reward. PPO can then learn from every collected sample twice, once as
collected and once mirrored (rsl_rl's symmetry augmentation; Mittal et al., "Symmetry
Considerations for Learning Task Symmetric Robot Policies", ICRA 2024), which doubles the
policy's samples at the cost of a second actor pass in the update and gives a symmetric gait.

Every map here is a :class:`SignedPermutation` ``x -> sign * x[..., perm]``:

* :mod:`.robot_mirror`: which joint mirrors which and with what sign, found from the robot's
  MuJoCo model (joint anchors and axes reflected through the base's x-z plane), and checked
  against ``robot.yaml`` (default pose, gains, limits) so that the mirrored action means the
  mirrored command;
* :mod:`.observation_mirror`: the mirror of the actor's observation, built from the contract's
  term list (one rule per term, in one table) and of the action.
"""

from .observation_mirror import action_mirror, observation_mirror, TERM_MIRROR_RULES
from .robot_mirror import robot_mirror, RobotMirror, SymmetryError
from .signed_permutation import SignedPermutation

__all__ = ['action_mirror', 'observation_mirror', 'robot_mirror', 'RobotMirror',
           'SignedPermutation', 'SymmetryError', 'TERM_MIRROR_RULES']
