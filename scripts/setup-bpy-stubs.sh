#!/usr/bin/env bash
# Blender's Python API as type stubs (fake-bpy-module, PyPI), one folder per Blender version
# of the matrix, for tests/test_typecheck.py to type-check the add-on against each:
#
#   .venv-bpy-stubs/4.2  fake-bpy-module-4-2      .venv-bpy-stubs/5.1  fake-bpy-module-5-1
#   .venv-bpy-stubs/4.5  fake-bpy-module-4-5      .venv-bpy-stubs/5.2  fake-bpy-module-5-2
#   .venv-bpy-stubs/5.0  fake-bpy-module-5-0      .venv-bpy-stubs/5.3  fake-bpy-module-latest
#
# (no 5.3 package is published: "latest" is Blender's main branch when it was built). Each is
# a bare virtualenv of samroto's Python (no pip) holding only the stubs, pinned in
# constraints.txt: mypy reads them through --python-executable (stub packages are found in a
# Python's site-packages; beside the real bpy in a Blender venv they would shadow it). A
# quick no-op when already there. Called by scripts/test.sh.
#   SAMROTO_SKIP_BLENDER=1   skip (the type checks then skip, saying why)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${SAMROTO_SKIP_BLENDER:-0}" = "1" ]; then
    echo "samroto: SAMROTO_SKIP_BLENDER=1, not installing Blender's API stubs"
    exit 0
fi
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
for pair in 4.2:fake-bpy-module-4-2 4.5:fake-bpy-module-4-5 5.0:fake-bpy-module-5-0 5.1:fake-bpy-module-5-1 \
            5.2:fake-bpy-module-5-2 5.3:fake-bpy-module-latest; do
    version="${pair%%:*}" package="${pair#*:}"
    target="$ROOT/.venv-bpy-stubs/$version"
    pin="$(grep -i "^$package==" "$ROOT/constraints.txt" || true)"
    if [ -f "$target/.samroto-installed" ] && [ "$(cat "$target/.samroto-installed")" = "$pin" ]; then
        continue
    fi
    rm -rf "$target"
    echo "samroto: installing $package into .venv-bpy-stubs/$version"
    "$PYTHON" -m venv --without-pip "$target"
    site="$("$target/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
    "$PYTHON" -m pip install --quiet --no-deps --target "$site" -c "$ROOT/constraints.txt" "$package"
    echo "$pin" > "$target/.samroto-installed"
done
