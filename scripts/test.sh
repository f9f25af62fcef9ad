#!/usr/bin/env bash
# Set up, lint (ruff check + ruff format --check, 99 columns: ruff.toml), type-check (mypy:
# mypy.ini), then run the test suite (pytest; it also checks that colcon builds and installs
# the ament layout). It needs nothing beside the repository: the tests marked `validation`,
# which need the full data sets in ../shared/data, run with scripts/validate.sh instead.
# Exit status is non-zero on any failure, including pytest collecting no test at all (exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the optional fleet extra: its tests run on a local Ray instance
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-fleet.txt
export PYTHONUNBUFFERED=1
LINTED=(sparse_depth_node test scripts launch setup.py)
.venv/bin/ruff check "${LINTED[@]}"
.venv/bin/ruff format --check "${LINTED[@]}"
.venv/bin/mypy sparse_depth_node
.venv/bin/python -m pytest -q test -m "not validation" "$@"
