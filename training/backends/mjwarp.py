"""
MuJoCo Warp backend: thousands of worlds of one robot on one GPU (or a few on the CPU).

This file is longer than 500 lines: the backend keeps every per-world write (resets,
randomization, latency buffers) beside the captured step that reads them; model indexing and
kernels are already in :mod:`training.backends.mjwarp_model`.

State tensors are zero-copy torch views of ``mujoco_warp`` Data arrays (``wp.to_torch``), so
the env reads them without any copy.  On CUDA, ``step(decimation)`` captures the whole
decimation loop (torch PD law + ``mujoco_warp.step``) into one CUDA graph on its first call
with a given decimation and replays it afterwards: torch and warp run on one non-default
torch stream, captured with a plain ``wp.ScopedCapture``.  Torch temporaries of the captured
region come from a private ``torch.cuda.MemPool`` so that eager torch code can never be handed
memory the graph writes.  On the CPU everything runs eagerly.

Contact/constraint buffers are per world in mujoco_warp 4.0 (``nconmax``/``njmax``;
contacts live in one pool of ``nconmax * num_envs`` shared by all worlds, constraint rows are
capped per world).  Defaults come from :func:`default_contact_sizes`.  Overflow is recorded
by mujoco_warp in a sticky per-world bitmask (``Data.overflow``) and read by
:meth:`MjWarpBackend.check_overflow`.  What the backend reads from the MjModel (addresses,
buffer sizes, the feet's contact-force kernel) is in :mod:`training.backends.mjwarp_model`.

Domain randomization writes per-world Model fields, batched at ``put_model`` (mujoco_warp 4.0
``batch_sizes``): ``geom_friction`` (friction), ``body_mass``, ``body_inertia`` and
``body_subtreemass`` (payload, link masses), ``body_ipos`` (base centre of mass),
``dof_armature``, ``dof_frictionloss`` and ``dof_damping`` (joint dynamics).  The derived
``body_invweight0``/``dof_invweight0`` (the constraint solver's regularization scale) keep their
nominal values: ``mujoco_warp.set_const`` would recompute them for every world with some 150
kernel launches, too slow for resets inside the step.  Action and observation latency run in
torch ring buffers (:mod:`training.backends.latency`) inside the decimation loop.
"""

import contextlib
import math
from typing import Any, Callable, Dict, Iterator, Optional
import warnings

import mujoco
import mujoco_warp as mjw
import numpy as np
import torch
from training.backends.base import SimBackend
from training.backends.conventions import check_mask, masked_column_write_, masked_copy_
from training.backends.kernel_preload import preload_kernels
from training.backends.latency import LatencyBuffers
from training.backends.mjwarp_model import (default_contact_sizes, foot_normal_force_kernel,
                                            index_model, subtree_matrix)
from training.compiling import maybe_compile
import warp as wp

# Solver iteration limits are reported but are not buffer overflows.
_SOLVER_BITS = int(mjw.OverflowType.ITERATIONS | mjw.OverflowType.LS_ITERATIONS)
_BUFFER_BITS = int(mjw.OverflowType.ALL) & ~_SOLVER_BITS
# Bits of the deferred input-validation flag (validate_inputs=False).
_INPUT_NAMES = ('base_pos', 'base_quat', 'base_lin_vel_world', 'base_ang_vel_body', 'joint_pos',
                'joint_vel', 'friction', 'delta_kg', 'link_mass_scale', 'com_offset_m',
                'armature_scale', 'frictionloss_nm', 'damping_nms_per_rad', 'delay_steps')
# Model fields batched per world (domain randomization).
_BATCHED_FIELDS = ('geom_friction', 'body_mass', 'body_subtreemass', 'body_inertia', 'body_ipos',
                   'dof_armature', 'dof_frictionloss', 'dof_damping')
_INPUT_BITS = {name: 1 << i for i, name in enumerate(_INPUT_NAMES)}


def _torch_device(device: Any) -> torch.device:
    """Return a torch device with an explicit CUDA index."""
    dev = torch.device(device)
    if dev.type == 'cuda' and dev.index is None:
        dev = torch.device('cuda', 0)
    if dev.type not in ('cuda', 'cpu'):
        raise ValueError(f'device must be "cpu" or "cuda[:i]", got {device!r}')
    return dev


