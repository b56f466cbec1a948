"""
The stand check's bookkeeping when a run ends early: what was simulated, and only that.

The kestrel robot runs in CPU MuJoCo; the end of the run is forced by monkeypatching the
simulator (a NaN effort, a fall), so every figure is known by hand: steps of 5 ms, the height
error counted only after 1 s (200 steps) of settling.
"""

from typing import List

from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.sim.mujoco_sim import MujocoRobotSim
import numpy as np
import pytest
from training.robot_check import format_report, SETTLE_S, stand_check

DT_S = 0.005  # kestrel's physics step [s]
SETTLE_STEPS = 200  # SETTLE_S / DT_S


def test_the_step_and_settling_figures_this_file_assumes() -> None:
    robot = load_robot('kestrel')
    assert MujocoRobotSim(robot).timestep_s == DT_S
    assert SETTLE_S == SETTLE_STEPS * DT_S


def test_non_finite_effort_stops_the_check_and_is_reported(monkeypatch) -> None:
    """The 4th PD effort is NaN: three steps were simulated, and the figures say three."""
    robot = load_robot('kestrel')
    calls = []
    real = MujocoRobotSim.pd_effort_nm

    def nan_on_fourth(sim: MujocoRobotSim) -> np.ndarray:
        calls.append(sim.time_s)
        effort = real(sim)
        if len(calls) == 4:
            effort[2] = np.nan
        return effort

    def joint_0_at_its_limit(sim: MujocoRobotSim, effort: np.ndarray) -> np.ndarray:
        return np.arange(robot.num_joints) == 0

    monkeypatch.setattr(MujocoRobotSim, 'pd_effort_nm', nan_on_fourth)
    monkeypatch.setattr(MujocoRobotSim, 'effort_at_limit', joint_0_at_its_limit)
    report = stand_check(robot, duration_s=1.0)
    assert len(calls) == 4
    assert calls[-1] == pytest.approx(3 * DT_S)  # three steps were simulated
    assert not report.all_finite and report.fell and not report.ok
    assert report.fall_time_s == pytest.approx(3 * DT_S)  # the step it stopped at
    assert report.duration_s == pytest.approx(3 * DT_S)  # 0.015 s, not 0.020
    # joint 0 at its limit in each of the 3 efforts applied: 3 / 3, not 3 / 4
    assert report.saturated_share == {robot.joint_names[0]: 1.0}
    assert report.max_height_error_m is None  # it ended long before the settling did
    text = format_report(robot, report)
    assert 'FIX: efforts became non-finite' in text
    assert 'max error not measured: the run ended before 1 s of settling' in text


def _fall_at(monkeypatch, call: int) -> List[float]:
    """Make the ``call``-th fall check say fallen; return the base heights after each step."""
    checks, heights = [], []
    real_step = MujocoRobotSim.step

    def step(sim: MujocoRobotSim, effort: np.ndarray) -> None:
        real_step(sim, effort)
        heights.append(float(sim.base_pos_m[2]))

    def fallen(sim: MujocoRobotSim, max_tilt_rad: float) -> bool:
        checks.append(max_tilt_rad)
        return len(checks) == call

    monkeypatch.setattr(MujocoRobotSim, 'step', step)
    monkeypatch.setattr(MujocoRobotSim, 'fallen', fallen)
    return heights


def test_a_fall_before_the_settling_is_over_reports_no_height_error(monkeypatch) -> None:
    """Fallen after step 10 (0.05 s): no height error was measured, none is reported as 0."""
    robot = load_robot('kestrel')
    heights = _fall_at(monkeypatch, 10)
    report = stand_check(robot)
    assert len(heights) == 10
    assert report.fell and report.fall_time_s == pytest.approx(10 * DT_S)
    assert report.duration_s == pytest.approx(10 * DT_S)
    assert report.max_height_error_m is None
    assert report.final_base_height_m == heights[-1]
    text = format_report(robot, report)
    assert 'FELL at 0.05 s' in text
    assert 'max error not measured: the run ended before 1 s of settling' in text
    assert 'max error 0.000' not in text


def test_a_fall_after_the_settling_reports_the_height_error_of_the_steps_after_it(
        monkeypatch) -> None:
    """Fallen after step 203: the error counts the heights after steps 201, 202 and 203 only."""
    robot = load_robot('kestrel')
    heights = _fall_at(monkeypatch, SETTLE_STEPS + 3)
    report = stand_check(robot)
    assert len(heights) == SETTLE_STEPS + 3
    assert report.duration_s == pytest.approx((SETTLE_STEPS + 3) * DT_S)
    counted = heights[SETTLE_STEPS:]
    assert len(counted) == 3
    assert report.max_height_error_m == max(abs(z - robot.nominal_base_height_m)
                                            for z in counted)
    assert f'max error {report.max_height_error_m:.3f})' in format_report(robot, report)


def test_a_pushed_run_reports_no_height_error() -> None:
    """The height error is not measured on a pushed run (it was reported as 0.000)."""
    robot = load_robot('kestrel')
    report = stand_check(robot, duration_s=SETTLE_S + 10 * DT_S, push_m_s=(0.1, 0.0, 0.0))
    assert not report.fell and report.max_height_error_m is None
    assert 'max error not measured: the base was pushed' in format_report(robot, report)
