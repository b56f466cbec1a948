"""
The Isaac Gym backend where Isaac Gym is not installed: one message that says what to do.

(Isaac Gym's API use is type-checked in test_isaacgym_typecheck.py; its conversions are tested
in test_conventions.py.)
"""

import importlib.util
from pathlib import Path
import subprocess
import sys

from humanoid_rl_ros.robot.description import load_robot
import pytest
from training.backends import BackendUnavailableError, make_backend

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec('isaacgym') is not None,
                                reason='Isaac Gym is installed here')


def _says_what_to_do(message: str) -> None:
    assert message.startswith('backend "isaacgym" is not available '
                              "(No module named 'isaacgym'; this is Python ")
    assert 'download Isaac Gym Preview 4 from NVIDIA' in message
    assert '`pip install -e isaacgym/python`' in message
    assert 'Python 3.6-3.8' in message
    assert '`python -m training.isaacgym_train`' in message
    assert message.endswith('The default backend, mjwarp (`--backend mjwarp`), needs nothing '
                            "beyond this project's requirements.")


def test_selecting_isaacgym_without_it_says_how_to_install_it_and_that_mjwarp_needs_nothing():
    with pytest.raises(BackendUnavailableError) as info:
        make_backend('isaacgym', load_robot('kestrel'), 2, 'cpu')
    _says_what_to_do(str(info.value))


def test_the_isaacgym_training_entry_point_exits_with_that_one_message():
    result = subprocess.run([sys.executable, '-m', 'training.isaacgym_train', '--device', 'cpu'],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 1
    assert result.stdout == ''
    assert 'Traceback' not in result.stderr
    assert result.stderr.count('\n') == 1, result.stderr
    _says_what_to_do(result.stderr.strip())
