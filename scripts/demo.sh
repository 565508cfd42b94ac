#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, then run the samroto demo
# (a generated clip tracked end to end; mattes and a preview land in ./out/demo).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup-env.sh"
cd "$ROOT"
if samroto demo --help >/dev/null 2>&1; then
    exec samroto demo "$@"
fi
exec samroto doctor
