"""
Simulator-agnostic interface of a batched physics backend used by the training env.

A backend simulates ``num_envs`` worlds of one robot on one device.  All state is exposed as
torch tensors on ``device`` that are updated *in place* by :meth:`SimBackend.step` and
:meth:`SimBackend.reset_masked` (zero-copy views of simulator memory where the simulator allows
it), so the env can keep references to them.  The control inputs are persistent buffers that
the env writes in place (``backend.q_target.copy_(...)``); a CUDA graph captured by a backend
reads them from fixed addresses, so they can never be rebound.

Conventions (the same as ``humanoid_rl_ros.robot.mujoco_model.build_mujoco_model``):

- quaternions are ``wxyz``; positions in the world frame [m];
- ``base_lin_vel_world`` is the base linear velocity in the WORLD frame [m/s] and
  ``base_ang_vel_body`` the base angular velocity in the BODY frame [rad/s] (MuJoCo's free
  joint ``qvel`` convention);
- joints are in POLICY order (``robot.joint_names``), angles [rad], velocities [rad/s],
  efforts [N*m].
"""

from abc import ABC, abstractmethod
import contextlib
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from humanoid_rl_ros.core.policy_math import pd_effort
import torch


class BackendUnavailableError(ImportError):
    """A backend's simulator package is not installed or cannot run here."""


class SimOverflowError(RuntimeError):
    """The simulator's contact or constraint buffers overflowed: the physics is wrong."""


def raise_if_overflow(report: Dict[str, Any]) -> None:
    """
    Raise :class:`SimOverflowError` if ``report`` says buffers overflowed.

    Also raises ValueError when it lists invalid backend inputs (``'invalid_inputs'``).

    ``report`` is the dict returned by :meth:`SimBackend.check_overflow`.
    """
    if report.get('invalid_inputs'):
        raise ValueError(f'invalid values were passed to the backend: {report["invalid_inputs"]}')
    if report.get('overflow'):
        raise SimOverflowError(
            'simulator buffer overflow (physics of the affected worlds is wrong): '
            f'{report}. Increase the backend nconmax/njmax.')


