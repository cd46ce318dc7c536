"""Benchmark: production-size JSON channel events ingested end to end (issue 18).

A tiny Event Socket server of this bench plays FreeSWITCH: it answers the commands of the
real `web` and `events` processes and sends, to subscribed connections only, the real
switch's JSON channel events (every channel variable, ~3.5-10 KB each) re-stamped with new
uuids: an inbound call from the carrier (24_queue_offer_bridge.capture: CREATE, ANSWER,
PARK, HANGUP_COMPLETE; PARK only reaches a connection that subscribed to it), which the
events process must adopt, and an API-started call (`POST /api/calls/start`, then the
events of 03_call_events_json: CREATE, ANSWER, BACKGROUND_JOB, HANGUP, HANGUP_COMPLETE).

End to end = from the first event written to the socket until every call's final state is
committed AND its last message on the `calls` channel was received by a Redis subscriber
here (the outbox publishes only after the commit). Reference in the same run: a bare
greenswitch.InboundESL reader (a subprocess, subscribed to the same events) counting the
same stream. Asserts nothing about speed.

    .venv/bin/python bench/bench_ingest.py [--calls 2000] [--database-url URL|--postgres]
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.conftest import RedisServer, Stack, stack_env, wait_until  # noqa: E402
from tests.esl_sim import templates as T  # noqa: E402
from tests.esl_sim import transcripts as tr  # noqa: E402

EVENTS_PID = [0]
CID_MARK = "00000000-cc00-4000-8000-00000000c1d0"
JOB_MARK = "00000000-j0b0-4000-8000-0000000j0b00"
_STAMP = re.compile(r"^\d{10}(\d{6})?$")


# ----------------------------------------------------------------------------- events
def _restamped(headers, base_us, now_us):
    """The captured times moved to now (microsecond and second stamps of the capture)."""
    out = []
    for key, value in headers:
        if isinstance(value, str) and _STAMP.match(value):
            n = int(value)
            if len(value) == 16 and abs(n - base_us) < 86_400_000_000:
                value = str(n - base_us + now_us)
            elif len(value) == 10 and abs(n - base_us // 1_000_000) < 86_400:
                value = str(n - base_us // 1_000_000 + now_us // 1_000_000)
        out.append((key, value))
    return out


def inbound_templates(now_us):
    """[(name, json bytes)] of the real switch's inbound call (the caller that hangs up
    while parked), its channel uuid as placeholder."""
    events = [e for _, e in tr.capture_events("24_queue_offer_bridge")
              if e.get("Caller-Context") == "public" and e.get("Call-Direction") == "inbound"]
    uuid_ = events[-1].get("Unique-ID")
    events = [e for e in events if e.get("Unique-ID") == uuid_]
    base = int(events[0].get("Event-Date-Timestamp"))
    return uuid_, [(e.name, T.serialize_json(_restamped(e.headers, base, now_us)))
                   for e in events]


def outbound_templates(now_us):
    """[(name, json bytes)] of the real switch's answered outbound call, with the service's
    originate variables where the captured ones were; placeholders: uuid, call id, job."""
    events = tr.transcript_events("03_call_events_json")
    uuid_ = events[0].get("Unique-ID")
    base = int(events[0].get("Event-Date-Timestamp"))
    ours = [("variable_origination_uuid", uuid_), ("variable_cc_call_id", CID_MARK),
            ("variable_originate_timeout", "45"), ("variable_hangup_after_bridge", "true")]
    out = []
    for e in events:
        if e.name == "BACKGROUND_JOB":
            headers = [(k, JOB_MARK if k == "Job-UUID" else v) for k, v in e.headers]
        elif e.get("Unique-ID") == uuid_ and e.name.startswith("CHANNEL_"):
            headers = []
            for key, value in e.headers:
                headers += ours if key == "variable_call_id_test" else [(key, value)]
        else:
            continue
        out.append((e.name, T.serialize_json(_restamped(headers, base, now_us))))
    return uuid_, out


def stamp(templates, mark, fs_uuid, call_id=None, job=None):
    """One call's framed events [(name, bytes)]: the placeholders replaced."""
    out = []
    for name, payload in templates:
        body = payload.replace(mark, fs_uuid.encode())
        if call_id:
            body = body.replace(CID_MARK.encode(), call_id.encode())
        if job:
            body = body.replace(JOB_MARK.encode(), job.encode())
        out.append((name, T.frame_event("json", body)))
    return out


