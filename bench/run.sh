#!/usr/bin/env bash
# One run, every number side by side: baseline A (pgbench, one transaction per operation),
# baseline B (the service with batching off), ceiling C (the service's HTTP layer alone) and
# the service itself on one hot wallet (also with its events published to RabbitMQ), 10,000
# wallets, balance reads, an open loop, transfers (a hot merchant, a hot payer, random pairs)
# and payments on one hot wallet (a hold, then its confirmation or void), the transfers, the
# payments, the hot wallet and the 10,000 wallets at 64 clients as well; batches of 100
# deposits and withdrawals (POST /api/v1/batches) on one hot wallet and over 10,000 wallets, at
# 64 clients; wrk at 64 connections and at the usual count on the bare HTTP stack (GET /nope,
# answered 404) and on hot-wallet deposits (bench/deposit.lua); and how late holds expire, on
# an idle service and during a hot-wallet load. Writes their tables to bench/results/tables.md
# and into the generated block of docs/benchmarks.md (bench/report.py); the analysis around
# that block is written by hand.
#
#   bench/run.sh                     # 15 s per measurement, about 15 minutes in all
#   BENCH_DURATION=3 bench/run.sh    # smoke test
#   BENCH_PROFILE=1 bench/run.sh     # and a CPU flamegraph of the service on one hot wallet,
#                                    # from an extra run after the measured ones
#   BENCH_CITUS=1 bench/run.sh       # instead: plain PostgreSQL against Citus (a coordinator
#                                    # and two workers started on this machine for the run,
#                                    # from ../shared/citus or CITUS_DIR): one hot wallet,
#                                    # 10,000 wallets and random transfers, each on both;
#                                    # results in bench/results-citus/, tables in
#                                    # docs/scale-out.md; about 5 minutes
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, password postgres) with fsync and
# synchronous_commit on, RabbitMQ on 127.0.0.1:5672 (guest/guest; BENCH_AMQP_URL for another), pgbench, psql, curl, wrk (the Debian package) and python3. Drops and
# recreates the database wallet_bench. Talks to 127.0.0.1 only; every load stops by itself;
# the services it starts are stopped by pid when it exits, however it exits. Raw results go to
# bench/results/.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-15}
CONCURRENCY=${BENCH_CONCURRENCY:-256}
PG_SERVER=postgres://postgres:postgres@127.0.0.1:5432
AMQP_URL=${BENCH_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
DB=wallet_bench
DB_URL=$PG_SERVER/$DB
PGBENCH_CLIENTS=(1 2 4 8 16 32 64)
CITUS=${BENCH_CITUS:-0}
RESULTS=$ROOT/bench/results
[[ $CITUS == 1 ]] && RESULTS=$ROOT/bench/results-citus
BIN=$ROOT/target/release
# A load that has not finished long after its duration is stuck: stop it and fail.
LOAD_LIMIT=$((DURATION * 3 + 180))

SERVICE_PID=
LOAD_PID=
SAMPLER_PID=
PROFILER_PID=
HTTP_URL=
METRICS_URL=

say() { printf '\n== %s\n' "$*" >&2; }
die() {
    printf '\nbench: FAILED: %s\n' "$*" >&2
    exit 1
}

# shellcheck source=bench/common.sh
source "$ROOT/bench/common.sh"

CITUS_CLUSTER=
cleanup() {
    stop_pid "$LOAD_PID" 5
    stop_pid "$SAMPLER_PID" 5
    stop_pid "$PROFILER_PID" 5
    stop_pid "$SERVICE_PID" 20
    if [[ -n $CITUS_CLUSTER ]]; then
        bash "$CITUS_DIR/cluster.sh" stop "$CITUS_CLUSTER/nodes" || true
        rm -rf "$CITUS_CLUSTER"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be a whole number of seconds"
[[ $CONCURRENCY =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONCURRENCY must be a positive number"
for tool in cargo psql pgbench curl wrk python3 timeout; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done

cd "$ROOT"
rm -rf "$RESULTS"
mkdir -p "$RESULTS" docs
# Every command that produces a number, exactly as run, for the report.
# Paths are shown relative to the repository, and the service without its `env -i PATH=...`.
record() {
    local line="$*"
    line=${line#"env -i PATH=$PATH "}
    printf '%s\n' "${line//"$ROOT/"/}" >>"$RESULTS/commands.txt"
}
psql_admin() { psql "$PG_SERVER/postgres" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_bench() { psql "$DB_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

say "building release binaries"
cargo build --release --workspace

say "fresh database $DB"
psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
require_durable "$DB_URL" "every measurement"
psql_bench -At -F '|' >"$RESULTS/postgres.txt" <<'SQL'
SELECT 'version', version();
SELECT name, current_setting(name) FROM pg_settings
 WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes',
                'shared_buffers', 'max_connections', 'wal_level', 'checkpoint_timeout',
                'max_wal_size', 'commit_delay')
 ORDER BY name;
SQL
# The machine as the report shows it, one `key|value` a line.
{
    echo "CPU|$(nproc) x $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
    echo "memory|$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel|$(uname -sr)"
    echo "load average at start|$(cut -d ' ' -f 1-3 /proc/loadavg)"
} >"$RESULTS/machine.txt"
POSTMASTER_PID=$(postmaster_pid "$DB_URL")
[[ -n $POSTMASTER_PID ]] ||
    echo "bench: PostgreSQL's processes are not visible here; its CPU will count as other" >&2

# The service with its built-in defaults: no config.env (it runs in the results folder), no
# WALLET_* variables from the caller's shell; only logging is turned down, and the flags given.
start_service() {
    local name=$1
    shift
    local http_port admin_port
    http_port=$(free_port)
    admin_port=$(free_port)
    HTTP_URL=http://127.0.0.1:$http_port
    METRICS_URL=http://127.0.0.1:$admin_port/metrics
    local command=(env -i "PATH=$PATH" RUST_LOG=warn "$BIN/wallet-server"
        --database-url "$SERVICE_DB_URL" --http-addr "127.0.0.1:$http_port"
        --admin-addr "127.0.0.1:$admin_port" "$@")
    record "${command[*]}"
    (cd "$RESULTS" && exec "${command[@]}") >"$RESULTS/$name.service.log" 2>&1 &
    SERVICE_PID=$!
    wait_ready "$SERVICE_PID" "$HTTP_URL" && return 0
    tail -n 20 "$RESULTS/$name.service.log" >&2
    die "$name: the service did not become ready"
}

stop_service() {
    stop_pid "$SERVICE_PID" 20
    SERVICE_PID=
}

# The database the service runs on: the bench database, or in the Citus runs the
# coordinator's.
SERVICE_DB_URL=$DB_URL
# Checkpoint first (on every server the service uses) so that no scenario pays for the
# previous one's dirty pages.
CHECKPOINT_URLS=("$DB_URL")
checkpoint() {
    local url
    for url in "${CHECKPOINT_URLS[@]}"; do
        psql "$url" -X -q -v ON_ERROR_STOP=1 -c CHECKPOINT
    done
}

# Runs one load (the command given, output to $RESULTS/NAME.txt) against the running service
# from a checkpoint, with the CPU sampler beside it, bounded by $LOAD_LIMIT; sets LOAD_STATUS
# to its exit status (124: it did not finish in time).
LOAD_STATUS=0
EXTRA_ROLES=()
run_load() {
    local name=$1
    shift
    record "$*"
    checkpoint
    timeout "$LOAD_LIMIT" "$@" >"$RESULTS/$name.txt" 2>&1 &
    LOAD_PID=$!
    start_sampler "$RESULTS/$name.samples.jsonl" "$LOAD_PID" \
        --role "service=$SERVICE_PID" --role "load=$LOAD_PID" --metrics-url "$METRICS_URL" \
        "${EXTRA_ROLES[@]}"
    LOAD_STATUS=0
    wait "$LOAD_PID" || LOAD_STATUS=$?
    LOAD_PID=
    finish_sampler
}

# One wallet-loadtest run against the running service; it must exit 0 (no error answer, no
# discrepancy: CONSISTENT).
loadtest() {
    local name=$1
    shift
    run_load "$name" "$BIN/wallet-loadtest" --url "$HTTP_URL" --duration "${DURATION}s" "$@" \
        --json "$RESULTS/$name.json" --quiet
    sed -n '1,8p' "$RESULTS/$name.txt" >&2
    if ((LOAD_STATUS != 0)) || ! grep -qx CONSISTENT "$RESULTS/$name.txt"; then
        cat "$RESULTS/$name.txt" >&2
        ((LOAD_STATUS == 124)) && die "$name: wallet-loadtest did not finish within $LOAD_LIMIT s"
        die "$name: wallet-loadtest exited $LOAD_STATUS (error answers or discrepancies, above)"
    fi
}

# One wrk run of CONNECTIONS connections against the running service, with wrk's other
# arguments (the URL last, or before the script's `-- ARG`); bench/report.py reads its text
# output. wrk checks no answer beyond its status and no balance: its rows have no ledger check.
wrk_load() {
    local name=$1 connections=$2
    shift 2
    run_load "$name" wrk -t2 "-c$connections" "-d${DURATION}s" --latency --timeout 10s "$@"
    grep -E 'requests in|Requests/sec|Non-2xx|Socket errors' "$RESULTS/$name.txt" >&2 || true
    if ((LOAD_STATUS != 0)) || ! grep -q '^Requests/sec:' "$RESULTS/$name.txt"; then
        cat "$RESULTS/$name.txt" >&2
        ((LOAD_STATUS == 124)) && die "$name: wrk did not finish within $LOAD_LIMIT s"
        die "$name: wrk exited $LOAD_STATUS (above)"
    fi
}

# A fresh wallet of the running service, funded with one deposit; prints its id.
funded_wallet() {
    local wallet
    wallet=$(python3 -c 'import uuid; print(uuid.uuid4())')
    curl -fsS -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"walletId\": \"$wallet\"}" "$HTTP_URL/api/v1/wallets" || return
    curl -fsS -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"walletId\": \"$wallet\", \"operationType\": \"DEPOSIT\", \"amount\": 1000000}" \
        "$HTTP_URL/api/v1/wallet" || return
    echo "$wallet"
}

# The machine at the end of the run, for the report.
record_end() {
    echo "load average at end|$(cut -d ' ' -f 1-3 /proc/loadavg)" >>"$RESULTS/machine.txt"
    echo "run finished|$(date -u '+%Y-%m-%d %H:%M UTC')" >>"$RESULTS/machine.txt"
}

# --- the Citus comparison, instead of everything else ----------------------------------------
if [[ $CITUS == 1 ]]; then
    CITUS_DIR=${CITUS_DIR:-$ROOT/../shared/citus}
    [[ -x $CITUS_DIR/cluster.sh ]] || die "no Citus scripts at $CITUS_DIR (set CITUS_DIR)"
    # Its directory and parents must be reachable by the postgres user.
    CITUS_CLUSTER=$(mktemp -d /tmp/wallet-bench-citus.XXXXXX)
    chmod 755 "$CITUS_CLUSTER"
    say "Citus: a coordinator and two workers"
    coordinator=$(bash "$CITUS_DIR/cluster.sh" start "$CITUS_CLUSTER/nodes" 2)
    # Each node's server process (a role covers its backends), and its URL for checkpoints.
    citus_roles=()
    citus_urls=()
    for data in "$CITUS_CLUSTER"/nodes/*/; do
        port=$(basename "$data")
        role=worker-$port
        [[ $coordinator == *":$port/"* ]] && role=coordinator
        citus_roles+=(--role "$role=$(head -n 1 "$data/postmaster.pid")")
        citus_urls+=("postgres://postgres@127.0.0.1:$port/postgres")
    done
    MANY=(--wallets 10000 --distribution uniform --mix deposit=50,withdraw=50)
    for target in plain citus; do
        if [[ $target == citus ]]; then
            SERVICE_DB_URL=$coordinator
            CHECKPOINT_URLS=("${citus_urls[@]}")
            EXTRA_ROLES=("${citus_roles[@]}")
        fi
        for scenario in hot-wallet many-wallets transfers-random; do
            case $scenario in
            hot-wallet) load=(--wallets 1 --mix deposit=50,withdraw=50) ;;
            many-wallets) load=("${MANY[@]}") ;;
            transfers-random) load=(--wallets 10000 --distribution uniform --mix transfer=100
                --transfers random) ;;
            esac
            say "$target: $scenario, $CONCURRENCY clients"
            start_service "$target-$scenario"
            loadtest "$target-$scenario" --concurrency "$CONCURRENCY" "${load[@]}"
            stop_service
        done
    done
    record_end
    say "report"
    python3 "$ROOT/bench/report.py" --citus --results "$RESULTS" --doc "$ROOT/docs/scale-out.md"
    exit 0
fi

# --- the schema, and the row baseline A hammers ---------------------------------------------
say "migrating $DB"
start_service migrate
stop_service
WALLET=$(python3 -c 'import uuid; print(uuid.uuid4())')
psql_bench -c "INSERT INTO wallets (id, balance) VALUES ('$WALLET', 0)"

# --- baseline A: one transaction per operation, straight from pgbench ------------------------
for clients in "${PGBENCH_CLIENTS[@]}"; do
    say "baseline A: pgbench, $clients clients"
    threads=$((clients < 2 ? clients : 2))
    command=(pgbench -n -M prepared -c "$clients" -j "$threads" -T "$DURATION"
        -f "$ROOT/bench/baseline-a.sql" -D "wallet=$WALLET"
        -l --log-prefix "$RESULTS/baseline-a-c$clients.log" "$DB_URL")
    record "${command[*]}"
    checkpoint
    timeout "$LOAD_LIMIT" "${command[@]}" >"$RESULTS/baseline-a-c$clients.txt" 2>&1 &
    LOAD_PID=$!
    start_sampler "$RESULTS/baseline-a-c$clients.samples.jsonl" "$LOAD_PID" --role "load=$LOAD_PID"
    status=0
    wait "$LOAD_PID" || status=$?
    LOAD_PID=
    finish_sampler
    grep -E '^(tps|latency average|number of failed)' "$RESULTS/baseline-a-c$clients.txt" >&2 || true
    if ((status != 0)); then
        cat "$RESULTS/baseline-a-c$clients.txt" >&2
        die "baseline A with $clients clients: pgbench exited $status"
    fi
done

# --- baseline B: the same service, one transaction per request -------------------------------
WRITES=(--wallets 1 --mix deposit=50,withdraw=50)
say "baseline B: --max-batch 1, one hot wallet, $CONCURRENCY clients"
start_service baseline-b --max-batch 1
loadtest baseline-b --concurrency "$CONCURRENCY" "${WRITES[@]}"
stop_service

# --- ceiling C: the service's HTTP layer, no database work ----------------------------------
say "ceiling C: GET /health/live, $CONCURRENCY clients"
start_service ceiling-c
loadtest ceiling-c --concurrency "$CONCURRENCY" --mix live=100
stop_service

# --- ours -----------------------------------------------------------------------------------
say "ours: one hot wallet, $CONCURRENCY clients"
start_service hot-wallet
loadtest hot-wallet --concurrency "$CONCURRENCY" "${WRITES[@]}" \
    --plot "$ROOT/docs/benchmarks-hot-wallet.svg"
stop_service

# The same with events on: every change published to RabbitMQ, and wallet-loadtest consuming
# the stream (a queue of its own bound to every event) and checking it against what it was
# answered; compared with the run above. The service's publish lag (change to broker confirm)
# is read from its metrics after the load.
say "ours: one hot wallet, $CONCURRENCY clients, events on"
start_service events-hot-wallet --events-amqp-url "$AMQP_URL"
# The broker's CPU is a group of its own (the Erlang VM of the local RabbitMQ, when it runs).
broker_pid=$(pgrep -o -x beam.smp || true)
EXTRA_ROLES=(${broker_pid:+--role "broker=$broker_pid"})
loadtest events-hot-wallet --concurrency "$CONCURRENCY" "${WRITES[@]}" \
    --events-amqp-url "$AMQP_URL" --events-grace 60s
EXTRA_ROLES=()
curl -fsS -o "$RESULTS/events-hot-wallet.metrics.txt" "$METRICS_URL" ||
    die "events-hot-wallet: the service's metrics could not be read"
stop_service
# And with nobody consuming: the broker confirms and drops each event (no queue is bound), so
# that this shows what publishing costs without a consumer on the same two cores.
say "ours: one hot wallet, $CONCURRENCY clients, events on, no queue bound"
start_service events-unconsumed-hot-wallet --events-amqp-url "$AMQP_URL"
EXTRA_ROLES=(${broker_pid:+--role "broker=$broker_pid"})
loadtest events-unconsumed-hot-wallet --concurrency "$CONCURRENCY" "${WRITES[@]}"
EXTRA_ROLES=()
curl -fsS -o "$RESULTS/events-unconsumed-hot-wallet.metrics.txt" "$METRICS_URL" ||
    die "events-unconsumed-hot-wallet: the service's metrics could not be read"
stop_service

# Transfers and payments are compared with the hot wallet at the same number of clients: 64,
# and $CONCURRENCY as everything else.
COMPARED_CLIENTS=(64)
if ((CONCURRENCY != 64)); then
    COMPARED_CLIENTS+=("$CONCURRENCY")
    say "ours: one hot wallet, 64 clients"
    start_service hot-wallet-c64
    loadtest hot-wallet-c64 --concurrency 64 "${WRITES[@]}"
    stop_service
fi

MANY=(--wallets 10000 --distribution uniform --mix deposit=50,withdraw=50)
say "ours: 10,000 wallets, uniform, $CONCURRENCY clients"
start_service many-wallets
loadtest many-wallets --concurrency "$CONCURRENCY" "${MANY[@]}"
stop_service

# Batches and the single-request path are compared at 64 clients: the 10,000 wallets there
# too, 100-item batches (each item decided on its own, as if sent alone) on one hot wallet and
# over 10,000 wallets, and wrk's 64 connections on the bare HTTP stack (a GET of a route the
# service does not have, answered 404) and on deposits into one wallet.
if ((CONCURRENCY != 64)); then
    say "ours: 10,000 wallets, uniform, 64 clients"
    start_service many-wallets-c64
    loadtest many-wallets-c64 --concurrency 64 "${MANY[@]}"
    stop_service
fi

say "ours: 100-item batches, one hot wallet, 64 clients"
start_service batch-hot-wallet-c64
loadtest batch-hot-wallet-c64 --concurrency 64 "${WRITES[@]}" --batch-size 100
stop_service

say "ours: 100-item batches, 10,000 wallets, 64 clients"
start_service batch-many-wallets-c64
loadtest batch-many-wallets-c64 --concurrency 64 "${MANY[@]}" --batch-size 100
stop_service

# wrk at 64 connections, and at $CONCURRENCY as the project's load tool above: wrk spends less
# CPU per request than wallet-loadtest, on the same two cores as the service.
for connections in "${COMPARED_CLIENTS[@]}"; do
    say "wrk: the bare HTTP stack, GET /nope, $connections connections"
    start_service "wrk-bare-http-c$connections"
    wrk_load "wrk-bare-http-c$connections" "$connections" "$HTTP_URL/nope"
    stop_service

    say "wrk: deposits into one hot wallet, $connections connections"
    start_service "wrk-hot-wallet-c$connections"
    wallet=$(funded_wallet) ||
        die "wrk-hot-wallet-c$connections: its wallet could not be created and funded"
    wrk_load "wrk-hot-wallet-c$connections" "$connections" -s "$ROOT/bench/deposit.lua" \
        "$HTTP_URL/api/v1/wallet" -- "$wallet"
    stop_service
done

say "ours: balance reads over 1,000 wallets, $CONCURRENCY clients"
start_service reads
loadtest reads --concurrency "$CONCURRENCY" --wallets 1000 --mix read=100
stop_service

say "ours: open loop, 1000 requests/s on one hot wallet"
start_service open-loop
loadtest open-loop --rate 1000 "${WRITES[@]}"
stop_service

# One merchant paid by 1,000 payers, one payer paying 1,000 payees (wallet-loadtest funds it
# for the whole run), random pairs among 10,000 wallets; and the hot merchant again with every
# transfer sent to its source's writer, the routing the service does not use by default.
for clients in "${COMPARED_CLIENTS[@]}"; do
    for run in hot-merchant hot-payer random hot-merchant-source; do
        pattern=${run%-source}
        routing=busier
        [[ $run == *-source ]] && routing=source
        wallets=1001
        [[ $pattern == random ]] && wallets=10000
        name=transfers-$run-c$clients
        say "ours: transfers, $pattern, $wallets wallets, $clients clients, $routing routing"
        start_service "$name" --transfer-routing "$routing"
        loadtest "$name" --concurrency "$clients" --wallets "$wallets" --distribution uniform \
            --mix transfer=100 --transfers "$pattern"
        stop_service
    done
done

# Payments authorised then captured on one hot wallet: a hold, then its confirmation (of part
# of it one time in 10) or its void (one time in 20), two requests counted as one payment. The
# wallet is funded for the whole run, so that holds are placed rather than refused.
for clients in "${COMPARED_CLIENTS[@]}"; do
    name=capture-hot-wallet-c$clients
    say "ours: payments, authorise + confirm pairs, one hot wallet, $clients clients"
    start_service "$name"
    loadtest "$name" --concurrency "$clients" --wallets 1 --mix capture=100 \
        --initial-balance 1000000000000
    stop_service
done

# Holds expiring by themselves: how late after its expiresAt each one was expired, on an idle
# service and during a hot-wallet load, read from the holds table (resolved_at - expires_at).
# Each set of holds has a wallet of its own; the sweep runs every 250 ms by default.
place_holds() {
    local wallet=$1 count=$2 first=$3 last=$4
    python3 "$ROOT/bench/place_holds.py" --url "$HTTP_URL" --wallet "$wallet" --count "$count" \
        --timeouts "$first" "$last"
}
expiry_lateness() {
    local label=$1 wallet=$2
    psql_bench -At -F '|' -c "
        SELECT '$label', count(*) FILTER (WHERE status = 'EXPIRED'), count(*),
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY late)::numeric, 1),
               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY late)::numeric, 1),
               round(max(late)::numeric, 1)
        FROM (SELECT status, 1000 * extract(epoch FROM resolved_at - expires_at) AS late
              FROM holds WHERE wallet_id = '$wallet') AS h" >>"$RESULTS/expiry-lateness.txt"
}
say "ours: holds expiring on an idle service, then during a hot-wallet load, $CONCURRENCY clients"
start_service hold-expiry
idle_wallet=$(python3 -c 'import uuid; print(uuid.uuid4())')
busy_wallet=$(python3 -c 'import uuid; print(uuid.uuid4())')
place_holds "$idle_wallet" 200 1 3
sleep 5
expiry_lateness "idle service" "$idle_wallet"
# Expiries spread over the middle of the load that follows.
place_holds "$busy_wallet" 500 3 $((DURATION > 5 ? DURATION - 2 : 3))
loadtest expiry-load --concurrency "$CONCURRENCY" "${WRITES[@]}"
sleep 2
expiry_lateness "during the hot-wallet load" "$busy_wallet"
stop_service

record_end

if [[ ${BENCH_PROFILE:-0} == 1 ]]; then
    # Not measured: the profiler's sampling would cost the service a little.
    say "profile: one hot wallet again, with the service's CPU profiler on"
    start_service profile
    profile_seconds=$((DURATION > 3 ? DURATION - 2 : 1))
    curl -fsS -o "$RESULTS/hot-wallet-flamegraph.svg" --max-time $((profile_seconds + 30)) \
        "${METRICS_URL%/metrics}/debug/pprof/flamegraph?seconds=$profile_seconds" &
    PROFILER_PID=$!
    loadtest profile --concurrency "$CONCURRENCY" "${WRITES[@]}"
    wait "$PROFILER_PID" || echo "bench: the flamegraph could not be fetched" >&2
    PROFILER_PID=
    stop_service
fi

say "report"
python3 "$ROOT/bench/report.py" --results "$RESULTS" --doc "$ROOT/docs/benchmarks.md"
