#!/usr/bin/env bash
# Second command of the README (and CI): set up, then lint, type-check, check the import layering,
# verify the systemd units, and run the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv "[dev]" editable
build_native

# jq: the runbook's review queries are tested as written.
if ! command -v jq >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing jq (Debian package)"
    apt-get update -qq >/dev/null && apt-get install -y -qq jq >/dev/null
  else
    echo "== jq not installed and cannot install it: the jq tests will be skipped"
  fi
fi

# Chromium: the HTML review report is opened headless (tests/integration/test_report_chromium.py).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian package)"
    apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null
  else
    echo "== chromium not installed and cannot install it: the report rendering test will be skipped"
  fi
fi

# systemd-analyze: the unit files are verified, not just linted.
if ! command -v systemd-analyze >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing systemd (for systemd-analyze)"
  apt-get update -qq >/dev/null && apt-get install -y -qq systemd >/dev/null
fi
if command -v systemd-analyze >/dev/null 2>&1; then export GNOSIS_REQUIRE_SYSTEMD_ANALYZE=1; fi

# PostgreSQL: the shared-study test starts a throwaway server (scripts/postgres.sh); install it now.
bash scripts/postgres.sh install || echo "== PostgreSQL not installed: the shared-study test will be skipped"

echo "== ruff"
.venv/bin/ruff check gnosisd tests bench scripts
.venv/bin/ruff format --check gnosisd tests bench scripts
echo "== mypy --strict gnosisd"
.venv/bin/mypy
echo "== import-linter"
.venv/bin/lint-imports
echo "== systemd units"
bash scripts/verify_systemd.sh
echo "== pytest"
.venv/bin/pytest "$@"
# The suite above ran the compiled risk modules when the build succeeded: run the risk tests on
# the Python sources too (the same code must decide the same way either way).
echo "== pytest tests/unit/risk with the risk modules interpreted (GNOSISD_NATIVE=0)"
GNOSISD_NATIVE=0 .venv/bin/pytest -q tests/unit/risk tests/unit/core/test_native.py
