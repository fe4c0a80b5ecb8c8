#!/usr/bin/env bash
# Two builds of the service under the same load, taken in turns: A, B, A, B, ... so that a
# machine that speeds up or slows down during the run weighs on both alike. Each round starts
# the service on a fresh database, runs one wallet-loadtest (which must end CONSISTENT with no
# error answer) and stops it. Prints each round's operations/s and the ratio of B's median to
# A's; the raw reports go to bench/results-compare/.
#
#   bench/compare.sh OLD_SERVER NEW_SERVER [LOADTEST ARG ...]
#
#   # the hot wallet at 256 clients, this tree against the commit before it:
#   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && cargo build --release)
#   cargo build --release
#   bench/compare.sh /tmp/before/target/release/wallet-server target/release/wallet-server \
#       --concurrency 256 --wallets 1 --mix deposit=50,withdraw=50
#
# Environment: COMPARE_ROUNDS (rounds of each, default 3), COMPARE_DURATION (seconds per
# load, default 10), and the same PostgreSQL as bench/run.sh (127.0.0.1:5432, user postgres,
# fsync and synchronous_commit on). The load tool is this tree's target/release
# wallet-loadtest. Drops and recreates the database wallet_compare; talks to 127.0.0.1 only.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${COMPARE_ROUNDS:-3}
DURATION=${COMPARE_DURATION:-10}
PG_SERVER=postgres://postgres:postgres@127.0.0.1:5432
DB=wallet_compare
RESULTS=$ROOT/bench/results-compare
LOADTEST=$ROOT/target/release/wallet-loadtest

die() {
    printf 'compare: %s\n' "$*" >&2
    exit 1
}

(($# >= 2)) || die "usage: bench/compare.sh OLD_SERVER NEW_SERVER [LOADTEST ARG ...]"
SERVERS=("$(realpath "$1")" "$(realpath "$2")")
shift 2
LOAD=("$@")
((${#LOAD[@]} > 0)) || LOAD=(--concurrency 256 --wallets 1 --mix deposit=50,withdraw=50)
for binary in "${SERVERS[@]}" "$LOADTEST"; do
    [[ -x $binary ]] || die "$binary is not an executable (build it first)"
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ ]] ||
    die "COMPARE_ROUNDS and COMPARE_DURATION must be whole numbers"

SERVICE_PID=
stop_service() {
    [[ -n $SERVICE_PID ]] || return 0
    kill -TERM "$SERVICE_PID" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$SERVICE_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
    SERVICE_PID=
}
trap stop_service EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
declare -a RATES_A RATES_B
for ((round = 1; round <= ROUNDS; round++)); do
    for side in 0 1; do
        name=$([[ $side == 0 ]] && echo A || echo B)-$round
        psql "$PG_SERVER/postgres" -X -q -v ON_ERROR_STOP=1 \
            -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
        port=$(free_port)
        admin=$(free_port)
        env -i "PATH=$PATH" RUST_LOG=warn "${SERVERS[side]}" --database-url "$PG_SERVER/$DB" \
            --http-addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin" \
            >"$RESULTS/$name.service.log" 2>&1 &
        SERVICE_PID=$!
        for ((i = 0; i < 300; i++)); do
            curl -fsS -o /dev/null "http://127.0.0.1:$port/health/ready" 2>/dev/null && break
            kill -0 "$SERVICE_PID" 2>/dev/null || die "$name: the service exited (see $RESULTS)"
            sleep 0.1
        done
        status=0
        timeout $((DURATION * 3 + 120)) "$LOADTEST" --url "http://127.0.0.1:$port" \
            --duration "${DURATION}s" --quiet --json "$RESULTS/$name.json" "${LOAD[@]}" \
            >"$RESULTS/$name.txt" 2>&1 || status=$?
        stop_service
        if ((status != 0)) || ! grep -qx CONSISTENT "$RESULTS/$name.txt"; then
            cat "$RESULTS/$name.txt" >&2
            die "$name: wallet-loadtest exited $status"
        fi
        rate=$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["summary"]["okItemsPerSecond"]))' "$RESULTS/$name.json")
        printf '%s\t%s/s\n' "$name" "$rate"
        if [[ $side == 0 ]]; then RATES_A+=("$rate"); else RATES_B+=("$rate"); fi
    done
done

python3 - "${RATES_A[*]}" "${RATES_B[*]}" <<'PY'
import statistics, sys
a = [int(x) for x in sys.argv[1].split()]
b = [int(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"A median {ma:.0f}/s  B median {mb:.0f}/s  B/A {mb / ma:.3f}")
PY
