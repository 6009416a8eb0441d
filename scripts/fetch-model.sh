#!/usr/bin/env bash
# Put the default model (or --name FILE, or --source hand|face|pose|all: the landmark files)
# into the model folder, sha256 checked.
#   scripts/fetch-model.sh [--model-dir DIR] [--mirror DIR] [--name FILE] [--source SOURCE] [--force]
# Uses the installed `teachbox` command, or the repo's .venv when run from a checkout.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if command -v teachbox >/dev/null; then exec teachbox fetch-model "$@"; fi
exec "$here/.venv/bin/teachbox" fetch-model "$@"
