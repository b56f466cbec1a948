"""``python -m training.sim2sim``: see :mod:`training.sim2sim.run`."""

import sys

from training.sim2sim.run import main

if __name__ == '__main__':
    sys.exit(main())
