# Shared by quickstart.sh and test.sh: find Python >= 3.11, create .venv, install gnosisd.
pick_python() {
  for p in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$p" ] || continue
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  echo "gnosisd needs Python >= 3.11; none found (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

ensure_venv() {  # $1: extras, e.g. "[dev]" or ""; $2: "editable" for an editable install
  local py
  py=$(pick_python)
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv with $py"
    "$py" -m venv .venv
  fi
  echo "== installing gnosisd$1 into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  if [ "${2:-}" = editable ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".$1"
  else
    .venv/bin/python -m pip install --quiet --disable-pip-version-check ".$1"
  fi
}

build_native() {  # compile the risk guard's modules (mypyc); without a C compiler they run interpreted
  echo "== compiling the risk modules (mypyc; kept while they match the sources)"
  .venv/bin/python scripts/build_native.py \
    || echo "== the risk modules run interpreted (same code, slower guard decisions)"
}
