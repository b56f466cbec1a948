"""The env-step breakdown benchmark (each randomization term and the terrain off), on CPU."""

import importlib.util
import json
import math
from pathlib import Path
import sys

import pytest

pytest.importorskip('mujoco_warp')
REPO = Path(__file__).resolve().parents[1]
REAL_WORLD = REPO / 'training' / 'configs' / 'real_world.yaml'
sys.path.insert(0, str(REPO / 'benchmarks'))
_spec = importlib.util.spec_from_file_location('env_step_breakdown',
                                               REPO / 'benchmarks' / 'env_step_breakdown.py')
breakdown = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(breakdown)


def _real_world():
    from training.train import parse_config
    return parse_config(['--config', str(REAL_WORLD)])


def test_switches_of_the_real_world_config_and_turning_them_off():
    cfg = _real_world()
    on = breakdown.switches_on(cfg.env)
    assert {'latency', 'joint_friction', 'link_mass', 'pushes', 'terrain'} <= set(on)
    assert 'action_latency' not in on  # off in the file: nothing to switch off
    off = breakdown.with_switches_off(cfg, ('joint_friction', 'terrain'))
    assert not off.env.randomization.joint_friction and not off.env.terrain.enabled
    assert off.env.randomization.latency and cfg.env.randomization.joint_friction  # rest kept
    assert breakdown.switches_on(breakdown.with_switches_off(cfg, tuple(on)).env) == []
    with pytest.raises(ValueError, match='unknown switches'):
        breakdown.with_switches_off(cfg, ('warp_drive',))


def test_breakdown_measures_every_variant_and_profiles_the_full_step(tmp_path):
    out = tmp_path / 'breakdown.json'
    assert breakdown.main(['--out', str(out), '--device', 'cpu', '--num-envs', '4',
                           '--policy-steps', '2', '--profile-steps', '2', '--top-kernels', '5',
                           '--compile-setting', 'off', '--config', str(REAL_WORLD),
                           '--terms', 'joint_friction', 'terrain',
                           '--ccd', '12:1e-4', '35:1e-6']) == 0
    results = json.loads(out.read_text())
    variants = results['variants']
    # the file caps the solver at 4: the other limit of the default list is the robot model's
    assert list(variants) == ['full', 'without_all', 'solver_iterations_10',
                              'ccd_12_0.0001', 'ground_contact_feet',
                              'foot_collision_model', 'without_joint_friction',
                              'without_terrain']
    assert variants['ground_contact_feet']['ground_contact'] == 'feet'
    assert variants['full']['ground_contact'] == 'all'
    assert variants['foot_collision_model']['foot_collision'] == 'model'
    assert variants['full']['foot_collision'] == 'sole_spheres'  # the file's
    assert variants['ccd_12_0.0001']['ccd'] == [12, 1e-4]
    # the file leaves MuJoCo's 35 / 1e-6: that variant is the full step, not measured twice
    assert variants['full']['ccd'] == [None, None]
    assert variants['without_all']['switched_off'] == ['joint_friction', 'terrain']
    assert variants['solver_iterations_10']['switched_off'] == []
    assert variants['solver_iterations_10']['solver_iterations'] == 10
    assert variants['full']['solver_iterations'] == 4
    for row in variants.values():
        assert 'error' not in row, row
        assert row['env_steps_per_s'] > 0 and math.isfinite(row['env_steps_per_s'])
        solver = row['solver_iterations_last_step']
        assert 1 <= solver['max'] <= row['solver_iterations'] and solver['mean'] <= solver['max']
        assert row['speedup_vs_full'] == pytest.approx(
            row['env_steps_per_s'] / variants['full']['env_steps_per_s'])
    kernels = results['profile']['kernels']
    assert results['profile']['steps'] == 2 and 0 < len(kernels) <= 5
    times = [k['cpu_us_per_step'] for k in kernels]  # a CPU run ranks the CPU operators
    assert times == sorted(times, reverse=True) and times[0] > 0


def test_solver_variant_caps_only_the_solver():
    cfg = _real_world()
    capped = breakdown.with_solver_iterations(cfg, 3, 6)
    assert (capped.env.solver_iterations, capped.env.solver_ls_iterations) == (3, 6)
    assert capped.env.randomization == cfg.env.randomization
    assert capped.env.terrain == cfg.env.terrain


def test_ccd_variant_sets_only_the_collision_test():
    cfg = _real_world()
    capped = breakdown.with_ccd(cfg, 8, 1e-3)
    assert (capped.env.ccd_iterations, capped.env.ccd_tolerance) == (8, 1e-3)
    assert capped.env.solver_iterations == cfg.env.solver_iterations
    assert capped.env.terrain == cfg.env.terrain
