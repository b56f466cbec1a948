"""
docs/DEPLOYING.md, implemented from the document alone, equals what the policy node runs.

:class:`Deployer` below is an outside deployer's implementation: plain numpy, the contract read
from the ONNX file's metadata with ``onnx`` and ``yaml``, the policy run with onnxruntime. It
imports nothing of ours for its computation. Our packages only produce the reference values
(the observation and effort of ``core.policy_math`` and ``core.controller``, which the node
runs) and the random states.

Two deliberately wrong deployers show that the comparison can fail: one puts the gait clock's
cos before its sin, one feeds world-frame base velocities.
"""

import math
from pathlib import Path
import re
from typing import Any, Dict, List, Tuple

from humanoid_rl_ros.core import policy_math
from humanoid_rl_ros.core.contract import read_contract
from humanoid_rl_ros.core.controller import Controller, ControllerConfig, ControllerState
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
import numpy as np
import onnx
import onnxruntime
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ONNX_PATH = REPO / 'models' / 'humanoid_walk.onnx'
EXAMPLE_ONNX_PATH = REPO / 'models' / 'humanoid_walk_base_vel.onnx'
"""The policy whose numbers docs/DEPLOYING.md quotes (it observes every term)."""
DOC_PATH = REPO / 'docs' / 'DEPLOYING.md'

pytestmark = pytest.mark.skipif(not (ONNX_PATH.is_file() and EXAMPLE_ONNX_PATH.is_file()),
                                reason='no shipped policies')

VARIANTS = ('as_documented', 'cos_before_sin', 'world_frame_velocity')
"""The documented deployer and two deliberately wrong ones."""


# ----------------------------------------------------------------------------- the deployer
# Everything from here to the tests follows docs/DEPLOYING.md, section by section.


def load_contract(onnx_path: Path) -> Dict[str, Any]:
    """Return the contract: YAML text under the key humanoid_rl_ros.contract (section 1)."""
    model = onnx.load(str(onnx_path))
    text = {p.key: p.value for p in model.metadata_props}['humanoid_rl_ros.contract']
    return yaml.safe_load(text)


