"""
A stand-in for the few ``isaacgym`` calls the Isaac Gym backend makes, for wiring tests.

It models Isaac Gym's documented tensor semantics, not its physics: the simulator keeps its own
state (``FakeSim.root`` [actors, 13] with positions in the sim frame, quaternions xyzw and both
velocities in the world frame; ``FakeSim.dof`` [actors * dofs, 2]); the tensors handed out by
``acquire_*_tensor`` are separate buffers that ``refresh_*`` fills from that state, and the
``set_*`` calls copy buffer rows (all, or the int32 indices given) into it.  ``simulate``
integrates unit-inertia DOFs under the actuation forces and moves the roots by their
velocities.  Every call is recorded in ``FakeGym.calls``.  The DOFs of the asset are the
robot's joints in reverse (not policy) order plus one unactuated DOF; the bodies are the base,
the feet and one more body.
"""

from types import ModuleType, SimpleNamespace
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

DOF_MODE_EFFORT = 3
EXTRA_DOF = 'head_pan_joint'
EXTRA_BODY = 'head'


class Vec3:
    """gymapi.Vec3."""

    def __init__(self, x: float = 0.0, y: float = 0.0, z: float = 0.0) -> None:
        """Hold the three components."""
        self.x, self.y, self.z = x, y, z


class Tensor:
    """gymapi.Tensor: here, a holder of the torch tensor it stands for."""

    def __init__(self, data: torch.Tensor) -> None:
        """Wrap ``data``."""
        self.data = data


def _attrs() -> SimpleNamespace:
    return SimpleNamespace()


class FakeSim:
    """The simulator's own state (see the module doc)."""

    def __init__(self, dt: float) -> None:
        """Start empty."""
        self.dt = dt
        self.envs: List[SimpleNamespace] = []
        self.dof_names: List[str] = []
        self.body_names: List[str] = []


