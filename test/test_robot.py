"""Tests for the robot config loader and the MuJoCo model builder (real MuJoCo)."""

from pathlib import Path
import re
import shutil
import xml.etree.ElementTree as ElementTree

from humanoid_rl_ros.robot.description import (JointSpec, load_robot, models_dir, RobotConfig,
                                               RobotConfigError)
from humanoid_rl_ros.robot.mujoco_model import (build_mujoco_model, default_qpos, FLOOR_GEOM_NAME,
                                                joint_dof_adr, joint_qpos_adr)
import mujoco
import numpy as np
import pytest
from robot_fixtures import CLASSIC_HUMANOID_JOINTS, write_classic_humanoid_robot
from training.robot_init import stand_check
import yaml


POLICY_ORDER = (
    'left_hip_yaw_joint', 'left_hip_roll_joint', 'left_hip_pitch_joint', 'left_knee_joint',
    'left_ankle_pitch_joint', 'left_ankle_roll_joint',
    'right_hip_yaw_joint', 'right_hip_roll_joint', 'right_hip_pitch_joint', 'right_knee_joint',
    'right_ankle_pitch_joint', 'right_ankle_roll_joint',
    'torso_yaw_joint',
    'left_shoulder_pitch_joint', 'left_shoulder_roll_joint', 'left_shoulder_yaw_joint',
    'left_elbow_joint',
    'right_shoulder_pitch_joint', 'right_shoulder_roll_joint', 'right_shoulder_yaw_joint',
    'right_elbow_joint',
)
KESTREL_DIR = models_dir() / 'robots' / 'kestrel'


@pytest.fixture(scope='module')
def kestrel() -> RobotConfig:
    """Load the project's robot once."""
    return load_robot('kestrel')


@pytest.fixture(scope='module')
def kestrel_model(kestrel: RobotConfig) -> mujoco.MjModel:
    """Compile the project's robot once."""
    return build_mujoco_model(kestrel)


def _urdf_limits() -> dict:
    root = ElementTree.parse(KESTREL_DIR / 'kestrel.urdf').getroot()
    out = {}
    for joint in root.iter('joint'):
        limit = joint.find('limit')
        if joint.get('type') == 'revolute':
            out[joint.get('name')] = {k: float(limit.get(k)) for k in
                                      ('lower', 'upper', 'effort', 'velocity')}
    return out


def test_load_by_name_dir_and_path_agree(kestrel: RobotConfig) -> None:
    """The robot loads the same from its name, its folder and its yaml path."""
    assert load_robot(KESTREL_DIR) == kestrel
    assert load_robot(KESTREL_DIR / 'robot.yaml') == kestrel
    assert kestrel.joint_names == POLICY_ORDER
    assert kestrel.base_link == 'pelvis'
    assert kestrel.foot_links == ('left_foot', 'right_foot')
    assert kestrel.description_path.is_file()


def test_config_limits_equal_urdf_limits(kestrel: RobotConfig) -> None:
    """The config's effort/velocity limits equal the URDF's; defaults lie inside the ranges."""
    limits = _urdf_limits()
    assert set(limits) == set(POLICY_ORDER)
    for joint in kestrel.joints:
        assert joint.effort_limit_nm == limits[joint.name]['effort']
        assert joint.velocity_limit_rad_s == limits[joint.name]['velocity']
        assert limits[joint.name]['lower'] < joint.default_pos_rad < limits[joint.name]['upper']


