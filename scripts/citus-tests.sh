#!/usr/bin/env bash
# The API tests again, on a Citus cluster: a coordinator and two workers started for this run
# (Citus installed first from ../shared/citus when it is not), every test database made a
# Citus database with those workers, and the service distributing its tables itself.
#   scripts/citus-tests.sh [TEST FILTER ...]     (default: the whole API suite; CI runs that)
# Runs as root (the cluster runs as the postgres user). The cluster is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

CITUS=${CITUS_DIR:-../shared/citus}
[ -x "$CITUS/cluster.sh" ] || { echo "no Citus scripts at $CITUS (set CITUS_DIR)" >&2; exit 1; }

# The cluster's directory and its parents must be reachable by the postgres user.
DIR=$(mktemp -d /tmp/wallet-citus.XXXXXX)
chmod 755 "$DIR"
cleanup() { bash "$CITUS/cluster.sh" stop "$DIR/cluster" || true; rm -rf "$DIR"; }
trap cleanup EXIT
COORDINATOR=$(bash "$CITUS/cluster.sh" start "$DIR/cluster" 2)
echo "Citus coordinator: $COORDINATOR"

# The tests find the workers through the coordinator; Citus is detected, not configured.
TEST_DATABASE_SERVER=${COORDINATOR%/postgres} cargo test -p wallet-server --test api -- "$@"
