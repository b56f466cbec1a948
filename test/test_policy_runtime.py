"""Tests for loading an ONNX policy through its contract with onnxruntime."""

import dataclasses
import shutil

from humanoid_rl_ros.core.contract import (ContractError, ONNX_METADATA_KEY, read_contract,
                                           write_contract)
from humanoid_rl_ros.core.policy_runtime import PolicyLoadError, PolicyRuntime, resolve_policy_path
import numpy as np
import onnx
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
    assert resolve_policy_path(tmp_path / 'walker.onnx') == (tmp_path / 'walker.onnx').resolve()
    assert resolve_policy_path(str(contract)) == contract.resolve()
    # a policy shipped as its ONNX file alone is found by name too
    lone = tmp_path / 'lone'
    lone.mkdir()
    shutil.copy(tmp_path / 'walker.onnx', lone / 'solo.onnx')
    assert resolve_policy_path('solo', [lone]) == (lone / 'solo.onnx').resolve()
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


def test_the_onnx_file_alone_carries_the_contract(tmp_path):
    """A policy loads from its ONNX file without the YAML copy, with the same contract."""
    from_yaml = PolicyRuntime.load(make_random_policy(tmp_path, name='walker'))
    lone = tmp_path / 'lone'
    lone.mkdir()
    shutil.copy(tmp_path / 'walker.onnx', lone / 'walker.onnx')
    from_onnx = PolicyRuntime.load(lone / 'walker.onnx')
    assert from_onnx.contract == from_yaml.contract
    assert from_onnx.onnx_path == (lone / 'walker.onnx').resolve()
    obs = np.linspace(-1.0, 1.0, from_yaml.contract.obs_dim)
    np.testing.assert_array_equal(from_onnx.act(obs), from_yaml.act(obs))


@pytest.mark.parametrize('load_from', ['walker.yaml', 'walker.onnx'])
def test_a_yaml_copy_that_differs_from_the_onnx_contract_is_refused(tmp_path, load_from):
    yaml_path = make_random_policy(tmp_path, name='walker')
    contract = read_contract(yaml_path)
    edited = dataclasses.replace(contract, kp_nm_per_rad=(150.0,) + contract.kp_nm_per_rad[1:])
    write_contract(edited, yaml_path)  # the YAML now says kp 150 for the first joint
    with pytest.raises(ContractError) as error:
        PolicyRuntime.load(tmp_path / load_from)
    message = str(error.value)
    assert 'walker.yaml and the contract embedded in' in message
    assert 'walker.onnx differ' in message
    assert f'joints.kp_nm_per_rad[0]: 150.0 against {contract.kp_nm_per_rad[0]!r}' in message
    assert 'python -m training.export extract' in message


def test_a_contract_given_directly_must_equal_the_embedded_one(tmp_path):
    yaml_path = make_random_policy(tmp_path, name='walker')
    contract = read_contract(yaml_path)
    PolicyRuntime(contract, tmp_path / 'walker.onnx')  # the same contract: accepted
    with pytest.raises(PolicyLoadError, match=r'differs from the one embedded in it .* at '
                       r'timing\.decimation: 2 against 4'):
        PolicyRuntime(dataclasses.replace(contract, decimation=2), tmp_path / 'walker.onnx')


def test_an_onnx_without_an_embedded_contract_uses_its_yaml(tmp_path):
    """Exports from before the contract was embedded: the YAML beside the ONNX is the contract."""
    yaml_path = make_random_policy(tmp_path, name='walker')
    model = onnx.load(str(tmp_path / 'walker.onnx'))
    assert [p.key for p in model.metadata_props] == [ONNX_METADATA_KEY]
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / 'walker.onnx'))
    for path in (yaml_path, tmp_path / 'walker.onnx'):
        assert PolicyRuntime.load(path).contract == read_contract(yaml_path)
    yaml_path.unlink()
    with pytest.raises(ContractError, match=r'walker\.onnx carries no policy contract .* '
                       r'training\.export upgrade'):
        PolicyRuntime.load(tmp_path / 'walker.onnx')
