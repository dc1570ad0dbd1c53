#!/usr/bin/env bash
# Installs what is missing, builds Mino (release) and runs it with the
# embedded Postgres in ./.mino. Open http://127.0.0.1:3000 and sign up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
cargo leptos build --release
exec target/release/mino "$@"
