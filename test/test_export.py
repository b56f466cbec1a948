"""ONNX export with the normalizer baked in: onnxruntime matches torch, the contract reads back."""

from humanoid_rl_ros.core.contract import CommandRanges, ObsTermSpec, PolicyContract, read_contract
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from training.export import export_policy, export_random_policy, normalized_contract
from training.ppo import ActorCritic, EmpiricalNormalizer, PolicyConfig

JOINTS = ('hip_joint', 'knee_joint', 'ankle_joint')


def _contract(**kw) -> PolicyContract:
    n = len(JOINTS)
    fields = {
        'robot': 'toy', 'joint_names': JOINTS, 'default_pos_rad': (0.1, -0.2, 0.1),
        'action_scale_rad': (0.25,) * n, 'kp_nm_per_rad': (80.0,) * n,
        'kd_nms_per_rad': (2.0,) * n, 'effort_limit_nm': (100.0, 100.0, 40.0),
        'physics_dt_s': 0.005, 'decimation': 4,
        'obs_terms': (ObsTermSpec('base_ang_vel', 3, (0.25,) * 3),
                      ObsTermSpec('projected_gravity', 3, (1.0,) * 3),
                      ObsTermSpec('velocity_command', 3, (2.0, 2.0, 0.25)),
                      ObsTermSpec('joint_pos', n, (1.0,) * n),
                      ObsTermSpec('joint_vel', n, (0.05,) * n),
                      ObsTermSpec('last_action', n, (1.0,) * n)),
        'commands': CommandRanges((-0.5, 1.0), (-0.3, 0.3), (-1.0, 1.0)),
        'provenance': {'seed': 3, 'iterations': 10, 'metrics': {'mean_reward': 1.5}}}
    fields.update(kw)
    return PolicyContract(**fields)


def test_onnx_matches_torch_and_contract_reads_back(tmp_path):
    torch.manual_seed(0)
    contract = _contract()
    ac = ActorCritic(contract.obs_dim, contract.obs_dim + 4, contract.action_dim,
                     PolicyConfig(actor_hidden_dims=(64, 32), critic_hidden_dims=(16,)))
    norm = EmpiricalNormalizer(contract.obs_dim)
    norm.update(torch.randn(500, contract.obs_dim) * torch.linspace(0.1, 5.0, contract.obs_dim)
                + torch.linspace(-3.0, 3.0, contract.obs_dim))
    onnx_path, contract_path = export_policy(ac.actor, norm, contract, tmp_path / 'models',
                                             'walk', provenance={'backend': 'mjwarp'})
    assert onnx_path == tmp_path / 'models' / 'walk.onnx'
    assert contract_path == tmp_path / 'models' / 'walk.yaml'

    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')) == 17
    session = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ('obs', 'actions')
    assert inp.shape[1] == contract.obs_dim and not isinstance(inp.shape[0], int)
    rng = np.random.default_rng(1)
    for batch in (1, 7, 256):
        obs = rng.normal(0.0, 3.0, size=(batch, contract.obs_dim)).astype(np.float32)
        got = session.run(['actions'], {'obs': obs})[0]
        with torch.no_grad():
            want = ac.act_inference(norm(torch.from_numpy(obs))).numpy()
        assert got.shape == (batch, contract.action_dim)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)

    read = read_contract(contract_path)
    expected = normalized_contract(_contract(
        onnx_file='walk.onnx',
        provenance={'seed': 3, 'iterations': 10, 'metrics': {'mean_reward': 1.5},
                    'backend': 'mjwarp', 'onnx_opset': 17}))
    assert read == expected
    assert read.onnx_path(contract_path) == onnx_path.resolve()


def test_normalizer_is_in_the_graph(tmp_path):
    contract = _contract()
    actor = torch.nn.Sequential(torch.nn.Linear(contract.obs_dim, contract.action_dim))
    norm = EmpiricalNormalizer(contract.obs_dim)
    norm.update(torch.randn(100, contract.obs_dim) + 10.0)
    with_norm, _ = export_policy(actor, norm, contract, tmp_path, 'a')
    without, _ = export_policy(actor, None, contract, tmp_path, 'b')
    obs = np.full((1, contract.obs_dim), 10.0, dtype=np.float32)
    run = [ort.InferenceSession(str(p)).run(None, {'obs': obs})[0] for p in (with_norm, without)]
    assert not np.allclose(run[0], run[1], atol=1e-3)


def test_wrong_sizes_are_named(tmp_path):
    contract = _contract()
    with pytest.raises(ValueError, match='obs_dim'):
        export_policy(torch.nn.Linear(contract.obs_dim + 1, 3), None, contract, tmp_path, 'x')
    with pytest.raises(ValueError, match='action_dim'):
        export_policy(torch.nn.Linear(contract.obs_dim, 4), None, contract, tmp_path, 'x')
    with pytest.raises(ValueError, match='name'):
        export_policy(torch.nn.Linear(contract.obs_dim, 3), None, contract, tmp_path, 'x.onnx')


def test_random_policy_is_deterministic_and_valid(tmp_path):
    paths = [export_random_policy(_contract(), tmp_path / str(i), 'random', seed=5)
             for i in range(2)]
    other, _ = export_random_policy(_contract(), tmp_path / 'other', 'random', seed=6)
    obs = np.random.default_rng(0).normal(size=(4, _contract().obs_dim)).astype(np.float32)
    outs = [ort.InferenceSession(str(p)).run(None, {'obs': obs})[0] for p, _ in paths]
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.all(np.isfinite(outs[0])) and np.abs(outs[0]).max() < 2.0
    assert not np.allclose(outs[0], ort.InferenceSession(str(other)).run(None, {'obs': obs})[0])
    read = read_contract(paths[0][1])
    assert read.provenance['kind'] == 'random_init' and read.onnx_file == 'random.onnx'
    # A contract path works as the template too.
    onnx_path, _ = export_random_policy(paths[0][1], tmp_path / 'from_path', 'again', seed=5)
    again = ort.InferenceSession(str(onnx_path)).run(None, {'obs': obs})[0]
    np.testing.assert_array_equal(again, outs[0])
