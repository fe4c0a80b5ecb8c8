#!/usr/bin/env bash
# Checks Swagger UI in real headless Chromium: the page renders from the binary alone (any
# request elsewhere fails the check), lists every operation, and "Try it out" on the balance
# endpoint gets the wallet's balance. Saves a screenshot to docs/swagger-ui.png.
#
# Needs what the tests need (PostgreSQL; TEST_DATABASE_SERVER to use another server), plus
# Node.js with npm and Debian's Chromium (`apt-get install chromium`; CHROMIUM=path to use
# another build). Not part of CI, which has no browser.
set -euo pipefail
cd "$(dirname "$0")/.."

server=${TEST_DATABASE_SERVER:-postgres://postgres:postgres@127.0.0.1:5432}
database=wallet_swagger_check_$$
log=$(mktemp)

cargo build --quiet -p wallet-server
if [ ! -d scripts/swagger-ui/node_modules ]; then
  npm ci --prefix scripts/swagger-ui --no-audit --no-fund --loglevel=error
fi

target/debug/wallet-server --config /dev/null --database-url "$server/$database" \
  --http-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --log-format json >"$log" 2>&1 &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
  rm -f "$log"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
  grep -q '"message":"listening"' "$log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
addr=$(grep '"message":"listening"' "$log" | sed -E 's/.*"http":"([^"]+)".*/\1/')

wallet=$(cat /proc/sys/kernel/random/uuid)
balance=1234
curl -fsS -o /dev/null -X POST "http://$addr/api/v1/wallet" -H 'Content-Type: application/json' \
  -d "{\"walletId\":\"$wallet\",\"operationType\":\"DEPOSIT\",\"amount\":$balance}"

node scripts/swagger-ui/check.mjs "http://$addr" "$wallet" "$balance" docs/swagger-ui.png
