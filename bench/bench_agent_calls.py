"""Benchmark: agent-first click-to-call against the real FreeSWITCH of ../shared/freeswitch.

Starts a throw-away FreeSWITCH (`fs start`, fresh run directory), its own
redis-server and the real `web` and `events` processes (as the Procfile runs
them), with SQLite (or --database-url). An agent on `user/1001` (a pre-registered
phone that auto-answers) is created and logged in; then N calls are started one
after the other through `POST /api/calls/start` (the agent takes one call at a
time; each is ended and the agent made `ready`, skipping wrap-up). Measured:

  (a) POST /api/calls/start sent (client clock) -> the agent leg's CHANNEL_CREATE
  (b) the agent leg's CHANNEL_ANSWER -> the customer leg's CHANNEL_CREATE

taken from FreeSWITCH's own Event-Date-Timestamp (microseconds) on a separate ESL
connection; the same two intervals of a bare `bgapi originate user/1001
&bridge(sofia/gateway/farend/answer-x)` sent over that ESL connection (no
service) are the reference, measured first in the same run. Prints figures;
asserts nothing about speed.

FreeSWITCH stamps events from its timer's clock, which on this kind of machine
ticks every 20 ms (the stamp is the tick's start, so it may be up to 20 ms
behind the client's clock): each figure is therefore also given from the
bench's own clock at the moment it read the event off the socket.

    .venv/bin/python bench/bench_agent_calls.py [--calls 200] [--database-url URL]
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.conftest import RedisServer, Stack, stack_env, wait_until  # noqa: E402

FS_LAUNCHER = os.path.join(os.environ.get("FREESWITCH_DIST")
                           or os.path.join(os.path.dirname(ROOT), "shared", "freeswitch"), "fs")
EVENTS = "CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_HANGUP_COMPLETE"


class EslWatch:
    """A raw ESL connection: FreeSWITCH's channel events by uuid, and fire-and-forget bgapi."""

    def __init__(self, host, port, password):
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.reader = self.sock.makefile("rb")
        # uuid -> {event name: (Event-Date-Timestamp in s, when we read it, cc_leg)}
        self.seen = {}
        self._read_message()  # auth/request
        self.sock.sendall(f"auth {password}\n\n".encode())
        reply = self._read_message()[0]
        if not reply.get("Reply-Text", "").startswith("+OK"):
            raise RuntimeError(f"ESL auth failed: {reply}")
        self.sock.sendall(f"event plain {EVENTS}\n\n".encode())
        self._read_message()
        self.sock.settimeout(None)
        self.loop = gevent.spawn(self._run)

    def _read_message(self):
        headers = {}
        while True:
            line = self.reader.readline()
            if not line:
                raise ConnectionError("ESL connection closed")
            line = line.decode().rstrip("\n")
            if not line:
                if headers:
                    break
                continue
            key, _, value = line.partition(": ")
            headers[key] = value
        body = b""
        if "Content-Length" in headers:
            body = self.reader.read(int(headers["Content-Length"]))
        return headers, body

    def _run(self):
        while True:
            headers, body = self._read_message()
            if headers.get("Content-Type") != "text/event-plain":
                continue
            event = {}
            for line in body.decode().splitlines():
                key, _, value = line.partition(": ")
                event[key] = urllib.parse.unquote(value)
            fs_uuid = event.get("Unique-ID")
            if fs_uuid:
                self.seen.setdefault(fs_uuid, {})[event.get("Event-Name")] = (
                    int(event["Event-Date-Timestamp"]) / 1e6, time.time(),
                    event.get("variable_cc_leg"))

    def at(self, fs_uuid, name):
        """(FreeSWITCH's stamp, our read time) of fs_uuid's event name, or None."""
        got = self.seen.get(fs_uuid, {}).get(name)
        return got[:2] if got else None

    def wait(self, fs_uuid, name, timeout=20):
        wait_until(lambda: self.at(fs_uuid, name) is not None, timeout, 0.002,
                   f"{name} of {fs_uuid}")
        return self.at(fs_uuid, name)

    def bgapi(self, command):
        self.sock.sendall(f"bgapi {command}\n\n".encode())

    def close(self):
        self.loop.kill()
        self.sock.close()


def legs(watch, t_sent, agent_uuid, customer_uuid):
    """In ms: (a) sent -> agent CHANNEL_CREATE, (b) agent CHANNEL_ANSWER -> customer
    CHANNEL_CREATE, by FreeSWITCH's stamps; then the same two by our read times."""
    created = watch.wait(agent_uuid, "CHANNEL_CREATE")
    answered = watch.wait(agent_uuid, "CHANNEL_ANSWER")
    dialled = watch.wait(customer_uuid, "CHANNEL_CREATE")
    watch.wait(customer_uuid, "CHANNEL_ANSWER")
    return ((created[0] - t_sent) * 1000, (dialled[0] - answered[0]) * 1000,
            (created[1] - t_sent) * 1000, (dialled[1] - answered[1]) * 1000)


def wait_gone(watch, *uuids):
    for fs_uuid in uuids:
        watch.wait(fs_uuid, "CHANNEL_HANGUP_COMPLETE")


