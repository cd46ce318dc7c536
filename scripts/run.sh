#!/usr/bin/env bash
# Run the Procfile's web, events and worker (what `make run` does after `make migrate`),
# with a local Redis when none answers at $REDIS_URL and, with FREESWITCH_DEMO=real, the
# real FreeSWITCH of ../shared/freeswitch. On exit (Ctrl-C, SIGTERM, a process dying)
# it stops only what it started: a Redis or FreeSWITCH that was already there stays.
#
# FREESWITCH_DEMO=real   start the switch with `fs start`, export its FREESWITCH_* settings
#                        (its `env`) and DEFAULT_GATEWAY=farend, stop it on exit
# FREESWITCH_DIST        the switch's folder (default ../shared/freeswitch)
# FREESWITCH_RUNDIR      its run directory (default a new one under ${TMPDIR:-/tmp})
set -uo pipefail
cd "$(dirname "$0")/.."

mkdir -p .run recordings
redis_started="$(mktemp "${TMPDIR:-/tmp}/callcenter-redis.XXXXXX")"
fs_launcher="${FREESWITCH_DIST:-$(cd .. && pwd)/shared/freeswitch}/fs"
fs_rundir=""
honcho_pid=""
cleaned=0

stop_pid() {  # TERM a process and wait (5 s at most) until it is gone, then KILL it
  local pid="$1" _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  [ "$cleaned" = 1 ] && return
  cleaned=1
  trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short
  if [ -n "$honcho_pid" ]; then
    kill -TERM "$honcho_pid" 2>/dev/null
    wait "$honcho_pid" 2>/dev/null
  fi
  if [ -n "$fs_rundir" ] && [ -f "$fs_rundir/run/freeswitch.pid" ]; then
    echo "stopping the FreeSWITCH this run started ($fs_rundir)"
    "$fs_launcher" stop "$fs_rundir" --timeout "${FREESWITCH_STOP_TIMEOUT:-0}" >/dev/null 2>&1 || true
  fi
  local redis_pid
  redis_pid="$(cat "$redis_started" 2>/dev/null)"
  if [ -n "$redis_pid" ]; then
    echo "stopping the redis-server this run started (pid $redis_pid)"
    stop_pid "$redis_pid"
  fi
  rm -f "$redis_started"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${FREESWITCH_DEMO:-}" = real ]; then
  if [ ! -x "$fs_launcher" ]; then
    echo "error: FREESWITCH_DEMO=real needs the real FreeSWITCH launcher at $fs_launcher" \
         "(set FREESWITCH_DIST to its folder)" >&2
    exit 1
  fi
  fs_rundir="${FREESWITCH_RUNDIR:-$(mktemp -d "${TMPDIR:-/tmp}/callcenter-freeswitch.XXXXXX")}"
  # Its own gateway folder: the simulator demo's gateways (FREESWITCH_GATEWAY_DIR of the
  # Makefile) would otherwise be loaded by the real switch too.
  mkdir -p "$fs_rundir/gateways"
  echo "starting the real FreeSWITCH in $fs_rundir"
  fs_info="$("$fs_launcher" start --dir "$fs_rundir" --gateway-dir "$fs_rundir/gateways")" || { echo "error: fs start failed" >&2; exit 1; }
  # `env` of its JSON line = the service's FREESWITCH_* settings for this instance.
  fs_exports="$(.venv/bin/python -c '
import json, shlex, sys
info = json.loads(sys.stdin.read().strip().splitlines()[-1])
for name, value in info["env"].items():
    print(f"export {name}={shlex.quote(str(value))}")
' <<<"$fs_info")" || { echo "error: cannot read the JSON line of fs start" >&2; exit 1; }
  eval "$fs_exports"
  export DEFAULT_GATEWAY=farend
  echo "FreeSWITCH ready: ESL $FREESWITCH_HOST:$FREESWITCH_PORT, gateways in" \
       "$FREESWITCH_GATEWAY_DIR, DEFAULT_GATEWAY=farend (try \"to\": \"answer-1\")"
elif [ -x "$fs_launcher" ] && [ -z "${FREESWITCH_DEMO:-}" ]; then
  echo "note: a real FreeSWITCH is at $(dirname "$fs_launcher"): \`make run-real\` runs against it"
fi

scripts/ensure_redis.sh "$redis_started" || exit 1

PATH="$PWD/.venv/bin:$PATH" .venv/bin/honcho start -f Procfile web events worker &
honcho_pid=$!
wait "$honcho_pid"
status=$?
honcho_pid=""
exit "$status"
