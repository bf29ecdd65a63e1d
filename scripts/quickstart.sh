#!/usr/bin/env bash
# Set up sparring and play scenarios/quickstart.yaml: a short real conversation between
# two personas. It uses ollama when a server answers (pulling smollm2:135m if needed),
# otherwise the embedded engine with the built-in SmolLM2-135M model.
# Extra arguments go to `sparring run`, e.g. scripts/quickstart.sh --seed 3
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" local
cd "$root"
exec "${SPARRING_VENV:-$root/.venv}/bin/sparring" run scenarios/quickstart.yaml --pull "$@"
