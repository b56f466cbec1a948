#!/usr/bin/env bash
# Set-up command 1: run the main job, the closed-loop walking demo.
#
# Creates/updates .venv (pinned requirements; skipped when unchanged), colcon-builds the
# package, sources install/setup.bash and runs the installed `walk_demo` executable
# (MuJoCo sim node + policy node over real rclpy/DDS, no ROS install or `ros2` CLI needed).
#
# Usage: scripts/run_demo.sh [walk_demo args...]
set -euo pipefail
# shellcheck source=scripts/setup_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"

hrl_setup_env
hrl_colcon_build
hrl_source_install

# Keep demo traffic on this machine unless the caller chose otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"

cd "$HRL_ROOT"
demo="$HRL_ROOT/install/humanoid_rl_ros/lib/humanoid_rl_ros/walk_demo"
hrl_log "running $demo $*"
exec "$demo" "$@"