class MjWarpBackend(SimBackend):
    """
    MuJoCo Warp implementation of :class:`SimBackend` (see the module docstring).

    Constructor arguments:
        robot: ``humanoid_rl_ros.robot.RobotConfig``.
        num_envs: number of worlds N.
        device: ``'cuda:0'`` (default) or ``'cpu'``.
        physics_dt_s: physics time step [s].
        nconmax: contacts per world (pool of ``nconmax * N``); default from the robot.
        njmax: constraint rows per world; default from the robot.
        mj_model: optional pre-built ``mujoco.MjModel`` (default:
            ``build_mujoco_model(robot, physics_dt_s)``); its timestep is set to
            ``physics_dt_s``.  It must follow build_mujoco_model's conventions.
        use_cuda_graph: capture ``step`` into CUDA graphs (CUDA only).
        validate_inputs: check values (finite, positive) of reset/randomization inputs at
            once, raising ValueError (one device sync per call).  Default: True on the CPU,
            False on CUDA, where bad values are instead recorded on the device without a
            sync and reported by :meth:`check_overflow` under ``'invalid_inputs'``.
        compile_setting: ``torch.compile`` of the torch code around the physics (the PD
            law of each substep, the reset writes), see :mod:`training.compiling`.
    """

    def __init__(self, robot: Any, num_envs: int, device: Any = 'cuda:0',
                 physics_dt_s: float = 0.005, nconmax: Optional[int] = None,
                 njmax: Optional[int] = None, *, mj_model: Optional[mujoco.MjModel] = None,
                 use_cuda_graph: bool = True,
                 validate_inputs: Optional[bool] = None, compile_setting: str = 'off') -> None:
        """Build the model, upload N worlds and create the torch views."""
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f'num_envs must be a positive integer, got {num_envs!r}')
        if not (physics_dt_s > 0.0 and math.isfinite(physics_dt_s)):
            raise ValueError(f'physics_dt_s must be finite and > 0, got {physics_dt_s!r}')
        self.robot = robot
        self.num_envs = int(num_envs)
        self.num_joints = len(robot.joint_names)
        self.num_feet = len(robot.foot_links)
        self.device = _torch_device(device)
        self._pd_fn = maybe_compile(self._pd_control, compile_setting, self.device)
        self._reset_write_fn = maybe_compile(self._reset_write, compile_setting, self.device)
        self.physics_dt_s = float(physics_dt_s)
        self._cuda = self.device.type == 'cuda'
        self.validate_inputs = (not self._cuda) if validate_inputs is None else validate_inputs
        self._wp_device = f'cuda:{self.device.index}' if self._cuda else 'cpu'

        if mj_model is None:
            from humanoid_rl_ros.robot.mujoco_model import build_mujoco_model
            mj_model = build_mujoco_model(robot, timestep_s=self.physics_dt_s)
        mjm = mj_model
        mjm.opt.timestep = self.physics_dt_s
        self.mj_model = mjm
        self._ix = index_model(mjm, robot)

        default_ncon, default_nj = default_contact_sizes(mjm)
        self.nconmax = int(default_ncon if nconmax is None else nconmax)
        self.njmax = int(default_nj if njmax is None else njmax)
        if self.nconmax < 1 or self.njmax < 1:
            raise ValueError(f'nconmax and njmax must be >= 1, got {self.nconmax}, {self.njmax}')

        mjd = mujoco.MjData(mjm)
        if mjm.nkey > 0:
            mujoco.mj_resetDataKeyframe(mjm, mjd, 0)
        else:
            mjd.qpos[self._ix.base_qadr + 2] = robot.nominal_base_height_m
            mjd.qpos[self._ix.joint_qadr] = robot.default_pos_rad
        mujoco.mj_forward(mjm, mjd)
        # the fields that domain randomization writes are batched per world
        batch = {name: self.num_envs for name in _BATCHED_FIELDS}
        with wp.ScopedDevice(self._wp_device):
            self._m = mjw.put_model(mjm, batch_sizes=batch)
            # keep device-side printing for buffer overflows only (solver iteration limits
            # are routine and would print once per world)
            self._m.opt.warn_overflow = int(self._m.opt.warn_overflow) & ~_SOLVER_BITS
            try:
                self._d = mjw.put_data(mjm, mjd, nworld=self.num_envs, nconmax=self.nconmax,
                                       njmax=self.njmax)
            except ValueError as exc:
                raise ValueError(
                    f'nconmax={self.nconmax}/njmax={self.njmax} cannot hold the initial state '
                    f'({mjd.ncon} contacts, {mjd.nefc} constraint rows): {exc}') from exc
            self._geom_foot_wp = wp.array(self._ix.geom_foot, dtype=int)
        wp.synchronize_device(self._wp_device)
        self._make_views()
        self._init_control_buffers()

        self._graphs: Dict[int, Any] = {}
        self._kernels_preloaded = False
        self.use_cuda_graph = bool(use_cuda_graph and self._cuda)
        if self._cuda:
            self._torch_stream = torch.cuda.Stream(device=self.device)
            self._wp_stream = wp.stream_from_torch(self._torch_stream)
            self._graph_pool = torch.cuda.MemPool() if hasattr(torch.cuda, 'MemPool') else None
            if self.use_cuda_graph and (self._graph_pool is None
                                        or not hasattr(torch.cuda, 'use_mem_pool')):
                warnings.warn('torch.cuda.MemPool/use_mem_pool unavailable: CUDA graph '
                              'capture disabled, stepping eagerly')
                self.use_cuda_graph = False
        with self._sim_stream():
            mjw.kinematics(self._m, self._d)
            self._refresh_derived()

    # ---- construction helpers ----

    def _make_views(self) -> None:
        """Create the zero-copy torch views and the derived-state buffers."""
        d, m, dev = self._d, self._m, self.device
        self._qpos = wp.to_torch(d.qpos)
        self._qvel = wp.to_torch(d.qvel)
        self._ctrl = wp.to_torch(d.ctrl)
        self._xpos = wp.to_torch(d.xpos)
        self._overflow = wp.to_torch(d.overflow)
        self._nacon = wp.to_torch(d.nacon)
        self._nefc = wp.to_torch(d.nefc)
        self._geom_friction = wp.to_torch(m.geom_friction)
        self._body_mass = wp.to_torch(m.body_mass)
        self._body_subtreemass = wp.to_torch(m.body_subtreemass)
        self._body_inertia = wp.to_torch(m.body_inertia)
        self._body_ipos = wp.to_torch(m.body_ipos)
        self._dof_armature = wp.to_torch(m.dof_armature)
        self._dof_frictionloss = wp.to_torch(m.dof_frictionloss)
        self._dof_damping = wp.to_torch(m.dof_damping)
        self._nominal_mass = self._body_mass[0].clone()
        self._nominal_inertia = self._body_inertia[0].clone()
        self._nominal_ipos = self._body_ipos[0].clone()
        self._nominal_armature = self._dof_armature[0].clone()
        self.num_links = int(self.mj_model.nbody) - 1
        self._link_mass_scale = torch.ones(self.num_envs, self.num_links + 1, device=dev)
        self._base_added_kg = torch.zeros(self.num_envs, device=dev)
        self._subtree = torch.as_tensor(subtree_matrix(self.mj_model), device=dev)
        self._base_onehot = torch.zeros(self.num_links + 1, device=dev)
        self._base_onehot[self._ix.base_body] = 1.0
        self._latency: Optional[LatencyBuffers] = None
        b, v = self._ix.base_qadr, self._ix.base_vadr
        self.base_pos = self._qpos[:, b:b + 3]
        self.base_quat = self._qpos[:, b + 3:b + 7]
        self.base_lin_vel_world = self._qvel[:, v:v + 3]
        self.base_ang_vel_body = self._qvel[:, v + 3:v + 6]
        self._jq = torch.as_tensor(self._ix.joint_qadr, device=dev)
        self._jv = torch.as_tensor(self._ix.joint_vadr, device=dev)
        n, nj = self.num_envs, self.num_joints
        jq, jv = self._ix.joint_qadr, self._ix.joint_vadr
        contiguous = (np.array_equal(jq, jq[0] + np.arange(nj))
                      and np.array_equal(jv, jv[0] + np.arange(nj)))
        self._joint_views = contiguous
        if contiguous:
            q0, v0 = int(jq[0]), int(jv[0])
            self.joint_pos = self._qpos[:, q0:q0 + nj]
            self.joint_vel = self._qvel[:, v0:v0 + nj]
        else:  # tree order != policy order: gathered copies refreshed in place
            self.joint_pos = torch.zeros(n, nj, dtype=torch.float32, device=dev)
            self.joint_vel = torch.zeros(n, nj, dtype=torch.float32, device=dev)
        self.last_effort = self._ctrl
        self._foot_bodies = torch.as_tensor(self._ix.foot_bodies, device=dev)
        self.foot_pos = torch.zeros(n, self.num_feet, 3, dtype=torch.float32, device=dev)
        self._foot_force_wp = wp.zeros((n, self.num_feet), dtype=float, device=self._wp_device)
        self.foot_contact_force = wp.to_torch(self._foot_force_wp)
        self._nacon_peak = torch.zeros(1, dtype=torch.int32, device=dev)
        # cleared per world on reset; cached views so that masked resets are capture-safe
        self._reset_cleared = [wp.to_torch(arr) for arr in (
            d.qacc_warmstart, d.qacc, d.qfrc_applied, d.ctrl, d.time, d.act) if arr.size > 0]
        self._nefc_peak = torch.zeros(n, dtype=torch.int32, device=dev)
        self._invalid_inputs = torch.zeros((), dtype=torch.int32, device=dev)

    # ---- stepping ----

    @contextlib.contextmanager
    def _sim_stream(self) -> Iterator[None]:
        """Run torch and warp on the backend's stream, ordered after the caller's stream."""
        if not self._cuda:
            with wp.ScopedDevice(self._wp_device):
                yield
            return
        caller = torch.cuda.current_stream(self.device)
        if caller == self._torch_stream:  # already inside (e.g. a caller's graph capture)
            yield
            return
        self._torch_stream.wait_stream(caller)
        with torch.cuda.stream(self._torch_stream), wp.ScopedStream(self._wp_stream):
            yield
        caller.wait_stream(self._torch_stream)

    def _gather_joints(self) -> None:
        """Refresh the policy-ordered joint state copies (no-op when they are views)."""
        if not self._joint_views:
            torch.index_select(self._qpos, 1, self._jq, out=self.joint_pos)
            torch.index_select(self._qvel, 1, self._jv, out=self.joint_vel)

    def _refresh_derived(self) -> None:
        """Recompute joint copies and foot positions from the current kinematics."""
        self._gather_joints()
        torch.index_select(self._xpos, 1, self._foot_bodies, out=self.foot_pos)

    def _foot_forces(self) -> None:
        """Sum the normal contact forces of each foot from the last solver result."""
        d = self._d
        self._foot_force_wp.zero_()
        wp.launch(foot_normal_force_kernel, dim=d.naconmax,
                  inputs=[d.nacon, d.contact.worldid, d.contact.geom, d.contact.dim,
                          d.contact.efc_address, d.efc.force, self._ix.pyramidal,
                          self._geom_foot_wp],
                  outputs=[self._foot_force_wp])

    def _substeps(self, decimation: int) -> None:
        """Run the decimation loop (what the CUDA graph captures)."""
        if not self._kernels_preloaded and not wp.get_device(self._wp_device).is_capturing:
            self._preload_kernels()
        lat = self._latency
        if lat is not None:
            lat.push_target(self._q_target)
        for k in range(decimation):
            self._pd_fn(self._q_target if lat is None else lat.target(k, decimation))
            mjw.step(self._m, self._d)
            if lat is not None:
                lat.record_state(self._state_row())
            torch.maximum(self._nacon_peak, self._nacon, out=self._nacon_peak)
            torch.maximum(self._nefc_peak, self._nefc, out=self._nefc_peak)
        self._foot_forces()
        # mjw.step leaves xpos at the pre-integration state: refresh kinematics so that
        # foot_pos matches qpos
        mjw.kinematics(self._m, self._d)
        self._refresh_derived()

    def _preload_kernels(self) -> None:
        """
        Compile the Warp kernels of the decimation loop many at a time (once per backend).

        Not one by one at their first launch; called by the first step, so the time counts
        in the first training iteration.  A failure only warns: the kernels then compile at
        their first launch, as without it.
        """
        self._kernels_preloaded = True

        def physics() -> None:
            mjw.step(self._m, self._d)
            self._foot_forces()
            mjw.kinematics(self._m, self._d)
        try:
            preload_kernels(physics, self._wp_device, state=self._d)
        except Exception as exc:  # an optimization only: never stop training for it
            warnings.warn(f'compiling the physics kernels ahead failed ({exc!r}); they compile '
                          'at their first launch instead')

    def _pd_control(self, q_target: torch.Tensor) -> None:
        """Write the PD effort towards ``q_target`` into ``ctrl`` (never a NaN effort)."""
        self._gather_joints()
        self._ctrl.copy_(self.compute_effort(q_target))
        torch.nan_to_num(self._ctrl, nan=0.0, out=self._ctrl)

    def sim_stream(self) -> Any:
        """Return the context running torch and warp on the backend's stream (see base)."""
        return self._sim_stream()

    def substeps(self, decimation: int) -> None:
        """Run the decimation loop uncaptured, for a caller's graph (see the base class)."""
        if int(decimation) != decimation or decimation < 1:
            raise ValueError(f'decimation must be a positive integer, got {decimation!r}')
        with self._sim_stream():
            self._substeps(int(decimation))

    @contextlib.contextmanager
    def graph_memory(self) -> Iterator[None]:
        """Route torch allocations to the private pool of the captured graphs (CUDA)."""
        if self.use_cuda_graph:
            with torch.cuda.use_mem_pool(self._graph_pool):
                yield
        else:
            yield

    def capture_graph(self, fn: Callable[[], None]) -> Optional[Callable[[], None]]:
        """
        Record ``fn`` into one CUDA graph on the backend's stream (see the base class).

        Capture follows ``step``'s recipe: torch and warp on the backend's torch stream,
        a plain ``wp.ScopedCapture`` in RELAXED mode, torch temporaries from the private
        pool.  ``fn`` must not sync with the host, and torch RNG inside it would replay the
        same numbers each time (draw randoms outside).  Returns None on the CPU, with
        ``use_cuda_graph`` off, or (with a warning) when the capture fails.
        """
        if not self.use_cuda_graph:
            return None
        try:
            mode = getattr(getattr(wp, 'CaptureMode', None), 'RELAXED', None)
            kwargs = {} if mode is None else {'capture_mode': mode}
            with self._sim_stream(), torch.cuda.use_mem_pool(self._graph_pool):
                with wp.ScopedCapture(stream=self._wp_stream, **kwargs) as cap:
                    fn()  # recorded only, not executed
            graph = cap.graph
        except Exception as exc:  # the caller keeps stepping eagerly, loudly
            warnings.warn(f'CUDA graph capture failed ({exc!r}); the caller steps eagerly')
            return None

        def replay() -> None:
            with self._sim_stream():
                wp.capture_launch(graph, stream=self._wp_stream)
        return replay

    def step(self, decimation: int) -> None:
        """Run ``decimation`` physics steps with PD recomputed before each (see base class)."""
        if int(decimation) != decimation or decimation < 1:
            raise ValueError(f'decimation must be a positive integer, got {decimation!r}')
        decimation = int(decimation)
        with self._sim_stream():
            if not self.use_cuda_graph:
                self._substeps(decimation)
                return
            graph = self._graphs.get(decimation)
            if graph is not None:
                wp.capture_launch(graph, stream=self._wp_stream)
                return
            with torch.cuda.use_mem_pool(self._graph_pool):
                # eager warm-up: loads kernels, fills the pool's cache; this IS this call's step
                self._substeps(decimation)
                try:
                    # RELAXED: a torch cache miss (cudaMalloc) must not invalidate the capture
                    mode = getattr(getattr(wp, 'CaptureMode', None), 'RELAXED', None)
                    kwargs = {} if mode is None else {'capture_mode': mode}
                    with wp.ScopedCapture(stream=self._wp_stream, **kwargs) as cap:
                        self._substeps(decimation)  # recorded only, not executed
                    self._graphs[decimation] = cap.graph
                except Exception as exc:  # keep training possible, loudly
                    warnings.warn(f'CUDA graph capture failed ({exc!r}); stepping eagerly')
                    self.use_cuda_graph = False

    # ---- resets and randomization ----

    def _check_values(self, ok: Dict[str, torch.Tensor]) -> None:
        """
        Validate inputs: ``ok`` maps an input name to a 0-d bool tensor (True: valid).

        With ``validate_inputs`` raise ValueError naming the first invalid input (a sync);
        otherwise record the failures on the device for :meth:`check_overflow`.
        """
        if self.validate_inputs:
            for name, good in ok.items():
                if not bool(good):
                    raise ValueError(f'{name} has invalid (non-finite or out of range) values')
            return
        for name, good in ok.items():
            bit = _INPUT_BITS[name]
            self._invalid_inputs.bitwise_or_((~good).to(torch.int32) * bit)

    def _mask(self, mask: Any) -> torch.Tensor:
        """Return ``mask`` as a bool [N] tensor on ``device`` or raise ValueError."""
        return check_mask(mask, self.num_envs, self.device)

    def reset_masked(self, mask: torch.Tensor, base_pos: torch.Tensor,
                     base_quat: torch.Tensor, base_lin_vel_world: torch.Tensor,
                     base_ang_vel_body: torch.Tensor, joint_pos: torch.Tensor,
                     joint_vel: torch.Tensor) -> None:
        """
        Write the state of the worlds where ``mask`` is True (see the base class).

        Full-width masked writes (``torch.where``) into the zero-copy views plus one
        ``kinematics`` of every world: fixed shapes and no host sync (unless
        ``validate_inputs``), so it can be captured in a CUDA graph.  Only masked rows of
        the inputs are validated.
        """
        m = self._mask(mask)
        pos, quat, lin, ang, jp, jv = self._reset_rows(
            base_pos, base_quat, base_lin_vel_world, base_ang_vel_body, joint_pos, joint_vel)
        with self._sim_stream():
            self._reset_write_fn(m, pos, quat, lin, ang, jp, jv)
            mjw.kinematics(self._m, self._d)
            self._refresh_derived()
            if self._latency is not None:
                self._latency.reset_masked(m, self._state_row())

    def _reset_write(self, m: torch.Tensor, pos: torch.Tensor, quat: torch.Tensor,
                     lin: torch.Tensor, ang: torch.Tensor, jp: torch.Tensor,
                     jv: torch.Tensor) -> None:
        """Validate and write the masked rows of the reset state (torch only)."""
        n = self.num_envs
        m1 = m[:, None]
        self._check_values({name: (torch.isfinite(t) | ~m1).all() for name, t in (
            ('base_pos', pos), ('base_quat', quat), ('base_lin_vel_world', lin),
            ('base_ang_vel_body', ang), ('joint_pos', jp), ('joint_vel', jv))})
        quat = quat / quat.norm(dim=1, keepdim=True).clamp_min(1e-9)
        b, v = self._ix.base_qadr, self._ix.base_vadr
        for view, value in ((self._qpos[:, b:b + 3], pos), (self._qpos[:, b + 3:b + 7], quat),
                            (self._qvel[:, v:v + 3], lin), (self._qvel[:, v + 3:v + 6], ang)):
            masked_copy_(view, m, value)
        if self._joint_views:
            for view, value in ((self.joint_pos, jp), (self.joint_vel, jv)):
                masked_copy_(view, m, value)
        else:
            for full, idx, value in ((self._qpos, self._jq, jp), (self._qvel, self._jv, jv)):
                masked_column_write_(full, idx, m, value)
        for t in self._reset_cleared:
            t.masked_fill_(m.view((n,) + (1,) * (t.dim() - 1)), 0.0)
        self.foot_contact_force.masked_fill_(m1, 0.0)

    def set_friction_masked(self, mask: torch.Tensor, friction: torch.Tensor) -> None:
        """Set the friction of the worlds where ``mask`` is True (fixed shape, no sync)."""
        m = self._mask(mask)
        fr = self._per_env('friction', friction, self.num_envs)
        with self._sim_stream():
            self._check_values({'friction': (((fr > 0) & torch.isfinite(fr)) | ~m).all()})
            masked_copy_(self._geom_friction[:, :, 0], m, fr[:, None])

    def set_base_mass_offset_masked(self, mask: torch.Tensor, delta_kg: torch.Tensor) -> None:
        """
        Set the added base mass (payload at the base's centre of mass) of the masked worlds.

        The base's mass is its nominal mass times its link-mass scale plus ``delta_kg``; the
        inertia is unchanged (a point mass at the centre of mass).  No sync.
        """
        m = self._mask(mask)
        delta = self._per_env('delta_kg', delta_kg, self.num_envs)
        with self._sim_stream():
            base_kg = self._nominal_mass[self._ix.base_body] * \
                self._link_mass_scale[:, self._ix.base_body]
            self._check_values({'delta_kg': ((torch.isfinite(delta) & (base_kg + delta > 0))
                                             | ~m).all()})
            masked_copy_(self._base_added_kg, m, delta)
            self._write_masses(m)

    def set_link_mass_scale_masked(self, mask: torch.Tensor, scale: torch.Tensor) -> None:
        """
        Scale each robot body's mass and inertia (columns: bodies 1..nbody-1 of the model).

        Inertia scales with the mass (same shape, denser); subtree masses follow.  No sync.
        """
        m = self._mask(mask)
        sc = self._rows('link_mass_scale', scale, self.num_envs, self.num_links)
        with self._sim_stream():
            self._check_values({'link_mass_scale': (((sc > 0) & torch.isfinite(sc)).all(dim=1)
                                                    | ~m).all()})
            masked_copy_(self._link_mass_scale[:, 1:], m, sc)
            self._write_masses(m)
            masked_copy_(self._body_inertia, m,
                         self._nominal_inertia[None] * self._link_mass_scale[:, :, None])

    def _write_masses(self, m: torch.Tensor) -> None:
        """Write body and subtree masses of the masked worlds from scales and the payload."""
        mass = (self._nominal_mass[None] * self._link_mass_scale
                + self._base_added_kg[:, None] * self._base_onehot[None])
        masked_copy_(self._body_mass, m, mass)
        masked_copy_(self._body_subtreemass, m, mass @ self._subtree.T)

    def set_base_com_offset_masked(self, mask: torch.Tensor, offset_m: torch.Tensor) -> None:
        """Move the base's centre of mass by ``offset_m`` [N, 3] (base frame) [m]; no sync."""
        m = self._mask(mask)
        off = self._rows('com_offset_m', offset_m, self.num_envs, 3)
        base = self._ix.base_body
        with self._sim_stream():
            self._check_values({'com_offset_m': (torch.isfinite(off).all(dim=1) | ~m).all()})
            masked_copy_(self._body_ipos[:, base], m, self._nominal_ipos[base][None] + off)

    def set_joint_dynamics_masked(self, mask: torch.Tensor,
                                  armature_scale: Optional[torch.Tensor] = None,
                                  frictionloss_nm: Optional[torch.Tensor] = None,
                                  damping_nms_per_rad: Optional[torch.Tensor] = None) -> None:
        """
        Set armature (scaled), frictionloss and damping of the joints (see the base class).

        Every world's constraint rows must hold one dry-friction row per joint with a
        positive frictionloss (``njmax``); an overflow is reported by :meth:`check_overflow`.
        """
        m = self._mask(mask)
        n, nj = self.num_envs, self.num_joints
        with self._sim_stream():
            for name, value, dest, nominal in (
                    ('armature_scale', armature_scale, self._dof_armature,
                     self._nominal_armature[self._jv]),
                    ('frictionloss_nm', frictionloss_nm, self._dof_frictionloss, None),
                    ('damping_nms_per_rad', damping_nms_per_rad, self._dof_damping, None)):
                if value is None:
                    continue
                v = self._rows(name, value, n, nj)
                self._check_values({name: (((v >= 0) & torch.isfinite(v)).all(dim=1)
                                           | ~m).all()})
                masked_column_write_(dest, self._jv, m, v if nominal is None else
                                     nominal[None] * v)

    # ---- latency ----

    def _state_row(self) -> torch.Tensor:
        """Return the measured state [N, 10 + 2J] in :meth:`delayed_state`'s layout."""
        b, v = self._ix.base_qadr, self._ix.base_vadr
        return torch.cat([self._qpos[:, b + 3:b + 7], self._qvel[:, v:v + 6],
                          torch.index_select(self._qpos, 1, self._jq),
                          torch.index_select(self._qvel, 1, self._jv)], dim=1)

    def enable_latency(self, max_action_delay_steps: int, max_obs_delay_steps: int) -> None:
        """Allocate the latency ring buffers (see the base class); delays start at 0."""
        nj = self.num_joints
        layout = [('base_quat', 4), ('base_lin_vel_world', 3), ('base_ang_vel_body', 3),
                  ('joint_pos', nj), ('joint_vel', nj)]
        with self._sim_stream():
            self._latency = LatencyBuffers(self.num_envs, nj, max_action_delay_steps,
                                           max_obs_delay_steps, layout, self.device)
            self._latency.reset_masked(torch.ones(self.num_envs, dtype=torch.bool,
                                                  device=self.device), self._state_row())
        self._graphs.clear()  # the decimation loop changed

    def set_latency_masked(self, mask: torch.Tensor, action_delay_steps: torch.Tensor,
                           obs_delay_steps: torch.Tensor) -> None:
        """Set the delays [N] [physics steps] of the masked worlds (no sync)."""
        lat = self._latency
        if lat is None:
            raise RuntimeError('call enable_latency before set_latency_masked')
        m = self._mask(mask)
        with self._sim_stream():
            for value, dest, most in ((action_delay_steps, lat.action_delay_steps,
                                       lat.max_action_delay_steps),
                                      (obs_delay_steps, lat.obs_delay_steps,
                                       lat.max_obs_delay_steps)):
                steps = torch.as_tensor(value, device=self.device)
                if steps.shape != (self.num_envs,):
                    raise ValueError(f'delay_steps must have shape ({self.num_envs},), got '
                                     f'{tuple(steps.shape)}')
                steps = steps.to(torch.long)
                self._check_values({'delay_steps': (((steps >= 0) & (steps <= most))
                                                    | ~m).all()})
                masked_copy_(dest, m, steps.clamp(0, most))

    def delayed_state(self) -> Dict[str, torch.Tensor]:
        """Return the state ``obs_delay_steps`` physics steps old (see the base class)."""
        if self._latency is None:
            raise RuntimeError('call enable_latency before delayed_state')
        return self._latency.delayed_state()

    # ---- diagnostics ----

    def overflowed_worlds(self) -> Optional[torch.Tensor]:
        """Return the worlds with a contact or constraint buffer overflow bit (see base)."""
        return (self._overflow & _BUFFER_BITS) != 0

    def check_overflow(self, clear: bool = True) -> Dict[str, Any]:
        """
        Read the overflow bitmask and buffer peaks (see :meth:`SimBackend.check_overflow`).

        Keys: ``overflow`` (bool, any buffer overflow), ``worlds_overflowed``, ``flags``
        (name -> number of worlds with that mujoco_warp OverflowType bit, solver iteration
        limits included), ``solver_iteration_limit_worlds`` (not an overflow: the solver hit
        its iteration cap), ``nacon_peak``/``naconmax`` (contacts in the shared pool),
        ``nefc_peak``/``njmax`` (constraint rows, worst world), ``nonfinite_worlds``,
        ``invalid_inputs`` (names of reset/randomization inputs that had invalid values, when
        ``validate_inputs`` is off).
        Peaks are maxima over the physics steps since the last cleared check.
        """
        flags = list(mjw.OverflowType)
        flags = [f for f in flags if f.name not in (None, 'NONE', 'ALL')]
        ov = self._overflow
        finite = torch.isfinite(self._qpos).all(dim=1) & torch.isfinite(self._qvel).all(dim=1)
        parts = [((ov & int(f)) != 0).sum() for f in flags]
        parts += [((ov & _BUFFER_BITS) != 0).sum(), ((ov & _SOLVER_BITS) != 0).sum(),
                  self._nacon_peak[0].to(torch.int64), self._nefc_peak.max().to(torch.int64),
                  (~finite).sum(), self._invalid_inputs]
        values = [int(x) for x in torch.stack([p.to(torch.int64) for p in parts]).cpu()]
        counts, (n_buf, n_solver, nacon_peak, nefc_peak, nonfinite, invalid) = (
            values[:len(flags)], values[len(flags):])
        naconmax = int(self._d.naconmax)
        report = {
            'overflow': bool(n_buf > 0 or nacon_peak > naconmax or nefc_peak > self.njmax),
            'worlds_overflowed': n_buf,
            'flags': {f.name: c for f, c in zip(flags, counts) if c},
            'solver_iteration_limit_worlds': n_solver,
            'nacon_peak': nacon_peak,
            'naconmax': naconmax,
            'nconmax_per_world': self.nconmax,
            'nefc_peak': nefc_peak,
            'njmax': self.njmax,
            'nonfinite_worlds': nonfinite,
            'invalid_inputs': [name for name in _INPUT_NAMES if invalid & _INPUT_BITS[name]],
        }
        if clear:
            ov.zero_()
            self._nacon_peak.zero_()
            self._nefc_peak.zero_()
            self._invalid_inputs.zero_()
        return report

    @property
    def warp_model(self) -> Any:
        """Return the ``mujoco_warp.Model`` (advanced use: benchmarks, extra randomization)."""
        return self._m

    @property
    def warp_data(self) -> Any:
        """Return the ``mujoco_warp.Data`` (advanced use: benchmarks, extra sensors)."""
        return self._d

    @property
    def warp_stream(self) -> Optional[Any]:
        """Return the warp stream the backend runs on (None on the CPU)."""
        return self._wp_stream if self._cuda else None
