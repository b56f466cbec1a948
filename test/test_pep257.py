"""Run ament_pep257 (docstring conventions) over the whole package source tree."""

from pathlib import Path

from ament_pep257.main import main
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXCLUDED = ['.venv', '.venv-jazzy', '.gpuwheels', 'build', 'install', 'log']


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257() -> None:
    """Check every Python file of the repository against the ament docstring rules."""
    excludes = [str(REPO_ROOT / name) for name in EXCLUDED]
    rc = main(argv=[str(REPO_ROOT), '--exclude', *excludes])
    assert rc == 0, 'Found code style errors / warnings'
