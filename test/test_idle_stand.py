"""
Tests for the idle stand: its pure decisions and the controller applying them (no ROS).

The controller is driven tick by tick with synthetic time (controller_fixtures.Feeder: a calm,
upright base with 0.1 m/s forward speed and 0.2 rad/s yaw rate).
"""

import dataclasses
import math

from controller_fixtures import DT, Feeder, pd_effort, walking
from humanoid_rl_ros.core.controller import (Controller, ControllerConfig, ControllerError,
                                             ControllerState)
from humanoid_rl_ros.core.idle_stand import (BaseMotion, beyond, calm, is_zero_command,
                                             MotionFilter, MotionLimits, near_touchdown)
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from humanoid_rl_ros.robot.description import models_dir
import numpy as np
from policy_fixtures import make_random_policy
import pytest
from training.robustness.runner import run_scenarios
from training.robustness.scenarios import idle_stand_suite

LIMITS = MotionLimits(ang_vel_rad_s=1.0, tilt_rad=0.1, speed_m_s=0.15)


@pytest.fixture(scope='module')
def runtime(tmp_path_factory):
    """Return a runtime for a randomly initialized Kestrel policy (it takes the gait clock)."""
    runtime = PolicyRuntime.load(make_random_policy(tmp_path_factory.mktemp('policy')))
    assert 'gait_phase' in runtime.contract.term_names()
    return runtime


def test_a_zero_command_is_one_whose_norm_is_at_most_the_threshold():
    assert is_zero_command((0.0, 0.0, 0.0), 0.05)
    assert is_zero_command((0.03, 0.0, 0.04), 0.05)  # norm 0.05
    assert not is_zero_command((0.03, 0.0, 0.041), 0.05)
    assert not is_zero_command((0.0, 0.0, -0.3), 0.05)


@pytest.mark.parametrize('motion, reason, is_calm', [
    (BaseMotion(0.5, 0.05, 0.1), '', True),
    (BaseMotion(0.5, 0.05, None), '', True),  # no velocity estimate: judged by gyro and tilt
    (BaseMotion(1.2, 0.05, 0.1), 'base angular velocity 1.20 rad/s > 1', False),
    (BaseMotion(0.5, 0.12, 0.1), 'base tilt 0.120 rad > 0.1', False),
    (BaseMotion(0.5, 0.05, 0.2), 'base speed 0.20 m/s > 0.15', False),
    # unknown orientation or gyro: never calm (the policy is not paused blind), but not beyond
    # the limits either (a holding idle stand is not ended by a lost input)
    (BaseMotion(0.5, None, 0.0), '', False),
    (BaseMotion(math.nan, 0.0, 0.0), '', False),
    (BaseMotion(math.nan, 0.3, 0.0), 'base tilt 0.300 rad > 0.1', False),
])
def test_beyond_names_the_first_known_limit_exceeded_and_calm_needs_the_base(motion, reason,
                                                                             is_calm):
    assert beyond(motion, LIMITS) == reason
    assert calm(motion, LIMITS) is is_calm


@pytest.mark.parametrize('phase, expected', [
    (0.96, True), (0.999, True), (0.0, True),  # up to 0.05 before the touchdown at 0 (wraps)
    (0.46, True), (0.5, True),
    (0.94, False), (0.02, False), (0.25, False), (0.52, False),
])
def test_near_touchdown_is_a_window_before_each_touchdown(phase, expected):
    assert near_touchdown(phase, (0.0, 0.5), 0.05) is expected


@pytest.mark.parametrize('field, value', [
    ('idle_stand_after_s', -1.0), ('idle_exit_tilt_rad', 0.0),
    ('idle_enter_ang_vel_rad_s', math.inf), ('idle_restart_phase', 1.0),
    ('idle_touchdown_phases', (0.0, 1.5)), ('idle_phase_window', -0.1),
    ('idle_exit_speed_m_s', 0.1),  # below the enter limit (0.15): an endless enter-exit loop
])
def test_bad_idle_settings_are_refused_by_name(runtime, field, value):
    with pytest.raises(ControllerError, match=field):
        ControllerConfig(**{field: value}).validate()


def _run(f: Feeder, seconds: float) -> list:
    return [f.tick() for _ in range(int(round(seconds / DT)))]


def test_the_idle_stand_is_off_by_default(runtime):
    f = walking(runtime)
    steps = f.c.policy_steps
    _run(f, 3.0)
    assert not f.c.idle_standing and f.c.policy_steps > steps + 100


