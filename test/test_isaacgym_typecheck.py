"""
Static check of the Isaac Gym backend's calls into Isaac Gym, which cannot be installed here.

mypy checks ``training/backends/isaacgym.py`` against ``gymapi.pyi`` of the ``isaacgym-stubs``
distribution from PyPI (generated from Isaac Gym Preview 4) and the local ``gymtorch.pyi``
(``training/backends/stubs/isaacgym/``), with the settings of
``training/backends/stubs/mypy.ini``.  A scratch copy of the backend with deliberately wrong
Isaac Gym calls must fail the same check, so the check cannot pass by not seeing Isaac Gym.
"""

import importlib.metadata
import os
from pathlib import Path
import re
import subprocess
import sys
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / 'training' / 'backends' / 'isaacgym.py'
STUBS = ROOT / 'training' / 'backends' / 'stubs'

pytestmark = pytest.mark.slow  # mypy reads torch's sources once (about 15 s), then caches


def _assemble_stubs(folder: Path) -> Path:
    """Write the stub package ``isaacgym/`` under ``folder`` and return ``folder``."""
    dist = importlib.metadata.distribution('isaacgym-stubs')
    assert dist.version == '1.1rc4', 'requirements.txt pins isaacgym-stubs==1.1rc4'
    text = Path(dist.locate_file('isaacgym-stubs/gymapi.pyi')).read_text(encoding='utf-8')
    # The generated stub declares the RigidContact/SoftContact property `lambda`, a Python
    # keyword that no parser accepts; renaming it is the only change made to the stub.
    text, renamed = re.subn(r'\bdef lambda\(', 'def lambda_(', text)
    assert renamed == 2, 'isaacgym-stubs changed: review the rename of its `lambda` property'
    package = folder / 'isaacgym'
    package.mkdir(parents=True)
    (package / '__init__.pyi').write_text('')
    (package / 'gymapi.pyi').write_text(text, encoding='utf-8')
    (package / 'gymtorch.pyi').write_text(
        (STUBS / 'isaacgym' / 'gymtorch.pyi').read_text(encoding='utf-8'), encoding='utf-8')
    return folder


@pytest.fixture(scope='module')
def mypy_dirs(tmp_path_factory) -> Dict[str, Path]:
    """Return the assembled stub folder and a mypy cache shared by this module's runs."""
    base = tmp_path_factory.mktemp('isaacgym_mypy')
    return {'stubs': _assemble_stubs(base / 'stubs'), 'cache': base / 'cache'}


def _mypy(target: Path, dirs: Dict[str, Path]) -> subprocess.CompletedProcess:
    """Run mypy on ``target`` from the repository root with the Isaac Gym stubs."""
    env = dict(os.environ, MYPYPATH=str(dirs['stubs']))
    return subprocess.run(
        [sys.executable, '-m', 'mypy', '--config-file', str(STUBS / 'mypy.ini'),
         '--cache-dir', str(dirs['cache']), str(target)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_isaacgym_backend_type_checks_against_the_isaacgym_stubs(mypy_dirs):
    result = _mypy(BACKEND, mypy_dirs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Success: no issues found in 1 source file' in result.stdout


MISTAKES = [
    # (correct code in the backend, the mistake, the line mypy reports, what it says)
    ('sp.physx.num_position_iterations = 4', 'sp.physx.num_position_iteration = 4',
     'sp.physx.num_position_iteration = 4',
     '"PhysXParams" has no attribute "num_position_iteration"'),
    ('gym.set_dof_actuation_force_tensor(sim, unwrap(self._torques))',
     'gym.set_dof_actuation_force_tensor(sim, self._torques)',
     'gym.set_dof_actuation_force_tensor(sim, self._torques)',
     'Argument 2 to "set_dof_actuation_force_tensor" of "Gym" has incompatible type '
     '"torch._tensor.Tensor"; expected "isaacgym.gymapi.Tensor"'),
    ('self._sim, unwrap(self._dof_state), unwrap(actor_ids), count)',
     'self._sim, unwrap(self._dof_state), unwrap(actor_ids))',
     'self._gym.set_dof_state_tensor_indexed(',
     'Missing positional argument "arg3" in call to "set_dof_state_tensor_indexed" of "Gym"'),
    ('gym.add_ground(sim, plane)', 'gym.add_ground(sim, plane, 0.0)',
     'gym.add_ground(sim, plane, 0.0)', 'Too many arguments for "add_ground" of "Gym"'),
]


def test_wrong_isaacgym_calls_in_a_scratch_copy_fail_the_type_check(mypy_dirs, tmp_path):
    source = BACKEND.read_text(encoding='utf-8')
    for correct, wrong, _, _ in MISTAKES:
        assert source.count(correct) == 1, f'the backend changed: {correct!r}'
        source = source.replace(correct, wrong)
    lines = source.splitlines()
    expected: List[str] = []
    for _, _, reported, message in MISTAKES:
        line = next(i for i, text in enumerate(lines, 1) if reported in text)
        expected.append(f'isaacgym_broken.py:{line}: error: {message}')
    broken = tmp_path / 'isaacgym_broken.py'
    broken.write_text(source, encoding='utf-8')
    result = _mypy(broken, mypy_dirs)
    assert result.returncode == 1, result.stdout + result.stderr
    for line in expected:
        assert line in result.stdout, f'{line}\nnot in:\n{result.stdout}'
    assert f'Found {len(MISTAKES)} errors in 1 file' in result.stdout, result.stdout
