"""
Train on Isaac Gym: ``python -m training.isaacgym_train [options of python -m training.train]``.

Isaac Gym refuses to load once torch is imported, and ``training.train`` imports torch, so
``python -m training.train --backend isaacgym`` cannot start Isaac Gym.  This entry point
imports ``isaacgym`` first, then runs ``training.train``'s command line with
``--backend isaacgym`` added (unless the options name a backend).  Where Isaac Gym cannot be
imported it exits with one message that says why and how to install it.
"""

import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Import Isaac Gym, then run the training command line on the isaacgym backend."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        import isaacgym  # noqa: F401 - must be imported before torch
    except ImportError as exc:
        from training.backends.isaacgym import isaacgym_unavailable
        raise SystemExit(str(isaacgym_unavailable(str(exc))))
    if not any(arg == '--backend' or arg.startswith('--backend=') for arg in args):
        args = ['--backend', 'isaacgym', *args]
    from training.train import main as train_main
    train_main(args)


if __name__ == '__main__':
    main()
