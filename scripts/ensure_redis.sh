#!/usr/bin/env bash
# Make sure a Redis answers at $REDIS_URL; start a local redis-server if none does
# (installing Debian's redis-server first if it is missing).
# Usage: scripts/ensure_redis.sh [STARTED_FILE] -- when it starts one, its pid is written
# to STARTED_FILE, so the caller (scripts/run.sh) can stop it, and only it, on exit.
set -euo pipefail
STARTED_FILE="${1:-}"
cd "$(dirname "$0")/.."
URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
if .venv/bin/python - "$URL" <<'PY'
import sys, redis
try:
    redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
except Exception:
    sys.exit(1)
PY
then
  echo "Redis is reachable at $URL"; exit 0
fi
if ! command -v redis-server >/dev/null; then
  echo "redis-server is missing: installing Debian's redis-server"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server
fi
PORT=$(.venv/bin/python -c "import sys,urllib.parse as u; print(u.urlparse(sys.argv[1]).port or 6379)" "$URL")
mkdir -p .run
rm -f "$PWD/.run/redis-$PORT.pid"  # a stale one (nothing answers there) would name another process
echo "starting a local redis-server on 127.0.0.1:$PORT (data in .run/)"
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$PWD/.run" --daemonize yes \
  --pidfile "$PWD/.run/redis-$PORT.pid" --logfile "$PWD/.run/redis-$PORT.log"
for _ in $(seq 50); do
  if [ -s "$PWD/.run/redis-$PORT.pid" ] && redis-cli -p "$PORT" ping >/dev/null 2>&1; then
    if [ -n "$STARTED_FILE" ]; then cat "$PWD/.run/redis-$PORT.pid" >"$STARTED_FILE"; fi
    exit 0
  fi
  sleep 0.1
done
echo "error: redis-server did not start; see .run/redis-$PORT.log" >&2; exit 1
