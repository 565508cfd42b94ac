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
python3 -m pip install -q --no-deps --no-compile --no-build-isolation --target "$site" $(ls .whl/* | grep -v sam2-) || exit 1
SAM2_BUILD_CUDA=0 python3 -m pip install -q --no-deps --no-build-isolation --target "$site" .whl/sam2-1.1.0.tar.gz || exit 1
python3 -m pip install -q --no-deps --no-build-isolation --target "$site" . || exit 1
export PYTHONPATH="$site"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia-smi.txt"
python3 bench/gpu_speed.py --out "$out" --budget-s "$budget" "$@" 2>&1 | tee "$out/gpu_speed.log"
