"""
Isaac Gym backend: the :class:`SimBackend` interface on Isaac Gym's (PhysX) tensor API.

Optional: it runs only where ``isaacgym`` imports (Isaac Gym Preview 4, an NVIDIA download with
bindings for Python 3.6-3.8, while this project's pinned training stack needs Python >= 3.11:
see :data:`INSTALL_HINT`).  It has never been run: its Isaac Gym calls are type-checked with
mypy against the ``isaacgym-stubs`` package (``test/test_isaacgym_typecheck.py``), and every
conversion that does not need Isaac Gym lives in :mod:`training.backends.conventions` with its
own tests.
Importing this module does not need isaacgym; constructing :class:`IsaacGymBackend` without it
raises :class:`BackendUnavailableError`.  Isaac Gym refuses to import once torch is imported,
so train with ``python -m training.isaacgym_train`` (it imports isaacgym first).

The robot's URDF is loaded with ``DOF_MODE_EFFORT`` and the same PD law as the MuJoCo backend
(``policy_math.pd_effort``) runs in torch before every physics step, its result applied with
``set_dof_actuation_force_tensor``.  Differences from mjwarp:

- Isaac Gym stores quaternions xyzw, both root velocities in the world frame, positions in the
  sim frame (env grid origin added) and orders DOFs depth-first; every state tensor here is
  therefore a copy refreshed in place after every step and reset, except
  ``base_lin_vel_world``, a view of the root state tensor.  Writes into it and into
  ``base_ang_vel_body`` (the env's linear and angular pushes) reach PhysX:
  :meth:`IsaacGymBackend.step` rotates the body-frame angular velocity back into the world
  frame and writes the root state tensor back first.
- After a reset, ``foot_pos`` and ``foot_contact_force`` of the reset worlds keep their
  pre-reset values until the next step (rigid body states are only known after PhysX runs).
- ``foot_contact_force`` is the z component of the net contact force on the foot body (a
  flat-ground proxy of the normal force, as legged_gym uses it).
- Friction: the robot's shape friction is set; PhysX combines it with the ground plane's
  (1.0), so the contact coefficient is not the value set, unlike mjwarp.  Friction and mass
  are changed after ``prepare_sim`` through a host loop (slow); whether the GPU pipeline
  picks the changes up is unverified.
- PhysX has no per-world buffer counters: ``check_overflow`` reports non-finite worlds only.
- No CUDA graph: ``gym.simulate`` is called eagerly.
"""

import math
from pathlib import Path
import sys
from typing import Any, Dict, List, TYPE_CHECKING

import torch
from training.backends.base import BackendUnavailableError, SimBackend
from training.backends.conventions import (base_mass_kg, base_state_from_root, body_to_world,
                                           check_mask, dof_state_views, mask_to_actor_indices,
                                           masked_column_write_, masked_copy_, masked_updates,
                                           name_order, ROOT_ANG_VEL_WORLD, root_from_base_state,
                                           ROOT_LIN_VEL_WORLD, ROOT_POS, ROOT_STATE_WIDTH)

if TYPE_CHECKING:  # types only: importing isaacgym at runtime must wait for the constructor
    from isaacgym.gymapi import Env as IsaacGymEnv  # noqa: F401 - used in an annotation

INSTALL_HINT = (
    'To use it, download Isaac Gym Preview 4 from NVIDIA, `pip install -e isaacgym/python` in '
    'a Python 3.6-3.8 environment (its bindings exist for those only) together with versions '
    'of torch and mujoco that still support that Python (this project pins torch 2.13 and '
    'mujoco 4.0, which need Python >= 3.10 and >= 3.11; no such combination is tested here), '
    'and train with `python -m training.isaacgym_train` (Isaac Gym must be imported before '
    'torch). '
    "The default backend, mjwarp (`--backend mjwarp`), needs nothing beyond this project's "
    'requirements.')
"""How to get the Isaac Gym backend running; part of every 'not available' error."""


def isaacgym_unavailable(reason: str) -> BackendUnavailableError:
    """Return the error raised when Isaac Gym cannot be used, with ``reason`` and the hint."""
    python = '.'.join(str(v) for v in sys.version_info[:3])
    return BackendUnavailableError(f'backend "isaacgym" is not available ({reason}; this is '
                                   f'Python {python}). {INSTALL_HINT}')


