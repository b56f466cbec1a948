"""The solver-fidelity benchmark's parts: capped scenarios, their simulators, the count."""

from collections import Counter
import importlib.util
from pathlib import Path

from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.robot.mujoco_model import (joint_dof_adr, sole_sphere_geoms,
                                                SOLVER_ITERATIONS)
import numpy as np
import pytest
from training.robustness.perturbations import build_sim, ModelPerturbation
from training.robustness.scenarios import suite

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('solver_fidelity',
                                               REPO / 'benchmarks' / 'solver_fidelity.py')
fidelity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fidelity)


def test_capped_scenarios_change_only_the_solver_and_the_joint_friction():
    scenarios = [s for s in suite('full') if s.name in ('nominal', 'slope_up_5deg')]
    capped = fidelity.with_solver(scenarios, 4, 8, 0.7)
    for before, after in zip(scenarios, capped):
        assert (after.model.solver_iterations, after.model.solver_ls_iterations) == (4, 8)
        assert after.model.joint_friction_nm == 0.7
        assert after.model.slope_deg == before.model.slope_deg
        assert (after.name, after.commands, after.checks) == (before.name, before.commands,
                                                              before.checks)


def test_the_simulator_gets_the_joint_friction_and_the_solver_limits():
    robot = load_robot('kestrel')
    sim = build_sim(robot, 0.005, ModelPerturbation(joint_friction_nm=0.5, solver_iterations=3,
                                                    solver_ls_iterations=5))
    dofs = joint_dof_adr(sim.model, robot)
    assert np.all(sim.model.dof_frictionloss[dofs] == 0.5)
    assert (sim.model.opt.iterations, sim.model.opt.ls_iterations) == (3, 5)
    plain = build_sim(robot, 0.005, ModelPerturbation())
    assert plain.model.opt.iterations == SOLVER_ITERATIONS
    assert np.all(plain.model.dof_frictionloss[joint_dof_adr(plain.model, robot)] == 0.0)
    with pytest.raises(ValueError, match='joint friction'):
        build_sim(robot, 0.005, ModelPerturbation(joint_friction_nm=-1.0))


def test_the_simulator_gets_the_collision_accuracy():
    robot = load_robot('kestrel')
    sim = build_sim(robot, 0.005, ModelPerturbation(ccd_iterations=12, ccd_tolerance=1e-4))
    assert sim.model.opt.ccd_iterations == 12
    assert sim.model.opt.ccd_tolerance == pytest.approx(1e-4)
    scenarios = [s for s in suite('full') if s.name == 'rough_4cm']
    limited = fidelity.with_solver(scenarios, SOLVER_ITERATIONS, 20, 0.0, ccd=(12, 1e-4))[0]
    assert (limited.model.ccd_iterations, limited.model.ccd_tolerance) == (12, 1e-4)
    assert limited.model.rough_amplitude_m == scenarios[0].model.rough_amplitude_m > 0


def test_the_counting_simulator_counts_every_step_within_the_cap():
    robot = load_robot('kestrel')
    sim = build_sim(robot, 0.005, ModelPerturbation(joint_friction_nm=0.7, solver_iterations=2))
    counts = Counter()
    counting = fidelity._CountingSim(sim, counts)
    for _ in range(50):
        counting.step(sim.pd_effort_nm())
    assert sum(counts.values()) == 50 and max(counts) <= 2
    assert counting.model is sim.model  # everything else passes through


def test_unknown_scenarios_are_named(tmp_path):
    args = fidelity.FidelityConfig(out=tmp_path / 'x.json', scenarios=('nominal', 'moonwalk'))
    with pytest.raises(ValueError, match='moonwalk'):
        fidelity.run(args)


def test_the_sole_sphere_setting_changes_only_the_feet_and_its_simulator_has_them():
    scenarios = [s for s in suite('full') if s.name == 'rough_4cm']
    (spheres,) = fidelity.with_solver(scenarios, SOLVER_ITERATIONS, 20, 0.7, sole_spheres=True)
    assert spheres.model.sole_spheres and spheres.model.rough_amplitude_m > 0.0
    robot = load_robot('kestrel')
    sim = build_sim(robot, 0.005, spheres.model)
    assert all(len(sole_sphere_geoms(sim.model, foot)) == 6 for foot in robot.foot_links)
    plain = build_sim(robot, 0.005, ModelPerturbation())
    assert all(sole_sphere_geoms(plain.model, foot) == [] for foot in robot.foot_links)


def test_the_table_has_a_column_per_setting():
    row = {'falls': 0, 'runs': 3, 'lin_vel_error_mean_m_s': 0.02}
    result = {'settings': {'reference': {}, 'capped': {}, 'sole_spheres': {}},
              'scenarios': {'nominal': {'reference': row, 'capped': row,
                                        'sole_spheres': dict(row, falls=1)}}}
    lines = fidelity.table(result).splitlines()
    assert lines[0] == '| scenario | figure | reference | capped | sole_spheres |'
    assert '| nominal | falls | 0 | 0 | 1 |' in lines
