"""The stand check's bookkeeping when the PD effort stops being finite."""

from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.sim.mujoco_sim import MujocoRobotSim
import numpy as np
import pytest
from training.robot_check import format_report, stand_check


def test_non_finite_effort_stops_the_check_and_is_reported(monkeypatch) -> None:
    """The 4th PD effort is NaN: nothing more is stepped, the report and the advice say so."""
    robot = load_robot('kestrel')
    calls = []
    real = MujocoRobotSim.pd_effort_nm

    def nan_on_fourth(sim: MujocoRobotSim) -> np.ndarray:
        calls.append(sim.time_s)
        effort = real(sim)
        if len(calls) == 4:
            effort[2] = np.nan
        return effort

    monkeypatch.setattr(MujocoRobotSim, 'pd_effort_nm', nan_on_fourth)
    report = stand_check(robot, duration_s=1.0)
    assert len(calls) == 4
    assert calls[-1] == pytest.approx(3 * 0.005)  # three steps were simulated
    assert not report.all_finite and report.fell and not report.ok
    assert report.fall_time_s == pytest.approx(3 * 0.005)  # the step it stopped at
    assert report.duration_s == pytest.approx(4 * 0.005)
    assert report.saturated_share == {}
    text = format_report(robot, report)
    assert 'FIX: efforts became non-finite' in text
