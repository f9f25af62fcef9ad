#!/usr/bin/env bash
# Set up, then run the whole test suite (pytest) and check that colcon builds and installs
# the package with the ament layout. Exit status is non-zero on any failure, including
# pytest collecting no test at all (exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONUNBUFFERED=1
.venv/bin/python -m pytest -q test "$@"
