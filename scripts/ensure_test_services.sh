#!/usr/bin/env bash
# What `make test` needs from the machine: redis-server (the suite starts its own on a
# free port) and, when PostgreSQL is installed or WITH_POSTGRES=1, a running server.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v redis-server >/dev/null || need+=(redis-server)
if [ "${WITH_POSTGRES:-0}" = 1 ] && ! command -v pg_ctlcluster >/dev/null; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need[@]}"
fi
if command -v pg_lsclusters >/dev/null && [ "$(id -u)" = 0 ]; then
  # Start the default cluster if it is down and give the postgres role the test password.
  pg_lsclusters --no-header 2>/dev/null | while read -r ver name port status _; do
    [ "$status" = online ] || pg_ctlcluster "$ver" "$name" start || true
  done
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
fi
