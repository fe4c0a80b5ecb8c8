#!/usr/bin/env bash
# Property-based fuzzing of the API from its own OpenAPI description (schemathesis): every
# generated request must get a documented status, a body matching its schema, and never a
# 5xx. Starts the service on a fresh database and stops it at the end.
#   scripts/schemathesis.sh [SECONDS]      (default 60; CI uses it as is)
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_BUDGET=${1:-60}
SERVER=${DATABASE_SERVER:-postgres://postgres:postgres@127.0.0.1:5432}
DB=wallet_schemathesis_$$
VENV=target/schemathesis-venv

if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'schemathesis==4.32.5'
fi

cargo build --quiet -p wallet-server
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env -i PATH="$PATH" RUST_LOG=warn ./target/debug/wallet-server --config /dev/null \
  --database-url "$SERVER/$DB" --http-addr "127.0.0.1:$PORT" --admin-addr 127.0.0.1:0 \
  > "target/schemathesis-server.log" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  psql -q "$SERVER/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break
  kill -0 "$PID" 2>/dev/null || { cat target/schemathesis-server.log; exit 1; }
  sleep 0.2
done

# positive_data_acceptance is left out on purpose: some schema-valid requests are refused by
# rules a schema cannot state (operationId together with an Idempotency-Key header; a key
# reused with another payload), and those refusals are the documented 400 and 422.
# One worker thread: hypothesis raises and restores the process-wide recursion limit around
# its draws, so two workers change it under each other. A run with two crashed that way inside
# ast.parse ("SystemError: AST constructor recursion depth mismatch", how Python 3.11 reports
# a recursion error there): a crash of the tool, not a finding. One worker generated as many
# cases in the same time on this 2-core machine.
"$VENV/bin/st" run "http://127.0.0.1:$PORT/api-docs/openapi.json" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-time "$SECONDS_BUDGET" --workers 1 --request-timeout 10

# The process is still alive after all of it.
kill -0 "$PID"
