#!/usr/bin/env bash
# On the lent GPU machine (device tool, carry .whl): install the carried packages and samroto,
# then run bench/gpu_speed.py into $OUT. Usage: bash bench/gpu_run.sh [BUDGET_S] [gpu_speed.py options]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
budget="${1:-420}"; shift || true
out="${OUT:-/tmp/samroto-gpu}"
mkdir -p "$out"
site=/tmp/site
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# everything as wheels made by bench/gpu_prepare.sh, samroto included (the tree as it was then)
python3 -m pip install -q --no-deps --no-compile --target "$site" .whl/*.whl || exit 1
export PYTHONPATH="$site"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia-smi.txt"
python3 bench/gpu_speed.py --out "$out" --budget-s "$budget" "$@" 2>&1 | tee "$out/gpu_speed.log"
