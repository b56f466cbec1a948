"""
Files of a training run folder: checkpoints, the history table and the learning curves.

- ``model_<iteration>.pt``: checkpoints, written atomically (a temporary file, then a rename);
  :func:`prune_checkpoints` keeps the newest few of them.  Other files of the folder (such as
  ``model_<iteration>_interrupted.pt`` or the exported policies in ``snapshots/``) are never
  deleted.
- ``history.csv`` / ``history.json``: one row of scalars per iteration;
- ``learning_curves.png``: metrics vs iteration and vs wall time;
- TensorBoard event files: the same rows, namespaced ``losses/...``, ``charts/...`` and
  ``env/...`` (:func:`write_scalars`).
"""

import csv
import json
import math
import os
from pathlib import Path
import re
from typing import Any, Dict, List, Optional, Union

import torch

CHECKPOINT_NAME = re.compile(r'model_(\d+)\.pt')
"""Name of a periodic checkpoint; the number is the iteration it was written at."""

LOSS_KEYS = ('surrogate_loss', 'value_loss', 'entropy', 'approx_kl', 'clip_fraction')
"""History keys logged to TensorBoard under ``losses/``."""


def checkpoint_path(log_dir: Union[str, Path], iteration: int) -> Path:
    """Return the path of the periodic checkpoint of ``iteration`` in ``log_dir``."""
    return Path(log_dir) / f'model_{int(iteration)}.pt'


def write_checkpoint(state: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Write ``state`` with ``torch.save`` to ``path`` atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + '.tmp')
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def prune_checkpoints(log_dir: Union[str, Path], keep: int,
                      newest_iteration: Optional[int] = None) -> List[Path]:
    """
    Delete all but the ``keep`` newest periodic checkpoints of ``log_dir``; return the deleted.

    Newest means the highest iteration in the name (``model_<iteration>.pt``); ``keep <= 0``
    keeps every checkpoint.  Only files directly in ``log_dir`` named like that are touched,
    and with ``newest_iteration`` (the checkpoint just written) only those at or below it: a
    checkpoint of a higher iteration was left by an earlier run in a reused folder and stays.
    """
    if keep <= 0:
        return []
    found = []
    for path in Path(log_dir).iterdir():
        match = CHECKPOINT_NAME.fullmatch(path.name)
        if match and path.is_file():
            iteration = int(match.group(1))
            if newest_iteration is None or iteration <= newest_iteration:
                found.append((iteration, path))
    found.sort()
    deleted = [path for _, path in found[:-keep]]
    for path in deleted:
        path.unlink()
    return deleted


def write_scalars(writer: Any, row: Dict[str, float], iteration: int) -> None:
    """
    Add the finite scalars of one history ``row`` to a TensorBoard ``SummaryWriter``.

    Tags: ``losses/<key>`` for the PPO losses, ``env/...`` keys as they are, ``charts/<key>``
    for the rest; ``iteration`` is the step.
    """
    for key, value in row.items():
        if key == 'iteration' or not math.isfinite(value):
            continue
        if key in LOSS_KEYS:
            tag = f'losses/{key}'
        elif key.startswith('env/'):
            tag = key
        else:
            tag = f'charts/{key}'
        writer.add_scalar(tag, value, iteration)


def write_history(history: List[Dict[str, float]], log_dir: Union[str, Path],
                  plot: bool = True) -> Optional[Path]:
    """
    Write history.csv, history.json and (if ``plot``) learning_curves.png to ``log_dir``.

    Returns the plot's path (the csv's without ``plot``), or None when there is no history.
    """
    if not history:
        return None
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    keys: List[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    with open(log_dir / 'history.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in history:
            writer.writerow(row)
    with open(log_dir / 'history.json', 'w') as f:
        json.dump(history, f, indent=1, allow_nan=True)
    if plot:
        return plot_history(history, log_dir / 'learning_curves.png')
    return log_dir / 'history.csv'


def plot_history(history: List[Dict[str, float]], path: Union[str, Path],
                 extra_keys: Optional[List[str]] = None) -> Path:
    """
    Plot learning curves vs iteration (left) and vs wall time in minutes (right).

    Rows: mean episode return, mean episode length, then ``extra_keys`` (default: env scalars
    whose name contains 'err', at most 4).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if extra_keys is None:
        names: List[str] = []
        for row in history:
            names.extend(k for k in row if k.startswith('env/') and 'err' in k and k not in names)
        extra_keys = names[:4]
    keys = ['mean_reward', 'mean_episode_length'] + list(extra_keys)
    its = [row['iteration'] for row in history]
    minutes = [row['wall_time_s'] / 60.0 for row in history]
    fig, axes = plt.subplots(len(keys), 2, figsize=(11, 2.6 * len(keys)), squeeze=False)
    for i, key in enumerate(keys):
        ys = [row.get(key, float('nan')) for row in history]
        axes[i][0].plot(its, ys)
        axes[i][1].plot(minutes, ys)
        axes[i][0].set_ylabel(key.replace('env/', ''))
        for ax in axes[i]:
            ax.grid(True, alpha=0.3)
    axes[-1][0].set_xlabel('iteration')
    axes[-1][1].set_xlabel('wall time [min]')
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
