"""``python -m training.robustness``: see :mod:`training.robustness.cli`."""

import sys

from training.robustness.cli import main

if __name__ == '__main__':
    sys.exit(main())
