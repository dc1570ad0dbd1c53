#!/usr/bin/env bash
# Runs every test: unit and integration tests (server and browser builds)
# against a real Postgres, then the end-to-end tests in Chromium against a
# real `mino` with its embedded Postgres, and fuzzes the REST API from its
# OpenAPI document (schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser

eval "$(scripts/test-postgres.sh)"
echo "==> unit and integration tests (DATABASE_URL=$DATABASE_URL)"
cargo leptos test

echo "==> the benchmarks build and start (mino-bench, built only with --features bench)"
cargo build --no-default-features --features bench --bins
target/debug/mino-bench hashing 1 >/dev/null

echo "==> building the site for the end-to-end tests"
cargo leptos build

echo "==> end-to-end tests in Chromium"
data=$(mktemp -d /tmp/mino-e2e-XXXXXX)
chmod 755 "$data"
port="${MINO_E2E_PORT:-3100}"
# The built binary reads Cargo.toml's [package.metadata.leptos]; only the
# address and data dir differ from a normal run, and private targets are
# allowed because the webhook tests' receiver listens on 127.0.0.1 (the
# default rule, demo shop only, is tested in tests/suite/security.rs).
env -u DATABASE_URL LEPTOS_SITE_ADDR="127.0.0.1:$port" MINO_DATA_DIR="$data" MINO_ALLOW_PRIVATE_TARGETS=1 \
  target/debug/mino > "$data/mino.log" 2>&1 &
mino_pid=$!
stop() { kill -TERM "$mino_pid" 2>/dev/null || true; wait "$mino_pid" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 240); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$mino_pid" 2>/dev/null || { cat "$data/mino.log"; exit 1; }
  sleep 0.5
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "mino did not become ready"; cat "$data/mino.log"; exit 1; }
shots="${MINO_E2E_SCREENSHOTS:-}"
[ -n "$shots" ] && mkdir -p "$shots"
(cd end2end && MINO_E2E_URL="http://127.0.0.1:$port" MINO_E2E_SCREENSHOTS="$shots" npm test) || {
  echo "---- mino log ----"; tail -n 80 "$data/mino.log"; exit 1; }

echo "==> fuzzing the REST API from its OpenAPI document"
scripts/fuzz-api.sh "http://127.0.0.1:$port" || {
  echo "---- mino log ----"; tail -n 80 "$data/mino.log"; exit 1; }
stop
trap - EXIT
# A clean stop leaves no postmaster.pid behind.
[ ! -f "$data/pg/postmaster.pid" ] || { echo "embedded Postgres was not stopped"; exit 1; }
echo "==> all tests passed"
