"""Provenance of results: which commit of the source produced them."""

import os
from pathlib import Path
import subprocess
from typing import Union

COMMIT_ENV_VAR = 'HRL_GIT_COMMIT'
"""Names the commit where the source tree was copied without its ``.git`` (the GPU machine)."""


def git_commit(repo_root: Union[str, Path]) -> str:
    """
    Return the commit of the checkout at ``repo_root``, for a result's provenance.

    ``$HRL_GIT_COMMIT`` wins where set.  Otherwise the checkout's full commit hash, with
    ``-dirty`` appended when tracked files differ from it; ``'unknown'`` outside a git
    checkout or without git.
    """
    if os.environ.get(COMMIT_ENV_VAR):
        return os.environ[COMMIT_ENV_VAR]
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=repo_root, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                               cwd=repo_root, text=True, capture_output=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return commit + ('-dirty' if dirty else '')
