#!/usr/bin/env bash
# Run the clipbudget test suite on a fresh machine: sets up the venv and test data, brings up the local
# single-node SLURM cluster (as root), then runs pytest (the default suite: everything not marked slow).
#
#   bash scripts/test.sh               # default suite (< 15 min on 2 cores)
#   bash scripts/test.sh -m slow       # extra pytest arguments are passed through
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
if [ "$(id -u)" = 0 ]; then
    SLURM_LOCAL_CPUS=${SLURM_LOCAL_CPUS:-6} bash scripts/slurm-local.sh up
else
    echo "[test] not root: the local SLURM cluster cannot be started; slurm-marked tests will skip" >&2
fi
if [ "$#" -eq 0 ]; then set -- -m "not slow"; fi
exec .venv/bin/python -m pytest "$@"
