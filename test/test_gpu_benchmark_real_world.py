"""The GPU throughput benchmark with a training config file (the real-world one), on the CPU."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
import tyro

pytest.importorskip('mujoco_warp')
REPO = Path(__file__).resolve().parents[1]
REAL_WORLD = REPO / 'training' / 'configs' / 'real_world.yaml'
_spec = importlib.util.spec_from_file_location('gpu_throughput_real_world',
                                               REPO / 'benchmarks' / 'gpu_throughput.py')
gpu_throughput = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_throughput)


def test_the_benchmark_options_override_the_file_and_the_rest_comes_from_it():
    args = gpu_throughput.BenchConfig(out='x.json', config=str(REAL_WORLD), compile_setting='off',
                                      nconmax=32)
    cfg = gpu_throughput.training_config(args, 8192)
    assert cfg.env.num_envs == 8192 and cfg.env.nconmax_per_world == 32
    assert cfg.env.compile_step == 'off' and cfg.runner.torch_compile == 'off'
    assert not cfg.runner.tensorboard and not cfg.runner.plot
    r = cfg.env.randomization
    assert cfg.env.terrain.enabled and r.latency and r.joint_friction and r.link_mass
    assert r.push_lin_vel_m_s == 1.0
    # measured at full strength: the file's disturbance ramp (600 iterations) is left out
    assert r.ramp_iterations == 0
    assert (cfg.env.solver_iterations, cfg.env.solver_ls_iterations) == (4, 8)
    # the raw physics and backend step simulate with the same solver limits
    from humanoid_rl_ros.robot.description import load_robot
    raw = gpu_throughput._raw_model(gpu_throughput.resolve_options(args), load_robot('kestrel'))
    assert (raw.opt.iterations, raw.opt.ls_iterations) == (4, 8)
    # without a file: the defaults (flat ground, the new terms off)
    plain = gpu_throughput.training_config(gpu_throughput.BenchConfig(out='x.json'), 4096)
    assert not plain.env.terrain.enabled and not plain.env.randomization.latency
    # each process of a multi-GPU measurement reads the same file
    cmd = gpu_throughput.torchrun_command(2, args, 4096, Path('part.json'))
    assert cmd[cmd.index('--config') + 1] == str(REAL_WORLD)
    script = cmd.index(str(REPO / 'benchmarks' / 'gpu_throughput.py'))
    parsed = tyro.cli(gpu_throughput.BenchConfig, args=cmd[script + 1:])
    assert parsed.config == str(REAL_WORLD) and parsed.scaling_worker


def _other_robot_config(tmp_path):
    """Write a training config of another robot (its folder by path), own step and buffers."""
    robot = REPO / 'models' / 'robots' / 'kestrel'
    path = tmp_path / 'other.yaml'
    path.write_text(f'env:\n  robot: {robot}\n  decimation: 2\n  physics_dt_s: 0.004\n'
                    '  nconmax_per_world: 40\n  njmax_per_world: 200\n')
    return path, str(robot)


def test_a_config_files_robot_step_and_buffers_hold_unless_given(tmp_path):
    path, robot = _other_robot_config(tmp_path)
    args = gpu_throughput.BenchConfig(out='x.json', config=str(path))
    env = gpu_throughput.training_config(args, 4).env
    assert (env.robot, env.decimation, env.physics_dt_s) == (robot, 2, 0.004)
    assert (env.nconmax_per_world, env.njmax_per_world) == (40, 200)
    resolved = gpu_throughput.resolve_options(args)
    assert (resolved.robot, resolved.decimation, resolved.physics_dt_s, resolved.nconmax,
            resolved.njmax) == (robot, 2, 0.004, 40, 200)
    # given on the command line: they override the file
    given = gpu_throughput.BenchConfig(out='x.json', config=str(path), robot='kestrel',
                                       decimation=3, physics_dt_s=0.002, nconmax=30, njmax=150)
    env = gpu_throughput.training_config(given, 4).env
    assert (env.robot, env.decimation, env.physics_dt_s) == ('kestrel', 3, 0.002)
    assert (env.nconmax_per_world, env.njmax_per_world) == (30, 150)
    # without a file: the training defaults
    plain = gpu_throughput.resolve_options(gpu_throughput.BenchConfig(out='x.json'))
    assert (plain.robot, plain.decimation, plain.physics_dt_s, plain.nconmax,
            plain.njmax) == ('kestrel', 4, 0.005, 24, 128)
    # each process of a multi-GPU measurement: the file's values, unless given
    cmd = gpu_throughput.torchrun_command(2, args, 4096, Path('part.json'))
    assert '--robot' not in cmd and '--decimation' not in cmd and '--nconmax' not in cmd
    script = cmd.index(str(REPO / 'benchmarks' / 'gpu_throughput.py'))
    parsed = gpu_throughput.resolve_options(
        tyro.cli(gpu_throughput.BenchConfig, args=cmd[script + 1:]))
    assert (parsed.robot, parsed.decimation, parsed.njmax) == (robot, 2, 200)
    cmd = gpu_throughput.torchrun_command(2, given, 4096, Path('part.json'))
    assert cmd[cmd.index('--decimation') + 1] == '3' and cmd[cmd.index('--robot') + 1] == 'kestrel'


def test_the_physics_measurements_use_the_config_files_robot_and_step(tmp_path):
    path, robot = _other_robot_config(tmp_path)
    out = tmp_path / 'bench.json'
    assert gpu_throughput.main(['--device', 'cpu', '--num-envs', '4', '--policy-steps', '2',
                                '--reset-every', '1', '--compile', 'off', '--skip', 'env_step',
                                'training', '--config', str(path), '--out', str(out)]) == 0
    results = json.loads(out.read_text())
    assert (results['robot'], results['decimation'], results['physics_dt_s']) == (robot, 2, 0.004)
    (row,) = results['results']
    assert (row['nconmax'], row['njmax']) == (40, 200)
    assert row['raw_physics_env_steps_per_s'] == pytest.approx(
        row['raw_physics']['physics_steps_per_s'] / 2)


def test_end_to_end_training_throughput_with_every_real_world_term(tmp_path):
    out = tmp_path / 'bench.json'
    assert gpu_throughput.main(['--device', 'cpu', '--num-envs', '4', '--policy-steps', '2',
                                '--train-iterations', '1', '--reset-every', '1',
                                '--compile', 'off', '--config', str(REAL_WORLD),
                                '--out', str(out)]) == 0
    results = json.loads(out.read_text())
    assert results['config_file'] == str(REAL_WORLD)
    env = results['env_config']
    assert env['terrain']['enabled'] and env['randomization']['latency']
    assert env['randomization']['action_delay_ms'] == [0.0, 40.0]
    (row,) = results['results']
    for name in ('env_step', 'rollout_collection', 'end_to_end_training',
                 'backend_step_on_training_states'):
        assert 'error' not in row[name], row[name]
        rate = row[name]['env_steps_per_s']
        assert rate > 0 and math.isfinite(rate)
    assert row['end_to_end_training']['iterations'] == 1
    assert row['training_overflow']['overflow'] is False
