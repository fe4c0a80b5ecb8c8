#!/usr/bin/env bash
# What keeping operation ids unique across a Citus cluster costs: batches of 100 deposits on
# one hot wallet, written as the service writes them on Citus (bench/citus-ids.sql), with and
# without their ids entering `operation_ids`, alternately, on a coordinator and two workers
# started for the run (from ../shared/citus, or CITUS_DIR). pgbench, 8 clients, prepared
# statements; prints each run's batches/s and the ratio of the means.
#   bench/citus-ids.sh                  # 15 s per run, two runs each way
#   BENCH_DURATION=5 bench/citus-ids.sh
# Runs as root (the cluster runs as the postgres user); removes the cluster at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-15}
CITUS_DIR=${CITUS_DIR:-$ROOT/../shared/citus}
[[ -x $CITUS_DIR/cluster.sh ]] || { echo "no Citus scripts at $CITUS_DIR (set CITUS_DIR)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/wallet-citus-ids.XXXXXX)
chmod 755 "$DIR"
SERVICE_PID=
cleanup() {
    [[ -n $SERVICE_PID ]] && kill "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null
    bash "$CITUS_DIR/cluster.sh" stop "$DIR/nodes" || true
    rm -rf "$DIR"
}
trap cleanup EXIT
coordinator=$(bash "$CITUS_DIR/cluster.sh" start "$DIR/nodes" 2)

# The schema, distributed by the service itself.
cargo build --release --quiet -p wallet-server
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env -i PATH="$PATH" RUST_LOG=warn "$ROOT/target/release/wallet-server" --config /dev/null \
    --database-url "$coordinator" --http-addr "127.0.0.1:$port" --admin-addr 127.0.0.1:0 \
    >"$DIR/service.log" 2>&1 &
SERVICE_PID=$!
for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/health/ready" 2>/dev/null && break
    sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/health/ready" || { cat "$DIR/service.log" >&2; exit 1; }
kill "$SERVICE_PID" && wait "$SERVICE_PID" || true
SERVICE_PID=

wallet=$(python3 -c 'import uuid; print(uuid.uuid4())')
psql "$coordinator" -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO wallets (id) VALUES ('$wallet')"
declare -A total=([0]=0 [1]=0)
for registry in 0 1 0 1; do
    command=(pgbench -n -M prepared -c 8 -j 2 -T "$DURATION" -f "$ROOT/bench/citus-ids.sql"
        -D "wallet=$wallet" -D "registry=$registry" "$coordinator")
    tps=$("${command[@]}" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    [[ -n $tps ]] || { echo "pgbench failed: ${command[*]}" >&2; exit 1; }
    printf 'registry=%s  %8.1f batches/s  (%s)\n' "$registry" "$tps" "${command[*]//"$ROOT/"/}"
    total[$registry]=$(python3 -c "print(${total[$registry]} + $tps)")
done
python3 -c "print(f'with the registry / without: {${total[1]} / ${total[0]}:.2f}x')"
