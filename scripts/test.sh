#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up .venv (and Blender's own venv for the
# Blender tests), then run pytest. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup-env.sh"
cd "$ROOT"
if [ -f "$ROOT/scripts/setup-blender.sh" ]; then
    bash "$ROOT/scripts/setup-blender.sh"
fi
bash "$ROOT/scripts/setup-bpy-stubs.sh"  # Blender's API stubs for tests/test_typecheck.py
exec python -m pytest -q -ra "$@"
