"""ONNX export with the normalizer baked in: onnxruntime matches torch, the contract reads back."""

import dataclasses
from typing import Any, Dict

from contract_fixtures import make_format_1_policy
from humanoid_rl_ros.core.contract import (BaseLinVelError, CommandRanges, ContractError, Latency,
                                           ObsTermSpec, ONNX_METADATA_KEY, plain_data,
                                           PolicyContract, read_contract, TerrainSpec,
                                           YAML_HEADER)
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from humanoid_rl_ros.core.provenance import COMMIT_ENV_VAR
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from training.config import EnvConfig, ObservationConfig
from training.env import LocomotionEnv
from training.env.observations import actor_obs_terms
from training.export import (export_policy, export_random_policy, extract_contract, main,
                             normalized_contract, upgrade_policy)
from training.export_facts import complete_contract, training_conditions
from training.ppo import ActorCritic, EmpiricalNormalizer, PolicyConfig
import yaml

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


# ----------------------------------------------------------------------------- the contract


def _kestrel(**kw) -> PolicyContract:
    from policy_fixtures import kestrel_contract
    return dataclasses.replace(kestrel_contract(), **kw)


def _env_config() -> Dict[str, Any]:
    """Return the default task config as the training run records it in the provenance."""
    return plain_data(EnvConfig())


def test_the_onnx_carries_the_contract_and_the_yaml_is_its_copy(tmp_path):
    onnx_path, yaml_path = export_random_policy(_kestrel(), tmp_path, 'walk', seed=1)
    metadata = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert yaml_path.read_text() == YAML_HEADER + metadata[ONNX_METADATA_KEY]
    assert read_contract(onnx_path) == read_contract(yaml_path)
    assert read_contract(onnx_path).format_version == 2


def test_export_fills_the_robot_facts_and_knows_its_physics_only_for_mujoco(tmp_path):
    _, plain = export_random_policy(_kestrel(), tmp_path / 'a', 'walk')
    contract = read_contract(plain)
    knee = contract.joint_names.index('left_knee_joint')
    assert contract.base_link == 'pelvis'
    # the URDF's knee range [-0.05, 2.3] rad (MuJoCo's joint range)
    assert (contract.position_min_rad[knee], contract.position_max_rad[knee]) == (-0.05, 2.3)
    assert contract.velocity_limit_rad_s[knee] == 14.0
    assert contract.physics is None  # no training backend recorded: the physics is unknown

    mujoco_run = _kestrel(provenance={'backend': 'mjwarp'}, armature_kg_m2=None)
    _, path = export_random_policy(mujoco_run, tmp_path / 'b', 'walk')
    physics = read_contract(path).physics
    assert (physics.simulator, physics.integrator, physics.solver, physics.cone) == (
        'mjwarp', 'implicitfast', 'newton', 'pyramidal')
    assert (physics.timestep_s, physics.iterations, physics.ls_iterations) == (0.005, 10, 20)
    assert physics.self_collision is False
    assert physics.floor_friction == (1.0, 0.005, 0.0001)
    assert read_contract(path).armature_kg_m2[knee] == 0.065  # robot.yaml's armature

    # a run that capped the solver: the contract states the limits it trained with
    env = {**_env_config(), 'solver_iterations': 4, 'solver_ls_iterations': 8}
    capped = _kestrel(provenance={'backend': 'mjwarp', 'config': {'env': env}},
                      armature_kg_m2=None, physics=None)
    filled = complete_contract(capped).physics
    assert (filled.iterations, filled.ls_iterations) == (4, 8)


