#!/usr/bin/env bash
# Set-up command 2: run the whole test suite through colcon test, then the ROS tests on Jazzy.
#
# 1. ROS 2 Kilted (the main run): creates/updates .venv (pinned requirements; skipped when
#    unchanged), colcon-builds the package, runs `colcon test` (pytest over test/, ament flake8 +
#    pep257 included), then prints `colcon test-result --verbose` and a per-test summary.
# 2. ROS 2 Jazzy: creates/updates .venv-jazzy (requirements-jazzy.txt, same stamp logic) and
#    runs the ROS tests (`pytest -m ros` over the test files that have them) with its
#    interpreter, the package imported from the source tree, in a clean environment (no Kilted
#    install space). HRL_SKIP_JAZZY=1 skips this part (it says so).
# Exits non-zero when either run fails.
#
# Usage: scripts/run_tests.sh [extra pytest args...]   e.g. scripts/run_tests.sh -m "not slow"
# Extra args go to both runs; a -m expression is combined with the Jazzy run's: ros and (EXPR).
set -euo pipefail
# shellcheck source=scripts/setup_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"

total_start=$SECONDS
hrl_setup_env
hrl_colcon_build
hrl_source_install

cd "$HRL_ROOT"
hrl_log "colcon test"
test_start=$SECONDS
rm -f build/humanoid_rl_ros/pytest.xml
set +e
colcon test --base-paths "$HRL_ROOT" --packages-select humanoid_rl_ros \
    --event-handlers console_direct+ summary+ \
    --return-code-on-test-failure \
    --pytest-args -rA "$@"
test_rc=$?
colcon test-result --test-result-base build --verbose
result_rc=$?
python "$HRL_ROOT/scripts/junit_summary.py" build/humanoid_rl_ros/pytest.xml
summary_rc=$?
set -e
hrl_log "colcon test took $((SECONDS - test_start)) s"

# --- ROS 2 Jazzy: the ROS tests again, with the Jazzy wheels ---
jazzy_rc=0
jazzy_summary_rc=0
if [ -n "${HRL_SKIP_JAZZY:-}" ]; then
    hrl_log "HRL_SKIP_JAZZY is set: NOT running the ROS tests on Jazzy"
else
    jazzy_start=$SECONDS
    hrl_setup_jazzy_env
    # Only the files with ROS tests are collected (the others need the training stack).
    mapfile -t ros_files < <(grep -l 'pytest\.mark\.ros' test/test_*.py)
    marker='ros'
    jazzy_args=()
    while [ "$#" -gt 0 ]; do
        case "$1" in
            -m) marker="ros and ($2)"; shift 2 ;;
            -m*) marker="ros and (${1#-m})"; shift ;;
            *) jazzy_args+=("$1"); shift ;;
        esac
    done
    jazzy_xml="$HRL_ROOT/build/jazzy-pytest.xml"
    rm -f "$jazzy_xml"
    hrl_log "Jazzy: pytest -m '$marker' over ${#ros_files[@]} files with $HRL_JAZZY_VENV"
    set +e
    # A clean environment: no Kilted venv, install space or PYTHONPATH leaks into this run.
    env -i HOME="$HOME" LANG="${LANG:-C.UTF-8}" TERM="${TERM:-dumb}" \
        PATH="$HRL_JAZZY_VENV/bin:/usr/local/bin:/usr/bin:/bin" \
        "$HRL_JAZZY_VENV/bin/python" -m pytest -rA -p no:cacheprovider -m "$marker" \
        --junitxml="$jazzy_xml" "${ros_files[@]}" ${jazzy_args[@]+"${jazzy_args[@]}"}
    jazzy_rc=$?
    "$HRL_JAZZY_VENV/bin/python" "$HRL_ROOT/scripts/junit_summary.py" "$jazzy_xml"
    jazzy_summary_rc=$?
    set -e
    if [ "$jazzy_rc" -eq 5 ] && [ "$marker" != 'ros' ]; then
        hrl_log "Jazzy: no ROS test matches -m '$marker' (not a failure: the marker was asked for)"
        jazzy_rc=0
        jazzy_summary_rc=0
    fi
    hrl_log "Jazzy ROS tests took $((SECONDS - jazzy_start)) s (venv set-up included)"
fi
hrl_log "whole command $((SECONDS - total_start)) s"

if [ "$test_rc" -ne 0 ] || [ "$result_rc" -ne 0 ] || [ "$summary_rc" -ne 0 ]; then
    hrl_log "FAILED (colcon test rc=$test_rc, test-result rc=$result_rc, summary rc=$summary_rc)"
    exit 1
fi
if [ "$jazzy_rc" -ne 0 ] || [ "$jazzy_summary_rc" -ne 0 ]; then
    hrl_log "FAILED on Jazzy (pytest rc=$jazzy_rc, summary rc=$jazzy_summary_rc)"
    exit 1
fi
hrl_log "all tests passed (Kilted colcon test$([ -n "${HRL_SKIP_JAZZY:-}" ] || echo ' and Jazzy ROS tests'))"
