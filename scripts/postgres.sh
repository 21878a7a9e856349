#!/usr/bin/env bash
# A throwaway local PostgreSQL for the shared-study test (tests/integration/test_optuna_postgres.py)
# and for trying several `gnosisd optimize` workers on one machine (docs/backtesting.md).
#
#   scripts/postgres.sh install     install Debian's postgresql package if the server is missing
#   scripts/postgres.sh start       initdb + start a cluster on 127.0.0.1 at a free port in a new
#                                   temp directory; prints the directory, then the SQLAlchemy URL
#   scripts/postgres.sh stop DIR    stop that cluster and delete its directory
#
# As root the server runs as the `postgres` user (initdb refuses root), through runuser.
# Exit 3: PostgreSQL is not installed and cannot be (not root, or no apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

PASSWORD=gnosisd-test  # a throwaway cluster on the loopback only

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  return 1
}

as_server_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

python_bin() {
  if [ -x .venv/bin/python ]; then echo .venv/bin/python; else echo python3; fi
}

cmd_install() {
  if pg_bin >/dev/null; then return 0; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "postgres.sh: PostgreSQL is not installed and this user cannot install it" >&2
    exit 3
  fi
  echo "== installing postgresql (Debian package)" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  pg_bin >/dev/null || { echo "postgres.sh: postgresql installed but initdb not found" >&2; exit 3; }
}

cmd_start() {
  local bin dir port
  bin=$(pg_bin) || { echo "postgres.sh: PostgreSQL is not installed (run: $0 install)" >&2; exit 3; }
  dir=$(mktemp -d /tmp/gnosisd-pg.XXXXXX)
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  printf '%s\n' "$PASSWORD" >"$dir/pwfile"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir/pwfile"; fi
  port=$("$(python_bin)" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_server_user "$bin/initdb" -D "$dir/data" -U gnosisd --pwfile="$dir/pwfile" \
    -A scram-sha-256 -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  PGPASSWORD=$PASSWORD "$bin/createdb" -h 127.0.0.1 -p "$port" -U gnosisd optuna
  echo "$dir"
  echo "postgresql+psycopg2://gnosisd:$PASSWORD@127.0.0.1:$port/optuna"
}

cmd_stop() {
  local dir=$1 bin
  bin=$(pg_bin) || exit 0
  case "$dir" in /tmp/gnosisd-pg.*) ;; *) echo "postgres.sh: refusing to stop $dir" >&2; exit 2 ;; esac
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_server_user "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop "${2:?usage: $0 stop DIR}" ;;
  *) echo "usage: $0 install | start | stop DIR" >&2; exit 2 ;;
esac
