"""Onboarding a robot: draft robot.yaml from a URDF or MJCF description, then validate it."""

import os
from pathlib import Path

from humanoid_rl_ros.robot.description import load_robot, models_dir, RobotConfigError
import mujoco
import numpy as np
import pytest
from training.robot_check import SETTLE_S
from training.robot_init import draft_robot, GainRule, init_robot, main, stand_check
import yaml

KESTREL = models_dir() / 'robots' / 'kestrel'


def _classic_humanoid() -> Path:
    """Return the classic MuJoCo humanoid MJCF shipped with mujoco_warp's test data."""
    import mujoco_warp
    path = Path(os.path.dirname(mujoco_warp.__file__)) / 'test_data' / 'humanoid' / 'humanoid.xml'
    if not path.is_file():
        pytest.skip(f'mujoco_warp test data missing: {path}')
    return path


def _kestrel_yaml() -> dict:
    return yaml.safe_load((KESTREL / 'robot.yaml').read_text())


def test_draft_from_urdf_reproduces_the_hand_made_kestrel_config(tmp_path: Path) -> None:
    """Given the rotor inertias and the pose a datasheet gives, the draft equals robot.yaml."""
    shipped = _kestrel_yaml()
    armature = {j['name']: j['armature_kg_m2'] for j in shipped['joints']}
    pose = {j['name']: j['default_pos_rad'] for j in shipped['joints']}
    path, draft, robot, report = init_robot(KESTREL / 'kestrel.urdf', tmp_path / 'kestrel',
                                            armature_kg_m2=armature, default_pos_rad=pose)
    got = yaml.safe_load(path.read_text())
    assert got['base_link'] == shipped['base_link']
    assert got['foot_links'] == shipped['foot_links']
    assert [j['name'] for j in got['joints']] == [j['name'] for j in shipped['joints']]
    for mine, theirs in zip(got['joints'], shipped['joints']):
        for key in ('effort_limit_nm', 'velocity_limit_rad_s', 'default_pos_rad',
                    'armature_kg_m2'):
            assert mine[key] == pytest.approx(theirs[key]), (mine['name'], key)
        for key in ('kp_nm_per_rad', 'kd_nms_per_rad'):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-3), (mine['name'], key)
    assert got['nominal_base_height_m'] == pytest.approx(shipped['nominal_base_height_m'],
                                                         abs=0.005)
    assert report.ok and not report.fell and report.all_finite
    assert robot.joint_names == load_robot('kestrel').joint_names


def test_draft_without_rotor_inertia_says_what_to_fix(tmp_path: Path, capsys) -> None:
    """The bare URDF has no rotor inertia: the draft flags it and the check names the fix."""
    code = main(['draft', str(KESTREL / 'kestrel.urdf'), '--out', str(tmp_path / 'k')])
    out = capsys.readouterr().out
    text = (tmp_path / 'k' / 'robot.yaml').read_text()
    assert 'no rotor inertia' in text
    assert code == 1
    assert 'FIX:' in out and 'armature_kg_m2' in out


def test_draft_of_the_classic_mujoco_humanoid(tmp_path: Path, capsys) -> None:
    """MJCF: tree-order hinges, limits from the motors' gear x ctrlrange, armature, base, feet."""
    xml = _classic_humanoid()
    model = mujoco.MjModel.from_xml_path(str(xml))
    hinges = [model.joint(j).name for j in range(model.njnt)
              if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    gear = {model.joint(model.actuator_trnid[a, 0]).name: model.actuator_gear[a, 0]
            for a in range(model.nu)}
    draft = draft_robot(xml, 'humanoid', tmp_path / 'humanoid')
    cfg = draft.config
    assert [j['name'] for j in cfg['joints']] == hinges
    assert cfg['base_link'] == 'torso'
    assert sorted(cfg['foot_links']) == ['foot_left', 'foot_right']
    for joint in cfg['joints']:
        # ctrlrange is -1..1 for every motor of this model, so the limit is the gear.
        assert joint['effort_limit_nm'] == pytest.approx(gear[joint['name']])
        assert joint['armature_kg_m2'] == pytest.approx(0.01)
        assert joint['kp_nm_per_rad'] == pytest.approx(0.01 * (2 * np.pi * 10) ** 2, rel=1e-4)
    assert any('velocity limit' in n for n in draft.notes)
    assert any('keyframe named' in n for n in draft.notes)  # 'squat' is not a standing pose

    code = main(['draft', str(xml), '--out', str(tmp_path / 'humanoid')])
    out = capsys.readouterr().out
    robot = load_robot(tmp_path / 'humanoid')  # the written file loads and validates
    assert robot.num_joints == len(hinges)
    report = stand_check(robot)
    assert report.all_finite
    # This model's motors are weak for a PD stand; the tool must say so and what to change.
    assert code == (0 if report.ok else 1)
    if not report.ok:
        assert 'FIX:' in out
    # It falls (after 0.8 s) before the 1 s of settling is over: no height error was measured.
    assert report.fell and report.fall_time_s < SETTLE_S
    assert report.max_height_error_m is None
    assert 'max error not measured: the run ended before 1 s of settling' in out


def test_validate_the_shipped_robot(capsys) -> None:
    """``validate kestrel`` loads the shipped robot and finds that it stands: exit 0."""
    assert main(['validate', 'kestrel']) == 0
    assert 'OK: the robot stands' in capsys.readouterr().out


def test_validate_names_a_broken_config(tmp_path: Path, capsys) -> None:
    """A config whose effort limit disagrees with the URDF fails with the joint named."""
    data = _kestrel_yaml()
    data['description_file'] = str(KESTREL / 'kestrel.urdf')
    data['joints'][3]['effort_limit_nm'] = 1.0
    (tmp_path / 'robot.yaml').write_text(yaml.safe_dump(data))
    assert main(['validate', str(tmp_path)]) == 2
    assert data['joints'][3]['name'] in capsys.readouterr().err


def test_soft_gains_that_cannot_hold_the_pose_are_reported(tmp_path: Path) -> None:
    """Gains a tenth of kestrel's: the stand check reports the fall and the sagging joints."""
    data = _kestrel_yaml()
    data['description_file'] = str(KESTREL / 'kestrel.urdf')
    for joint in data['joints']:
        joint['kp_nm_per_rad'] *= 0.1
        joint['kd_nms_per_rad'] *= 0.1
    (tmp_path / 'robot.yaml').write_text(yaml.safe_dump(data))
    robot = load_robot(tmp_path)
    report = stand_check(robot)
    assert report.fell and not report.ok
    advice = ' '.join(report.advice(robot))
    assert 'fell' in advice and list(report.worst_tracking_rad)[0] in advice


def test_unstable_gain_rule_and_unknown_joint_are_refused(tmp_path: Path) -> None:
    """A rule explicit PD cannot run, or an override for a missing joint, is a clear error."""
    with pytest.raises(RobotConfigError, match='unstable'):
        GainRule(natural_frequency_hz=40.0, damping_ratio=2.0)
    with pytest.raises(RobotConfigError, match='no_such_joint'):
        draft_robot(KESTREL / 'kestrel.urdf', 'k', tmp_path, armature_kg_m2={'no_such_joint': 1})