def test_physical_plausibility(kestrel: RobotConfig, kestrel_model: mujoco.MjModel) -> None:
    """Mass, height, limits and inertias are those of a small electric humanoid."""
    model = kestrel_model
    mass_kg = float(model.body_subtreemass[0])
    assert 30.0 <= mass_kg <= 40.0
    data = mujoco.MjData(model)
    data.qpos[:] = default_qpos(model, kestrel)
    data.qpos[joint_qpos_adr(model, kestrel)] = 0.0  # straight zero pose
    mujoco.mj_forward(model, data)
    robot_geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] != 0]
    top = max(data.geom_xpos[g][2] + model.geom_rbound[g] for g in robot_geoms)
    bottom = min(data.geom_xpos[g][2] - model.geom_rbound[g] for g in robot_geoms)
    assert 1.3 <= top - bottom <= 1.6  # rbound overestimates the box feet a little
    efforts = kestrel.effort_limit_nm
    names = kestrel.joint_names
    for name, effort in zip(names, efforts):
        if 'hip' in name or 'knee' in name:
            assert 80.0 <= effort <= 200.0, name
        elif 'ankle' in name:
            assert 40.0 <= effort <= 60.0, name
        elif 'torso' in name:
            assert 60.0 <= effort <= 80.0, name
        else:
            assert 20.0 <= effort <= 40.0, name
    assert np.all((kestrel.velocity_limit_rad_s >= 10.0) & (kestrel.velocity_limit_rad_s <= 25.0))
    # Every body's principal inertias satisfy the triangle inequality (physically realizable).
    for b in range(1, model.nbody):
        i = np.sort(model.body_inertia[b])
        assert i[0] + i[1] >= i[2] * (1 - 1e-9), model.body(b).name


def test_model_structure(kestrel: RobotConfig, kestrel_model: mujoco.MjModel) -> None:
    """Free base, 21 motors in policy order with +/- effort ctrlrange, armature applied."""
    model = kestrel_model
    assert model.nq == 7 + 21 and model.nv == 6 + 21 and model.nu == 21
    assert model.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE
    assert model.body(model.jnt_bodyid[0]).name == 'pelvis'
    assert model.opt.timestep == pytest.approx(0.005)
    for i, joint in enumerate(kestrel.joints):
        assert model.actuator(i).name == joint.name
        jid = model.actuator_trnid[i, 0]
        assert model.joint(jid).name == joint.name
        assert model.actuator_gear[i, 0] == 1.0
        assert model.actuator_ctrllimited[i]
        np.testing.assert_allclose(model.actuator_ctrlrange[i],
                                   [-joint.effort_limit_nm, joint.effort_limit_nm])
        assert model.dof_armature[model.jnt_dofadr[jid]] == pytest.approx(joint.armature_kg_m2)
    assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, FLOOR_GEOM_NAME) >= 0
    np.testing.assert_allclose(model.key_qpos[0], default_qpos(model, kestrel))
    # The URDF tree order equals the policy order for kestrel.
    np.testing.assert_array_equal(joint_qpos_adr(model, kestrel), 7 + np.arange(21))
    np.testing.assert_array_equal(joint_dof_adr(model, kestrel), 6 + np.arange(21))


def test_no_self_collision_only_floor(kestrel: RobotConfig,
                                      kestrel_model: mujoco.MjModel) -> None:
    """Folding a leg through the body produces no robot-robot contact, only floor contacts."""
    model = kestrel_model
    data = mujoco.MjData(model)
    data.qpos[:] = default_qpos(model, kestrel)
    qadr = joint_qpos_adr(model, kestrel)
    data.qpos[qadr[kestrel.joint_names.index('left_hip_pitch_joint')]] = -2.0
    data.qpos[qadr[kestrel.joint_names.index('left_knee_joint')]] = 0.0
    data.qpos[qadr[kestrel.joint_names.index('left_elbow_joint')]] = -2.2
    mujoco.mj_forward(model, data)
    floor = model.geom(FLOOR_GEOM_NAME).id
    for contact in data.contact[:data.ncon]:
        assert floor in (contact.geom1, contact.geom2)


