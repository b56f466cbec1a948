"""
The demo's node processes: where their parameter files are, their environment, their lifetime.

Each node runs in its own process group and logs to a file, so that it can always be stopped
(SIGINT, then SIGTERM, then SIGKILL to the group) and its log quoted when it dies.
"""

import os
from pathlib import Path
import signal
import subprocess
from typing import Dict, List

PACKAGE = 'humanoid_rl_ros'


class DemoError(RuntimeError):
    """The demo cannot run or a node failed; the message says what and where to look."""


def config_file(name: str) -> Path:
    """Return ``config/<name>``: the source checkout's, else the installed share folder's."""
    source = Path(__file__).resolve().parents[2] / 'config' / name
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = Path(get_package_share_directory(PACKAGE)) / 'config' / name
    except Exception:  # noqa: B902 - ament index missing or package not installed
        installed = None
    if installed is not None and installed.is_file():
        return installed
    raise DemoError(f'config file {name} not found (looked in {source.parent} and the '
                    f'installed share folder)')


class NodeProcess:
    """A node process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: List[str], log_path: Path, env: Dict[str, str]) -> None:
        """Start ``argv`` as ``name`` with environment ``env``, logging to ``log_path``."""
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def check(self) -> None:
        """Raise :class:`DemoError` with the log's last lines if the process has exited."""
        code = self.proc.poll()
        if code is not None:
            raise DemoError(f'{self.name} exited with code {code}; last lines of '
                            f'{self.log_path}:\n{self.tail()}')

    def tail(self, lines: int = 25) -> str:
        """Return the last ``lines`` lines of the process's log ('' if unreadable)."""
        self._log.flush()
        try:
            return '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-lines:])
        except OSError:
            return ''

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop the process group: SIGINT, then SIGTERM, then SIGKILL, ``grace_s`` [s] each."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


def child_env() -> Dict[str, str]:
    """Return the node processes' environment: this package importable, DDS on this host."""
    env = dict(os.environ)
    pkg_parent = str(Path(__file__).resolve().parents[2])
    env['PYTHONPATH'] = os.pathsep.join(
        [pkg_parent] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env['PYTHONUNBUFFERED'] = '1'
    return env