def test_training_conditions_are_what_the_env_does_with_the_recorded_config():
    cfg = _env_config()
    terms = ('base_ang_vel', 'projected_gravity', 'joint_pos', 'joint_vel', 'last_action')
    known = training_conditions(cfg, terms, 'mjwarp')
    assert known.action_delay_policy_steps == 0
    # noise on terms the actor does not see (base_lin_vel here) is not part of the policy's
    assert known.observation_noise == {name: cfg['observations']['noise'][name]
                                       for name in ('base_ang_vel', 'projected_gravity',
                                                    'joint_pos', 'joint_vel')}
    r = cfg['randomization']
    assert known.randomization.friction_range == tuple(r['friction_range'])
    assert known.randomization.motor_strength_range == tuple(r['motor_strength_range'])
    assert known.randomization.push_lin_vel_m_s == r['push_lin_vel_m_s']
    assert known.randomization.init_joint_noise_rad == cfg['init_joint_noise_rad']
    assert known.command_sampling.standing_fraction == cfg['commands']['standing_fraction']

    cfg['randomization'].update(action_latency=True, obs_noise=False, friction=False,
                                pushes=False)
    changed = training_conditions(cfg, terms, 'mjwarp')
    assert changed.action_delay_policy_steps == 1
    assert changed.observation_noise == {}  # known: no noise
    assert changed.randomization.friction_range is None  # off
    assert changed.randomization.push_interval_s is None
    assert changed.randomization.push_lin_vel_m_s is None
    # another backend: its randomization is not this code's to state
    assert training_conditions(cfg, terms, 'isaacgym').randomization is None
    del cfg['commands']
    assert training_conditions(cfg, terms, 'mjwarp').command_sampling is None


def test_robot_files_that_disagree_with_the_contract_are_refused(tmp_path):
    contract = _kestrel()
    wrong = dataclasses.replace(contract, kp_nm_per_rad=(1.0,) + contract.kp_nm_per_rad[1:])
    with pytest.raises(ValueError, match=r'robot files of .kestrel.* disagree on kp_nm_per_rad'):
        complete_contract(wrong)


def _graph_bytes(path) -> bytes:
    return onnx.load(str(path)).graph.SerializeToString()


def test_upgrade_writes_format_2_and_leaves_the_graph_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv(COMMIT_ENV_VAR, 'feedbee')
    old_yaml = make_format_1_policy(tmp_path, 'old', provenance={
        'commit': 'abc1234', 'backend': 'mjwarp', 'config': {'env': _env_config()}})
    old_onnx = tmp_path / 'old.onnx'
    before = read_contract(old_yaml)
    assert before.format_version == 1 and before.physics is None
    graph_before = _graph_bytes(old_onnx)
    obs = np.random.default_rng(0).normal(0.0, 2.0, (32, before.obs_dim)).astype(np.float32)
    actions_before = ort.InferenceSession(str(old_onnx)).run(None, {'obs': obs})[0]

    upgraded = upgrade_policy(old_yaml)

    assert _graph_bytes(old_onnx) == graph_before
    np.testing.assert_array_equal(
        ort.InferenceSession(str(old_onnx)).run(None, {'obs': obs})[0], actions_before)
    metadata = {p.key: p.value for p in onnx.load(str(old_onnx)).metadata_props}
    assert old_yaml.read_text() == YAML_HEADER + metadata[ONNX_METADATA_KEY]
    assert upgraded == read_contract(old_onnx) == read_contract(old_yaml)
    assert upgraded.format_version == 2
    # the format-1 fields, the provenance and the ONNX I/O are kept
    for name in ('joint_names', 'default_pos_rad', 'action_scale_rad', 'kp_nm_per_rad',
                 'kd_nms_per_rad', 'effort_limit_nm', 'physics_dt_s', 'decimation',
                 'obs_terms', 'commands', 'obs_clip', 'action_clip', 'gait_period_s',
                 'onnx_file', 'onnx_input_name', 'onnx_output_name'):
        assert getattr(upgraded, name) == getattr(before, name), name
    assert upgraded.provenance['commit'] == 'abc1234'
    assert upgraded.provenance['contract_upgrade']['from_format_version'] == 1
    assert upgraded.provenance['contract_upgrade']['code_commit'] == 'feedbee'
    # facts derived from the robot, the code and the recorded config; the rest is unknown
    assert upgraded.base_link == 'pelvis' and upgraded.physics.integrator == 'implicitfast'
    assert upgraded.training.action_delay_policy_steps == 0
    assert upgraded.training.randomization is not None
    assert upgraded.unknown_fields() == ['training.tolerated_action_delay_s']

    # a format-2 policy is left as it is
    text, data = old_yaml.read_text(), old_onnx.read_bytes()
    assert upgrade_policy(old_yaml) == upgraded
    assert old_yaml.read_text() == text and old_onnx.read_bytes() == data