def test_a_calm_robot_at_zero_command_stands_on_pd_until_commanded(runtime):
    f = walking(runtime, idle_stand_after_s=0.5, idle_stand_ramp_s=0.2)
    c = f.c
    decimation = c.decimation
    for _ in range(int(round(0.5 / DT)) - 2):
        f.tick()
        assert not c.idle_standing  # not before 0.5 s of calm at zero command
    for _ in range(int(round(c.contract.gait_period_s / DT)) + 2 * decimation):
        f.tick()
        if c.idle_standing:
            break
    assert c.idle_standing and 'policy paused' in c.idle_note
    assert near_touchdown(c.gait_phase, (0.0, 0.5), 0.05)  # both feet down
    assert c.state is ControllerState.WALKING  # a walking sub-mode: no fault, no transition
    start = c.joint_state(f.t).q_rad.copy()
    steps = c.policy_steps
    effort = None
    for _ in range(int(round(0.2 / DT)) + 5):  # the ramp, then holding
        effort = f.tick()
    assert c.policy_steps == steps  # the policy is paused
    default = np.asarray(c.contract.default_pos_rad)
    np.testing.assert_allclose(c.q_target_rad, default)
    np.testing.assert_allclose(effort, pd_effort(c, default, f.q, f.qd), rtol=1e-9, atol=1e-9)
    assert not np.allclose(start, default)  # there was a ramp to make
    c.update_cmd_vel(0.5, 0.0, 0.0, f.t)
    f.tick()
    assert not c.idle_standing and 'a non-zero command' in c.idle_note
    assert c.policy_steps == steps + 1  # restarted at once
    assert c.gait_phase == pytest.approx(0.25 + DT / c.contract.gait_period_s)


def test_a_push_hands_the_idle_stand_back_to_the_policy(runtime):
    f = walking(runtime, idle_stand_after_s=0.2)
    c = f.c
    _run(f, 0.2 + c.contract.gait_period_s)
    assert c.idle_standing
    f.lin_vel = (0.4, 0.0, 0.0)  # pushed: faster than idle_exit_speed_m_s (0.3)
    steps = c.policy_steps
    # the exit limits judge the speed filtered over 0.02 s: 0.1 + 0.3 * (1 - 0.75^n) > 0.3
    # from the 4th tick on
    for tick in range(1, 5):
        f.tick()
        assert c.idle_standing is (tick < 4), tick
    assert 'base speed 0.31 m/s > 0.3' in c.idle_note  # 0.1 + 0.3 * (1 - 0.75^4)
    assert c.policy_steps == steps + 1
    _run(f, 1.0)
    assert not c.idle_standing  # not calm (0.4 m/s): the policy keeps control
    f.lin_vel = (0.1, 0.0, 0.0)
    # the enter limits judge the filtered speed (time constant 0.1 s): it falls from 0.4 to
    # 0.15 m/s in 0.1 s * ln(0.3 / 0.05) = 0.18 s, then 0.2 s of calm, then a touchdown
    ticks = 0
    while not c.idle_standing and ticks < 2000:
        f.tick()
        ticks += 1
    assert 0.38 <= ticks * DT <= 0.38 + c.contract.gait_period_s


def test_a_fault_stand_leaves_the_idle_stand(runtime):
    f = walking(runtime, idle_stand_after_s=0.2, fault_hold_s=0.0)
    c = f.c
    _run(f, 0.2 + c.contract.gait_period_s)
    assert c.idle_standing
    for _ in range(int(round(0.2 / DT))):  # odometry stops: a sustained walking-input fault
        f.tick(odom=False)
    assert c.state is ControllerState.STANDING and not c.idle_standing


def test_the_motion_filter_smooths_noise_and_restarts_after_a_gap():
    f = MotionFilter(time_constant_s=0.1)
    first = f.update([0.0, 0.0, 1.0], 0.05, [0.3, 0.4], 0.005)  # the first sample as it is
    assert (first.ang_vel_rad_s, first.tilt_rad, first.planar_speed_m_s) == (1.0, 0.05, 0.5)
    rng = np.random.default_rng(0)
    for _ in range(400):  # zero-mean noise of +-0.5 rad/s on a still base
        motion = f.update(rng.uniform(-0.5, 0.5, 3), 0.05, [0.0, 0.0], 0.005)
    assert motion.ang_vel_rad_s < 0.25  # one raw sample's norm is about 0.5 on average
    assert motion.planar_speed_m_s == pytest.approx(0.0, abs=1e-6)
    gap = f.update([0.0, 0.0, 0.0], None, None, 0.005)  # no orientation, no odometry
    assert gap.tilt_rad is None and gap.planar_speed_m_s is None
    again = f.update([0.0, 0.0, 0.0], 0.2, [1.0, 0.0], 0.005)  # restarted: taken as it is
    assert (again.tilt_rad, again.planar_speed_m_s) == (0.2, 1.0)
    assert math.isnan(f.update([math.nan, 0.0, 0.0], 0.0, None, 0.005).ang_vel_rad_s)
    assert MotionFilter(0.0).update([0.0, 3.0, 4.0], 0.1, None, 0.005).ang_vel_rad_s == 5.0


