#!/usr/bin/env bash
# Blender's own Pythons for the Blender tests: one virtualenv per Blender version, each
# with the `bpy` module from PyPI (a whole Blender as a Python module). Called by
# scripts/test.sh; a quick no-op when they are already set up.
#
#   .venv-blender-4.2   bpy==4.2.*  (Blender 4.2 LTS)   Python 3.11
#   .venv-blender-4.5   bpy==4.5.*  (Blender 4.5 LTS)   Python 3.11
#   .venv-blender-5.0   bpy==5.0.1  (Blender 5.0)       Python 3.11
#   .venv-blender-5.1   bpy==5.1.*  (Blender 5.1)       Python 3.13
#   .venv-blender-5.2   bpy==5.2.*  (Blender 5.2 LTS)   Python 3.13
#   .venv-blender-5.3   bpy==5.3.*  (Blender 5.3)       Python 3.13
#
# Each bpy wheel needs its Python exactly (3.11 up to 5.0, 3.13 from 5.1) and is large
# (~400 MB): the first run takes minutes. The Pythons: $BLENDER_PYTHON311 / $BLENDER_PYTHON313
# (or $BLENDER_PYTHON for 3.11, as before), else python3.11 / python3.13 on PATH, else one
# under ~/.pyenv/versions. A version that cannot be set up gets `.venv-blender-<v>/.samroto-missing`
# with the reason; tests/test_blender.py reports it when it skips that version.
#
#   SAMROTO_SKIP_BLENDER=1                 skip all (the Blender tests then skip, saying why)
#   SAMROTO_BLENDER_VERSIONS="4.5 5.0"     set up only these
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${SAMROTO_SKIP_BLENDER:-0}" = "1" ]; then
    echo "samroto: SAMROTO_SKIP_BLENDER=1, not setting up Blender's virtualenvs"
    exit 0
fi

# find_python 3.11 -> the path of a Python 3.11, or nothing
find_python() {
    local want="$1" explicit="$2" candidate
    for candidate in $explicit "python$want" "$HOME"/.pyenv/versions/"$want".*/bin/python"$want"; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 0
}

PY311="$(find_python 3.11 "${BLENDER_PYTHON311:-${BLENDER_PYTHON:-}}")"
PY313="$(find_python 3.13 "${BLENDER_PYTHON313:-}")"
WANTED="${SAMROTO_BLENDER_VERSIONS:-4.2 4.5 5.0 5.1 5.2 5.3}"

setup_one() {
    local name="$1" spec="$2" python="$3" pyversion="$4" numpy="$5"
    case " $WANTED " in *" $name "*) ;; *) return 0 ;; esac
    local venv="$ROOT/.venv-blender-$name"
    local stamp="$venv/.samroto-installed" missing="$venv/.samroto-missing"
    local want="$spec $numpy"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        rm -f "$missing"
        return 0
    fi
    if [ -z "$python" ]; then
        mkdir -p "$venv"
        echo "bpy $spec needs Python $pyversion, and this machine has none (python$pyversion, \$BLENDER_PYTHON${pyversion/./}, ~/.pyenv)" > "$missing"
        echo "samroto: Blender $name not set up: $(cat "$missing")" >&2
        return 0
    fi
    echo "samroto: installing $spec into $venv with $python (first run takes a few minutes)"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "$spec" "$numpy" 2>&1 | grep -v '^WARNING: Location' || true
    if "$venv/bin/python" -c "import bpy, numpy; print('samroto: Blender', bpy.app.version_string, 'numpy', numpy.__version__)"; then
        echo "$want" > "$stamp"
        rm -f "$missing"
    else
        echo "installing $spec with $python failed (see the setup output)" > "$missing"
        echo "samroto: $(cat "$missing"); Blender $name tests will be skipped" >&2
    fi
}

setup_one 4.2 "bpy==4.2.*" "$PY311" 3.11 "numpy<2"
setup_one 4.5 "bpy==4.5.*" "$PY311" 3.11 "numpy<2"
setup_one 5.0 "bpy==5.0.1" "$PY311" 3.11 "numpy<2"
setup_one 5.1 "bpy==5.1.*" "$PY313" 3.13 "numpy>=2"
setup_one 5.2 "bpy==5.2.*" "$PY313" 3.13 "numpy>=2"
setup_one 5.3 "bpy==5.3.*" "$PY313" 3.13 "numpy>=2"
