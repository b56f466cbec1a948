#!/usr/bin/env python3
"""
Check that every piece of the closed-loop walking demo is installed; list what is missing.

Run after ``colcon build`` with the install space sourced. Exit status 0 when the demo entry
point (``humanoid_rl_ros.demo``) is installed, 1 otherwise; the other pieces are listed so a
missing one is named before the demo itself fails on it. Nothing is imported beyond the
``humanoid_rl_ros`` package itself.
"""

import importlib.util
from pathlib import Path
import sys

DEMO_MODULES = {
    'humanoid_rl_ros.demo': 'the walk_demo entry point (ros-sim owner)',
    'humanoid_rl_ros.sim_node': 'the MuJoCo sim node (ros-sim owner)',
    'humanoid_rl_ros.policy_node': 'the policy node (ros-node owner)',
    'humanoid_rl_ros.policy_runtime': 'the onnxruntime policy session (ros-node owner)',
    'humanoid_rl_ros.controller': 'the controller state machine (ros-node owner)',
    'humanoid_rl_ros.contract': 'the policy contract reader (lead)',
    'humanoid_rl_ros.policy_math': 'the observation/action math (lead)',
    'humanoid_rl_ros.robot': 'the robot config loader (robot owner)',
    'humanoid_rl_ros.mujoco_sim': 'the CPU MuJoCo simulation (robot owner)',
}


def _module_present(name: str) -> bool:
    """Return whether a module can be found without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def _share_dir() -> Path | None:
    """Return the installed share/humanoid_rl_ros folder, or None when it is not found."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('humanoid_rl_ros'))
    except (ImportError, LookupError):
        return None


def main() -> int:
    """Print the status of each demo piece and return 0 when the demo entry point exists."""
    missing = []
    for module, what in DEMO_MODULES.items():
        ok = _module_present(module)
        print(f"  [{'ok' if ok else 'MISSING'}] {module}: {what}")
        if not ok:
            missing.append(module)
    share = _share_dir()
    if share is None:
        print('  [MISSING] share/humanoid_rl_ros (is install/setup.bash sourced?)')
        missing.append('share/humanoid_rl_ros')
    else:
        robots = sorted(share.glob('models/robots/*/robot.yaml'))
        policies = [
            p for p in sorted(share.glob('models/*.onnx')) if p.with_suffix('.yaml').is_file()]
        configs = sorted(share.glob('config/*.yaml'))
        for label, found in (('robot (models/robots/*/robot.yaml)', robots),
                             ('policy (models/<policy>.onnx + .yaml)', policies),
                             ('node configs (config/*.yaml)', configs)):
            names = ', '.join(p.name if label.startswith('node') else str(p.relative_to(share))
                              for p in found)
            print(f"  [{'ok' if found else 'MISSING'}] {label}: {names or 'none installed'}")
            if not found:
                missing.append(label)
    if missing:
        print(f'walking demo: {len(missing)} piece(s) missing: {", ".join(missing)}')
    else:
        print('walking demo: all pieces installed')
    return 0 if 'humanoid_rl_ros.demo' not in missing else 1


if __name__ == '__main__':
    sys.exit(main())
