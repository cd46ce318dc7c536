"""Benchmark: queue offer latency on the REAL FreeSWITCH (../shared/freeswitch), per rate.

Starts one real FreeSWITCH (`fs start --phones 1000,1001,...`: auto-answering phones,
log level warning), then for each rate of --rates: a fresh database (SQLite file, or a
fresh database on the --database-url PostgreSQL server, dropped afterwards), a
redis-server and the real `events` process; one queue (longest-idle-agent, wrap-up 0)
whose agents are the phones 1001... (user/N), an inbound route (prefix 800555) to it.
Callers come from the carrier side (`originate sofia/gateway/carrier/800555NNNNNN &echo()`)
at RATE per second for --seconds; the far end hangs up --talk seconds after the caller
is bridged, or --patience seconds after it called when it was never bridged (abandoned).

Measured per caller, on FreeSWITCH's own clock (Event-Date-Timestamp of the bench's own
ESL subscription; that clock advances in 20 ms ticks here) and, as a cross-check, on the
bench's clock when each event arrived: its inbound channel parked (CHANNEL_PARK) -> the
first agent leg of its call created (CHANNEL_CREATE of the offer leg, matched by its
cc_call_id: the phone rings), and parked -> bridged; from the database, parked -> queue
entry created (events process) and entry -> offer committed (dispatcher); an agent's leg
hung up -> its next offer when a caller was waiting; served / abandoned / lost callers;
what is left on the switch afterwards; the CPU each process used. Reference in the same
run: a bare `bgapi originate user/1001 &park()` over a raw ESL connection -> that leg's
CHANNEL_CREATE received (bench clock; FS's ticked clock cannot time a command the bench
sent), before the service starts (idle) and, on the phone 1000 (no agent's), every 0.5 s
while the callers arrive (the switch's own latency under the same load).
--agent-codecs PCMU makes the phones' legs PCMU (the test switch's internal profile offers
OPUS first: 48 kHz OPUS and PCMU<->OPUS transcoding on every bridge).

    .venv/bin/python bench/bench_queue_offers_real.py [--rates 1,2,5] [--seconds 30]
        [--talk 2] [--agents 19] [--agent-codecs PCMU] [--database-url postgresql://...]
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402
import gevent.lock  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.bench_queue_offers import setup_queue  # noqa: E402
from tests.conftest import RedisServer, Stack, stack_env, wait_until  # noqa: E402
from tests.integration.conftest import start_real_freeswitch, stop_real_freeswitch  # noqa: E402

PREFIX = "800555"
REF_PHONE, FIRST_AGENT_PHONE = 1000, 1001
EVENTS = "CHANNEL_CREATE CHANNEL_PARK CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_HANGUP_COMPLETE"


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def describe(name, values_ms):
    return (f"{name}: n={len(values_ms)} p50={pct(values_ms, 50):.1f} ms "
            f"p90={pct(values_ms, 90):.1f} ms p99={pct(values_ms, 99):.1f} ms "
            f"max={max(values_ms):.1f} ms")


def read_frame(reader):
    """One ESL frame: (headers, body)."""
    headers = {}
    while True:
        line = reader.readline()
        if not line:
            raise EOFError("ESL closed")
        line = line.decode().rstrip("\n")
        if not line:
            if headers:
                break
            continue
        key, _, value = line.partition(": ")
        headers[key] = value
    length = int(headers.get("Content-Length", 0))
    return headers, reader.read(length).decode() if length else ""


class Esl:
    """The bench's own Event Socket connection: every channel's first event times (µs, the
    switch's clock) and its tags; it hangs callers up (talk, patience) as they go."""

    def __init__(self, port, password, talk=2.0):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")
        self.lock = gevent.lock.Semaphore()
        self.talk = talk
        self.channels = {}      # uuid -> {event name: first µs, "name", "dest", "cc_leg", ...}
        self.far_by_number = {}  # caller's number -> the far-end (carrier) leg we originated
        self.gave_up = set()     # callers hung up after --patience, never bridged
        self._read_frame()
        self._send(f"auth {password}")
        assert "+OK" in self._read_frame()[0].get("Reply-Text", ""), "ESL auth refused"
        self._send(f"event json {EVENTS}")
        self._read_frame()
        self.loop = gevent.spawn(self._run)

    def _send(self, line):
        with self.lock:
            self.sock.sendall(f"{line}\n\n".encode())

    def _read_frame(self):
        return read_frame(self.file)

    def bgapi(self, command):
        self._send(f"bgapi {command}")

    def _run(self):
        while True:
            headers, body = self._read_frame()
            if headers.get("Content-Type") == "text/event-json":
                self._on_event(json.loads(body))

    def _on_event(self, ev):
        uid, name = ev.get("Unique-ID"), ev.get("Event-Name")
        chan = self.channels.setdefault(uid, {})
        chan.setdefault(name, (int(ev["Event-Date-Timestamp"]), time.time() * 1e6))
        chan.setdefault("name", ev.get("Channel-Name", ""))
        chan.setdefault("dest", ev.get("Caller-Destination-Number", ""))
        for var in ("cc_leg", "cc_call_id"):
            if ev.get(f"variable_{var}"):
                chan[var] = ev[f"variable_{var}"]
        if name == "CHANNEL_BRIDGE" and self.is_caller(chan) and "hangup_at" not in chan:
            chan["hangup_at"] = True
            far = self.far_by_number.get(chan["dest"])
            gevent.spawn_later(self.talk, self.bgapi, f"uuid_kill {far}")

    @staticmethod
    def is_caller(chan):
        return chan.get("name", "").startswith("sofia/external/") and \
            chan.get("dest", "").startswith(PREFIX)

    def call(self, number, patience):
        """A caller from the carrier side to number; hung up after patience if not bridged."""
        far = str(uuid.uuid4())
        self.far_by_number[number] = far
        self.bgapi(f"originate {{origination_uuid={far},origination_caller_id_number=1555"
                   f"{number[-7:]}}}sofia/gateway/carrier/{number} &echo()")
        gevent.spawn_later(patience, self._give_up, number, far)

    def _give_up(self, number, far):
        inbound = [c for c in self.channels.values() if c.get("dest") == number
                   and self.is_caller(c)]
        if not any("CHANNEL_BRIDGE" in c for c in inbound):
            self.gave_up.add(number)
            self.bgapi(f"uuid_kill {far}")

    def reference(self, user):
        """bgapi originate user/N &park() -> that leg created (ms); the leg is then hung up."""
        leg = str(uuid.uuid4())
        sent = time.time()
        self.bgapi(f"originate {{origination_uuid={leg},originate_timeout=10}}user/{user} "
                   "&park()")
        try:
            created = wait_until(lambda: self.channels.get(leg, {}).get("CHANNEL_CREATE"),
                                 10, 0.001, f"reference leg {leg}")
        except AssertionError:  # the switch stalled 10 s: counted as 10 s
            created = (0, time.time() * 1e6)
        gevent.spawn(self._kill_when_created, leg)
        return (created[1] / 1e6 - sent) * 1000

    def _kill_when_created(self, leg, within=60.0):
        deadline = time.monotonic() + within
        while "CHANNEL_CREATE" not in self.channels.get(leg, {}) and time.monotonic() < deadline:
            gevent.sleep(0.1)
        gevent.sleep(0.3)
        self.bgapi(f"uuid_kill {leg}")

    def close(self):
        self.loop.kill()
        self.sock.close()


def api(switch, command):
    """One api command over a fresh ESL connection; its body."""
    sock = socket.create_connection(("127.0.0.1", int(switch.env["FREESWITCH_PORT"])))
    reader = sock.makefile("rb")
    try:
        read_frame(reader)  # auth/request
        sock.sendall(f"auth {switch.env['FREESWITCH_PASSWORD']}\n\n".encode())
        read_frame(reader)
        sock.sendall(f"api {command}\n\n".encode())
        return read_frame(reader)[1]
    finally:
        sock.close()


def channels_left(switch):
    """The switch's channels now: [(name, application, callstate, uuid)]."""
    try:
        rows = json.loads(api(switch, "show channels as json")).get("rows") or []
    except ValueError:
        return [("?", "?", "?", "?")]
    return [(r.get("name"), r.get("application"), r.get("callstate"), r.get("uuid"))
            for r in rows]


def agent_codecs(switch, codecs, phones):
    """Make the internal profile (the agents' phones) offer codecs, then wait until every
    phone is registered again."""
    path = os.path.join(switch.rundir, "conf", "vars.xml")
    with open(path) as fh:
        text = fh.read()
    start = text.index("internal_codecs=") + len("internal_codecs=")
    with open(path, "w") as fh:
        fh.write(text[:start] + codecs + text[text.index('"', start):])
    api(switch, "reloadxml")
    wait_until(lambda: "must be up" not in api(switch, "sofia profile internal restart"), 30,
               1.0, "the internal profile to restart")
    wait_until(lambda: f"CODECS IN        \t{codecs}" in api(
        switch, "sofia status profile internal"), 30, 0.5, "the new codecs")
    gevent.sleep(1)
    for gateway in range(REF_PHONE, REF_PHONE + phones):
        api(switch, f"sofia profile farend register phone{gateway}")
    wait_until(lambda: f"{phones} total." in api(switch, "show registrations"), 60, 0.5,
               "the phones registered again")
    print(f"internal profile codecs: {codecs}")


def make_database(url, label):
    """(the URL of a fresh database for this run, how to drop it)."""
    if not url:
        return f"sqlite:///{label}.db", lambda: None
    import psycopg2
    name = f"bench_qo_real_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(url)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    base = url.rsplit("/", 1)[0]

    def drop():
        from models import db
        db.close()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return f"{base}/{name}", drop


def arrivals(esl, rate, seconds, patience, run_no):
    """Callers at rate per second for seconds, a reference originate on the phone 1000
    every 0.5 s meanwhile; returns (the numbers called, the references in ms)."""
    refs, numbers = [], []

    done = []

    def ref_loop():
        while not done:
            refs.append(esl.reference(REF_PHONE))
            gevent.sleep(0.5)
    pinger = gevent.spawn(ref_loop)
    started = time.monotonic()
    for i in range(int(rate * seconds)):
        number = f"{PREFIX}{run_no:02d}{i:04d}"
        numbers.append(number)
        esl.call(number, patience)
        gevent.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
    done.append(True)
    pinger.join(15)
    return numbers, refs


def agent_turnarounds(esl):
    """An agent's offer leg hung up -> that agent's next offer leg created (FS clock, ms),
    when the next caller was already waiting: how fast a freed agent gets the next caller."""
    from models import Call
    from models.queue import QueueEntry
    parked = {c["dest"]: c.get("CHANNEL_PARK") for c in esl.channels.values()
              if esl.is_caller(c)}
    number_of = {c.id: c.to_number for c in Call.select(Call.id, Call.to_number)}
    by_agent = {}
    for entry in QueueEntry.select():
        for agent_id, leg in (entry.offer_leg_uuids or {}).items():
            chan = esl.channels.get(leg, {})
            if "CHANNEL_CREATE" in chan and "CHANNEL_HANGUP_COMPLETE" in chan:
                by_agent.setdefault(agent_id, []).append(
                    (chan["CHANNEL_CREATE"][0], chan["CHANNEL_HANGUP_COMPLETE"][0],
                     parked.get(number_of.get(entry.call_id))))
    found = []
    for legs in by_agent.values():
        legs.sort()
        for before, after in zip(legs, legs[1:]):
            if after[2] and after[2][0] < before[1]:
                found.append((after[0] - before[1]) / 1000)
    return found


def pg_backends(db_url):
    """The pids of the PostgreSQL server processes serving db_url's database."""
    name = db_url.rsplit("/", 1)[-1] if db_url.startswith("postgres") else None
    found = []
    for pid in os.listdir("/proc") if name else []:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if f" {name} ".encode() in fh.read().replace(b"\0", b" ") + b" ":
                    found.append(int(pid))
        except (OSError, ValueError):
            continue
    return found


def cpu_seconds(pid):
    """user + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_offer_legs(esl):
    """cc_call_id -> (FS µs, bench µs) of the first agent leg created for that call."""
    first = {}
    for chan in esl.channels.values():
        if chan.get("cc_leg") == "agent" and "CHANNEL_CREATE" in chan:
            key, created = chan.get("cc_call_id"), chan["CHANNEL_CREATE"]
            first[key] = min(first.get(key, created), created)
    return first


def outcomes(esl, numbers):
    """Per caller: a dict of its figures (ms) and outcome, from the switch's events (FS
    clock "fs_", the bench's receipt clock "rx_") and the database (its call, its entry)."""
    from models import Call
    from models.queue import QueueEntry
    calls = {c.to_number: c for c in Call.select().where(Call.direction == "inbound")}
    entries = {e.call_id: e for e in QueueEntry.select()}
    legs = first_offer_legs(esl)
    callers = {c["dest"]: c for c in esl.channels.values() if esl.is_caller(c)}
    epoch = datetime.datetime(1970, 1, 1)
    rows = []
    for number in numbers:
        chan, call = callers.get(number, {}), calls.get(number)
        entry = entries.get(call.id) if call else None
        parked, leg = chan.get("CHANNEL_PARK"), legs.get(call.id) if call else None
        agent_leg = esl.channels.get(call.agent_leg_uuid or "", {}) if call else {}
        row = {"number": number, "call": call.id if call else None,
               "entry": entry.status if entry else None, "gave_up": number in esl.gave_up,
               "fs": {k: v[0] for k, v in chan.items() if k.startswith("CHANNEL_")},
               "agent_leg_fs": {k: v[0] for k, v in agent_leg.items()
                                if k.startswith("CHANNEL_")}}
        if parked and leg:
            row["fs_offer"] = (leg[0] - parked[0]) / 1000
            row["rx_offer"] = (leg[1] - parked[1]) / 1000
        if parked and "CHANNEL_BRIDGE" in chan:
            row["fs_bridged"] = (chan["CHANNEL_BRIDGE"][0] - parked[0]) / 1000
        if parked and entry is not None:
            row["entered"] = (entry.entered_at - epoch).total_seconds() * 1000 - parked[1] / 1000
            if entry.offered_at:
                row["offered"] = (entry.offered_at - entry.entered_at).total_seconds() * 1000
        if "fs_bridged" in row:
            row["outcome"] = "served"
        elif entry is not None and entry.status == "abandoned" or number in esl.gave_up:
            row["outcome"] = f"abandoned (entry {entry.status if entry else None})"
        else:
            row["outcome"] = "lost: " + (
                "no inbound channel" if not chan else "no call row" if call is None
                else "no queue entry" if entry is None else f"entry {entry.status}")
        rows.append(row)
    return rows


def leftovers(esl, switch):
    """What is left once every caller is gone: channels on the switch, agent legs never
    hung up, agents not available."""
    from models.agent import Agent
    legs = [u for u, c in esl.channels.items() if c.get("cc_leg") == "agent"
            and "CHANNEL_HANGUP_COMPLETE" not in c]
    states = {}
    for agent in Agent.select():
        states[agent.state] = states.get(agent.state, 0) + 1
    return channels_left(switch), legs, states


def run_rate(args, switch, workdir, rate, run_no):
    """One rate: fresh database, redis and events process; the callers; the figures."""
    label = os.path.join(workdir, f"rate{run_no}")
    os.makedirs(label, exist_ok=True)
    db_url, drop = make_database(args.database_url, label)
    esl = Esl(int(switch.env["FREESWITCH_PORT"]), switch.env["FREESWITCH_PASSWORD"], args.talk)
    esl.reference(FIRST_AGENT_PHONE)  # warm-up, not counted
    idle_ref = [esl.reference(FIRST_AGENT_PHONE) for _ in range(args.references)]
    wait_until(lambda: not channels_left(switch), 15, 0.1, "reference legs gone")
    redis_server = RedisServer(label).start()
    setup_queue(db_url, args.agents, first_phone=FIRST_AGENT_PHONE, prefix="r",
                route=("prefix", PREFIX))
    env = stack_env(db_url, redis_server.url, 0, label, **switch.env, DEFAULT_GATEWAY="farend",
                    LOG_LEVEL="WARNING", AGENT_WRAPUP_CHECK_INTERVAL="0.2",
                    **dict(item.split("=", 1) for item in args.set))
    stack = Stack(env, label)
    stack.start_events()
    try:
        wait_until(lambda: redis_server.client().get("cc:queues:leader"), 30, 0.1,
                   "the dispatcher to lead")
        # past the dispatcher's offers recheck (OFFERS_RECHECK, 3 s after it leads): that
        # recheck asks the switch inside a write transaction and, with callers being
        # offered, can freeze the events process for SQLite's 10 s busy timeout
        gevent.sleep(args.settle)
        pids = {"freeswitch": switch.info["pid"], "events": stack.procs["events"][0].pid,
                "redis": redis_server.proc.pid, "bench": os.getpid()}
        pids.update({f"postgres{i}": pid for i, pid in enumerate(pg_backends(db_url))})
        cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        load_before, started = os.getloadavg(), time.monotonic()
        numbers, load_ref = arrivals(esl, rate, args.seconds, args.patience, run_no)
        load_after = os.getloadavg()
        wait_until(lambda: all("CHANNEL_HANGUP_COMPLETE" in c for c in esl.channels.values()
                               if esl.is_caller(c)), args.talk + args.patience + 30, 0.2,
                   "every caller gone")
        wall = time.monotonic() - started
        cpu = {name: (cpu_seconds(pid) - cpu[name]) / wall for name, pid in pids.items()}
        cpu["postgres"] = sum(cpu.pop(k) for k in list(cpu) if k.startswith("postgres"))
        gevent.sleep(3.0)
        rows = outcomes(esl, numbers)
        with open(os.path.join(label, "callers.json"), "w") as fh:
            json.dump(rows, fh, indent=1)
        rows.append({"turnaround": agent_turnarounds(esl), "cpu": cpu, "wall": wall})
        left = leftovers(esl, switch)
    finally:
        stack.stop()
        esl.close()
        redis_server.stop()
        api(switch, "hupall NORMAL_CLEARING")
        drop()
    report(rate, args, idle_ref, load_ref, rows, left, (load_before, load_after))
    print("  events process log: " + ", ".join(f"{n} x {text!r}" for text, n in log_counts(
        os.path.join(label, "events.log")).items()))


LOG_SIGNS = ("did not answer", "database is locked", "stale offer leg", "taken back",
             "not sent")


def log_counts(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return {}
    return {sign: text.count(sign) for sign in LOG_SIGNS}


FIGURES = (
    ("fs_offer", "caller parked -> agent leg created (FS clock, 20 ms ticks)"),
    ("rx_offer", "caller parked -> agent leg created (bench receipt clock)"),
    ("entered", "  of which: caller parked -> queue entry created (events process)"),
    ("offered", "  of which: entry created -> offer committed (dispatcher)"),
    ("fs_bridged", "caller parked -> caller bridged to the answered agent (FS clock)"),
)


def report(rate, args, idle_ref, load_ref, rows, left, loads):
    extra = rows.pop()
    kinds = {}
    for row in rows:
        kinds[row["outcome"]] = kinds.get(row["outcome"], 0) + 1
    print(f"\n== {rate:g} callers/s for {args.seconds:g} s ({len(rows)} callers), "
          f"{args.agents} agents, talk {args.talk:g} s; load average (1 min) "
          f"{loads[0][0]:.2f} before, {loads[1][0]:.2f} after the arrivals")
    print("  " + describe("reference idle: bgapi originate user/1001 -> leg created",
                          idle_ref))
    if load_ref:
        print("  " + describe("reference under load: bgapi originate user/1000 -> leg created",
                              load_ref))
    for key, name in FIGURES:
        values = [row[key] for row in rows if key in row]
        if values:
            print("  " + describe(name, values))
    if extra["turnaround"]:
        print("  " + describe("agent's leg hung up -> its next offer (a caller was waiting)",
                              extra["turnaround"]))
    print(f"  outcomes: {dict(sorted(kinds.items()))}")
    print(f"  CPU (share of one core over the {extra['wall']:.0f} s from the first caller to "
          f"the last hang-up): " + ", ".join(f"{k} {v:.0%}" for k, v in extra["cpu"].items()))
    print(f"  after the run: {len(left[0])} channels on the switch {left[0][:4]}, "
          f"{len(left[1])} agent legs "
          f"never hung up {left[1][:3]}, agents by state {left[2]}")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="1,2,5")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--talk", type=float, default=2.0)
    parser.add_argument("--patience", type=float, default=30.0)
    parser.add_argument("--agents", type=int, default=19)
    parser.add_argument("--references", type=int, default=30)
    parser.add_argument("--settle", type=float, default=4.0,
                        help="seconds between the dispatcher leading and the first caller")
    parser.add_argument("--database-url")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of the events process (repeatable)")
    parser.add_argument("--agent-codecs", help="e.g. PCMU: the internal profile's codecs "
                        "(the phones' legs; the test switch offers OPUS first)")
    parser.add_argument("--keep", help="a folder to keep the logs and databases in")
    args = parser.parse_args()
    args.seconds = min(args.seconds, 60.0)
    args.agents = max(1, min(args.agents, 19))
    print(f"{datetime.date.today()} {platform.node()} {platform.machine()} cpus={os.cpu_count()} "
          f"python {platform.python_version()} database "
          f"{'postgresql' if args.database_url else 'sqlite'}; uptime load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as workdir:
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            workdir = args.keep
        phones = ",".join(str(REF_PHONE + i) for i in range(args.agents + 1))
        switch = start_real_freeswitch(os.path.join(workdir, "freeswitch"), "--phones", phones,
                                       "--rtp-ports", "1000", "--log-level", "warning")
        try:
            print(switch.info["version"])
            if args.agent_codecs:
                agent_codecs(switch, args.agent_codecs, args.agents + 1)
            for run_no, rate in enumerate(float(r) for r in args.rates.split(",")):
                run_rate(args, switch, workdir, rate, run_no)
        finally:
            stop_real_freeswitch(switch)


if __name__ == "__main__":
    main()
