#!/usr/bin/env bash
# The Docker part of CI (the last step of .ci/run), for a machine without Docker that cannot
# pull from Docker Hub, as root: installs Docker, docker-compose and what the base-image
# stand-ins need, starts a Docker daemon, builds local stand-ins for the base images the
# project names (../shared/docker/standins.sh, next to the repository), then runs
# scripts/compose-smoke.sh. A daemon started here is stopped, by its pid, when the script
# ends, passed or failed; a daemon that was already running is used and left running.
#
#   scripts/ci-docker.sh
#
# DOCKER_STANDINS overrides the stand-ins script's path, DOCKERD_LOG the daemon's log
# (default /tmp/ci-dockerd.log).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

STANDINS=${DOCKER_STANDINS:-../shared/docker/standins.sh}
DOCKERD_LOG=${DOCKERD_LOG:-/tmp/ci-dockerd.log}
PACKAGES=(docker.io docker-compose debootstrap rsync iptables)
DOCKERD_PID=
DAEMON_BEFORE=0
T0=$SECONDS
TIMES=()
STEP=
STEP_T0=0

log() { printf '[ci-docker %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# step NAME CMD...: runs CMD and records how long it took (a failed step: in finish).
step() {
  STEP=$1 STEP_T0=$SECONDS
  shift
  log "== $STEP"
  "$@"
  TIMES+=("$STEP: $((SECONDS - STEP_T0)) s")
  STEP=
}

alive() { # PID: running (a zombie child that was not reaped yet does not count)
  [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

stop_dockerd() {
  log "stopping dockerd (pid $DOCKERD_PID)"
  kill -TERM "$DOCKERD_PID" 2>/dev/null || return 0
  for _ in $(seq 1 60); do
    alive "$DOCKERD_PID" || break
    sleep 1
  done
  if alive "$DOCKERD_PID"; then
    log "dockerd still running after 60 s: SIGKILL"
    kill -KILL "$DOCKERD_PID" 2>/dev/null || true
  fi
  wait "$DOCKERD_PID" 2>/dev/null || true
  log "dockerd stopped"
}

finish() {
  local rc=$?
  trap - EXIT
  [ -z "$STEP" ] || TIMES+=("$STEP: $((SECONDS - STEP_T0)) s, FAILED")
  [ -z "$DOCKERD_PID" ] || stop_dockerd
  for t in "${TIMES[@]}"; do log "time: $t"; done
  if [ "$rc" = 0 ]; then
    log "docker part passed in $((SECONDS - T0)) s"
  else
    log "docker part FAILED (exit $rc) after $((SECONDS - T0)) s"
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

daemon_answers() { command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; }

install_packages() {
  local p missing=()
  for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *' installed' ]] || missing+=("$p")
  done
  if [ ${#missing[@]} = 0 ]; then
    log "already installed: ${PACKAGES[*]}"
    return 0
  fi
  log "missing: ${missing[*]}; installing ${PACKAGES[*]}"
  # Waits for the dpkg lock should another apt-get be running (up to 10 minutes).
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${PACKAGES[@]}" \
    >/tmp/ci-docker-apt.log 2>&1 \
    || { tail -n 30 /tmp/ci-docker-apt.log; die "apt-get install failed (log: /tmp/ci-docker-apt.log)"; }
}

start_dockerd() {
  local dev mtu=1500
  if daemon_answers; then
    if [ "$DAEMON_BEFORE" = 1 ]; then
      log "using the Docker daemon already running here (left running at the end)"
    else # started by the packages' installation: ours to stop
      DOCKERD_PID=$(cat /var/run/docker.pid)
      log "the package installation started dockerd (pid $DOCKERD_PID): using it, stopping it at the end"
    fi
    return 0
  fi
  # awk reads all of its input: an early exit could kill `ip` with SIGPIPE (fatal with pipefail).
  dev=$(ip route show default 2>/dev/null | awk '!dev { for (i = 1; i < NF; i++) if ($i == "dev") dev = $(i + 1) } END { print dev }')
  [ -z "$dev" ] || mtu=$(cat "/sys/class/net/$dev/mtu")
  log "starting dockerd (MTU $mtu, from ${dev:-no default route}; log $DOCKERD_LOG)"
  dockerd --storage-driver=overlay2 --iptables=true --mtu="$mtu" >"$DOCKERD_LOG" 2>&1 </dev/null &
  DOCKERD_PID=$!
  for _ in $(seq 1 60); do
    daemon_answers && break
    alive "$DOCKERD_PID" || { tail -n 30 "$DOCKERD_LOG"; DOCKERD_PID=; die "dockerd exited at start"; }
    sleep 1
  done
  daemon_answers || { tail -n 30 "$DOCKERD_LOG"; die "dockerd did not answer within 60 s"; }
  log "dockerd running, pid $DOCKERD_PID, version $(docker version -f '{{.Server.Version}}')"
}

standins() {
  [ -x "$STANDINS" ] || die "$STANDINS not found: the base-image stand-ins script (DOCKER_STANDINS)"
  "$STANDINS"
}

[ "$(id -u)" = 0 ] || die "run as root (installs packages, starts dockerd)"
! daemon_answers || DAEMON_BEFORE=1
step "install packages" install_packages
step "start dockerd" start_dockerd
step "base-image stand-ins" standins
step "compose smoke test" scripts/compose-smoke.sh