def test_upgrade_without_a_recorded_config_marks_the_training_unknown(tmp_path):
    old_yaml = make_format_1_policy(tmp_path, 'old', provenance={'seed': 1})
    upgraded = upgrade_policy(old_yaml)
    assert upgraded.base_link == 'pelvis'  # from the robot files
    assert upgraded.physics is None  # no backend recorded
    assert upgraded.training.observation_noise is None
    assert 'training.randomization' in upgraded.unknown_fields()


def test_extract_rewrites_the_yaml_copy_from_the_onnx(tmp_path):
    onnx_path, yaml_path = export_random_policy(_kestrel(), tmp_path, 'walk')
    good = yaml_path.read_text()
    yaml_path.write_text(good.replace('decimation: 4', 'decimation: 2'))
    with pytest.raises(ContractError, match=r'differ .* at timing\.decimation: 2 against 4'):
        read_contract(yaml_path)
    assert extract_contract(onnx_path) == yaml_path
    assert yaml_path.read_text() == good


def test_command_line_upgrade_and_extract(tmp_path, capsys):
    old_yaml = make_format_1_policy(tmp_path, 'old')
    main(['upgrade', str(old_yaml)])
    assert 'contract format 2, embedded in' in capsys.readouterr().out
    assert read_contract(tmp_path / 'old.onnx').format_version == 2
    main(['extract', str(tmp_path / 'old.onnx'), '--out', str(tmp_path / 'copy.yaml')])
    assert (tmp_path / 'copy.yaml').read_text() == old_yaml.read_text()


def test_the_base_velocity_error_is_recorded_where_the_actor_observes_the_velocity():
    cfg = _env_config()
    o = cfg['observations']
    with_vel = ('base_lin_vel', 'base_ang_vel', 'joint_pos')
    assert training_conditions(cfg, with_vel, 'mjwarp').base_lin_vel_error == BaseLinVelError(
        o['lin_vel_bias_m_s'], o['lin_vel_scale_error'], tuple(o['lin_vel_lag_steps']))
    assert training_conditions(cfg, with_vel, 'mjwarp').observation_noise['base_lin_vel'] == 0.5
    # not observed: nothing to state
    assert training_conditions(cfg, ('base_ang_vel',), 'mjwarp').base_lin_vel_error is None
    cfg['randomization']['obs_noise'] = False  # known: no error at all
    assert training_conditions(cfg, with_vel, 'mjwarp').base_lin_vel_error == BaseLinVelError(
        0.0, 0.0, (0, 0))
    cfg['randomization']['obs_noise'] = True
    del o['lin_vel_lag_steps']  # a config recorded before the model existed: none applied
    assert training_conditions(cfg, with_vel, 'mjwarp').base_lin_vel_error is None


def test_the_exported_contract_takes_its_terms_and_history_from_the_config(tmp_path):
    observations = ObservationConfig(history_length=3)
    env = LocomotionEnv(EnvConfig(num_envs=1, observations=observations), 'mjwarp', 'cpu')
    onnx_path, yaml_path = export_random_policy(env.contract(), tmp_path, 'stacked')
    contract = read_contract(yaml_path)
    assert contract.obs_terms == actor_obs_terms(observations, env.num_actions)
    assert contract.history_length == 3 and contract.history_layout == 'frames_oldest_first'
    frame = sum(t.size for t in contract.obs_terms)
    runtime = PolicyRuntime.load(onnx_path)
    assert runtime.contract.obs_dim == 3 * frame == env.num_obs
    assert ort.InferenceSession(str(onnx_path)).get_inputs()[0].shape[1] == 3 * frame
    action = runtime.act(np.zeros(3 * frame, dtype=np.float32))
    assert action.shape == (env.num_actions,) and np.all(np.isfinite(action))