def interleaved(calls, window):
    """The calls' events as a busy switch sends them: each call's last event (its hangup)
    comes `window` calls later, while others are set up."""
    order, pending = [], []
    for events in calls:
        order += events[:-1]
        pending.append(events[-1])
        if len(pending) > window:
            order.append(pending.pop(0))
    return order + pending


# ----------------------------------------------------------------------------- the switch
class Conn:
    def __init__(self, sock):
        self.sock, self.names = sock, None


class BenchSwitch:
    """Just enough FreeSWITCH for the web and events processes; events only when told."""

    def __init__(self, password="ClueCon"):
        self.password = password
        self.conns, self.originates = [], []
        self.server = StreamServer(("127.0.0.1", 0), self._serve)

    def start(self):
        self.server.start()
        self.port = self.server.server_port
        return self

    def stop(self):
        self.server.stop(timeout=1)

    def subscribed(self):
        return [c for c in self.conns if c.names]

    def _serve(self, sock, _address):
        conn = Conn(sock)
        self.conns.append(conn)
        sock.sendall(T.AUTH_REQUEST)
        buf = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n\n" in buf:
                    command, buf = buf.split(b"\n\n", 1)
                    if not self._command(conn, command.decode()):
                        return
        except OSError:
            return
        finally:
            self.conns.remove(conn)
            sock.close()

    def _command(self, conn, text):
        first, *headers = text.strip().split("\n")
        word, _, rest = first.partition(" ")
        if word == "auth":
            conn.sock.sendall(T.frame_reply("+OK accepted" if rest == self.password
                                            else "-ERR invalid"))
        elif word == "event":
            conn.names = set(rest.split()[1:])
            conn.sock.sendall(T.frame_reply("+OK event listener enabled json"))
        elif word == "api":
            conn.sock.sendall(T.frame_with_body("api/response", self._api(rest)))
        elif word == "bgapi":
            job = dict(h.split(": ", 1) for h in headers if ": " in h).get("Job-UUID") \
                or str(uuid.uuid4())
            if rest.startswith("originate "):
                found = dict(re.findall(r"(origination_uuid|cc_call_id)=([^,}]+)", rest))
                self.originates.append((found.get("origination_uuid"), found.get("cc_call_id"),
                                        job))
            conn.sock.sendall(T.frame_reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))
        elif word == "exit":
            conn.sock.sendall(T.frame_reply("+OK bye"))
            return False
        else:
            conn.sock.sendall(T.frame_reply("+OK"))
        return True

    @staticmethod
    def _api(command):
        if command.startswith("show channels"):
            return '{"row_count": 0}\n'
        if command.startswith("uuid_exists"):
            return "true"  # never closes a call of the bench
        if command.startswith("status"):
            return "UP 0 years, 0 days\n"
        return "+OK\n"


