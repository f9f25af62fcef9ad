#!/usr/bin/env bash
# The GPU check, for a machine with a CUDA GPU: the CUDA tests, then lab/gpu_check's four tables
# (precision, situations, prefill, training) on the bundled frames, each also written to
# $GPU_CHECK_OUT (default out/gpu). About 4 minutes on an H200.
#
# With the project's .venv (scripts/setup.sh) it runs there. Without one, as on a lent GPU
# machine that reaches no package index, it runs with the python3 that holds torch there, this
# checkout on PYTHONPATH, and the wheels the project needs beyond that machine's packages
# (rosbags, lz4, ruamel.yaml, apsw, backports.zstd: docs/SPEED.md says how to fetch them) from a
# git-ignored .whl/ folder beside this script's repository. On a CPU-only machine the CUDA tests
# skip, saying why, and the GPU rows say "no CUDA device".
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${GPU_CHECK_OUT:-out/gpu}
mkdir -p "$OUT"
if [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  PY=python3
  if ! "$PY" -c 'import rosbags' 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/sparse-depth-site .whl/*.whl
    export PYTHONPATH=/tmp/sparse-depth-site${PYTHONPATH:+:$PYTHONPATH}
  fi
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PY" -c 'import torch, cv2; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "| opencv", cv2.__version__)'
# the CUDA tests need no rclpy: the frame path runs on rosbags' message classes
set +e
"$PY" -m pytest -q -rs -m cuda -p no:cacheprovider test/core test/msgs/test_frame.py \
  test/lab/test_train.py 2>&1 | tee "$OUT/cuda_tests.log"
tests=${PIPESTATUS[0]}
set -e
"$PY" -m sparse_depth_node.lab.gpu_check --json "$OUT/gpu_check.json" "$@" | tee "$OUT/gpu_check.txt"
exit "$tests"