def test_an_exported_policy_states_the_randomization_and_terrain_it_was_trained_under(tmp_path):
    cfg = _env_config()
    cfg['randomization'].update(
        link_mass=True, base_com=True, latency=True, imu_bias=True, encoder_bias=True,
        action_delay_ms=(5.0, 12.0), obs_delay_ms=(0.0, 20.0), push_lin_vel_z_m_s=0.4,
        push_ang_vel_rad_s=(0.52, 0.52, 0.78))
    cfg['terrain'].update(enabled=True, kinds=('rough',), max_rough_m=0.03)
    provenance = {'backend': 'mjwarp', 'config': {'env': cfg}}
    _, path = export_random_policy(_kestrel(provenance=provenance), tmp_path / 'on', 'walk',
                                   hidden_dims=(8,))
    r = read_contract(path).training.randomization
    assert r.link_mass_scale_range == (0.9, 1.1)
    assert r.base_com_offset_m == (0.025, 0.025, 0.03)
    # at 5 ms per physics step: 5 ms is 1 step, 12 ms is 2 (rounded down), 20 ms is 4
    assert r.latency == Latency(action_delay_ms=(5.0, 12.0), action_delay_physics_steps=(1, 2),
                                obs_delay_ms=(0.0, 20.0), obs_delay_physics_steps=(0, 4))
    assert (r.gyro_bias_rad_s, r.gravity_bias, r.encoder_bias_rad) == (0.05, 0.03, 0.015)
    assert r.push_lin_vel_z_m_s == 0.4 and r.push_ang_vel_rad_s == (0.52, 0.52, 0.78)
    assert r.kd_scale_range is None and r.joint_friction_nm is None  # left off in the config
    assert read_contract(path).training.terrain == TerrainSpec(
        kinds=('rough',), num_levels=10, max_slope_deg=15.0, max_rough_m=0.03,
        tile_size_m=8.0, curriculum=True)
    stated = yaml.safe_load(path.read_text())['training']
    assert stated['randomization']['push'] == (
        'world_velocity_change_uniform_per_axis'
        '_and_body_angular_velocity_change_uniform_per_axis')

    # the defaults: every later item off, flat ground, planar pushes; nothing of it is written
    provenance = {'backend': 'mjwarp', 'config': {'env': _env_config()}}
    _, path = export_random_policy(_kestrel(provenance=provenance), tmp_path / 'off', 'walk',
                                   hidden_dims=(8,))
    stated = yaml.safe_load(path.read_text())['training']
    assert 'terrain' not in stated
    assert not {'link_mass_scale_range', 'base_com_offset_m', 'kd_scale_range', 'latency',
                'gyro_bias_rad_s', 'encoder_bias_rad', 'push_lin_vel_z_m_s',
                'push_ang_vel_rad_s'} & set(stated['randomization'])
    assert stated['randomization']['push'] == 'planar_world_velocity_change_uniform_per_axis'
    r = read_contract(path).training.randomization
    assert r.latency is None and r.push_ang_vel_rad_s is None


def test_a_config_recorded_before_the_later_items_existed_states_them_off():
    cfg = _env_config()
    for key in ('link_mass', 'latency', 'imu_bias', 'push_lin_vel_z_m_s', 'push_ang_vel_rad_s',
                'action_delay_ms'):
        del cfg['randomization'][key]
    del cfg['terrain']
    known = training_conditions(cfg, ('base_ang_vel',), 'mjwarp')
    assert known.randomization.friction_range == tuple(cfg['randomization']['friction_range'])
    assert known.randomization.latency is None and known.terrain is None
