#!/usr/bin/env bash
# The GPU check, for the day a GPU is lent (the `device` tool): the CUDA tests, then every
# device x backend x precision on the bundled frames in one table (complete and end-to-end
# median ms, host<->device copies, max |depth - the CPU's torch depth|). Under 5 minutes on a
# GPU machine (the TensorRT engine is built once, then cached). Runs on a CPU-only machine too:
# the CUDA tests skip, saying why, and the CUDA rows say "no CUDA device".
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
PY=.venv/bin/python
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
$PY -c 'import torch, onnxruntime as o; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "| onnxruntime", o.__version__, o.get_available_providers())'
$PY -m pytest -q -rs -m cuda test/core -p no:cacheprovider
$PY -m sparse_depth_node.lab.gpu_check "$@"
