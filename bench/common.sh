# What bench/run.sh and bench/compare.sh share; sourced by both, which define die(), and ROOT,
# DB (the benchmark database) and POSTMASTER_PID (empty when unknown) for the sampler.

# Stops one process we started, by pid: SIGTERM, then SIGKILL if it lingers.
stop_pid() {
    local pid=$1 patience=$2
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < patience * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Fails unless the PostgreSQL at URL $1 makes every commit durable; $2 says what needs it.
require_durable() {
    local url=$1 what=$2 setting value
    for setting in fsync synchronous_commit; do
        value=$(psql "$url" -X -q -Atc "SHOW $setting")
        [[ $value == on ]] || die "PostgreSQL runs with $setting=$value; $what needs it on"
    done
}

# The pid of the server process of the PostgreSQL at URL $1, so that the CPU samples can tell
# its work from everyone else's; nothing when its processes are not visible here.
postmaster_pid() {
    local checkpointer pid
    checkpointer=$(psql "$1" -X -q -Atc \
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
    pid=$(ps -o ppid= -p "$checkpointer" 2>/dev/null | tr -d ' ' || true)
    if [[ -n $pid && $(ps -o comm= -p "$pid" 2>/dev/null) == postgres ]]; then
        echo "$pid"
    fi
}

# Waits until the service of pid $1 answers GET $2/health/ready; fails if it exits first or
# is not ready within a minute.
wait_ready() {
    local pid=$1 url=$2
    for ((i = 0; i < 600; i++)); do
        curl -fsS -o /dev/null "$url/health/ready" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Samples CPU use (and the service's metrics) into file $1 until process $2 exits, in the
# background, with bench/sample.py's further arguments (the roles); finish_sampler waits for it.
start_sampler() {
    local out=$1 until=$2
    shift 2
    python3 "$ROOT/bench/sample.py" --out "$out" --until-pid "$until" --database "$DB" \
        ${POSTMASTER_PID:+--postmaster "$POSTMASTER_PID"} "$@" &
    SAMPLER_PID=$!
}

finish_sampler() {
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
}
