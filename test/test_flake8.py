"""Run ament_flake8 (ROS 2 flake8 configuration) over the whole package source tree."""

from pathlib import Path

from ament_flake8.main import main_with_errors
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Local environment and colcon workspace output; dot-folders are skipped by ament_flake8 anyway.
EXCLUDED = ['.venv', '.venv-jazzy', '.gpuwheels', 'build', 'install', 'log']


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8() -> None:
    """Check every Python file of the repository against the ament flake8 rules."""
    excludes = [str(REPO_ROOT / name) for name in EXCLUDED]
    rc, errors = main_with_errors(argv=[str(REPO_ROOT), '--exclude', *excludes])
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)
