"""Check the package metadata and that colcon installs every launch/config/model file."""

import os
from pathlib import Path
import xml.etree.ElementTree as ElementTree

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = 'humanoid_rl_ros'
DATA_FOLDERS = ('launch', 'config', 'models')


def _package_xml() -> ElementTree.Element:
    """Return the parsed package.xml root element."""
    return ElementTree.parse(REPO_ROOT / 'package.xml').getroot()


def _source_data_files() -> list[Path]:
    """Return the data files setup.py must install, relative to the repository root."""
    files = []
    for folder in DATA_FOLDERS:
        root = REPO_ROOT / folder
        if root.is_dir():
            files += [
                p.relative_to(REPO_ROOT) for p in sorted(root.rglob('*'))
                if p.is_file() and not any(
                    part.startswith(('.', '__')) for part in p.relative_to(REPO_ROOT).parts)]
    return files


def test_package_xml_is_format_3_ament_python() -> None:
    """Declare the package as a format 3 ament_python package named humanoid_rl_ros."""
    root = _package_xml()
    assert root.get('format') == '3'
    assert root.findtext('name') == PACKAGE
    assert root.findtext('export/build_type') == 'ament_python'


def test_package_xml_declares_runtime_and_test_dependencies() -> None:
    """List the ROS run dependencies the nodes import and the ament linters for tests."""
    root = _package_xml()
    exec_deps = {e.text for e in root.findall('exec_depend')}
    test_deps = {e.text for e in root.findall('test_depend')}
    for dep in ('rclpy', 'sensor_msgs', 'nav_msgs', 'geometry_msgs', 'std_msgs',
                'diagnostic_msgs', 'launch_ros', 'python3-numpy'):
        assert dep in exec_deps, f'package.xml: missing <exec_depend>{dep}</exec_depend>'
    for dep in ('ament_flake8', 'ament_pep257', 'python3-pytest'):
        assert dep in test_deps, f'package.xml: missing <test_depend>{dep}</test_depend>'


def test_installed_share_holds_every_data_file() -> None:
    """After colcon build, share/humanoid_rl_ros holds every launch, config and model file."""
    try:
        from ament_index_python.packages import get_package_share_directory
        from ament_index_python.packages import PackageNotFoundError
    except ImportError:
        pytest.skip('ament_index_python is not importable')
    if not os.environ.get('AMENT_PREFIX_PATH'):
        pytest.skip('AMENT_PREFIX_PATH is unset: no install space sourced (colcon build)')
    try:
        share = Path(get_package_share_directory(PACKAGE))
    except PackageNotFoundError:
        pytest.skip(f'{PACKAGE} is not installed on AMENT_PREFIX_PATH '
                    f'({os.environ.get("AMENT_PREFIX_PATH", "unset")}); run colcon build')
    assert (share / 'package.xml').is_file()
    missing = [str(rel) for rel in _source_data_files() if not (share / rel).is_file()]
    assert not missing, f'not installed under {share} (rebuild, or fix setup.py): {missing}'
