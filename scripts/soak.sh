#!/usr/bin/env bash
# Soak test: many crash cycles under load on a few hot wallets, alternating `kill -9` of the
# service and an immediate stop (crash) of PostgreSQL, then the bank test's end checks: every
# acknowledged operation recorded exactly once, every balance equal to its history and never
# negative. Prints the counts and fails if anything was lost, duplicated or answered with a
# 5xx other than 503 (503 with Retry-After is the expected answer during an outage).
#
#   scripts/soak.sh [CYCLES]    CYCLES defaults to $SOAK_CYCLES, else 20
#
# SOAK_LOAD sets the definitive answers between two faults (default 1000). The test starts
# its own throwaway PostgreSQL cluster (initdb, pg_ctl; set PG_BIN if they are not in
# /usr/lib/postgresql/<version>/bin) and never touches the server on port 5432.
set -euo pipefail
cd "$(dirname "$0")/.."

export SOAK_CYCLES="${1:-${SOAK_CYCLES:-20}}"
output=$(mktemp)
trap 'rm -f "$output"' EXIT

started=$SECONDS
status=0
cargo test --release -p wallet-server --test api -- \
  --ignored --exact faults::soak_alternating_service_and_database_crashes --nocapture 2>&1 |
  tee "$output" || status=$?

# The test prints one line of counts before it asserts, so a failed run still reports them.
counts=$(grep '^faults: ' "$output" | tail -n 1 || true)
echo
if [[ -z "$counts" ]]; then
  echo "soak: no counts, the run failed before its end checks (exit $status)"
  exit $((status == 0 ? 1 : status))
fi
echo "soak counts ($((SECONDS - started)) s, exit $status):"
echo "${counts#faults: }" | tr -d '()' | tr ' ' '\n' | sed 's/^/  /'
exit "$status"