def test_in_mujoco_a_policy_that_marches_in_place_stands_still_with_the_idle_stand():
    """
    Closed loop on the CPU MuJoCo robot: steps in place without it, none with it.

    The base-velocity policy's gait clock runs at every command, so it marches in place at a
    zero command; the default policy stands still by itself (the robustness suite's
    ``standstill``).
    """
    scenario = next(s for s in idle_stand_suite() if s.name == 'standstill_idle_stand')
    on = dataclasses.replace(scenario, seeds=1, duration_s=4.0)
    off = dataclasses.replace(on, name='standstill_policy_alone', loop=dataclasses.replace(
        on.loop, idle_stand_after_s=0.0))
    with_idle, without = run_scenarios(models_dir() / 'humanoid_walk_base_vel.yaml',
                                       [on, off], workers=1, progress=None)
    assert not with_idle.fell and not without.fell
    assert without.metrics['steps_per_10s'] >= 10.0  # this policy steps in place
    assert with_idle.metrics['steps_per_10s'] == 0.0
    assert with_idle.metrics['planar_drift_m_s'] <= 0.02


def _holding(runtime, **config) -> Feeder:
    f = walking(runtime, idle_stand_after_s=0.2, **config)
    _run(f, 0.2 + f.c.contract.gait_period_s)
    assert f.c.idle_standing
    return f


def test_turning_the_idle_stand_off_while_holding_hands_back_to_the_policy(runtime):
    f = _holding(runtime)
    c = f.c
    steps = c.policy_steps
    c.config = ControllerConfig(stand_ramp_s=0.0)  # the node replaces the config at run time
    f.tick()
    assert not c.idle_standing and 'idle stand turned off' in c.idle_note
    assert c.policy_steps == steps + 1
    assert c.gait_phase == pytest.approx(0.25 + DT / c.contract.gait_period_s)
    c.config = ControllerConfig(stand_ramp_s=0.0, idle_stand_after_s=0.2)  # on again:
    f.tick()
    assert not c.idle_standing  # the calm time starts again, no stale entry
    _run(f, 0.2 + c.contract.gait_period_s)
    assert c.idle_standing


def test_a_lost_odometry_keeps_the_hold_then_the_graded_response_stands_the_robot(runtime):
    f = _holding(runtime)  # default fault_hold_s 0.25 s, odom_timeout_s 0.1 s
    c = f.c
    steps = c.policy_steps
    for _ in range(int(round(0.3 / DT))):  # odometry stops for 0.3 s: not yet sustained
        f.tick(odom=False)
        assert c.state is ControllerState.WALKING
        assert c.idle_standing and c.policy_steps == steps  # no blind steps
    _run(f, 0.02)  # odometry is back within timeout + fault_hold_s: the hold went on
    assert c.idle_standing and c.state is ControllerState.WALKING
    for _ in range(int(round(0.5 / DT))):  # a sustained loss: standing, idle stand over
        f.tick(odom=False)
    assert c.state is ControllerState.STANDING and not c.idle_standing
    assert 'idle stand ended' in c.idle_note and 'standing' in c.idle_note


def test_no_idle_stand_starts_while_a_fault_is_ridden_out(runtime):
    # orientation from the IMU (fresh, calm); the policy's base velocity from odometry, which
    # stops: the fault is held for fault_hold_s (2 s), and the policy is not paused meanwhile
    c = Controller(runtime.contract, runtime.act, ControllerConfig(
        stand_ramp_s=0.0, idle_stand_after_s=0.2, orientation_source='imu', fault_hold_s=2.0))
    f = Feeder(c)
    f.feed()
    c.update_imu(f.quat, [0.0, 0.0, 0.2], f.t)
    c.activate(f.t)
    assert c.request_walk(f.t)[0]
    f.tick()
    assert c.state is ControllerState.WALKING
    for _ in range(int(round(1.5 / DT))):
        f.tick(odom=False)
        c.update_imu(f.quat, [0.0, 0.0, 0.2], f.t)
        assert c.state is ControllerState.WALKING and not c.idle_standing
    assert 'odom' in c.hold_reason
    for _ in range(int(round((0.2 + c.contract.gait_period_s) / DT))):  # odometry back
        f.tick()
        c.update_imu(f.quat, [0.0, 0.0, 0.2], f.t)
    assert c.idle_standing  # calm for 0.2 s without a fault, then at a touchdown: standing


def test_a_forward_clock_jump_does_not_count_as_calm_time(runtime):
    f = walking(runtime, idle_stand_after_s=1.0)
    c = f.c
    _run(f, 0.5)
    f.t += 3.0  # a clock step: 3 s pass in one tick
    f.tick()
    _run(f, 0.5)
    assert not c.idle_standing  # 1 s of observed calm has not passed yet
    _run(f, 0.5 + c.contract.gait_period_s)
    assert c.idle_standing


def test_a_fault_ends_the_idle_stand_and_says_so(runtime):
    f = _holding(runtime)
    c = f.c
    c.request_damping(f.t)
    assert c.state is ControllerState.DAMPING and not c.idle_standing
    assert 'idle stand ended' in c.idle_note and 'damping' in c.idle_note
