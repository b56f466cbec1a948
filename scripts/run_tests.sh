#!/usr/bin/env bash
# Set-up command 2: run the whole test suite through colcon test.
#
# Creates/updates .venv (pinned requirements; skipped when unchanged), colcon-builds the
# package, runs `colcon test` (pytest over test/, ament flake8 + pep257 included), then prints
# `colcon test-result --verbose` and a per-test summary. Exits non-zero on any failure.
#
# Usage: scripts/run_tests.sh [extra pytest args...]   e.g. scripts/run_tests.sh -m "not slow"
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
hrl_log "colcon test took $((SECONDS - test_start)) s; whole command $((SECONDS - total_start)) s"

if [ "$test_rc" -ne 0 ] || [ "$result_rc" -ne 0 ] || [ "$summary_rc" -ne 0 ]; then
    hrl_log "FAILED (colcon test rc=$test_rc, test-result rc=$result_rc, summary rc=$summary_rc)"
    exit 1
fi
hrl_log "all tests passed"