class FakeGym:
    """gymapi.Gym for one sim of one asset (see the module doc)."""

    def __init__(self, robot: Any) -> None:
        """Describe ``robot``'s asset as Isaac Gym would load it (DOFs depth-first)."""
        self.robot = robot
        self.calls: List[Tuple[str, Any]] = []
        self.sim: Any = None

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    # ---- sim, asset, envs ----
    def create_sim(self, compute: int, graphics: int, kind: Any, params: Any) -> FakeSim:
        """Create the sim."""
        self._call('create_sim', compute, graphics, params.use_gpu_pipeline)
        self.sim = FakeSim(params.dt)
        return self.sim

    def add_ground(self, sim: FakeSim, plane: Any) -> None:
        """Record the ground plane."""
        self._call('add_ground')

    def load_asset(self, sim: FakeSim, root: str, filename: str, options: Any) -> str:
        """Load the robot's URDF (names only)."""
        self._call('load_asset', root, filename, options.default_dof_drive_mode)
        sim.dof_names = list(reversed(self.robot.joint_names)) + [EXTRA_DOF]
        sim.body_names = [self.robot.base_link, *self.robot.foot_links, EXTRA_BODY]
        return 'asset'

    def get_asset_dof_names(self, asset: str) -> List[str]:
        """Return the DOF names, depth-first (here: the joints reversed, plus one)."""
        return list(self.sim.dof_names)

    def get_asset_rigid_body_names(self, asset: str) -> List[str]:
        """Return the body names."""
        return list(self.sim.body_names)

    def get_asset_dof_properties(self, asset: str) -> np.ndarray:
        """Return the DOF property array (the fields the backend sets)."""
        fields = [('driveMode', np.int32)] + [(f, np.float32) for f in (
            'stiffness', 'damping', 'effort', 'armature')]
        props = np.zeros(len(self.sim.dof_names), dtype=fields)
        props['stiffness'] = 100.0  # what a URDF drive would bring; the backend must zero it
        return props

    def create_env(self, sim: FakeSim, lower: Vec3, upper: Vec3, per_row: int) -> int:
        """Create env i with its origin on a grid of spacing upper.x - lower.x."""
        i = len(sim.envs)
        spacing = upper.x - lower.x
        sim.envs.append(SimpleNamespace(origin=Vec3(spacing * (i % per_row),
                                                    spacing * (i // per_row), 0.0),
                                        dof_props=None, friction=1.0, base_mass=10.0))
        return i

    def create_actor(self, env: int, asset: str, pose: Any, name: str, group: int,
                     collision_filter: int, segmentation: int) -> int:
        """Create the env's one actor (handle 0 within its env)."""
        self._call('create_actor', env, group, collision_filter)
        return 0

    def set_actor_dof_properties(self, env: int, actor: int, props: np.ndarray) -> None:
        """Keep a copy of the DOF properties of env ``env``."""
        self.sim.envs[env].dof_props = props.copy()

    def get_actor_rigid_body_properties(self, env: int, actor: int) -> List[SimpleNamespace]:
        """Return the body properties (the base first)."""
        e = self.sim.envs[env]
        return [SimpleNamespace(mass=e.base_mass)] + [SimpleNamespace(mass=1.0)
                                                      for _ in self.sim.body_names[1:]]

    def set_actor_rigid_body_properties(self, env: int, actor: int, props: List[Any],
                                        recompute_inertia: bool) -> None:
        """Store the base mass."""
        self.sim.envs[env].base_mass = props[0].mass

    def get_actor_rigid_shape_properties(self, env: int, actor: int) -> List[SimpleNamespace]:
        """Return two shapes with the env's friction."""
        return [SimpleNamespace(friction=self.sim.envs[env].friction) for _ in range(2)]

    def set_actor_rigid_shape_properties(self, env: int, actor: int, props: List[Any]) -> None:
        """Store the friction (all shapes must agree)."""
        assert len({p.friction for p in props}) == 1
        self.sim.envs[env].friction = props[0].friction

    def get_env_origin(self, env: int) -> Vec3:
        """Return env ``env``'s origin in the sim frame."""
        return self.sim.envs[env].origin

    def prepare_sim(self, sim: FakeSim) -> None:
        """Allocate the state: roots standing at their env origins, DOFs at rest."""
        n, d, b = len(sim.envs), len(sim.dof_names), len(sim.body_names)
        sim.root = torch.zeros(n, 13)
        sim.root[:, 0:3] = torch.tensor([[e.origin.x, e.origin.y, e.origin.z]
                                         for e in sim.envs])
        sim.root[:, 2] += self.robot.nominal_base_height_m
        sim.root[:, 6] = 1.0  # identity quaternion, xyzw
        sim.dof = torch.zeros(n * d, 2)
        sim.torque = torch.zeros(n * d)
        sim.buffers = {'root': torch.zeros(n, 13), 'dof': torch.zeros(n * d, 2),
                       'contact': torch.zeros(n * b, 3), 'bodies': torch.zeros(n * b, 13)}
        self._call('prepare_sim')

    # ---- tensors ----
    def acquire_actor_root_state_tensor(self, sim: FakeSim) -> Tensor:
        """Return the root state buffer."""
        return Tensor(sim.buffers['root'])

    def acquire_dof_state_tensor(self, sim: FakeSim) -> Tensor:
        """Return the DOF state buffer."""
        return Tensor(sim.buffers['dof'])

    def acquire_net_contact_force_tensor(self, sim: FakeSim) -> Tensor:
        """Return the contact force buffer."""
        return Tensor(sim.buffers['contact'])

    def acquire_rigid_body_state_tensor(self, sim: FakeSim) -> Tensor:
        """Return the rigid body state buffer."""
        return Tensor(sim.buffers['bodies'])

    def refresh_actor_root_state_tensor(self, sim: FakeSim) -> None:
        """Copy the roots into their buffer."""
        sim.buffers['root'].copy_(sim.root)

    def refresh_dof_state_tensor(self, sim: FakeSim) -> None:
        """Copy the DOF states into their buffer."""
        sim.buffers['dof'].copy_(sim.dof)

    def refresh_rigid_body_state_tensor(self, sim: FakeSim) -> None:
        """Bodies: each at its root's position plus (0, 0.1 * body index, -0.7)."""
        n, b = sim.root.shape[0], len(sim.body_names)
        bodies = sim.root[:, None, :].repeat(1, b, 1)
        bodies[:, :, 1] += 0.1 * torch.arange(b)
        bodies[:, :, 2] -= 0.7
        sim.buffers['bodies'].copy_(bodies.view(n * b, 13))

    def refresh_net_contact_force_tensor(self, sim: FakeSim) -> None:
        """Contacts: body k pushed up by 100 * k N."""
        n, b = sim.root.shape[0], len(sim.body_names)
        force = torch.zeros(n, b, 3)
        force[:, :, 2] = 100.0 * torch.arange(b)
        sim.buffers['contact'].copy_(force.view(n * b, 3))

    def set_actor_root_state_tensor(self, sim: FakeSim, tensor: Tensor) -> None:
        """Copy every root from ``tensor``."""
        self._call('set_actor_root_state_tensor')
        sim.root.copy_(tensor.data)

    def set_actor_root_state_tensor_indexed(self, sim: FakeSim, tensor: Tensor,
                                            indices: Tensor, count: int) -> None:
        """Copy the roots of actors ``indices[:count]`` (int32) from ``tensor``."""
        ids = indices.data[:count]
        assert ids.dtype == torch.int32
        self._call('set_actor_root_state_tensor_indexed', ids.tolist())
        sim.root[ids.long()] = tensor.data.view(-1, 13)[ids.long()]

    def set_dof_state_tensor_indexed(self, sim: FakeSim, tensor: Tensor, indices: Tensor,
                                     count: int) -> None:
        """Copy the DOF states of actors ``indices[:count]`` (int32) from ``tensor``."""
        ids = indices.data[:count]
        assert ids.dtype == torch.int32
        self._call('set_dof_state_tensor_indexed', ids.tolist())
        n = sim.root.shape[0]
        mine, theirs = sim.dof.view(n, -1, 2), tensor.data.view(n, -1, 2)
        mine[ids.long()] = theirs[ids.long()]

    def set_dof_actuation_force_tensor(self, sim: FakeSim, tensor: Tensor) -> None:
        """Take the actuation forces [actors, dofs] for the next simulate."""
        sim.torque.copy_(tensor.data.reshape(-1))
        self._call('set_dof_actuation_force_tensor', tensor.data.clone())

    def simulate(self, sim: FakeSim) -> None:
        """Unit-inertia DOFs: vel += dt * force, pos += dt * vel; roots move by their velocity."""
        self._call('simulate')
        sim.dof[:, 1] += sim.dt * sim.torque
        sim.dof[:, 0] += sim.dt * sim.dof[:, 1]
        sim.root[:, 0:3] += sim.dt * sim.root[:, 7:10]

    def fetch_results(self, sim: FakeSim, wait: bool) -> None:
        """Record the CPU pipeline's fetch."""
        self._call('fetch_results')

    def destroy_sim(self, sim: FakeSim) -> None:
        """Record the destruction."""
        self._call('destroy_sim')


def _unwrap(t: torch.Tensor) -> Tensor:
    """gymtorch.unwrap_tensor, which refuses non-contiguous tensors."""
    if not t.is_contiguous():
        raise ValueError('Input tensor must be contiguous')
    return Tensor(t)


def fake_isaacgym(robot: Any) -> Tuple[Dict[str, ModuleType], FakeGym]:
    """Return the ``sys.modules`` entries of a fake ``isaacgym`` and its gym."""
    gym = FakeGym(robot)
    gymapi = ModuleType('isaacgym.gymapi')
    physx = _attrs()
    gymapi.__dict__.update(
        acquire_gym=lambda: gym, Vec3=Vec3, UP_AXIS_Z='z', SIM_PHYSX='physx',
        DOF_MODE_EFFORT=DOF_MODE_EFFORT,
        SimParams=lambda: SimpleNamespace(physx=physx), PlaneParams=_attrs,
        AssetOptions=_attrs, Transform=_attrs)
    gymtorch = ModuleType('isaacgym.gymtorch')
    gymtorch.__dict__.update(wrap_tensor=lambda t: t.data, unwrap_tensor=_unwrap)
    package = ModuleType('isaacgym')
    package.__dict__.update(gymapi=gymapi, gymtorch=gymtorch)
    return {'isaacgym': package, 'isaacgym.gymapi': gymapi, 'isaacgym.gymtorch': gymtorch}, gym
