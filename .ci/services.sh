#!/usr/bin/env bash
# Make sure PostgreSQL and Redis run on loopback, installing them from Debian's packages
# when the machine lacks them. Prints the URLs for the test suite.
set -euo pipefail

log() { echo "ci/services: $*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v redis-server >/dev/null 2>&1; then
  log "installing postgresql and redis-server"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql redis-server >&2
fi

if ! pg_isready -h 127.0.0.1 -q; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || \
    $SUDO pg_ctlcluster "$version" main start >&2
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
fi
# A known password, whatever the authentication method of this machine's cluster.
$SUDO su postgres -c "psql -q -c \"ALTER USER postgres WITH PASSWORD 'frontdesk'\"" >&2 || true

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /tmp/frontdesk-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/frontdesk-redis >&2
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
fi

echo "FRONTDESK_TEST_POSTGRES=postgresql+asyncpg://postgres:frontdesk@127.0.0.1:5432/postgres"
echo "FRONTDESK_TEST_REDIS=redis://127.0.0.1:6379/15"