def send(conn, events, rate=None, chunk=64 * 1024):
    """Write [(name, framed)] to conn (those it subscribed to), in chunks as fast as the
    socket takes them, or at `rate` events/s; returns (wall time of the first write, sent)."""
    wanted = [framed for name, framed in events if name in conn.names or "ALL" in conn.names]
    t0 = time.time()
    if rate:
        step = max(1, rate // 100)
        for i in range(0, len(wanted), step):
            conn.sock.sendall(b"".join(wanted[i:i + step]))
            gevent.sleep(max(0.0, t0 + (i + step) / rate - time.time()))
        return t0, len(wanted)
    buf = []
    size = 0
    for framed in wanted:
        buf.append(framed)
        size += len(framed)
        if size >= chunk:
            conn.sock.sendall(b"".join(buf))
            buf, size = [], 0
    if buf:
        conn.sock.sendall(b"".join(buf))
    return t0, len(wanted)


# ----------------------------------------------------------------------------- bare reader
def bare_reader(port, expected, names):
    """Subprocess: greenswitch's own InboundESL subscribed to names, counting events; prints
    the wall time of the last one."""
    import gevent.event
    import greenswitch

    class JSONInboundESL(greenswitch.InboundESL):
        # greenswitch 0.0.19 parses every body as plain headers and fails on JSON:
        # its own reader and framing, the JSON body decoded (the least a reader must do).
        def handle_event(self, event):
            if event.headers.get("Content-Type") == "text/event-json":
                body = self._read_socket(self.sock_file, int(event.headers["Content-Length"]))
                event.headers.update(json.loads(body))
                self._esl_event_queue.put(event)
                return
            super().handle_event(event)
    esl = JSONInboundESL("127.0.0.1", port, "ClueCon")
    esl.connect()
    count, done = [0], gevent.event.Event()
    last = [0.0]

    def on_event(event):
        count[0] += 1
        if count[0] >= expected:
            last[0] = time.time()
            done.set()
    esl.register_handle("*", on_event)
    esl.send("event json " + " ".join(names))
    cpu = os.times()
    print(json.dumps({"cpu": cpu.user + cpu.system}), flush=True)
    done.wait(300)
    cpu = os.times()
    print(json.dumps({"events": count[0], "last": last[0], "cpu": cpu.user + cpu.system}),
          flush=True)


def run_bare_reader(switch, events, names):
    """The reference: the bare reader fed the same stream; events/s."""
    expected = sum(1 for name, _ in events if name in names)
    before = set(map(id, switch.subscribed()))
    proc = subprocess.Popen([sys.executable, __file__, "--bare-reader", str(switch.port),
                             str(expected), *names], stdout=subprocess.PIPE, text=True)
    try:
        cpu0 = json.loads(proc.stdout.readline())["cpu"]
        conn = wait_until(lambda: next((c for c in switch.subscribed()
                                        if id(c) not in before), None), 10, 0.01, "bare reader")
        t0, sent = send(conn, events)
        result = json.loads(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
    return {"events": sent, "received": result["events"],
            "events_per_s": round(sent / (result["last"] - t0)) if result["last"] else 0,
            "cpu_us_per_event": round((result["cpu"] - cpu0) * 1e6 / sent)}


# ----------------------------------------------------------------------------- measuring
class Feed:
    """A subscriber on the `calls` channel: which messages each watched channel got, when."""

    def __init__(self, redis_url):
        import redis

        from services.redis_client import pubsub_channel
        self.pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(pubsub_channel("calls"))
        self.types, self.watched, self.ended, self.last = {}, set(), 0, 0.0
        self.greenlet = gevent.spawn(self._listen)

    def watch(self, uuids):
        self.watched, self.ended, self.last = set(uuids), 0, 0.0
        self.types = {u: [] for u in uuids}

    def _listen(self):
        for msg in self.pubsub.listen():
            if msg["type"] != "message":
                continue
            env = json.loads(msg["data"])
            fs_uuid = env["data"].get("fs_uuid")
            if fs_uuid in self.watched:
                self.types[fs_uuid].append(env["type"])
                self.last = time.time()
                if env["type"] == "call.ended":
                    self.ended += 1

    def stop(self):
        self.greenlet.kill()


def final_in_db(db_url, uuids):
    """How many of the channels' calls are stored with a final status, and with how many
    trail rows."""
    from models import Call, CallEvent, db, init_db
    from services.calls import state as cs
    init_db(db_url)
    done = trail = 0
    uuids = list(uuids)
    with db.connection_context():
        for i in range(0, len(uuids), 500):
            chunk = uuids[i:i + 500]
            done += Call.select().where(Call.fs_uuid.in_(chunk),
                                        Call.status.in_(cs.TERMINAL)).count()
            trail += CallEvent.select().join(Call).where(Call.fs_uuid.in_(chunk)).count()
    return done, trail


class Profiler:
    """py-spy (pip install py-spy) sampling the events process while it ingests (--py-spy)."""

    def __init__(self, stack, prefix):
        self.pid, self.prefix, self.proc = stack.procs["events"][0].pid, prefix, None

    def start(self, label):
        if self.prefix:
            py_spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
            self.proc = subprocess.Popen(
                [py_spy, "record", "--pid", str(self.pid), "--rate", "250", "--format", "raw",
                 "--idle", "--output", f"{self.prefix}.{label}.txt"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            gevent.sleep(1.0)

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(2)
            self.proc.wait(30)
            self.proc = None


def cpu_seconds(pid):
    """User + system CPU seconds a process has used (load-independent cost)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(switch, feed, events, uuids, expected, db_url, profiler=None, label=""):
    """Feed events to the events process; end to end figures and what was lost."""
    conn = switch.subscribed()[0]
    feed.watch(uuids)
    if profiler is not None:
        profiler.start(label)
    cpu0 = cpu_seconds(EVENTS_PID[0])
    t0, sent = send(conn, events)
    t_written = time.time()
    progress = [feed.ended, time.monotonic()]

    def finished():
        if feed.ended != progress[0]:
            progress[:] = [feed.ended, time.monotonic()]
        return feed.ended >= len(uuids) or time.monotonic() - progress[1] > 30
    wait_until(finished, 900, 0.02, "the calls to end")
    cpu = cpu_seconds(EVENTS_PID[0]) - cpu0
    if profiler is not None:
        profiler.stop()
    elapsed = feed.last - t0
    done, trail = final_in_db(db_url, uuids)
    missing = sum(max(0, len(expected) - len(t)) for t in feed.types.values())
    return {"calls": len(uuids), "events": sent, "write_s": round(t_written - t0, 2),
            "end_to_end_s": round(elapsed, 2), "events_per_s": round(sent / elapsed),
            "events_cpu_us_per_event": round(cpu * 1e6 / sent), "final_in_db": done,
            "trail_rows": trail, "lost_calls": len(uuids) - done,
            "messages_missing": missing}


def inbound_stream(n, window, now_us=None):
    mark, templates = inbound_templates(now_us or time.time_ns() // 1000)
    uuids = [str(uuid.uuid4()) for _ in range(n)]
    calls = [stamp(templates, mark.encode(), u) for u in uuids]
    return uuids, interleaved(calls, window)


def api_starts(stack, n, clients=4):
    """POST /api/calls/start n times from `clients` sequential clients; latencies (ms)."""
    body = json.dumps({"to": "15550001000", "gateway": "gw1"})
    headers = {"Content-Type": "application/json", **stack.http.headers}
    latencies, failures = [], []

    def client(count):
        session = requests.Session()
        for _ in range(count):
            t0 = time.perf_counter()
            resp = session.post(stack.url("/api/calls/start"), data=body, headers=headers)
            latencies.append((time.perf_counter() - t0) * 1000)
            if resp.status_code != 201:
                failures.append(resp.status_code)
    gevent.joinall([gevent.spawn(client, n // clients + (i < n % clients))
                    for i in range(clients)])
    return latencies, failures


def health_latencies(stack, n):
    """The reference of the start latency: GET /api/health n times from one sequential
    client, the same way (its p99 is what this machine and client add to any request)."""
    session, latencies = requests.Session(), []
    for _ in range(n):
        t0 = time.perf_counter()
        session.get(stack.url("/api/health"), headers=stack.http.headers)
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies


def percentiles(latencies):
    latencies = sorted(latencies)
    return {"requests": len(latencies), "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 1),
            "max_ms": round(latencies[-1], 1)}


def start_latency(stack, switch, n, load_rate=0):
    """Sequential POST /api/calls/start; with load_rate, while inbound calls' events go to
    the events process at that many events/s."""
    api_starts(stack, 20, clients=1)  # warm-up
    loader = None
    if load_rate:
        _, events = inbound_stream(max(1, load_rate * 120 // 3), 50)
        loader = gevent.spawn(send, switch.subscribed()[0], events, load_rate)
        gevent.sleep(1.0)
    latencies, failures = api_starts(stack, n, clients=1)
    reference = health_latencies(stack, n)
    if loader is not None:
        loader.kill()
    return dict(percentiles(latencies), failures=len(failures), load_events_per_s=load_rate,
                reference_health=percentiles(reference))


def api_flow(stack, switch, feed, n, window, db_url, profiler=None):
    """n calls started through the API, then their events; ingest figures."""
    switch.originates.clear()
    latencies, failures = api_starts(stack, n)
    wait_until(lambda: len(switch.originates) >= n - len(failures), 30, 0.05, "originates")
    mark, templates = outbound_templates(time.time_ns() // 1000)
    calls = [stamp(templates, mark.encode(), u, cid, job) for u, cid, job in switch.originates]
    uuids = [u for u, _, _ in switch.originates]
    result = measure(switch, feed, interleaved(calls, window), uuids,
                     ["call.answered", "call.ended"], db_url, profiler, "api")
    return result, (mark, templates)


def bare_reference(switch, stream, names, n, window):
    """The bare reader's figures for n calls of stream (mark, templates), new uuids."""
    mark, templates = stream
    uuids = [str(uuid.uuid4()) for _ in range(n)]
    calls = [stamp(templates, mark.encode(), u, str(uuid.uuid4()), str(uuid.uuid4()))
             for u in uuids]
    return run_bare_reader(switch, interleaved(calls, window), sorted(names))


# ----------------------------------------------------------------------------- main
def postgres_database(base_url):
    """A database of its own on the PostgreSQL server of base_url: (url, drop())."""
    import psycopg2
    name = f"bench_ingest_{os.getpid()}"
    admin = psycopg2.connect(base_url)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")

    def drop():
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
    return base_url.rsplit("/", 1)[0] + "/" + name, drop


def run(args, db_url, work):
    redis_server = RedisServer(work).start()
    switch = BenchSwitch().start()
    env = stack_env(db_url, redis_server.url, switch.port, work, RECONCILE_INTERVAL="3600",
                    **({"LOG_LEVEL": args.log_level} if args.log_level else {}))
    stack = Stack(env, work)
    stack.authenticate()
    feed = None
    try:
        stack.start_events()
        stack.start_web()
        wait_until(lambda: stack.get("/api/health").json().get("events", {}).get("status")
                   == "ok" and switch.subscribed(), 30, 0.2, "the events process to connect")
        feed = Feed(redis_server.url)
        profiler = Profiler(stack, args.py_spy)
        EVENTS_PID[0] = stack.procs["events"][0].pid
        gevent.sleep(0.3)
        names = switch.subscribed()[0].names
        print(f"machine: {platform.node()} {os.cpu_count()} cores, Python "
              f"{platform.python_version()}, database {db_url.split(':')[0]}, load "
              f"{os.getloadavg()[0]:.2f}; events process subscribed to {len(names)} names")
        uuids, events = inbound_stream(args.calls, args.window)
        size = sum(len(f) for n, f in events if n in names) / sum(1 for n, _ in events
                                                                    if n in names)
        inbound = measure(switch, feed, events, uuids,
                          ["call.initiated", "call.answered", "call.ended"], db_url,
                          profiler, "inbound")
        bare = bare_reference(switch, inbound_templates(time.time_ns() // 1000), names,
                              args.calls, args.window)
        print(f"inbound (adopted), {size / 1024:.1f} KB/event:", json.dumps(inbound))
        print("  bare greenswitch reader, same stream:", json.dumps(bare),
              f"ratio {inbound['events_per_s'] / bare['events_per_s']:.2f}")
        api, stream = api_flow(stack, switch, feed, args.api_calls, args.window, db_url,
                               profiler)
        bare = bare_reference(switch, stream, names, args.api_calls, args.window)
        print("API-started:", json.dumps(api))
        print("  bare greenswitch reader, same stream:", json.dumps(bare),
              f"ratio {api['events_per_s'] / bare['events_per_s']:.2f}")
        print("POST /api/calls/start, idle:",
              json.dumps(start_latency(stack, switch, args.requests)))
        print("POST /api/calls/start, while ingesting:",
              json.dumps(start_latency(stack, switch, args.requests, args.load_rate)))
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        if feed is not None:
            feed.stop()
        stack.stop()
        switch.stop()
        redis_server.stop()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-reader":
        bare_reader(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="inbound calls (adopted)")
    parser.add_argument("--api-calls", type=int, default=1000, help="calls started by the API")
    parser.add_argument("--window", type=int, default=100,
                        help="calls set up before the oldest one hangs up")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--load-rate", type=int, default=500, help="events/s during latency")
    parser.add_argument("--log-level", help="LOG_LEVEL of the processes (default: config's)")
    parser.add_argument("--database-url")
    parser.add_argument("--py-spy", metavar="PREFIX",
                        help="sample the events process: PREFIX.inbound.txt, PREFIX.api.txt")
    parser.add_argument("--postgres", nargs="?", const="postgresql://postgres:postgres@"
                        "127.0.0.1:5432/postgres", help="a throw-away database on this server")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-ingest-")
    drop = None
    if args.postgres:
        db_url, drop = postgres_database(args.postgres)
    else:
        db_url = args.database_url or f"sqlite:///{work}/bench.db"
    try:
        run(args, db_url, work)
    finally:
        if drop is not None:
            drop()


if __name__ == "__main__":
    main()