class IsaacGymBackend(SimBackend):
    """
    Isaac Gym implementation of :class:`SimBackend` (see the module docstring).

    Constructor arguments: ``robot`` (RobotConfig with a URDF description), ``num_envs``,
    ``device`` ('cuda:i' uses the GPU pipeline, 'cpu' the CPU one), ``physics_dt_s``,
    ``env_spacing_m`` (distance between env origins), ``collapse_fixed_joints``.
    """

    def __init__(self, robot: Any, num_envs: int, device: Any = 'cuda:0',
                 physics_dt_s: float = 0.005, env_spacing_m: float = 2.0,
                 collapse_fixed_joints: bool = True) -> None:
        """Create the sim, load the URDF, create N envs and wrap the state tensors."""
        try:
            from isaacgym import gymapi, gymtorch
        except ImportError as exc:
            raise isaacgym_unavailable(str(exc)) from exc
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f'num_envs must be a positive integer, got {num_envs!r}')
        path = Path(robot.description_path)
        if path.suffix.lower() != '.urdf':
            raise ValueError(f'the isaacgym backend loads URDF only, got {path.name}')
        self.robot = robot
        self.num_envs = int(num_envs)
        self.num_joints = len(robot.joint_names)
        self.num_feet = len(robot.foot_links)
        self.device = torch.device(device)
        self.physics_dt_s = float(physics_dt_s)
        cuda = self.device.type == 'cuda'
        self._cuda = cuda
        self._unwrap = gymtorch.unwrap_tensor
        self._closed = False

        gym = self._gym = gymapi.acquire_gym()
        sp = gymapi.SimParams()
        sp.dt = self.physics_dt_s
        sp.substeps = 1
        sp.up_axis = gymapi.UP_AXIS_Z
        sp.gravity = gymapi.Vec3(0.0, 0.0, -9.81)
        sp.use_gpu_pipeline = cuda
        sp.physx.use_gpu = cuda
        # PhysX settings of legged_gym's LeggedRobotCfg.sim.physx
        sp.physx.solver_type = 1
        sp.physx.num_position_iterations = 4
        sp.physx.num_velocity_iterations = 0
        sp.physx.contact_offset = 0.01
        sp.physx.rest_offset = 0.0
        sp.physx.bounce_threshold_velocity = 0.5
        sp.physx.max_depenetration_velocity = 1.0
        sp.physx.max_gpu_contact_pairs = 2 ** 23
        sp.physx.default_buffer_size_multiplier = 5
        compute_id = (self.device.index or 0) if cuda else 0
        sim = gym.create_sim(compute_id, -1, gymapi.SIM_PHYSX, sp)
        if sim is None:
            raise RuntimeError('Isaac Gym failed to create the sim')
        self._sim = sim
        plane = gymapi.PlaneParams()
        plane.normal = gymapi.Vec3(0.0, 0.0, 1.0)
        plane.static_friction = plane.dynamic_friction = 1.0
        gym.add_ground(sim, plane)

        opts = gymapi.AssetOptions()
        opts.default_dof_drive_mode = int(gymapi.DOF_MODE_EFFORT)  # an int property
        opts.collapse_fixed_joints = collapse_fixed_joints
        opts.fix_base_link = False
        opts.flip_visual_attachments = False
        opts.replace_cylinder_with_capsule = True
        opts.angular_damping = 0.0
        opts.linear_damping = 0.0
        opts.armature = 0.0
        asset = gym.load_asset(sim, str(path.parent), path.name, opts)
        dof_names = list(gym.get_asset_dof_names(asset))
        body_names = list(gym.get_asset_rigid_body_names(asset))
        policy_to_dof = name_order(dof_names, robot.joint_names,
                                   'joints (in the Isaac Gym asset)')
        foot_bodies = name_order(body_names, robot.foot_links,
                                 'foot links (in the Isaac Gym asset; collapsed fixed joints?)')
        self._num_dof, self._num_bodies = len(dof_names), len(body_names)
        dof_props = gym.get_asset_dof_properties(asset)
        for joint, k in zip(robot.joints, policy_to_dof):
            dof_props['driveMode'][k] = int(gymapi.DOF_MODE_EFFORT)
            dof_props['stiffness'][k] = 0.0
            dof_props['damping'][k] = 0.0
            dof_props['effort'][k] = joint.effort_limit_nm
            dof_props['armature'][k] = joint.armature_kg_m2

        self._envs: List['IsaacGymEnv'] = []
        self._actors: List[int] = []
        per_row = int(math.ceil(math.sqrt(self.num_envs)))
        lower = gymapi.Vec3(-env_spacing_m / 2, -env_spacing_m / 2, 0.0)
        upper = gymapi.Vec3(env_spacing_m / 2, env_spacing_m / 2, env_spacing_m)
        start = gymapi.Transform()
        start.p = gymapi.Vec3(0.0, 0.0, robot.nominal_base_height_m)
        for i in range(self.num_envs):
            env = gym.create_env(sim, lower, upper, per_row)
            actor = gym.create_actor(env, asset, start, robot.name, i, 1, 0)  # 1: no self coll.
            gym.set_actor_dof_properties(env, actor, dof_props)
            self._envs.append(env)
            self._actors.append(actor)
        self._nominal_base_mass_kg = gym.get_actor_rigid_body_properties(
            self._envs[0], self._actors[0])[0].mass
        gym.prepare_sim(sim)

        n, dev = self.num_envs, self.device
        self._root = gymtorch.wrap_tensor(gym.acquire_actor_root_state_tensor(sim)).view(
            n, ROOT_STATE_WIDTH)
        self._dof_state = gymtorch.wrap_tensor(gym.acquire_dof_state_tensor(sim))
        self._dof_pos, self._dof_vel = dof_state_views(self._dof_state, n)
        self._contact = gymtorch.wrap_tensor(gym.acquire_net_contact_force_tensor(sim)).view(
            n, self._num_bodies, 3)
        self._bodies = gymtorch.wrap_tensor(gym.acquire_rigid_body_state_tensor(sim)).view(
            n, self._num_bodies, ROOT_STATE_WIDTH)
        self._policy_to_dof = torch.tensor(policy_to_dof, dtype=torch.int64, device=dev)
        self._foot_idx = torch.tensor(foot_bodies, dtype=torch.int64, device=dev)
        origins = [gym.get_env_origin(env) for env in self._envs]  # sim-frame env origins
        self._origins = torch.tensor([[o.x, o.y, o.z] for o in origins], dtype=torch.float32,
                                     device=dev)
        self._torques = torch.zeros(n, self._num_dof, dtype=torch.float32, device=dev)
        self.base_pos = torch.zeros(n, 3, device=dev)
        self.base_quat = torch.zeros(n, 4, device=dev)
        self.base_lin_vel_world = self._root[:, ROOT_LIN_VEL_WORLD]
        self.base_ang_vel_body = torch.zeros(n, 3, device=dev)
        self._ang_vel_body_read = torch.zeros(n, 3, device=dev)  # as last read from the roots
        self.joint_pos = torch.zeros(n, self.num_joints, device=dev)
        self.joint_vel = torch.zeros(n, self.num_joints, device=dev)
        self.foot_pos = torch.zeros(n, self.num_feet, 3, device=dev)
        self.foot_contact_force = torch.zeros(n, self.num_feet, device=dev)
        self.last_effort = torch.zeros(n, self.num_joints, device=dev)
        self._init_control_buffers()
        self._refresh_all()

    # ---- state refresh ----

    def _copy_joints(self) -> None:
        """Copy the DOF state tensor into ``joint_pos``/``joint_vel`` (policy order)."""
        torch.index_select(self._dof_pos, 1, self._policy_to_dof, out=self.joint_pos)
        torch.index_select(self._dof_vel, 1, self._policy_to_dof, out=self.joint_vel)

    def _copy_base(self) -> None:
        """Copy the root state tensor into the base state tensors (env convention)."""
        base = base_state_from_root(self._root, self._origins)
        self.base_pos.copy_(base.pos)
        self.base_quat.copy_(base.quat_wxyz)
        self.base_ang_vel_body.copy_(base.ang_vel_body)
        self._ang_vel_body_read.copy_(base.ang_vel_body)

    def _refresh_all(self) -> None:
        """Read every state tensor from PhysX and update the env-convention copies."""
        gym, sim = self._gym, self._sim
        gym.refresh_actor_root_state_tensor(sim)
        gym.refresh_dof_state_tensor(sim)
        gym.refresh_rigid_body_state_tensor(sim)
        gym.refresh_net_contact_force_tensor(sim)
        self._copy_base()
        self._copy_joints()
        feet = self._bodies[:, self._foot_idx, ROOT_POS]
        self.foot_pos.copy_(feet - self._origins[:, None, :])
        self.foot_contact_force.copy_(self._contact[:, self._foot_idx, 2].abs())

    # ---- the interface ----

    def _apply_ang_vel_writes(self) -> None:
        """Add the env's writes into ``base_ang_vel_body`` since the last read to the roots."""
        kick_body = self.base_ang_vel_body - self._ang_vel_body_read
        self._root[:, ROOT_ANG_VEL_WORLD] += body_to_world(self.base_quat, kick_body)
        self._ang_vel_body_read.copy_(self.base_ang_vel_body)

    def step(self, decimation: int) -> None:
        """Run ``decimation`` physics steps with PD recomputed before each (see base class)."""
        if int(decimation) != decimation or decimation < 1:
            raise ValueError(f'decimation must be a positive integer, got {decimation!r}')
        gym, sim, unwrap = self._gym, self._sim, self._unwrap
        # In-place writes into base_lin_vel_world (a view) and base_ang_vel_body (a body-frame
        # copy) are the env's pushes: they reach PhysX only through this write.
        self._apply_ang_vel_writes()
        gym.set_actor_root_state_tensor(sim, unwrap(self._root))
        for _ in range(int(decimation)):
            effort = torch.nan_to_num(self.compute_effort(), nan=0.0)
            self.last_effort.copy_(effort)
            self._torques[:, self._policy_to_dof] = effort
            gym.set_dof_actuation_force_tensor(sim, unwrap(self._torques))
            gym.simulate(sim)
            if not self._cuda:
                gym.fetch_results(sim, True)
            gym.refresh_dof_state_tensor(sim)
            self._copy_joints()
        self._refresh_all()

    def reset_masked(self, mask: torch.Tensor, base_pos: torch.Tensor,
                     base_quat: torch.Tensor, base_lin_vel_world: torch.Tensor,
                     base_ang_vel_body: torch.Tensor, joint_pos: torch.Tensor,
                     joint_vel: torch.Tensor) -> None:
        """
        Write the state of the worlds where ``mask`` is True (see the base class).

        The masked rows of the root and DOF state tensors are rewritten and sent to PhysX
        with the ``*_indexed`` setters for those actors only (one host sync: their count).
        The state copies are updated from the written tensors (PhysX applies the state on
        the next simulate; reading it back before then would return the old state).
        """
        m = check_mask(mask, self.num_envs, self.device)
        pos, quat, lin, ang, jp, jv = self._reset_rows(
            base_pos, base_quat, base_lin_vel_world, base_ang_vel_body, joint_pos, joint_vel)
        actor_ids = mask_to_actor_indices(m)
        count = int(actor_ids.numel())
        if count == 0:
            return
        # the other worlds' pending angular pushes go into the roots first (the state copies
        # are re-read from them below; the next step sends them)
        self._apply_ang_vel_writes()
        masked_copy_(self._root, m, root_from_base_state(pos, quat, lin, ang, self._origins))
        masked_column_write_(self._dof_pos, self._policy_to_dof, m, jp)
        masked_column_write_(self._dof_vel, self._policy_to_dof, m, jv)
        unwrap = self._unwrap
        self._gym.set_actor_root_state_tensor_indexed(
            self._sim, unwrap(self._root), unwrap(actor_ids), count)
        self._gym.set_dof_state_tensor_indexed(
            self._sim, unwrap(self._dof_state), unwrap(actor_ids), count)
        self.last_effort.masked_fill_(m[:, None], 0.0)
        self._copy_base()
        self._copy_joints()

    def set_friction_masked(self, mask: torch.Tensor, friction: torch.Tensor) -> None:
        """
        Set the friction of every robot shape in the worlds where ``mask`` is True.

        A host loop over those worlds (slow); see the module docstring for how PhysX combines
        it with the ground's.  ``friction`` is [N], >= 0.
        """
        m = check_mask(mask, self.num_envs, self.device)
        values = self._per_env('friction', friction, self.num_envs)
        for i, f in masked_updates(m, values):
            if not (math.isfinite(f) and f >= 0.0):
                raise ValueError(f'friction of world {i} must be finite and >= 0, got {f}')
            props = self._gym.get_actor_rigid_shape_properties(self._envs[i], self._actors[i])
            for p in props:
                p.friction = f
            self._gym.set_actor_rigid_shape_properties(self._envs[i], self._actors[i], props)

    def set_base_mass_offset_masked(self, mask: torch.Tensor, delta_kg: torch.Tensor) -> None:
        """
        Set the base mass of the worlds where ``mask`` is True to nominal + ``delta_kg`` [N].

        A host loop over those worlds (slow); the inertia is not recomputed.
        """
        m = check_mask(mask, self.num_envs, self.device)
        delta = self._per_env('delta_kg', delta_kg, self.num_envs)
        for i, d in masked_updates(m, delta):
            props = self._gym.get_actor_rigid_body_properties(self._envs[i], self._actors[i])
            props[0].mass = base_mass_kg(self._nominal_base_mass_kg, d)
            self._gym.set_actor_rigid_body_properties(self._envs[i], self._actors[i], props,
                                                      False)

    def check_overflow(self, clear: bool = True) -> Dict[str, Any]:
        """Report non-finite worlds; PhysX exposes no per-world buffer overflow counters."""
        finite = (torch.isfinite(self._root).all(dim=1)
                  & torch.isfinite(self._dof_pos).all(dim=1)
                  & torch.isfinite(self._dof_vel).all(dim=1))
        return {'overflow': False, 'nonfinite_worlds': int((~finite).sum()),
                'note': 'PhysX has no per-world contact buffer counters'}

    def close(self) -> None:
        """Destroy the sim (once)."""
        if not getattr(self, '_closed', True):
            self._gym.destroy_sim(self._sim)
            self._closed = True
