"""
Pytest set-up shared by every test: ROS network isolation and import paths.

This runs at import time, before any test module imports rclpy:
- ``ROS_DOMAIN_ID`` is set to a per-process value in 1..100 (from the pid), so parallel test
  runs on one machine never see each other's topics. Set ``HRL_KEEP_DOMAIN=1`` to keep the
  domain id from the environment instead.
- ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` keeps all DDS discovery on this machine.
- The package source root (the parent of ``test/``) goes first on ``sys.path``, so
  ``import humanoid_rl_ros`` and ``import training`` load the source tree, and
  ``models/`` is found beside them, both from pytest in a checkout and under ``colcon test``
  (which runs pytest with the package source folder as its working directory).
"""

import os
from pathlib import Path
import sys

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _ros_domain_id_for_pid(pid: int) -> int:
    """Return a ROS domain id in 1..100 derived from a process id (0 is the shared default)."""
    return 1 + pid % 100


if not os.environ.get('HRL_KEEP_DOMAIN'):
    os.environ['ROS_DOMAIN_ID'] = str(_ros_domain_id_for_pid(os.getpid()))
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
if os.environ.get('ROS_DISTRO') == 'humble':
    # Humble predates ROS_AUTOMATIC_DISCOVERY_RANGE; it reads ROS_LOCALHOST_ONLY instead.
    os.environ['ROS_LOCALHOST_ONLY'] = '1'

if str(REPO_ROOT) in sys.path:
    sys.path.remove(str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT))


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers (also listed in setup.cfg, for runs that do not read it)."""
    config.addinivalue_line('markers', 'linter: ament code style checks (flake8, pep257)')
    config.addinivalue_line(
        'markers', 'ros: starts real rclpy nodes over DDS (isolated by ROS_DOMAIN_ID)')
    config.addinivalue_line('markers', 'slow: takes more than a few seconds')


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Show the ROS isolation settings and the source root in the pytest header."""
    return [
        f'ROS_DOMAIN_ID={os.environ.get("ROS_DOMAIN_ID")} '
        f'ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE")}',
        f'humanoid_rl_ros source root: {REPO_ROOT}',
    ]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """
    Run torch with one intra-op thread during each test that uses it.

    The networks in the tests are tiny; on a busy 2-core CI box, torch's default thread pool
    made a PPO update 10-100x slower than a single thread.
    """
    torch = sys.modules.get('torch')
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