def rotation_body_to_world(quat_wxyz: np.ndarray) -> np.ndarray:
    """Return R (body -> world) of a unit quaternion (w, x, y, z)."""
    w, x, y, z = np.asarray(quat_wxyz, dtype=np.float64) / np.linalg.norm(quat_wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


class Deployer:
    """An outside deployer's observation, action and PD code, from docs/DEPLOYING.md."""

    def __init__(self, onnx_path: Path, variant: str = 'as_documented') -> None:
        """Read the contract from the ONNX file and open the policy."""
        c = load_contract(onnx_path)
        self.variant = variant
        joints = c['joints']
        self.names = list(joints['names'])
        self.default = np.array(joints['default_pos_rad'])
        self.action_scale = np.array(joints['action_scale_rad'])
        self.kp = np.array(joints['kp_nm_per_rad'])
        self.kd = np.array(joints['kd_nms_per_rad'])
        self.effort_limit = np.array(joints['effort_limit_nm'])
        self.physics_dt = c['timing']['physics_dt_s']
        self.decimation = c['timing']['decimation']
        self.policy_dt = self.physics_dt * self.decimation
        obs = c['observation']
        self.terms = [(t['name'], t['size'], np.array(t['scale'])) for t in obs['terms']]
        self.obs_clip = obs['clip']
        self.period = obs['gait_clock']['period_s'] if 'gait_clock' in obs else None
        self.action_clip = c['action']['clip']
        cmd = c['commands']
        self.cmd_low = np.array([cmd['lin_vel_x_m_s'][0], cmd['lin_vel_y_m_s'][0],
                                 cmd['ang_vel_z_rad_s'][0]])
        self.cmd_high = np.array([cmd['lin_vel_x_m_s'][1], cmd['lin_vel_y_m_s'][1],
                                  cmd['ang_vel_z_rad_s'][1]])
        self.input_name = c['onnx']['input']['name']
        self.output_name = c['onnx']['output']['name']
        self.session = onnxruntime.InferenceSession(str(onnx_path),
                                                    providers=['CPUExecutionProvider'])
        self.reset()

    def reset(self) -> None:
        """Start walking: policy step 0, last action zero."""
        self.step_index = 0
        self.last_action = np.zeros(len(self.names))
        self.q_target = self.default.copy()

    def clock(self, step_index: int) -> np.ndarray:
        """Return the gait clock features of policy step ``step_index``: [sin, cos]."""
        phase = (step_index * self.policy_dt / self.period) % 1.0
        features = [math.sin(2 * math.pi * phase), math.cos(2 * math.pi * phase)]
        return np.array(features[::-1] if self.variant == 'cos_before_sin' else features)

    def raw_terms(self, state: Dict[str, Any], step_index: int,
                  last_action: np.ndarray) -> Dict[str, np.ndarray]:
        """Return each term's raw value from what the robot measures (sections 3 and 4)."""
        R = rotation_body_to_world(state['quat_wxyz'])
        lin_vel = np.asarray(state['lin_vel_body_m_s'], dtype=np.float64)
        ang_vel = np.asarray(state['ang_vel_body_rad_s'], dtype=np.float64)
        if self.variant == 'world_frame_velocity':
            lin_vel, ang_vel = R @ lin_vel, R @ ang_vel
        command = np.clip(np.asarray(state['command'], dtype=np.float64), self.cmd_low,
                          self.cmd_high)
        raw = {
            'base_lin_vel': lin_vel,
            'base_ang_vel': ang_vel,
            'projected_gravity': R.T @ np.array([0.0, 0.0, -1.0]),
            'velocity_command': command,
            'joint_pos': np.asarray(state['q'], dtype=np.float64) - self.default,
            'joint_vel': np.asarray(state['qd'], dtype=np.float64),
            'last_action': last_action,
        }
        if self.period is not None:
            raw['gait_phase'] = self.clock(step_index)
        return raw

    def observation(self, state: Dict[str, Any], step_index: int,
                    last_action: np.ndarray) -> np.ndarray:
        """Scale each term, concatenate in the contract's order, clip; float32 (section 4)."""
        raw = self.raw_terms(state, step_index, last_action)
        obs = np.concatenate([raw[name] * scale for name, _, scale in self.terms])
        return np.clip(obs, -self.obs_clip, self.obs_clip).astype(np.float32)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Run the ONNX graph on one observation [1, obs_dim] (section 5)."""
        out = self.session.run([self.output_name], {self.input_name: obs[None, :]})[0]
        return out[0].astype(np.float64)

    def policy_step(self, state: Dict[str, Any]) -> Tuple[np.ndarray, np.ndarray]:
        """Run a policy step: observation, action, clip, joint targets (sections 4, 5)."""
        obs = self.observation(state, self.step_index, self.last_action)
        action = self.act(obs)
        clipped = np.clip(action, -self.action_clip, self.action_clip)
        self.last_action = clipped
        self.q_target = self.default + self.action_scale * clipped
        self.step_index += 1
        return obs, action

    def effort(self, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        """Return the PD effort from the newest joint state and targets (section 5)."""
        effort = self.kp * (self.q_target - q) - self.kd * qd
        return np.clip(effort, -self.effort_limit, self.effort_limit)

    def tick(self, tick_index: int, state: Dict[str, Any]) -> Tuple[Any, np.ndarray]:
        """Run a physics tick: a policy step every ``decimation`` ticks, PD always (section 2)."""
        obs = None
        if tick_index % self.decimation == 0:
            obs, _ = self.policy_step(state)
        return obs, self.effort(np.asarray(state['q']), np.asarray(state['qd']))


# ----------------------------------------------------------------------------- random states


def random_state(rng: np.random.Generator, contract: Any) -> Dict[str, Any]:
    """Return a random measured state: tilted up to ~0.35 rad, any heading, moving."""
    axis = rng.normal(size=3)
    axis[2] = 0.0
    axis /= np.linalg.norm(axis)
    tilt = rng.uniform(0.05, 0.35)
    yaw = rng.uniform(-math.pi, math.pi)
    q_tilt = np.array([math.cos(tilt / 2), *(math.sin(tilt / 2) * axis)])
    q_yaw = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
    w1, x1, y1, z1 = q_yaw
    w2, x2, y2, z2 = q_tilt
    quat = np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])
    low, high = (np.array(b) for b in contract.commands.as_bounds())
    n = contract.num_joints
    return {
        'quat_wxyz': quat,
        'lin_vel_body_m_s': rng.uniform(-0.6, 0.6, 3),
        'ang_vel_body_rad_s': rng.uniform(-1.0, 1.0, 3),
        'command': rng.uniform(low - 0.2, high + 0.2),  # a little outside: clamped
        'q': np.asarray(contract.default_pos_rad) + rng.uniform(-0.2, 0.2, n),
        'qd': rng.uniform(-3.0, 3.0, n),
    }


def reference_observation(contract: Any, state: Dict[str, Any], phase: float,
                          last_action: np.ndarray) -> np.ndarray:
    """Return the observation core.policy_math builds (what the controller feeds the policy)."""
    low, high = contract.commands.as_bounds()
    inputs = policy_math.observation_inputs(
        base_quat_wxyz=state['quat_wxyz'], base_lin_vel_body_m_s=state['lin_vel_body_m_s'],
        base_ang_vel_body_rad_s=state['ang_vel_body_rad_s'],
        command=np.clip(state['command'], low, high), joint_pos_rad=state['q'],
        default_joint_pos_rad=np.asarray(contract.default_pos_rad), joint_vel_rad_s=state['qd'],
        last_action=last_action, gait_phase=np.float64(phase))
    obs = policy_math.build_observation(contract.obs_terms, inputs, clip=contract.obs_clip)
    return np.asarray(obs, dtype=np.float32)


def reference_effort(contract: Any, action: np.ndarray, q: np.ndarray,
                     qd: np.ndarray) -> np.ndarray:
    """Return the effort core.policy_math computes from a raw action at a joint state."""
    target = policy_math.action_to_joint_targets(
        action, np.asarray(contract.default_pos_rad), np.asarray(contract.action_scale_rad),
        contract.action_clip)
    return policy_math.pd_effort(target, q, qd, np.asarray(contract.kp_nm_per_rad),
                                 np.asarray(contract.kd_nms_per_rad),
                                 np.asarray(contract.effort_limit_nm))


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize('variant', VARIANTS)
def test_the_documented_math_equals_policy_math_on_random_states(variant):
    """Observation and effort of the deployer against core.policy_math, 50 random states."""
    contract = read_contract(ONNX_PATH)
    deployer = Deployer(ONNX_PATH, variant)
    rng = np.random.default_rng(7)
    obs_match, effort_match, sin_is_cos = [], [], []
    for _ in range(50):
        state = random_state(rng, contract)
        step_index = int(rng.integers(0, 1000))
        last_action = np.clip(rng.normal(0.0, 2.0, contract.action_dim), -100.0, 100.0)
        phase = (step_index * contract.policy_dt_s / contract.gait_period_s) % 1.0
        sin_is_cos.append(abs(math.sin(2 * math.pi * phase) - math.cos(2 * math.pi * phase))
                          < 1e-6)
        mine = deployer.observation(state, step_index, last_action)
        ref = reference_observation(contract, state, phase, last_action)
        obs_match.append(np.allclose(mine, ref, rtol=0.0, atol=1e-5))
        action = rng.normal(0.0, 1.5, contract.action_dim)
        deployer.q_target = deployer.default + deployer.action_scale * np.clip(
            action, -deployer.action_clip, deployer.action_clip)
        effort = deployer.effort(state['q'], state['qd'])
        effort_match.append(np.allclose(effort, reference_effort(contract, action, state['q'],
                                                                 state['qd']),
                                        rtol=0.0, atol=1e-9))
    assert all(effort_match)  # the action and PD math does not depend on the variant
    if variant == 'as_documented':
        assert all(obs_match)
    else:
        # the swapped clock passes only where sin = cos (phase 1/8 or 5/8 of a cycle), the
        # world-frame velocities never (every state is tilted and turned)
        expected = sin_is_cos if variant == 'cos_before_sin' else [False] * len(obs_match)
        assert obs_match == expected, f'{variant}: the wrong deployer matched'
        assert not all(obs_match)


def _controller(contract: Any, runtime: PolicyRuntime, seen: List[np.ndarray]) -> Controller:
    def policy(obs: np.ndarray) -> np.ndarray:
        seen.append(np.array(obs, dtype=np.float32))
        return runtime.act(obs)
    return Controller(contract, policy, ControllerConfig(stand_ramp_s=0.0))


def _feed(controller: Controller, contract: Any, state: Dict[str, Any], now_s: float) -> None:
    controller.update_joint_state(contract.joint_names, state['q'], state['qd'], now_s)
    controller.update_odom(state['quat_wxyz'], state['lin_vel_body_m_s'],
                           state['ang_vel_body_rad_s'], now_s)
    controller.update_cmd_vel(*state['command'], now_s)


@pytest.mark.parametrize('variant', VARIANTS)
def test_the_documented_deployer_equals_the_node_controller(variant):
    """
    Tick by tick against core.controller (the node's logic) with the shipped contract.

    Every physics tick gets a new random state; the policy runs every ``decimation`` ticks.
    The documented deployer's observations and efforts equal the controller's; a wrong one's
    observations and, through the policy, its efforts differ.
    """
    runtime = PolicyRuntime.load(ONNX_PATH)
    contract = runtime.contract
    seen: List[np.ndarray] = []
    controller = _controller(contract, runtime, seen)
    deployer = Deployer(ONNX_PATH, variant)
    rng = np.random.default_rng(11)
    dt = contract.physics_dt_s
    now = 1.0
    state = random_state(rng, contract)
    _feed(controller, contract, state, now)
    controller.activate(now)
    assert controller.request_walk(now)[0]
    mine_obs, mine_effort, node_effort = [], [], []
    for tick in range(6 * contract.decimation):
        now += dt
        state = random_state(rng, contract)
        _feed(controller, contract, state, now)
        effort = controller.step(now)
        if tick == 0:
            assert controller.state is ControllerState.WALKING
            deployer.reset()
        obs, my_effort = deployer.tick(tick, state)
        if obs is not None:
            mine_obs.append(obs)
        mine_effort.append(my_effort)
        node_effort.append(effort)
    assert controller.state is ControllerState.WALKING and len(seen) == len(mine_obs) == 6
    obs_close = [np.allclose(a, b, rtol=0.0, atol=1e-5) for a, b in zip(mine_obs, seen)]
    effort_close = [np.allclose(a, b, rtol=0.0, atol=1e-3)
                    for a, b in zip(mine_effort, node_effort)]
    if variant == 'as_documented':
        assert all(obs_close) and all(effort_close)
    else:
        assert not any(obs_close), f'{variant}: the wrong observation matched'
        assert not all(effort_close), f'{variant}: the wrong efforts matched'


# ----------------------------------------------------------------------------- the document


def example_state(deployer: Deployer) -> Dict[str, Any]:
    """Return the worked example's state (docs/DEPLOYING.md, 'A worked example')."""
    pitch = 0.1
    quat = np.array([math.cos(pitch / 2), 0.0, math.sin(pitch / 2), 0.0])
    R = rotation_body_to_world(quat)
    q = deployer.default.copy()
    qd = np.zeros(len(deployer.names))
    q[deployer.names.index('left_knee_joint')] = 0.5
    qd[deployer.names.index('left_knee_joint')] = 1.0
    q[deployer.names.index('right_hip_pitch_joint')] = -0.3
    qd[deployer.names.index('right_hip_pitch_joint')] = -0.5
    return {
        'quat_wxyz': quat,
        'lin_vel_body_m_s': R.T @ np.array([0.4, 0.05, 0.0]),
        'ang_vel_body_rad_s': np.array([0.1, -0.2, 0.05]),
        'command': np.array([0.5, 0.0, 0.2]),
        'q': q,
        'qd': qd,
    }


def _numbers(text: str) -> List[float]:
    return [float(v) for v in re.findall(r'-?\d+\.\d+', text)]


def _doc_block(marker: str) -> str:
    text = DOC_PATH.read_text()
    match = re.search(rf'<!-- {marker} -->\n```text\n(.*?)```', text, re.S)
    assert match, f'{DOC_PATH} lacks the {marker} block'
    return match.group(1)


def test_the_worked_example_in_the_document_is_right():
    """The numbers printed in docs/DEPLOYING.md are what the deployer computes."""
    deployer = Deployer(EXAMPLE_ONNX_PATH)
    state = example_state(deployer)
    obs, action = deployer.policy_step(state)
    effort = deployer.effort(state['q'], state['qd'])
    np.testing.assert_allclose(_numbers(_doc_block('example-observation')), obs,
                               rtol=0.0, atol=6e-5)
    rows = [line for line in _doc_block('example-joints').splitlines()
            if line.split() and line.split()[0] in deployer.names]
    assert [row.split()[0] for row in rows] == deployer.names
    table = np.array([_numbers(row) for row in rows])
    np.testing.assert_allclose(table[:, 0], state['q'], atol=6e-5)
    np.testing.assert_allclose(table[:, 1], state['qd'], atol=6e-5)
    np.testing.assert_allclose(table[:, 2], action, atol=2e-4)
    np.testing.assert_allclose(table[:, 3], deployer.q_target, atol=2e-4)
    np.testing.assert_allclose(table[:, 4], effort, atol=2e-2)
    # the documented deployer is the node's math on this state too
    contract = read_contract(EXAMPLE_ONNX_PATH)
    np.testing.assert_allclose(obs, reference_observation(contract, state, 0.0,
                                                          np.zeros(contract.action_dim)),
                               atol=1e-6)
