#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine with Python 3.10-3.12: a virtual environment in .venv
# with the pinned dependencies (requirements.txt), ROS 2 as pip wheels when no ROS is sourced
# (requirements-ros.txt), and this package installed in editable mode. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    echo "setup: python3-venv is missing; install it (apt-get install python3-venv)" >&2; exit 1
  fi
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" -r requirements.txt
if [ -z "${ROS_DISTRO:-}" ]; then
  "${PIP[@]}" -r requirements-ros.txt
else
  echo "setup: ROS 2 $ROS_DISTRO is sourced; using it instead of the pip wheels"
fi
"${PIP[@]}" --no-deps --no-build-isolation -e .
echo "setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
