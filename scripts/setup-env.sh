# Sourced by scripts/demo.sh and scripts/test.sh: makes .venv ready, quickly when it already is.
#
# GPU users: set SAMROTO_TORCH to the torch requirement for their CUDA build before the
# first run, e.g. SAMROTO_TORCH="torch --index-url https://download.pytorch.org/whl/cu128".
# The default pins the CPU build used by CI.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SAMROTO_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
TORCH_SPEC="${SAMROTO_TORCH:-torch==2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "samroto: creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when the dependency spec changed.
STAMP="$VENV/.samroto-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1) $TORCH_SPEC"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "samroto: installing dependencies into $VENV (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    # shellcheck disable=SC2086
    # Every dependency at the version in constraints.txt (what the suite was run with), not
    # whatever the registry serves today; scripts/test-lowest.sh checks the lower bounds.
    "$VENV/bin/python" -m pip install --quiet $TORCH_SPEC -e "$ROOT[test]" -c "$ROOT/constraints.txt" 2>&1 \
        | grep -v '^WARNING: Location' || true
    "$VENV/bin/python" -c "import samroto.core, torch" || { echo "samroto: installation failed" >&2; exit 1; }
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
