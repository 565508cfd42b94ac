#!/usr/bin/env bash
# Blender's own Pythons for the Blender tests: one virtualenv per Blender version, each
# with the `bpy` module from PyPI (a whole Blender as a Python module). Called by
# scripts/test.sh; a quick no-op when they are already set up.
#
#   .venv-blender-4.5   bpy==4.5.*  (Blender 4.5 LTS)
#   .venv-blender-5.0   bpy==5.0.1  (Blender 5.0)
#
# bpy wheels need Python 3.11 exactly and are large (~400 MB each): the first run takes a
# few minutes. Set SAMROTO_SKIP_BLENDER=1 to skip (the Blender tests then skip, saying why).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${SAMROTO_SKIP_BLENDER:-0}" = "1" ]; then
    echo "samroto: SAMROTO_SKIP_BLENDER=1, not setting up Blender's virtualenvs"
    exit 0
fi
PYTHON="${BLENDER_PYTHON:-python3.11}"
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "samroto: bpy needs Python 3.11 ($PYTHON is not); Blender tests will be skipped" >&2
    exit 0
fi

setup_one() {
    local name="$1" spec="$2"
    local venv="$ROOT/.venv-blender-$name"
    local stamp="$venv/.samroto-installed"
    local want="$spec numpy<2"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    echo "samroto: installing $spec into $venv (first run takes a few minutes)"
    [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "$spec" "numpy<2" 2>&1 | grep -v '^WARNING: Location' || true
    if "$venv/bin/python" -c "import bpy, numpy; print('samroto: Blender', bpy.app.version_string, 'numpy', numpy.__version__)"; then
        echo "$want" > "$stamp"
    else
        echo "samroto: installing $spec failed; Blender $name tests will be skipped" >&2
    fi
}

setup_one 4.5 "bpy==4.5.*"
setup_one 5.0 "bpy==5.0.1"
