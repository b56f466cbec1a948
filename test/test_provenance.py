"""Tests of humanoid_rl_ros.core.provenance (the commit recorded with results)."""

from pathlib import Path
import re
import shutil
import subprocess

from humanoid_rl_ros.core.provenance import COMMIT_ENV_VAR, git_commit
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_environment_variable_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(COMMIT_ENV_VAR, 'abc1234')
    assert git_commit(tmp_path) == 'abc1234'


def test_outside_a_checkout_is_unknown(monkeypatch, tmp_path):
    monkeypatch.delenv(COMMIT_ENV_VAR, raising=False)
    monkeypatch.setenv('GIT_CEILING_DIRECTORIES', str(tmp_path.parent))
    assert git_commit(tmp_path) == 'unknown'


@pytest.mark.skipif(shutil.which('git') is None, reason='git is not installed')
def test_clean_and_dirty_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv(COMMIT_ENV_VAR, raising=False)
    env_args = ['-c', 'user.name=t', '-c', 'user.email=t@example.com']

    def git(*args):
        subprocess.run(['git', *env_args, *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git('init', '-q')
    (tmp_path / 'f.txt').write_text('a\n')
    git('add', 'f.txt')
    git('commit', '-q', '-m', 'first')
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=tmp_path, text=True,
                          capture_output=True, check=True).stdout.strip()
    assert re.fullmatch(r'[0-9a-f]{40}', head)
    assert git_commit(tmp_path) == head
    (tmp_path / 'untracked.txt').write_text('x\n')  # untracked files do not count
    assert git_commit(tmp_path) == head
    (tmp_path / 'f.txt').write_text('b\n')
    assert git_commit(tmp_path) == head + '-dirty'