def bench_reference(watch, n):
    """The bare originate+bridge over ESL, no service: the switch's own floor."""
    rows = []
    for _ in range(n):
        call_id, agent, customer = (str(uuid.uuid4()) for _ in range(3))
        command = (f"originate {{origination_uuid={agent},cc_call_id={call_id},cc_leg=agent,"
                   f"originate_timeout=10}}user/1001 &bridge({{origination_uuid={customer},"
                   f"cc_call_id={call_id},cc_leg=customer,originate_timeout=10}}"
                   f"sofia/gateway/farend/answer-{call_id[:8]})")
        t_sent = time.time()
        watch.bgapi(command)
        rows.append(legs(watch, t_sent, agent, customer))
        watch.wait(agent, "CHANNEL_BRIDGE")
        watch.bgapi(f"uuid_kill {agent}")
        wait_gone(watch, agent, customer)
    return rows


def bench_service(stack, watch, agent_id, n):
    """N agent-first calls through the service, one after the other."""
    rows = []
    for _ in range(n):
        body = {"to": f"answer-{uuid.uuid4().hex[:8]}", "agent_id": agent_id}
        t_sent = time.time()
        resp = stack.post("/api/calls/start", body)
        if resp.status_code != 201:
            raise RuntimeError(f"start: {resp.status_code} {resp.text}")
        call = resp.json()
        agent, customer = call["agent_leg_uuid"], call["fs_uuid"]
        rows.append(legs(watch, t_sent, agent, customer))
        # The service has seen the bridge before the call is ended (a real agent talks).
        wait_until(lambda: stack.get(f"/api/agents/{agent_id}").json()["state"] == "on-call",
                   15, 0.02, "agent on-call")
        resp = stack.post(f"/api/calls/{call['id']}/end", {})
        if resp.status_code != 200:
            raise RuntimeError(f"end: {resp.status_code} {resp.text}")
        wait_gone(watch, agent, customer)
        wait_until(lambda: stack.get(f"/api/agents/{agent_id}").json()["state"] == "wrap-up",
                   15, 0.02, "agent in wrap-up")
        resp = stack.post(f"/api/agents/{agent_id}/ready")
        if resp.status_code != 200 or resp.json()["state"] != "available":
            raise RuntimeError(f"ready: {resp.status_code} {resp.text}")
    return rows


def percentiles(values):
    values = sorted(values)
    if not values:
        return {"n": 0}

    def pick(q):
        return round(values[min(len(values) - 1, max(0, int(round(q * len(values))) - 1))], 1)
    return {"n": len(values), "p50_ms": pick(0.50), "p90_ms": pick(0.90),
            "p99_ms": pick(0.99), "max_ms": round(values[-1], 1)}


def report(name, rows):
    print(f"{name}:")
    labels = ("(a) sent -> agent CHANNEL_CREATE, FS stamp  ",
              "(b) agent ANSWER -> customer CREATE, FS stamp",
              "(a) sent -> agent CHANNEL_CREATE, read time  ",
              "(b) agent ANSWER -> customer CREATE, read time")
    for i, label in enumerate(labels):
        print(f"  {label}: {json.dumps(percentiles([r[i] for r in rows]))}", flush=True)


def start_switch(rundir):
    done = subprocess.run([FS_LAUNCHER, "start", "--dir", rundir, "--log-level", "info"],
                          env=dict(os.environ, FS_QUIET="1"), capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"fs start failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_agent(stack):
    agent_id = "bench-" + uuid.uuid4().hex[:8]
    # A long wrap-up: the bench ends it with `ready`, as an agent would.
    resp = stack.post("/api/agents", {"id": agent_id, "name": agent_id, "endpoint": "user/1001",
                                      "wrapup_seconds": 600})
    if resp.status_code != 201:
        raise RuntimeError(f"create agent: {resp.status_code} {resp.text}")
    resp = stack.post(f"/api/agents/{agent_id}/login")
    if resp.status_code != 200 or resp.json()["state"] != "available":
        raise RuntimeError(f"login: {resp.status_code} {resp.text}")
    return agent_id


def run(args, work, cleanup):
    switch = start_switch(os.path.join(work, "fs"))
    cleanup.append(lambda: subprocess.run([FS_LAUNCHER, "stop", switch["rundir"], "--timeout",
                                           "0"], capture_output=True, timeout=60))
    watch = EslWatch(switch["esl_host"], switch["esl_port"], switch["esl_password"])
    cleanup.append(watch.close)
    db_url = args.database_url or f"sqlite:///{work}/bench.db"
    print(f"machine: {platform.node()} {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, database {db_url.split(':')[0]}, "
          f"{switch['version']}, {args.calls} calls each", flush=True)
    report("reference: bare bgapi originate user/1001 &bridge(farend) over ESL",
           bench_reference(watch, args.calls))
    redis_server = RedisServer(work).start()
    cleanup.append(redis_server.stop)
    env = stack_env(db_url, redis_server.url, switch["esl_port"], work, LOG_LEVEL="WARNING",
                    RATELIMIT_ENABLED="false", DEFAULT_GATEWAY="farend",
                    FREESWITCH_ORIGINATE_TIMEOUT="10", **switch["env"])
    stack = Stack(env, work)
    cleanup.append(stack.stop)
    stack.authenticate()
    stack.start_events()
    stack.start_web()
    wait_until(lambda: stack.get("/api/health").json().get("events", {}).get("status")
               == "ok", 30, 0.2, "the events process to connect")
    agent_id = make_agent(stack)
    report("service: POST /api/calls/start with agent_id (agent first)",
           bench_service(stack, watch, agent_id, args.calls))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    if not os.path.exists(FS_LAUNCHER):
        sys.exit(f"the real FreeSWITCH is not here ({FS_LAUNCHER} missing)")
    work = tempfile.mkdtemp(prefix="bench-agent-calls-")
    cleanup = []
    try:
        run(args, work, cleanup)
    finally:
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:  # keep stopping the rest
                print(f"cleanup: {exc!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