@pytest.mark.parametrize('drop_m', [0.0, 0.02])
def test_stands_for_10_s_under_its_pd_gains(kestrel: RobotConfig, drop_m: float) -> None:
    """Zero action (PD to the default pose): no fall, height within 5 cm, no effort saturation."""
    report = stand_check(kestrel, drop_m=drop_m)
    print(f'stand drop={drop_m} m: {report}')
    assert not report.fell and report.all_finite
    assert report.min_uprightness > np.cos(np.deg2rad(20.0))
    assert report.max_height_error_m < 0.05
    assert max(report.saturated_share.values(), default=0.0) < 0.05
    assert report.drift_m < 0.1
    # nominal_base_height_m is the measured standing height, not a guess.
    assert abs(report.final_base_height_m - kestrel.nominal_base_height_m) < 0.01


@pytest.mark.parametrize('push_m_s', [(0.3, 0.0, 0.0), (-0.2, 0.0, 0.0), (0.0, 0.3, 0.0)])
def test_pd_stand_recovers_from_small_pushes(kestrel: RobotConfig, push_m_s: tuple) -> None:
    """Zero action: a push of the base (forward, backward, sideways) does not topple it."""
    report = stand_check(kestrel, duration_s=5.0, push_m_s=push_m_s)
    assert not report.fell
    assert report.min_uprightness > np.cos(np.deg2rad(30.0))
    assert abs(report.final_base_height_m - kestrel.nominal_base_height_m) < 0.05


# ---------------------------------------------------------------- malformed configs


def _write_variant(tmp_path: Path, edit) -> Path:
    """Copy kestrel to tmp_path, apply ``edit`` to the parsed yaml, return the yaml path."""
    shutil.copy(KESTREL_DIR / 'kestrel.urdf', tmp_path / 'kestrel.urdf')
    raw = yaml.safe_load((KESTREL_DIR / 'robot.yaml').read_text())
    edit(raw)
    path = tmp_path / 'robot.yaml'
    path.write_text(yaml.safe_dump(raw))
    return path


def _set_joint(name: str, **fields):
    def edit(raw: dict) -> None:
        for joint in raw['joints']:
            if joint['name'] == name:
                joint.update(fields)
    return edit


def _drop_key(key: str):
    def edit(raw: dict) -> None:
        del raw[key]
    return edit


def _add_joint(raw: dict) -> None:
    raw['joints'].append(dict(raw['joints'][0], name='left_tail_joint'))


def _dup_joint(raw: dict) -> None:
    raw['joints'].append(dict(raw['joints'][0]))


def _drop_joint_field(raw: dict) -> None:
    del raw['joints'][3]['kp_nm_per_rad']


@pytest.mark.parametrize('edit, pattern', [
    (_add_joint, "joint 'left_tail_joint' .*missing from kestrel.urdf"),
    (_dup_joint, 'listed more than once.*left_hip_yaw_joint'),
    (_drop_joint_field, r"left_knee_joint.*missing keys \['kp_nm_per_rad'\]"),
    (_drop_key('base_link'), r"missing keys \['base_link'\]"),
    (_set_joint('left_knee_joint', effort_limit_nm=120.0),
     'left_knee_joint.*effort_limit_nm 120.0 does not match'),
    (_set_joint('right_elbow_joint', velocity_limit_rad_s=3.0),
     'right_elbow_joint.*velocity_limit_rad_s 3.0 does not match'),
    (_set_joint('left_knee_joint', default_pos_rad=3.0),
     'left_knee_joint.*default_pos_rad 3.0 is outside'),
    (_set_joint('left_knee_joint', kp_nm_per_rad=-1.0), 'left_knee_joint.*kp_nm_per_rad must be'),
    (_set_joint('left_knee_joint', kd_nms_per_rad='fast'),
     'left_knee_joint.*kd_nms_per_rad must be a number'),
    (_set_joint('left_knee_joint', kp_nm_per_rad=float('nan')),
     'left_knee_joint.*kp_nm_per_rad must be finite'),
    (_set_joint('left_knee_joint', stiffness=3.0), r"unknown keys \['stiffness'\]"),
    (lambda raw: raw.update(base_link='chassis'), "link 'chassis'"),
    (lambda raw: raw.update(foot_links=['left_foot', 'left_paw']), "link 'left_paw'"),
    (lambda raw: raw.update(foot_links=[]), 'foot_links must be a non-empty list'),
    (lambda raw: raw.update(nominal_base_height_m=-0.2), 'nominal_base_height_m must be > 0'),
    (lambda raw: raw.update(description_file='kestrel.sdf'), r'\.urdf or \.xml'),
    (lambda raw: raw.update(description_file='nowhere.urdf'), 'description_file not found'),
    (lambda raw: raw.update(joints={}), 'joints must be a list'),
])
def test_malformed_config_gives_named_error(tmp_path: Path, edit, pattern: str) -> None:
    """Each malformed robot.yaml variant raises RobotConfigError naming the problem."""
    path = _write_variant(tmp_path, edit)
    with pytest.raises(RobotConfigError, match=pattern):
        load_robot(path)


