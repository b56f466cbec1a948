"""
Isaac Gym backend: the :class:`SimBackend` interface on Isaac Gym's (PhysX) tensor API.

Optional: it runs only where ``isaacgym`` imports (an NVIDIA download, Python <= 3.8, not
installable on our machines; this module was written against the documented Preview 4 API
and has never been run here).  Importing this module does not need isaacgym; constructing
:class:`IsaacGymBackend` without it raises :class:`BackendUnavailableError`.  Isaac Gym must
be imported before torch, so an entry point using this backend should ``import isaacgym``
first thing.

The robot's URDF is loaded with ``default_dof_drive_mode = DOF_MODE_EFFORT`` and the same PD
law as the MuJoCo backend (``policy_math.pd_effort``) runs in torch before every physics
step, its result applied with ``set_dof_actuation_force_tensor``.  Differences from mjwarp:

- Isaac Gym stores quaternions xyzw and the root angular velocity in the world frame, and
  orders DOFs depth-first; ``base_quat``, ``base_ang_vel_body``, ``joint_pos``/``joint_vel``
  and ``foot_pos`` are therefore copies refreshed in place after every step and reset, not
  zero-copy views; ``base_pos`` and ``base_lin_vel_world`` are views.
- ``foot_contact_force`` is the z component of the net contact force on the foot body (a
  flat-ground proxy of the normal force, as legged_gym uses it).
- PhysX has no per-world buffer counters: ``check_overflow`` reports non-finite worlds only.
- No CUDA graph: ``gym.simulate`` is called eagerly.
"""

import math
from pathlib import Path
from typing import Any, Dict

import torch
from training.backends.base import BackendUnavailableError, SimBackend


def _import_isaacgym() -> Any:
    """Return ``(gymapi, gymtorch)`` or raise BackendUnavailableError explaining why not."""
    try:
        from isaacgym import gymapi, gymtorch
    except ImportError as exc:
        raise BackendUnavailableError(
            'backend "isaacgym" needs NVIDIA Isaac Gym (Preview 4, Python <= 3.8, downloaded '
            'from NVIDIA and pip-installed from isaacgym/python), imported before torch: '
            f'{exc}') from exc
    return gymapi, gymtorch


def _quat_xyzw_to_wxyz(q: torch.Tensor) -> torch.Tensor:
    return torch.cat([q[..., 3:4], q[..., 0:3]], dim=-1)


