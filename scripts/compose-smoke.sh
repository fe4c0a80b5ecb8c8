#!/usr/bin/env bash
# End-to-end check of the compose stack (docker-compose.yml): builds the service's image,
# starts PostgreSQL and the service, waits until both are healthy, deposits into a new wallet
# through the published port and reads the balance back, then checks that the balance
# survives a restart of the service and a recreation of both containers (the database volume
# kept), that the service exits 0 on SIGTERM, and that it still takes deposits afterwards.
# The stack is torn down at the end (containers, network, volume and the built image),
# whether the run passed or not.
#
#   scripts/compose-smoke.sh
#
# Needs a running Docker daemon, docker-compose (or the compose plugin) and the base images
# (where they cannot be pulled, scripts/ci-docker.sh builds local stand-ins first). The
# compose project is named wallet-smoke-<pid> and the host ports are free ones picked at
# start, so the run cannot collide with another stack or service on the machine.
# SMOKE_KEEP_IMAGE=1 keeps the built image; SMOKE_BUILD_TIMEOUT bounds the build (s, 2400).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

PROJECT=wallet-smoke-$$
BUILD_TIMEOUT=${SMOKE_BUILD_TIMEOUT:-2400}
T0=$SECONDS
TIMES=()

log() { printf '[compose-smoke %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { log "FAIL: $*" >&2; exit 1; }

if command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  fail "neither docker-compose nor the docker compose plugin is installed"
fi
COMPOSE_VERSION="${COMPOSE[*]} $("${COMPOSE[@]}" version --short 2>/dev/null || echo '(version unknown)')"
COMPOSE+=(-p "$PROJECT" -f docker-compose.yml)
WORK=$(mktemp -d)

# compose [TIMEOUT_S] ARGS...: a compose command that cannot hang (default limit 300 s).
compose() {
  local limit=300
  if [[ $1 =~ ^[0-9]+$ ]]; then limit=$1; shift; fi
  timeout "$limit" "${COMPOSE[@]}" "$@"
}

cleanup() {
  local rc=$? rmi=(--rmi local)
  trap - EXIT
  if [ "$rc" != 0 ] && [ -n "$(compose 60 ps -q 2>/dev/null)" ]; then
    log "state of the stack and its last log lines:"
    compose 60 ps || true
    compose 60 logs --no-color --tail=60 || true
  fi
  [ "${SMOKE_KEEP_IMAGE:-0}" = 1 ] && rmi=()
  log "tearing down project $PROJECT (down -v${rmi:+ --rmi local})"
  if ! compose 180 down -v --remove-orphans "${rmi[@]}" >"$WORK/down.log" 2>&1; then
    cat "$WORK/down.log"
    log "teardown failed"
    [ "$rc" != 0 ] || rc=1
  fi
  rm -rf "$WORK"
  for t in "${TIMES[@]}"; do log "time: $t"; done
  if [ "$rc" = 0 ]; then log "PASSED in $((SECONDS - T0)) s"; else log "FAILED (exit $rc) after $((SECONDS - T0)) s"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

container() { # SERVICE: its container id
  local id
  id=$(compose 60 ps -q "$1")
  [ -n "$id" ] || fail "no container for service $1"
  echo "$id"
}

wait_healthy() { # SERVICE LIMIT_S
  local service=$1 limit=$2 id status=unknown t=$SECONDS
  id=$(container "$service")
  while [ $((SECONDS - t)) -lt "$limit" ]; do
    status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo gone)
    if [ "$status" = healthy ]; then
      log "$service is healthy (after $((SECONDS - t)) s)"
      return 0
    fi
    sleep 1
  done
  fail "$service not healthy within $limit s (last status: $status)"
}

# request METHOD PATH [JSON]: sets STATUS (000 when there was no answer) and BODY.
request() {
  local args=(-sS -o "$WORK/body" -w '%{http_code}' --max-time 10 -X "$1" "$API$2")
  [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' --data "$3")
  rm -f "$WORK/body"
  STATUS=$(curl "${args[@]}" 2>"$WORK/curl.err") || STATUS=000
  BODY=$(cat "$WORK/body" 2>/dev/null || cat "$WORK/curl.err")
}

field() { # NAME JSON: the value of a top-level scalar field of a flat JSON object
  sed -n 's/.*"'"$1"'":"\{0,1\}\([^",}]*\).*/\1/p' <<<"$2"
}

deposit() { # AMOUNT EXPECTED_BALANCE
  request POST /api/v1/wallet "{\"walletId\":\"$WALLET\",\"operationType\":\"DEPOSIT\",\"amount\":$1}"
  [ "$STATUS" = 200 ] || fail "deposit of $1: HTTP $STATUS, expected 200: $BODY"
  [ "$(field status "$BODY")" = APPLIED ] || fail "deposit of $1 not applied: $BODY"
  [ "$(field balance "$BODY")" = "$2" ] || fail "deposit of $1: balance $(field balance "$BODY"), expected $2: $BODY"
  log "deposit of $1: 200 APPLIED, balance $2"
}

expect_balance() { # EXPECTED_BALANCE WHEN
  request GET "/api/v1/wallets/$WALLET"
  [ "$STATUS" = 200 ] || fail "read $2: HTTP $STATUS, expected 200: $BODY"
  [ "$(field balance "$BODY")" = "$1" ] || fail "read $2: balance $(field balance "$BODY"), expected $1: $BODY"
  log "read $2: 200, balance $1"
}

published_api() { # sets API from the port Docker published for the service's 8080
  local mapping
  mapping=$(compose 60 port wallet 8080) || fail "no published port for wallet:8080"
  API=http://127.0.0.1:${mapping##*:}
}

step() { # NAME CMD...: runs CMD and records its duration
  local name=$1 t=$SECONDS
  shift
  "$@"
  TIMES+=("$name: $((SECONDS - t)) s")
}

build() {
  log "building the image (compose build; output kept for a failure)"
  if ! compose "$BUILD_TIMEOUT" build >"$WORK/build.log" 2>&1; then
    tail -n 60 "$WORK/build.log"
    fail "image build failed or took longer than $BUILD_TIMEOUT s"
  fi
}

start() { # the stack, then both services healthy
  if ! compose 300 up -d >"$WORK/up.log" 2>&1; then
    cat "$WORK/up.log"
    fail "compose up failed"
  fi
  wait_healthy postgres 120
  wait_healthy wallet 120
  published_api
  request GET /health/ready
  [ "$STATUS" = 200 ] || fail "GET /health/ready through the published port: HTTP $STATUS: $BODY"
}

log "Docker daemon $(docker version -f '{{.Server.Version}}'), $COMPOSE_VERSION"
export WALLET_HTTP_PORT WALLET_ADMIN_PORT
WALLET_HTTP_PORT=$(free_port)
WALLET_ADMIN_PORT=$(free_port)
log "project $PROJECT, host ports $WALLET_HTTP_PORT (API) and $WALLET_ADMIN_PORT (admin)"

step "image build" build

log "starting the stack"
step "first start until healthy" start
wallet_id=$(container wallet)
image=$(docker inspect -f '{{.Image}}' "$wallet_id")
log "image $(docker image inspect -f '{{index .RepoTags 0}}' "$image"): $(( $(docker image inspect -f '{{.Size}}' "$image") / 1000000 )) MB"
log "API at $API; wallet restarts so far: $(docker inspect -f '{{.RestartCount}}' "$wallet_id")"

WALLET=$(cat /proc/sys/kernel/random/uuid)
log "wallet $WALLET"
deposit 1000 1000
deposit 234 1234
expect_balance 1234 "after the deposits"

restart_service() {
  local id before after
  id=$(container wallet)
  before=$(docker inspect -f '{{.State.StartedAt}}' "$id")
  compose 120 restart wallet >"$WORK/restart.log" 2>&1 || { cat "$WORK/restart.log"; fail "compose restart wallet failed"; }
  after=$(docker inspect -f '{{.State.StartedAt}}' "$id")
  [ "$before" != "$after" ] || fail "the wallet container was not restarted"
  wait_healthy wallet 120
}
log "restarting the wallet service"
step "service restart until healthy" restart_service
expect_balance 1234 "after the service restart"

recreate() {
  local id code
  id=$(container wallet)
  compose 120 stop >"$WORK/stop.log" 2>&1 || { cat "$WORK/stop.log"; fail "compose stop failed"; }
  code=$(docker inspect -f '{{.State.ExitCode}}' "$id")
  [ "$code" = 0 ] || fail "the service exited $code on SIGTERM, expected 0"
  log "service stopped on SIGTERM with exit status 0"
  compose 120 down >"$WORK/down1.log" 2>&1 || { cat "$WORK/down1.log"; fail "compose down (volume kept) failed"; }
  log "containers removed, database volume kept; starting again"
  start
}
log "stopping the stack and recreating its containers"
step "stop, down, up until healthy" recreate
expect_balance 1234 "after the containers were recreated"
deposit 1 1235
expect_balance 1235 "after a deposit on the recreated stack"
