"""
Changes to the simulated robot and its world: friction, payload, inertia, solver and terrain.

:class:`ModelPerturbation` says what differs; :func:`build_sim` builds a
:class:`~humanoid_rl_ros.sim.mujoco_sim.MujocoRobotSim` with it. How each is modelled:

* friction: the sliding friction of EVERY geom, the robot's included (MuJoCo uses the larger
  of the two geoms' coefficients in a contact, so changing the floor alone cannot make the
  ground slipperier than the feet);
* payload: a mass on the base, at the base's centre of mass, with the inertia of a solid cube
  of ``payload_size_m`` (a backpack-sized box);
* rotor inertia: the armature of every joint times ``armature_scale``;
* joint dry friction: MuJoCo's frictionloss of every joint (a constraint row per joint);
* the constraint solver's iteration limits (how faithful a training simulator's cheaper
  solver settings are: ``benchmarks/solver_fidelity.py``);
* terrain: a slope (a ramp starting 0.5 m ahead of the reset pose, so the robot starts on flat
  ground and walks onto it: up along +x for a positive angle, down for a negative one) or rough
  ground (a random heightfield); see :class:`humanoid_rl_ros.robot.mujoco_model.Terrain`.

After a change of masses or armature the model's derived constants are recomputed
(``mj_setConst``).
"""

from dataclasses import dataclass
import math
from typing import Optional

from humanoid_rl_ros.robot.description import RobotConfig
from humanoid_rl_ros.robot.mujoco_model import (body_ids, joint_dof_adr, set_collision_accuracy,
                                                set_solver_iterations, Terrain)
from humanoid_rl_ros.sim.mujoco_sim import MujocoRobotSim
import mujoco

__all__ = ['add_base_payload', 'build_sim', 'ModelPerturbation', 'scale_armature',
           'set_friction', 'set_joint_friction']


@dataclass(frozen=True)
class ModelPerturbation:
    """What differs in the simulated robot and ground (the defaults change nothing)."""

    friction: Optional[float] = None
    """Sliding friction coefficient of every geom [-]; None: the model's (1.0)."""
    payload_kg: float = 0.0
    """Mass added to the base [kg]."""
    payload_size_m: float = 0.2
    """Side of the cube whose inertia the payload has [m]."""
    armature_scale: float = 1.0
    """Rotor inertia (armature) of every joint times this [-]."""
    slope_deg: float = 0.0
    """Slope of a ramp ahead of the robot [deg]; > 0 rises along +x (uphill walking forward)."""
    rough_amplitude_m: float = 0.0
    """Peak-to-peak height of a random heightfield [m]; 0: flat."""
    rough_cell_m: float = 0.2
    """Spacing of the heightfield's points [m]."""
    joint_friction_nm: float = 0.0
    """Dry friction (MuJoCo frictionloss) of every joint [N*m]."""
    solver_iterations: Optional[int] = None
    """Constraint solver iterations per physics step; None: the robot model's."""
    solver_ls_iterations: Optional[int] = None
    """Line search iterations per solver iteration; None: the robot model's."""
    ccd_iterations: Optional[int] = None
    """Convex collision test iterations; None: the model's (``EnvConfig.ccd_iterations``)."""
    ccd_tolerance: Optional[float] = None
    """Convex collision test tolerance [m]; None: the model's (``EnvConfig.ccd_tolerance``)."""
    sole_spheres: bool = False
    """Feet touch the ground through spheres on their soles, as training with
    ``env.foot_collision='sole_spheres'`` (``build_mujoco_model(sole_spheres=True)``)."""

    def slope_start_x_m(self) -> float:
        """Return the x where the slope starts [m] (-inf: no slope)."""
        terrain = self.terrain()
        if terrain is None or terrain.slope_rad == 0.0:
            return -math.inf
        return terrain.slope_start_m

    def terrain(self, seed: int = 0) -> Optional[Terrain]:
        """Return the ground as a Terrain (None: flat); ``seed`` draws the heightfield."""
        if self.slope_deg == 0.0 and self.rough_amplitude_m == 0.0:
            return None
        return Terrain(slope_rad=math.radians(self.slope_deg),
                       rough_amplitude_m=self.rough_amplitude_m, rough_cell_m=self.rough_cell_m,
                       seed=seed)


def set_friction(sim: MujocoRobotSim, sliding: float) -> None:
    """Set the sliding friction of every geom of ``sim``'s model to ``sliding`` [-]."""
    if not (math.isfinite(sliding) and sliding > 0.0):
        raise ValueError(f'friction must be finite and > 0, got {sliding}')
    sim.model.geom_friction[:, 0] = sliding


def add_base_payload(sim: MujocoRobotSim, mass_kg: float, size_m: float = 0.2) -> None:
    """Add ``mass_kg`` at the base's centre of mass, with a solid cube's inertia of side size_m."""
    if not (math.isfinite(mass_kg) and mass_kg >= 0.0):
        raise ValueError(f'payload must be finite and >= 0, got {mass_kg}')
    base = int(body_ids(sim.model, [sim.robot.base_link])[0])
    sim.model.body_mass[base] += mass_kg
    sim.model.body_inertia[base] += mass_kg * size_m ** 2 / 6.0
    mujoco.mj_setConst(sim.model, sim.data)


def scale_armature(sim: MujocoRobotSim, factor: float) -> None:
    """Multiply the rotor inertia (armature) of every joint by ``factor``."""
    if not (math.isfinite(factor) and factor > 0.0):
        raise ValueError(f'armature scale must be finite and > 0, got {factor}')
    dofs = joint_dof_adr(sim.model, sim.robot)
    sim.model.dof_armature[dofs] *= factor
    mujoco.mj_setConst(sim.model, sim.data)


def set_joint_friction(sim: MujocoRobotSim, friction_nm: float) -> None:
    """Set the dry friction (frictionloss) of every joint of ``sim`` to ``friction_nm`` [N*m]."""
    if not (math.isfinite(friction_nm) and friction_nm >= 0.0):
        raise ValueError(f'joint friction must be finite and >= 0, got {friction_nm}')
    sim.model.dof_frictionloss[joint_dof_adr(sim.model, sim.robot)] = friction_nm


def build_sim(robot: RobotConfig, timestep_s: float, perturbation: ModelPerturbation,
              terrain_seed: int = 0) -> MujocoRobotSim:
    """Return a simulator of ``robot`` with ``perturbation`` applied, reset to the default pose."""
    sim = MujocoRobotSim(robot, timestep_s, terrain=perturbation.terrain(terrain_seed),
                         sole_spheres=perturbation.sole_spheres)
    if perturbation.friction is not None:
        set_friction(sim, perturbation.friction)
    if perturbation.payload_kg:
        add_base_payload(sim, perturbation.payload_kg, perturbation.payload_size_m)
    if perturbation.armature_scale != 1.0:
        scale_armature(sim, perturbation.armature_scale)
    if perturbation.joint_friction_nm:
        set_joint_friction(sim, perturbation.joint_friction_nm)
    set_solver_iterations(sim.model, perturbation.solver_iterations,
                          perturbation.solver_ls_iterations)
    set_collision_accuracy(sim.model, perturbation.ccd_iterations, perturbation.ccd_tolerance)
    sim.reset()
    return sim
