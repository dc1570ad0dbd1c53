#!/usr/bin/env bash
# Fuzzes the REST API from its own OpenAPI document with schemathesis
# (PyPI): every operation gets generated valid and invalid requests, sent
# with an API key that holds every scope. Any 5xx fails the run, and so
# does an answer the document doesn't describe (status, content type or
# body schema), which keeps the document honest.
#   scripts/fuzz-api.sh http://127.0.0.1:3100
# The caller starts Mino; this makes its own account, organization and key.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:?usage: scripts/fuzz-api.sh BASE_URL}"
examples="${MINO_FUZZ_EXAMPLES:-40}"

venv=.tools/schemathesis
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "==> installing schemathesis (PyPI) into $venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian's python3 keeps venv in a package of its own.
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
    rm -rf "$venv"; python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT
email="fuzz-$(date +%s)-$RANDOM@example.com"
curl -fsS -c "$jar" -H 'content-type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"correct horse battery\",\"name\":\"Fuzz\"}" \
  "$base/api/v1/auth/signup" >/dev/null
org=$(curl -fsS -b "$jar" -H 'content-type: application/json' -d '{"name":"Fuzzing"}' \
  "$base/api/v1/orgs" | json_field '["id"]')
# Generous rates, so the run tests the API rather than the rate limiter.
curl -fsS -b "$jar" -X PUT -H 'content-type: application/json' \
  -d '{"max_projects":100000,"max_executions_per_month":100000,"api_requests_per_minute":1000000,"key_requests_per_minute":1000000}' \
  "$base/api/v1/orgs/$org/limits" >/dev/null
# Real resources too, so not every generated request is a 404.
curl -fsS -b "$jar" -X POST "$base/api/v1/orgs/$org/demo-project" >/dev/null
key=$(curl -fsS -b "$jar" -H 'content-type: application/json' \
  -d '{"name":"fuzz","scopes":["read","write","execute","admin"]}' \
  "$base/api/v1/orgs/$org/api-keys" | json_field '["secret"]')

echo "==> fuzzing $base/api/v1 from its OpenAPI document ($examples examples per operation)"
# The live event stream never ends while a run is active; it is left out.
"$venv/bin/schemathesis" run "$base/api/v1/openapi.json" \
  --url "$base" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --header "Authorization: Bearer $key" \
  --max-examples "$examples" \
  --phases examples,coverage,fuzzing \
  --exclude-path-regex '/events$' \
  --request-timeout 30 \
  --workers 2 \
  --seed 7 \
  --no-color \
  --warnings off
