#!/usr/bin/env bash
# The lowest supported versions: a separate venv with every dependency at the lower bound
# pyproject.toml states (scripts/lowest-constraints.py), then the fast tests. Run it before
# raising or lowering a bound; CI's own run (scripts/test.sh) uses constraints.txt instead.
#
#   bash scripts/test-lowest.sh                 # .venv-lowest, the fast tests
#   bash scripts/test-lowest.sh tests/test_io_mattes.py   # or the tests given
#
# Python: the oldest the bounds install on (numpy 1.24 and torch 2.3 have wheels up to 3.11).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SAMROTO_LOWEST_VENV:-$ROOT/.venv-lowest}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -m venv "$VENV"
PINS="$VENV/lowest-constraints.txt"
"$VENV/bin/python" -m pip install --quiet --upgrade pip tomli
"$VENV/bin/python" "$ROOT/scripts/lowest-constraints.py" > "$PINS"
echo "samroto: installing the lowest supported versions:"; sed 's/^/  /' "$PINS"
# exactly the lower bounds (for a CPU-only torch, put its index in PIP_EXTRA_INDEX_URL first)
"$VENV/bin/python" -m pip install --quiet -c "$PINS" \
    -e "$ROOT[test]"
cd "$ROOT"
if [ "$#" -eq 0 ]; then
    set -- -m "not slow and not blender" tests/test_io_frames.py tests/test_io_mattes.py tests/test_io_color.py \
        tests/test_io_plate.py tests/test_settings.py tests/test_prompts.py tests/test_track_cli.py \
        tests/test_finishing_pipeline.py tests/test_video_session.py
fi
exec "$VENV/bin/python" -m pytest -q -ra "$@"
