#!/usr/bin/env bash
# First command of the README: create .venv, install gnosisd, run one simulated trading session
# (simulated market + simulated broker, accelerated) and print its summary.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv "[native]"
build_native
exec .venv/bin/gnosisd run --feed sim --broker sim --sessions 1 "$@"
