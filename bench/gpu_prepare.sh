#!/usr/bin/env bash
# Here, right before a GPU run: make the wheels bench/gpu_run.sh installs on the lent machine, which
# cannot reach the network. Its image has Python 3.12 with CUDA torch, numpy, OpenCV, PyYAML,
# tqdm and setuptools; Meta's sam2 1.1.0 and its pure-Python needs travel in .whl/
# (git-ignored through .git/info/exclude), all as wheels: sam2 built here from its sdist
# without its CUDA extension (SAM2_BUILD_CUDA=0: pure Python, as Meta's CPU install).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
py="${PYTHON:-.venv/bin/python}"  # has torch and setuptools: reading sam2's sdist metadata needs them
pip=("$py" -m pip download --quiet --no-deps --no-build-isolation -d .whl)
"${pip[@]}" --no-binary :all: sam2==1.1.0
# the versions the oracle's venv resolved for sam2 1.1.0 (pure Python; two are sdists only)
"${pip[@]}" hydra-core==1.3.8 omegaconf==2.3.1 portalocker==2.10.1 iopath==0.1.10 antlr4-python3-runtime==4.9.3
# the three sdists become wheels here, so nothing is built there
sdists=(.whl/*.tar.gz)
SAM2_BUILD_CUDA=0 "$py" -m pip wheel --quiet --no-deps --no-build-isolation -w .whl "${sdists[@]}"
rm -f "${sdists[@]}"
# samroto itself, as the tree is now: run this script again after changing the code
rm -f .whl/samroto-*.whl
"$py" -m pip wheel --quiet --no-deps --no-build-isolation -w .whl .
ls -l .whl
