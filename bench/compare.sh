#!/usr/bin/env bash
# Two builds of the service under the same load, taken in turns: A, B, A, B, ... so that a
# machine that speeds up or slows down during the run weighs on both alike. Each round starts
# the service on a fresh database, runs one wallet-loadtest (which must end CONSISTENT with no
# error answer) and stops it. Prints each round's operations/s and the CPU time each operation
# cost the service, PostgreSQL and the load tool during the load, in microseconds (sampled by
# bench/sample.py, cut by bench/report.py as for bench/run.sh); then the medians, and B's
# against A's. On a shared machine both swing with the neighbours (by a tenth between two
# rounds of one build, seen here), so a change counts only where the medians of several rounds
# part by more than that. The raw reports go to bench/results-compare/.
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

# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

SERVICE_PID=
stop_service() {
    stop_pid "$SERVICE_PID" 20
    SERVICE_PID=
}
trap stop_service EXIT
trap 'exit 130' INT TERM

require_durable "$PG_SERVER/postgres" "a comparison"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
POSTMASTER_PID=$(postmaster_pid "$PG_SERVER/postgres")
[[ -n $POSTMASTER_PID ]] || die "PostgreSQL's processes are not visible here"
ROWS=$RESULTS/rounds.tsv  # name, operations/s, then CPU us per operation: service, PostgreSQL, load tool
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
        wait_ready "$SERVICE_PID" "http://127.0.0.1:$port" ||
            die "$name: the service did not become ready (see $RESULTS/$name.service.log)"
        status=0
        timeout $((DURATION * 3 + 120)) "$LOADTEST" --url "http://127.0.0.1:$port" \
            --duration "${DURATION}s" --quiet --json "$RESULTS/$name.json" "${LOAD[@]}" \
            >"$RESULTS/$name.txt" 2>&1 &
        load_pid=$!
        start_sampler "$RESULTS/$name.samples.jsonl" "$load_pid" \
            --role "service=$SERVICE_PID" --role "load=$load_pid"
        wait "$load_pid" || status=$?
        finish_sampler
        stop_service
        if ((status != 0)) || ! grep -qx CONSISTENT "$RESULTS/$name.txt"; then
            cat "$RESULTS/$name.txt" >&2
            die "$name: wallet-loadtest exited $status"
        fi
        python3 - "$ROOT/bench" "$RESULTS" "$name" <<'PY' | tee -a "$ROWS"
import sys
bench, results, name = sys.argv[1:]
sys.path.insert(0, bench)
from report import loadtest_run
_, run = loadtest_run(results, name, name)
micros = [run.micros(group) for group in ("service", "postgres", "load")]
print(name, f"{run.ops:.0f}", *(f"{m:.1f}" if m is not None else "nan" for m in micros), sep="\t")
PY
    done
done

python3 - "$ROWS" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
columns = ["operations/s", "service us/op", "postgres us/op", "load tool us/op"]
medians = {
    side: [statistics.median(float(row[i + 1]) for row in rows if row[0][0] == side)
           for i in range(len(columns))]
    for side in "AB"
}
print(f"\n{'median':16}{'A':>10}{'B':>10}{'B/A':>8}")
for i, column in enumerate(columns):
    a, b = medians["A"][i], medians["B"][i]
    print(f"{column:16}{a:10.1f}{b:10.1f}{b / a:8.3f}")
PY
