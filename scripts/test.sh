#!/usr/bin/env bash
# Set up sparring with the embedded engine and development tools, then run the whole
# test suite (real-model tests included), the linter and the type checker.
# Extra arguments go to pytest, e.g. scripts/test.sh -k orchestrator
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" local,dev
cd "$root"
venv="${SPARRING_VENV:-$root/.venv}"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/mypy"
"$venv/bin/pytest" "$@"
