"""Build script for the humanoid_rl_ros ament_python package."""

from pathlib import Path

import setuptools
from setuptools import find_packages
from setuptools import setup

PACKAGE_NAME = 'humanoid_rl_ros'
HERE = Path(__file__).resolve().parent


def _share_files(folder: str, patterns: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """
    Return data_files entries installing matching files under share/<pkg>/<folder>/.

    Subfolders are kept (models/robots/<robot>/... lands in share/<pkg>/models/robots/<robot>/).
    A missing or empty folder yields no entries, so the build works before it has content.
    """
    root = HERE / folder
    by_dir: dict[str, list[str]] = {}
    if not root.is_dir():
        return []
    for pattern in patterns:
        for path in sorted(root.rglob(pattern)):
            rel = path.relative_to(HERE)
            if not path.is_file() or any(p.startswith(('.', '__')) for p in rel.parts):
                continue
            target = str(Path('share') / PACKAGE_NAME / rel.parent)
            by_dir.setdefault(target, []).append(str(rel))
    return sorted(by_dir.items())


def _tests_require(requirements: list[str]) -> dict[str, list[str]]:
    """Return the ``tests_require`` keyword where setuptools still knows it (< 72)."""
    major = int(setuptools.__version__.split('.')[0])
    return {'tests_require': requirements} if major < 72 else {}


data_files = [
    ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE_NAME]),
    ('share/' + PACKAGE_NAME, ['package.xml']),
]
data_files += _share_files('launch', ('*.launch.py', '*.launch.xml', '*.launch.yaml'))
data_files += _share_files('config', ('*.yaml', '*.yml'))
# Policies (<policy>.onnx + <policy>.yaml contract) and robots (URDF/MJCF, robot.yaml, meshes).
data_files += _share_files('models', ('*',))

setup(
    name=PACKAGE_NAME,
    version='0.1.0',
    # The ROS package only; training/ is an offline tool used from the source checkout.
    packages=find_packages(include=[PACKAGE_NAME, PACKAGE_NAME + '.*']),
    data_files=data_files,
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='humanoid_rl_ros team',
    maintainer_email='humanoid-rl-ros@example.com',
    description='RL humanoid locomotion: GPU training, ONNX policy contract, ROS 2 policy node.',
    license='Apache-2.0',
    # colcon picks pytest (not unittest) only when 'pytest' is a test requirement.
    extras_require={'test': ['pytest']},
    **_tests_require(['pytest']),
    entry_points={
        'console_scripts': [
            'policy_node = humanoid_rl_ros.ros.policy_node:main',
            'sim_node = humanoid_rl_ros.ros.sim_node:main',
            'walk_demo = humanoid_rl_ros.demo.runner:main',
            'nav2_params = humanoid_rl_ros.integration.nav2_params:main',
        ],
    },
)