def test_robot_config_error_is_value_error() -> None:
    """Callers may catch ValueError."""
    assert issubclass(RobotConfigError, ValueError)
    with pytest.raises(ValueError, match='effort_limit_nm must be > 0'):
        JointSpec('j', 0.0, 1.0, 0.1, 0.0, 1.0)


def test_unknown_robot_name_lists_known_robots() -> None:
    """An unknown name says which robots exist."""
    with pytest.raises(FileNotFoundError, match=re.escape("known: ['kestrel'")):
        load_robot('no_such_robot')


def test_mismatched_urdf_effort_is_named(tmp_path: Path) -> None:
    """Editing the URDF (not the yaml) is caught too, naming the joint."""
    shutil.copy(KESTREL_DIR / 'robot.yaml', tmp_path / 'robot.yaml')
    text = (KESTREL_DIR / 'kestrel.urdf').read_text()
    block = text.index('<joint name="torso_yaw_joint"')
    text = text[:block] + text[block:].replace('effort="70"', 'effort="71"', 1)
    (tmp_path / 'kestrel.urdf').write_text(text)
    with pytest.raises(RobotConfigError, match='torso_yaw_joint.*effort_limit_nm 70.0'):
        load_robot(tmp_path)


# ---------------------------------------------------------------- any robot: MJCF path


def test_classic_mujoco_humanoid_mjcf_is_accepted(tmp_path: Path) -> None:
    """The classic MuJoCo humanoid (MJCF) described by a small robot.yaml compiles."""
    write_classic_humanoid_robot(tmp_path)
    joints = list(CLASSIC_HUMANOID_JOINTS)
    robot = load_robot(tmp_path)
    model = build_mujoco_model(robot, timestep_s=0.004)
    assert model.nu == len(joints)  # its own 21 actuators replaced by ours
    assert [model.actuator(i).name for i in range(model.nu)] == joints
    assert model.opt.timestep == pytest.approx(0.004)
    planes = [g for g in range(model.ngeom) if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_PLANE]
    assert [model.geom(g).name for g in planes] == [FLOOR_GEOM_NAME]
    data = mujoco.MjData(model)
    data.qpos[:] = default_qpos(model, robot)
    mujoco.mj_forward(model, data)
    data.ctrl[:] = 1.0e3  # clamped to the ctrlrange by MuJoCo
    mujoco.mj_step(model, data)
    np.testing.assert_allclose(data.actuator_force, 150.0)
    qadr = joint_qpos_adr(model, robot)
    assert len(set(qadr.tolist())) == len(joints)

    config = yaml.safe_load((tmp_path / 'robot.yaml').read_text())
    (tmp_path / 'robot.yaml').write_text(yaml.safe_dump(
        dict(config, joints=config['joints'] + [dict(config['joints'][0], name='tail')])))
    with pytest.raises(RobotConfigError, match="joint 'tail' .*missing from humanoid.xml"):
        load_robot(tmp_path)
