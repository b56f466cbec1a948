"""Tests for loading an ONNX policy through its contract with onnxruntime."""

from humanoid_rl_ros.core.policy_runtime import PolicyLoadError, PolicyRuntime, resolve_policy_path
import numpy as np
from policy_fixtures import make_mismatched_policy, make_random_policy
import pytest


def test_loads_and_acts(tmp_path):
    runtime = PolicyRuntime.load(make_random_policy(tmp_path))
    action = runtime.act(np.zeros(runtime.contract.obs_dim))
    assert action.dtype == np.float32
    assert action.shape == (runtime.contract.action_dim,)
    assert np.all(np.isfinite(action))
    batch = runtime.act_batch(np.zeros((3, runtime.contract.obs_dim)))
    np.testing.assert_allclose(batch[0], action, rtol=1e-6)


def test_resolves_by_name_onnx_path_and_contract_path(tmp_path):
    contract = make_random_policy(tmp_path, name='walker')
    assert resolve_policy_path('walker', [tmp_path]) == contract.resolve()
    assert resolve_policy_path(tmp_path / 'walker.onnx') == contract.resolve()
    assert resolve_policy_path(str(contract)) == contract.resolve()
    with pytest.raises(PolicyLoadError, match='nope'):
        resolve_policy_path('nope', [tmp_path])
    with pytest.raises(PolicyLoadError, match='no policy given'):
        resolve_policy_path('')


def test_observation_size_mismatch_names_both_numbers(tmp_path):
    path = make_mismatched_policy(tmp_path, obs_dim=40)
    with pytest.raises(PolicyLoadError, match=r'observation size mismatch.*40.*77'):
        PolicyRuntime.load(path)


def test_action_size_mismatch_names_both_numbers(tmp_path):
    path = make_mismatched_policy(tmp_path, action_dim=12)
    with pytest.raises(PolicyLoadError, match=r'action size mismatch.*12.*21'):
        PolicyRuntime.load(path)


def test_missing_onnx_file_is_named(tmp_path):
    path = make_random_policy(tmp_path)
    (tmp_path / 'random_policy.onnx').unlink()
    with pytest.raises(PolicyLoadError, match='random_policy.onnx'):
        PolicyRuntime.load(path)


def test_rejects_bad_observations(tmp_path):
    runtime = PolicyRuntime.load(make_random_policy(tmp_path))
    with pytest.raises(ValueError, match='non-finite'):
        runtime.act(np.full(runtime.contract.obs_dim, np.nan))
    with pytest.raises(ValueError, match='expects'):
        runtime.act(np.zeros(3))


def test_io_binding_gives_the_same_actions_as_session_run(tmp_path):
    runtime = PolicyRuntime.load(make_random_policy(tmp_path))
    assert runtime._binding is not None  # the exported MLP binds; act() uses the binding
    rng = np.random.default_rng(0)
    name_in, name_out = runtime.contract.onnx_input_name, runtime.contract.onnx_output_name
    first = None
    for _ in range(5):
        obs = rng.standard_normal(runtime.contract.obs_dim).astype(np.float32)
        action = runtime.act(obs)
        expected = runtime.session.run([name_out], {name_in: obs[None, :]})[0][0]
        np.testing.assert_array_equal(action, expected)
        if first is None:
            first = action
    # act() returns a copy: later calls do not change an earlier action
    assert not np.array_equal(first, action)
    with pytest.raises(ValueError, match='non-finite'):
        runtime.act(np.full(runtime.contract.obs_dim, np.inf, dtype=np.float32))
