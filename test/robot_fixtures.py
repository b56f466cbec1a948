"""A second robot for tests: the classic MuJoCo humanoid (MJCF) described by a robot.yaml."""

from pathlib import Path
import shutil

import pytest
import yaml

CLASSIC_HUMANOID_JOINTS = (
    [f'{j}_{side}' for side in ('left', 'right')
     for j in ('hip_x', 'hip_z', 'hip_y', 'knee', 'ankle_y', 'ankle_x')]
    + ['abdomen_z', 'abdomen_y', 'abdomen_x']
    + [f'{j}_{side}' for side in ('left', 'right') for j in ('shoulder1', 'shoulder2', 'elbow')])
"""Actuated joints of the classic humanoid, in the policy order the fixture declares."""


def classic_humanoid_xml() -> Path:
    """Return the classic humanoid MJCF shipped in mujoco_warp's test data (or skip)."""
    mujoco_warp = pytest.importorskip('mujoco_warp')
    path = Path(mujoco_warp.__file__).parent / 'test_data' / 'humanoid' / 'humanoid.xml'
    if not path.is_file():
        pytest.skip(f'classic humanoid not shipped at {path}')
    return path


def write_classic_humanoid_robot(folder: Path) -> Path:
    """Write ``humanoid.xml`` + ``robot.yaml`` into ``folder`` and return the folder."""
    shutil.copy(classic_humanoid_xml(), folder / 'humanoid.xml')
    config = {
        'name': 'classic_humanoid',
        'description_file': 'humanoid.xml',
        'base_link': 'torso',
        'foot_links': ['foot_left', 'foot_right'],
        'nominal_base_height_m': 1.28,
        'joints': [
            {'name': name, 'default_pos_rad': 0.0, 'kp_nm_per_rad': 200.0,
             'kd_nms_per_rad': 5.0, 'effort_limit_nm': 150.0, 'velocity_limit_rad_s': 20.0,
             'armature_kg_m2': 0.02}
            for name in CLASSIC_HUMANOID_JOINTS
        ],
    }
    (folder / 'robot.yaml').write_text(yaml.safe_dump(config))
    return folder
