#!/usr/bin/env bash
# Validation on the full data sets in ../shared/data (or $SPARSE_DEPTH_DATA): the tests marked
# `validation` (full KITTI sweeps and the validation frames 60-77). Run after scripts/test.sh
# (which sets up .venv). The evaluation tables of docs/EVALUATION.md: scripts/evaluate_all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
.venv/bin/python -m pytest -q test -m validation "$@"
