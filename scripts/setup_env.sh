# shellcheck shell=bash
# Shared by scripts/run_demo.sh and scripts/run_tests.sh (sourced, not run).
#
# hrl_setup_env: create .venv/ at the repo root if missing, install the pinned requirements
#   when they changed since the last install (stamp: sha256 of the requirements files and the
#   Python version), and activate the venv.
# hrl_colcon_build: build the package with colcon into build/ install/ log/ at the repo root.
#
# Environment knobs:
#   HRL_PYTHON=/path/to/python3.11   interpreter used to create .venv (default: python3.11, python3)
#   HRL_VENV=/path/to/venv           use another venv location (default: <repo>/.venv)
#   HRL_FORCE_INSTALL=1              reinstall the requirements even when the stamp matches

HRL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HRL_VENV="${HRL_VENV:-$HRL_ROOT/.venv}"
HRL_PIP_VERSION="26.3"

hrl_log() {
    printf '[humanoid_rl_ros] %s\n' "$*" >&2
}

hrl_die() {
    hrl_log "ERROR: $*"
    exit 1
}

hrl_pick_python() {
    local candidate
    for candidate in "${HRL_PYTHON:-}" python3.11 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

hrl_requirements_hash() {
    # The install recipe is part of the stamp: a change to pins or to this file reinstalls.
    (
        cd "$HRL_ROOT"
        cat requirements.txt requirements-pip-only.txt scripts/setup_env.sh
        "$HRL_VENV/bin/python" -c 'import sys; print(sys.version)'
    ) | sha256sum | cut -d' ' -f1
}

hrl_setup_env() {
    local python stamp_file want have start
    if [ ! -x "$HRL_VENV/bin/python" ]; then
        python="$(hrl_pick_python)" || hrl_die "no python3.11/python3 found; set HRL_PYTHON"
        "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
            || hrl_log "WARNING: $python is not Python 3.11; the pins were verified on 3.11"
        hrl_log "creating virtual environment $HRL_VENV with $python"
        "$python" -m venv "$HRL_VENV" || hrl_die "python -m venv failed (Debian: apt-get install python3-venv)"
    fi
    stamp_file="$HRL_VENV/.hrl-requirements.sha256"
    want="$(hrl_requirements_hash)"
    have="$(cat "$stamp_file" 2>/dev/null || true)"
    if [ "$want" != "$have" ] || [ -n "${HRL_FORCE_INSTALL:-}" ]; then
        start=$SECONDS
        hrl_log "installing pinned requirements into $HRL_VENV (first run takes a few minutes)"
        rm -f "$stamp_file"
        "$HRL_VENV/bin/python" -m pip install --quiet --progress-bar off \
            "pip==$HRL_PIP_VERSION" || hrl_die "pip upgrade failed"
        "$HRL_VENV/bin/python" -m pip install --quiet --progress-bar off \
            -r "$HRL_ROOT/requirements.txt" || hrl_die "pip install -r requirements.txt failed"
        echo "$want" >"$stamp_file"
        hrl_log "requirements installed in $((SECONDS - start)) s"
    else
        hrl_log "requirements unchanged since last install (stamp matches); skipping pip"
    fi
    # shellcheck disable=SC1091
    source "$HRL_VENV/bin/activate"
}

hrl_colcon_build() {
    local start=$SECONDS
    cd "$HRL_ROOT"
    hrl_log "colcon build (build/ install/ log/ in $HRL_ROOT)"
    colcon build --base-paths "$HRL_ROOT" --packages-select humanoid_rl_ros \
        --event-handlers console_cohesion- summary+ \
        || hrl_die "colcon build failed (see log/latest_build/)"
    hrl_log "colcon build done in $((SECONDS - start)) s"
}

hrl_source_install() {
    # colcon's setup scripts read unset variables; relax nounset while sourcing.
    set +u
    # shellcheck disable=SC1091
    source "$HRL_ROOT/install/setup.bash"
    set -u
}
