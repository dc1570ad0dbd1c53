#!/usr/bin/env bash
# Starts a throwaway Postgres for the test suite (unless DATABASE_URL is
# already set) and prints the DATABASE_URL to use. Tests create one fresh
# database per test inside it (#[sqlx::test]).
#   eval "$(scripts/test-postgres.sh)"
set -euo pipefail
if [ -n "${DATABASE_URL:-}" ]; then echo "export DATABASE_URL='$DATABASE_URL'"; exit 0; fi
PORT="${MINO_TEST_PG_PORT:-54329}"
DIR="${MINO_TEST_PG_DIR:-/tmp/mino-test-pg}"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$BIN/initdb" ] || { echo "no PostgreSQL found; apt-get install -y postgresql" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if ! as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  rm -rf "$DIR"; mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
  as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth=trust --encoding=UTF8 --no-instructions >/dev/null
  # Tests only: durability off makes per-test databases cheap.
  as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/log" -w -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null
fi
echo "export DATABASE_URL='postgres://postgres@127.0.0.1:$PORT/postgres'"
