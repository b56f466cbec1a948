"""``python -m humanoid_rl_ros.demo``: run the closed-loop walking demo."""

import sys

from humanoid_rl_ros.demo.runner import main

if __name__ == '__main__':
    sys.exit(main())