def _quat_rotate_inverse_xyzw(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate world vectors ``v`` into the frame of xyzw quaternions ``q``."""
    w, u = q[..., 3:4], q[..., 0:3]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v - w * t + torch.cross(u, t, dim=-1)


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
        gymapi, gymtorch = _import_isaacgym()
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f'num_envs must be a positive integer, got {num_envs!r}')
        path = Path(robot.description_path)
        if path.suffix.lower() != '.urdf':
            raise ValueError(f'the isaacgym backend loads URDF only, got {path.name}')
        self._gymapi, self._gymtorch = gymapi, gymtorch
        self.robot = robot
        self.num_envs = int(num_envs)
        self.num_joints = len(robot.joint_names)
        self.num_feet = len(robot.foot_links)
        self.device = torch.device(device)
        self.physics_dt_s = float(physics_dt_s)
        cuda = self.device.type == 'cuda'
        self._cuda = cuda

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
        self._sim = gym.create_sim(compute_id, -1, gymapi.SIM_PHYSX, sp)
        if self._sim is None:
            raise RuntimeError('Isaac Gym failed to create the sim')
        plane = gymapi.PlaneParams()
        plane.normal = gymapi.Vec3(0.0, 0.0, 1.0)
        plane.static_friction = plane.dynamic_friction = 1.0
        gym.add_ground(self._sim, plane)

        opts = gymapi.AssetOptions()
        opts.default_dof_drive_mode = gymapi.DOF_MODE_EFFORT
        opts.collapse_fixed_joints = collapse_fixed_joints
        opts.fix_base_link = False
        opts.flip_visual_attachments = False
        opts.replace_cylinder_with_capsule = True
        opts.angular_damping = 0.0
        opts.linear_damping = 0.0
        opts.armature = 0.0
        asset = gym.load_asset(self._sim, str(path.parent), path.name, opts)
        dof_names = list(gym.get_asset_dof_names(asset))
        body_names = list(gym.get_asset_rigid_body_names(asset))
        missing = [n for n in robot.joint_names if n not in dof_names]
        missing += [n for n in robot.foot_links if n not in body_names]
        if missing:
            raise ValueError(f'not in the Isaac Gym asset (collapsed fixed joints?): {missing}')
        self._num_dof, self._num_bodies = len(dof_names), len(body_names)
        dof_props = gym.get_asset_dof_properties(asset)
        for i, joint in enumerate(robot.joints):
            k = dof_names.index(joint.name)
            dof_props['driveMode'][k] = gymapi.DOF_MODE_EFFORT
            dof_props['stiffness'][k] = 0.0
            dof_props['damping'][k] = 0.0
            dof_props['effort'][k] = joint.effort_limit_nm
            dof_props['armature'][k] = joint.armature_kg_m2

        self._envs, self._actors = [], []
        per_row = int(math.ceil(math.sqrt(self.num_envs)))
        lower = gymapi.Vec3(-env_spacing_m / 2, -env_spacing_m / 2, 0.0)
        upper = gymapi.Vec3(env_spacing_m / 2, env_spacing_m / 2, env_spacing_m)
        start = gymapi.Transform()
        start.p = gymapi.Vec3(0.0, 0.0, robot.nominal_base_height_m)
        for i in range(self.num_envs):
            env = gym.create_env(self._sim, lower, upper, per_row)
            actor = gym.create_actor(env, asset, start, robot.name, i, 1, 0)  # 1: no self coll.
            gym.set_actor_dof_properties(env, actor, dof_props)
            self._envs.append(env)
            self._actors.append(actor)
        self._nominal_base_mass = gym.get_actor_rigid_body_properties(
            self._envs[0], self._actors[0])[0].mass
        gym.prepare_sim(self._sim)

        n, dev = self.num_envs, self.device
        self._root = gymtorch.wrap_tensor(gym.acquire_actor_root_state_tensor(self._sim))
        self._dof_state = gymtorch.wrap_tensor(gym.acquire_dof_state_tensor(self._sim))
        self._contact = gymtorch.wrap_tensor(gym.acquire_net_contact_force_tensor(self._sim))
        self._bodies = gymtorch.wrap_tensor(gym.acquire_rigid_body_state_tensor(self._sim))
        self._root = self._root.view(n, 13)
        dofs = self._dof_state.view(n, self._num_dof, 2)
        self._dof_pos, self._dof_vel = dofs[..., 0], dofs[..., 1]
        self._contact = self._contact.view(n, self._num_bodies, 3)
        self._bodies = self._bodies.view(n, self._num_bodies, 13)
        self._policy_to_dof = torch.tensor([dof_names.index(j) for j in robot.joint_names],
                                           device=dev)
        self._foot_idx = torch.tensor([body_names.index(f) for f in robot.foot_links],
                                      device=dev)
        origins = [gym.get_env_origin(env) for env in self._envs]  # sim-frame env origins
        self._origins = torch.tensor([[o.x, o.y, o.z] for o in origins], dtype=torch.float32,
                                     device=dev)
        self._torques = torch.zeros(n, self._num_dof, dtype=torch.float32, device=dev)
        self.base_pos = torch.zeros(n, 3, device=dev)
        self.base_quat = torch.zeros(n, 4, device=dev)
        self.base_lin_vel_world = self._root[:, 7:10]
        self.base_ang_vel_body = torch.zeros(n, 3, device=dev)
        self.joint_pos = torch.zeros(n, self.num_joints, device=dev)
        self.joint_vel = torch.zeros(n, self.num_joints, device=dev)
        self.foot_pos = torch.zeros(n, self.num_feet, 3, device=dev)
        self.foot_contact_force = torch.zeros(n, self.num_feet, device=dev)
        self.last_effort = torch.zeros(n, self.num_joints, device=dev)
        self._init_control_buffers()
        self._refresh_all()

    # ---- state refresh ----

    def _refresh_joints(self) -> None:
        self._gym.refresh_dof_state_tensor(self._sim)
        torch.index_select(self._dof_pos, 1, self._policy_to_dof, out=self.joint_pos)
        torch.index_select(self._dof_vel, 1, self._policy_to_dof, out=self.joint_vel)

    def _refresh_all(self) -> None:
        gym = self._gym
        gym.refresh_actor_root_state_tensor(self._sim)
        gym.refresh_rigid_body_state_tensor(self._sim)
        gym.refresh_net_contact_force_tensor(self._sim)
        self._refresh_joints()
        quat_xyzw = self._root[:, 3:7]
        # positions are reported in the sim frame: subtract the env origin (grid layout)
        self.base_pos.copy_(self._root[:, 0:3] - self._origins)
        self.base_quat.copy_(_quat_xyzw_to_wxyz(quat_xyzw))
        self.base_ang_vel_body.copy_(_quat_rotate_inverse_xyzw(quat_xyzw, self._root[:, 10:13]))
        feet = self._bodies[:, self._foot_idx, 0:3]
        self.foot_pos.copy_(feet - self._origins[:, None, :])
        self.foot_contact_force.copy_(self._contact[:, self._foot_idx, 2].abs())

    # ---- the interface ----

    def step(self, decimation: int) -> None:
        """Run ``decimation`` physics steps with PD recomputed before each (see base class)."""
        if int(decimation) != decimation or decimation < 1:
            raise ValueError(f'decimation must be a positive integer, got {decimation!r}')
        gym, unwrap = self._gym, self._gymtorch.unwrap_tensor
        for _ in range(int(decimation)):
            effort = torch.nan_to_num(self.compute_effort(), nan=0.0)
            self.last_effort.copy_(effort)
            self._torques[:, self._policy_to_dof] = effort
            gym.set_dof_actuation_force_tensor(self._sim, unwrap(self._torques))
            gym.simulate(self._sim)
            if not self._cuda:
                gym.fetch_results(self._sim, True)
            self._refresh_joints()
        self._refresh_all()

    def reset_envs(self, env_ids: torch.Tensor, base_pos: torch.Tensor,
                   base_quat: torch.Tensor, base_lin_vel_world: torch.Tensor,
                   base_ang_vel_body: torch.Tensor, joint_pos: torch.Tensor,
                   joint_vel: torch.Tensor) -> None:
        """Write the state of worlds ``env_ids`` (see :meth:`SimBackend.reset_envs`)."""
        ids = self._env_ids(env_ids)
        k = ids.numel()
        pos = self._rows('base_pos', base_pos, k, 3)
        quat = self._rows('base_quat', base_quat, k, 4)
        lin = self._rows('base_lin_vel_world', base_lin_vel_world, k, 3)
        ang = self._rows('base_ang_vel_body', base_ang_vel_body, k, 3)
        jp = self._rows('joint_pos', joint_pos, k, self.num_joints)
        jv = self._rows('joint_vel', joint_vel, k, self.num_joints)
        if k == 0:
            return
        quat = quat / quat.norm(dim=1, keepdim=True).clamp_min(1e-9)
        xyzw = torch.cat([quat[:, 1:4], quat[:, 0:1]], dim=1)
        conj = torch.cat([-xyzw[:, 0:3], xyzw[:, 3:4]], dim=1)
        ang_world = _quat_rotate_inverse_xyzw(conj, ang)  # inverse of conj = rotate to world
        self._root[ids, 0:3] = pos + self._origins[ids]
        self._root[ids, 3:7] = xyzw
        self._root[ids, 7:10] = lin
        self._root[ids, 10:13] = ang_world
        self._dof_pos[ids[:, None], self._policy_to_dof[None, :]] = jp
        self._dof_vel[ids[:, None], self._policy_to_dof[None, :]] = jv
        ids32 = ids.to(torch.int32)  # one actor per env: actor index == env index
        unwrap = self._gymtorch.unwrap_tensor
        self._gym.set_actor_root_state_tensor_indexed(
            self._sim, unwrap(self._root), unwrap(ids32), k)
        self._gym.set_dof_state_tensor_indexed(
            self._sim, unwrap(self._dof_state), unwrap(ids32), k)
        self.last_effort[ids] = 0.0
        self._refresh_all()

    def set_friction(self, env_ids: torch.Tensor, friction: torch.Tensor) -> None:
        """
        Set the friction of the robot's shapes in worlds ``env_ids`` (host loop, slow).

        Isaac Gym combines shape and ground friction (average by default); legged_gym only
        randomizes friction at env creation, so whether PhysX's GPU pipeline picks up a change
        after ``prepare_sim`` is unverified here.
        """
        ids = self._env_ids(env_ids)
        fr = self._per_env('friction', friction, ids.numel()).cpu().tolist()
        for i, f in zip(ids.cpu().tolist(), fr):
            props = self._gym.get_actor_rigid_shape_properties(self._envs[i], self._actors[i])
            for p in props:
                p.friction = f
            self._gym.set_actor_rigid_shape_properties(self._envs[i], self._actors[i], props)

    def set_base_mass_offset(self, env_ids: torch.Tensor, delta_kg: torch.Tensor) -> None:
        """
        Set the base mass of worlds ``env_ids`` to nominal + ``delta_kg`` (host loop, slow).

        Same caveat as :meth:`set_friction`: legged_gym changes masses before
        ``prepare_sim`` only.
        """
        ids = self._env_ids(env_ids)
        delta = self._per_env('delta_kg', delta_kg, ids.numel()).cpu().tolist()
        for i, d in zip(ids.cpu().tolist(), delta):
            props = self._gym.get_actor_rigid_body_properties(self._envs[i], self._actors[i])
            props[0].mass = self._nominal_base_mass + d
            self._gym.set_actor_rigid_body_properties(self._envs[i], self._actors[i], props,
                                                      False)

    def check_overflow(self, clear: bool = True) -> Dict[str, Any]:
        """Report non-finite worlds; PhysX exposes no per-world buffer overflow counters."""
        finite = torch.isfinite(self._root).all(dim=1) & torch.isfinite(self._dof_state.view(
            self.num_envs, -1)).all(dim=1)
        return {'overflow': False, 'nonfinite_worlds': int((~finite).sum()),
                'note': 'PhysX has no per-world contact buffer counters'}

    def close(self) -> None:
        """Destroy the sim."""
        if getattr(self, '_sim', None) is not None:
            self._gym.destroy_sim(self._sim)
            self._sim = None