class SimBackend(ABC):
    """
    Batched physics of ``num_envs`` worlds of one robot, state as torch tensors.

    Attributes set by every backend:

    - ``robot``: the ``humanoid_rl_ros.robot.RobotConfig`` simulated;
    - ``num_envs`` (N), ``num_joints`` (J), ``num_feet`` (F): ints;
    - ``device``: ``torch.device`` of every tensor below;
    - ``physics_dt_s``: physics time step [s].

    State, float32, updated in place by ``step``/``reset_masked`` (do not write them directly;
    use ``reset_masked``):

    - ``base_pos`` [N, 3] world position of the base link [m];
    - ``base_quat`` [N, 4] base orientation, wxyz;
    - ``base_lin_vel_world`` [N, 3] base linear velocity, world frame [m/s];
    - ``base_ang_vel_body`` [N, 3] base angular velocity, body frame [rad/s];
    - ``joint_pos`` [N, J] [rad] and ``joint_vel`` [N, J] [rad/s], policy order;
    - ``foot_pos`` [N, F, 3] world position of each foot link's frame origin [m], in
      ``robot.foot_links`` order;
    - ``foot_contact_force`` [N, F] normal contact force on each foot [N] (sum over that
      foot's contacts), from the last physics substep;
    - ``last_effort`` [N, J] joint efforts applied on the last physics substep [N*m].

    Control inputs (persistent [N, J] float32 buffers; write them in place):
    ``q_target`` [rad], ``kp`` [N*m/rad], ``kd`` [N*m*s/rad], ``effort_limit`` [N*m] (already
    scaled by any motor-strength randomization).  They start at the robot's default pose,
    gains and limits.
    """

    robot: Any
    num_envs: int
    num_joints: int
    num_feet: int
    device: torch.device
    physics_dt_s: float

    base_pos: torch.Tensor
    base_quat: torch.Tensor
    base_lin_vel_world: torch.Tensor
    base_ang_vel_body: torch.Tensor
    joint_pos: torch.Tensor
    joint_vel: torch.Tensor
    foot_pos: torch.Tensor
    foot_contact_force: torch.Tensor
    last_effort: torch.Tensor

    # ---- control buffers (read-only attributes: the tensors are written in place) ----

    def _init_control_buffers(self) -> None:
        """Allocate the control buffers from the robot config (call from ``__init__``)."""
        def rows(values: Any) -> torch.Tensor:
            row = torch.as_tensor(values, dtype=torch.float32, device=self.device)
            return row.reshape(1, -1).repeat(self.num_envs, 1).contiguous()

        self._q_target = rows(self.robot.default_pos_rad)
        self._kp = rows(self.robot.kp_nm_per_rad)
        self._kd = rows(self.robot.kd_nms_per_rad)
        self._effort_limit = rows(self.robot.effort_limit_nm)

    @property
    def q_target(self) -> torch.Tensor:
        """Return the joint position target buffer [N, J] [rad] (write in place)."""
        return self._q_target

    @property
    def kp(self) -> torch.Tensor:
        """Return the proportional gain buffer [N, J] [N*m/rad] (write in place)."""
        return self._kp

    @property
    def kd(self) -> torch.Tensor:
        """Return the derivative gain buffer [N, J] [N*m*s/rad] (write in place)."""
        return self._kd

    @property
    def effort_limit(self) -> torch.Tensor:
        """Return the effort limit buffer [N, J] [N*m] (write in place)."""
        return self._effort_limit

    def compute_effort(self, q_target: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Return the PD effort [N, J] for the current state and control buffers.

        ``q_target`` replaces the ``q_target`` buffer (e.g. a delayed target).  Uses the shared
        ``humanoid_rl_ros.core.policy_math.pd_effort`` (the node's definition).
        """
        target = self._q_target if q_target is None else q_target
        return pd_effort(target, self.joint_pos, self.joint_vel,
                         self._kp, self._kd, self._effort_limit)

    # ---- the interface ----

    @abstractmethod
    def step(self, decimation: int) -> None:
        """
        Run ``decimation`` physics steps with the PD law recomputed before each one.

        Before every physics step the effort ``pd_effort(q_target, joint_pos, joint_vel, kp,
        kd, effort_limit)`` is applied.  On return every state tensor is up to date.
        """

    @abstractmethod
    def reset_masked(self, mask: torch.Tensor, base_pos: torch.Tensor,
                     base_quat: torch.Tensor, base_lin_vel_world: torch.Tensor,
                     base_ang_vel_body: torch.Tensor, joint_pos: torch.Tensor,
                     joint_vel: torch.Tensor) -> None:
        """
        Set the state of the worlds where ``mask`` (bool [N]) is True; others are untouched.

        Every input has the full batch shape and only the masked rows are used:
        ``base_pos`` [N, 3], ``base_quat`` [N, 4] wxyz (normalized here),
        ``base_lin_vel_world`` [N, 3], ``base_ang_vel_body`` [N, 3], ``joint_pos`` [N, J],
        ``joint_vel`` [N, J].  Derived views (``foot_pos``...) are recomputed; solver warm
        starts and ``last_effort`` of those worlds are cleared.  A backend that supports graph
        capture does this with fixed shapes and no host sync.
        """

    @abstractmethod
    def check_overflow(self, clear: bool = True) -> Dict[str, Any]:
        """
        Read the simulator's overflow counters (one device-to-host sync).

        Returns a dict whose key ``'overflow'`` (bool) is True when any buffer overflowed
        since the last cleared check (physics is then wrong); other keys are
        backend-specific diagnostics.  Pass the dict to :func:`raise_if_overflow` to raise.
        """

    def overflowed_worlds(self) -> Optional[torch.Tensor]:
        """
        Return the worlds whose buffers overflowed since the last cleared check (bool [N]).

        None when the backend cannot tell which worlds (then an overflow is never tolerated,
        see ``EnvConfig.overflow_tolerance``).  Read it before :meth:`check_overflow` clears.
        """
        return None

    def set_friction_masked(self, mask: torch.Tensor, friction: torch.Tensor) -> None:
        """Set the sliding friction of the worlds where ``mask`` is True to ``friction`` [N]."""
        raise NotImplementedError(f'{type(self).__name__} does not randomize friction')

    def set_base_mass_offset_masked(self, mask: torch.Tensor, delta_kg: torch.Tensor) -> None:
        """Set the added base mass of the worlds where ``mask`` is True to ``delta_kg`` [N]."""
        raise NotImplementedError(f'{type(self).__name__} does not randomize base mass')

    # ---- optional randomization (default: NotImplementedError; the env switches it off) ----

    num_links: int = 0
    """Number of robot bodies whose masses :meth:`set_link_mass_scale_masked` scales."""

    def set_link_mass_scale_masked(self, mask: torch.Tensor, scale: torch.Tensor) -> None:
        """Scale the mass and inertia of every robot body by ``scale`` [N, num_links]."""
        raise NotImplementedError(f'{type(self).__name__} does not randomize link masses')

    def set_base_com_offset_masked(self, mask: torch.Tensor, offset_m: torch.Tensor) -> None:
        """Move the base's centre of mass by ``offset_m`` [N, 3] in the base frame [m]."""
        raise NotImplementedError(f'{type(self).__name__} does not randomize the base CoM')

    def set_joint_dynamics_masked(self, mask: torch.Tensor,
                                  armature_scale: Optional[torch.Tensor] = None,
                                  frictionloss_nm: Optional[torch.Tensor] = None,
                                  damping_nms_per_rad: Optional[torch.Tensor] = None) -> None:
        """
        Set per-joint rotor inertia, dry friction and viscous damping of the masked worlds.

        Each argument is [N, J] in policy order, or None to leave it: ``armature_scale``
        multiplies the nominal armature [kg m^2]; ``frictionloss_nm`` [N*m] and
        ``damping_nms_per_rad`` [N*m*s/rad] replace the joints' values.
        """
        raise NotImplementedError(f'{type(self).__name__} does not randomize joint dynamics')

    def enable_latency(self, max_action_delay_steps: int, max_obs_delay_steps: int) -> None:
        """
        Allocate per-world action and observation delays, counted in physics steps.

        Afterwards the PD law of each world uses its target ``action_delay_steps`` physics
        steps late and :meth:`delayed_state` returns its state ``obs_delay_steps`` physics
        steps old (see :mod:`training.backends.latency`).  Delays start at 0.
        """
        raise NotImplementedError(f'{type(self).__name__} does not simulate latency')

    def set_latency_masked(self, mask: torch.Tensor, action_delay_steps: torch.Tensor,
                           obs_delay_steps: torch.Tensor) -> None:
        """Set the delays [N] (integers, physics steps) of the masked worlds."""
        raise NotImplementedError(f'{type(self).__name__} does not simulate latency')

    def delayed_state(self) -> Dict[str, torch.Tensor]:
        """
        Return the measured state ``obs_delay_steps`` physics steps ago, per world.

        Keys: ``base_quat`` [N, 4] wxyz, ``base_lin_vel_world`` [N, 3],
        ``base_ang_vel_body`` [N, 3], ``joint_pos`` [N, J], ``joint_vel`` [N, J]; the tensors
        are persistent buffers overwritten by the next call.
        """
        raise NotImplementedError(f'{type(self).__name__} does not simulate latency')

    def close(self) -> None:
        """Release simulator resources (default: nothing to do)."""

    def sim_stream(self) -> Any:
        """
        Return a context manager running torch (and the simulator) on the backend's stream.

        Code that is captured with :meth:`capture_graph`, and the inputs it reads, must run in
        it.  Default: a no-op context.
        """
        return contextlib.nullcontext()

    def substeps(self, decimation: int) -> None:
        """
        Run the body of :meth:`step` so that it can be captured inside a caller's graph.

        Call it inside :meth:`sim_stream`.  Default: :meth:`step`.
        """
        self.step(decimation)

    def capture_graph(self, fn: Callable[[], None]) -> Optional[Callable[[], None]]:
        """
        Record ``fn`` (torch and simulator work, no host syncs) into a CUDA graph.

        ``fn`` is NOT executed by the capture: the caller runs it eagerly once before (the
        warm-up) inside :meth:`graph_memory`.  Returns a callable that replays the graph
        (call it inside :meth:`sim_stream`), or None when this backend or device cannot
        capture (the caller then keeps running ``fn`` eagerly).  Default: None.
        """
        return None

    @contextlib.contextmanager
    def graph_memory(self) -> Iterator[None]:
        """Route torch allocations to the memory pool of captured graphs (default: no-op)."""
        yield

    # ---- helpers for subclasses ----

    def _rows(self, name: str, value: Any, count: int, width: int) -> torch.Tensor:
        """Return ``value`` as float32 [count, width] on ``device`` or raise naming ``name``."""
        t = torch.as_tensor(value, dtype=torch.float32, device=self.device)
        if t.shape != (count, width):
            raise ValueError(f'{name} must have shape ({count}, {width}), got {tuple(t.shape)}')
        return t

    def _reset_rows(self, base_pos: Any, base_quat: Any, base_lin_vel_world: Any,
                    base_ang_vel_body: Any, joint_pos: Any,
                    joint_vel: Any) -> Tuple[torch.Tensor, ...]:
        """
        Return the state arguments of :meth:`reset_masked` checked by :meth:`_rows`.

        In order: pos [n, 3] [m], quat_wxyz [n, 4], lin_vel_world [n, 3] [m/s],
        ang_vel_body [n, 3] [rad/s], joint_pos [n, nj] [rad], joint_vel [n, nj] [rad/s].
        """
        n, nj = self.num_envs, self.num_joints
        return (self._rows('base_pos', base_pos, n, 3),
                self._rows('base_quat', base_quat, n, 4),
                self._rows('base_lin_vel_world', base_lin_vel_world, n, 3),
                self._rows('base_ang_vel_body', base_ang_vel_body, n, 3),
                self._rows('joint_pos', joint_pos, n, nj),
                self._rows('joint_vel', joint_vel, n, nj))

    def _per_env(self, name: str, value: Any, count: int) -> torch.Tensor:
        """Return a scalar or [count] ``value`` as float32 [count] on ``device``."""
        t = torch.as_tensor(value, dtype=torch.float32, device=self.device)
        if t.dim() == 0:
            return t.expand(count)
        if t.shape != (count,):
            raise ValueError(f'{name} must be a scalar or have shape ({count},), '
                             f'got {tuple(t.shape)}')
        return t
