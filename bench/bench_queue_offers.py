"""Benchmark: queue offer latency on the ESL simulator, and the routing engine's decisions/s.

(1) Offer latency. Starts the ESL simulator (in this process), a redis-server and the real
`events` process (SQLite, or --database-url). One queue (longest-idle-agent, wrap-up 0)
with --agents agents (phones 2001... registered in the simulator, auto-answering, made
available in the database). Callers arrive from the carrier side at --rate per second for
--seconds; each caller hangs up --talk seconds after it is bridged. Measured per caller:
its channel answered and parked (the simulator's answer time) -> the agent's phone leg
created (the agent's phone rings), both from the simulator's own clock. The reference,
measured first in the same run: a bare `bgapi originate user/N &park()` sent over a raw ESL
connection -> that leg created (what ESL and the simulator cost without the service).

(2) Decisions per second: in this process, the dispatcher's round (no FreeSWITCH: its
commands are a stub that answers +OK) over --waiting waiting callers and --agents
agents, (a) all agents busy (every caller considered, nobody offered), (b) all available
(offers made: entry + agent conditional updates, trail, outbox).

    .venv/bin/python bench/bench_queue_offers.py [--agents 100] [--rate 20] [--seconds 60]
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import datetime  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.conftest import RedisServer, Stack, stack_env, wait_until  # noqa: E402
from tests.esl_sim import ESLSimulator  # noqa: E402


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def describe(name, values_ms):
    return (f"{name}: n={len(values_ms)} p50={pct(values_ms, 50):.1f} ms "
            f"p90={pct(values_ms, 90):.1f} ms p99={pct(values_ms, 99):.1f} ms "
            f"max={max(values_ms):.1f} ms mean={statistics.mean(values_ms):.1f} ms")


def raw_esl(port, password="ClueCon"):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.recv(4096)
    sock.sendall(f"auth {password}\n\n".encode())
    sock.recv(4096)
    return sock


def reference(sim, n=200):
    """bgapi originate user/N &park() over a raw ESL connection -> the leg created."""
    sock = raw_esl(sim.port)
    seen = []
    for _ in range(n):
        leg = str(uuid.uuid4())
        sent = time.time()
        sock.sendall(f"bgapi originate {{origination_uuid={leg}}}user/2001 &park()\n\n".encode())
        ch = wait_until(lambda: sim.channels.get(leg), 5, 0.001)
        seen.append((ch.created_us / 1e6 - sent) * 1000)
        sim.api("uuid_kill", leg)
        gevent.sleep(0.005)
    sock.close()
    return seen


def setup_queue(db_url, agents, first_phone=2001, prefix="b", route=("exact", "8005550000")):
    """One queue `bench` (longest idle, wrap-up 0) with agents available on phones
    first_phone..., and an inbound route (match, number) to it."""
    from models import db, init_db, migrate_database
    from models.agent import Agent
    from models.queue import InboundRoute, Queue, QueueMember
    init_db(db_url)
    db.connect(reuse_if_open=True)
    migrate_database()
    Queue.create(id="bench", name="bench", wrapup_seconds=0, ring_timeout=15)
    now = datetime.datetime.utcnow()
    for i in range(agents):
        Agent.create(id=f"{prefix}{i:03d}", name=f"{prefix}{i:03d}",
                     endpoint=f"user/{first_phone + i}", wrapup_seconds=0, state="available",
                     state_since=now)
        QueueMember.create(queue="bench", agent=f"{prefix}{i:03d}")
    InboundRoute.create(match=route[0], number=route[1], target_type="queue", target="bench")


class Watch:
    """Keeps every caller channel and agent leg the simulator had (their times)."""

    def __init__(self, sim):
        self.sim = sim
        self.callers, self.legs = {}, {}
        self.loop = gevent.spawn(self._run)

    def _run(self):
        while True:
            for ch in list(self.sim.channels.values()):
                if ch.direction == "inbound":
                    self.callers.setdefault(ch.uuid, ch)
                elif ch.dial_vars.get("cc_leg") == "agent":
                    self.legs.setdefault(ch.dial_vars.get("cc_call_id"), ch)
            gevent.sleep(0.002)


def hang_up_bridged(sim, talk):
    done = set()
    while True:
        for ch in list(sim.channels.values()):
            if ch.direction == "inbound" and ch.bridge is not None and ch.uuid not in done:
                done.add(ch.uuid)
                gevent.spawn_later(talk, lambda u=ch.uuid: sim.channels.get(u) and sim.hangup(u))
        gevent.sleep(0.02)


def offer_latency(args, workdir):
    sim = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon").start()
    for i in range(args.agents):
        sim.phones[str(2001 + i)] = "127.0.0.1"
    ref = reference(sim)
    redis_server = RedisServer(workdir).start()
    db_url = args.database_url or f"sqlite:///{workdir}/bench.db"
    setup_queue(db_url, args.agents)
    settings = dict(item.split("=", 1) for item in args.set)
    env = stack_env(db_url, redis_server.url, sim.port, workdir,
                    AGENT_WRAPUP_CHECK_INTERVAL="0.2", LOG_LEVEL="WARNING", **settings)
    stack = Stack(env, workdir)
    stack.start_events()
    wait_until(lambda: any(c.events_enabled for c in sim.connections), 30, 0.05)
    gevent.sleep(1.0)
    watch = Watch(sim)
    hanger = gevent.spawn(hang_up_bridged, sim, args.talk)
    total = int(args.rate * args.seconds)
    started = time.monotonic()
    for i in range(total):
        sim.inbound_call(f"1555{i:07d}", "8005550000", answer_after=0.0)
        gevent.sleep(max(0.0, started + (i + 1) / args.rate - time.monotonic()))
    gevent.sleep(args.talk + 3)
    hanger.kill()
    watch.loop.kill()
    from models import Call
    by_channel = {c.fs_uuid: c.id for c in Call.select(Call.fs_uuid, Call.id)
                  .where(Call.direction == "inbound")}
    from models.queue import QueueEntry
    entries = {e.call_id: e for e in QueueEntry.select()}
    latencies, routed, waited = [], [], []
    epoch = datetime.datetime(1970, 1, 1)
    for fs_uuid, caller in watch.callers.items():
        leg = watch.legs.get(by_channel.get(fs_uuid))
        entry = entries.get(by_channel.get(fs_uuid))
        if entry is not None and caller.answered_us:
            routed.append(((entry.entered_at - epoch).total_seconds() * 1e6
                           - caller.answered_us) / 1000)
            if entry.offered_at:
                waited.append((entry.offered_at - entry.entered_at).total_seconds() * 1000)
        if leg is not None and caller.answered_us:
            latencies.append((leg.created_us - caller.answered_us) / 1000)
    if routed:
        print(describe("  of which: caller parked -> entry created (events process)", routed))
    if waited:
        print(describe("  of which: entry created -> offer committed (dispatcher)", waited))
    stack.stop()
    redis_server.stop()
    sim.stop()
    return ref, latencies, total


def decisions(args, workdir):
    """The dispatcher's rounds in this process against a stub switch."""
    from models import db, init_db, migrate_database
    from models.agent import Agent
    from models.queue import Queue, QueueEntry, QueueMember
    from services.container import build_services
    redis_server = RedisServer(workdir).start()
    init_db(f"sqlite:///{workdir}/decisions.db")
    db.connect(reuse_if_open=True)
    migrate_database()

    class Stub:
        def api(self, command, timeout=None):
            return "+OK\n"

        def bgapi(self, command, job_uuid=None):
            return job_uuid

    services = build_services({"DEFAULT_GATEWAY": "gw", "SECRET_KEY": "bench-secret-0123456789"},
                              redis_server.client(), Stub())
    dispatcher = services.queue_dispatcher
    Queue.create(id="d", name="d", wrapup_seconds=0)
    now = datetime.datetime.utcnow()
    for i in range(args.agents):
        Agent.create(id=f"d{i:03d}", name="d", endpoint=f"user/{3000 + i}", state="on-call",
                     state_since=now)
        QueueMember.create(queue="d", agent=f"d{i:03d}")
    for i in range(args.waiting):
        QueueEntry.create(queue_id="d", call_id=str(uuid.uuid4()),
                          entered_at=now + datetime.timedelta(milliseconds=i))
    rounds, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 3:
        dispatcher.round()
        rounds += 1
    busy = rounds * args.waiting / (time.perf_counter() - t0)
    Agent.update(state="available").execute()
    t0 = time.perf_counter()
    offered = 0
    while offered < args.agents:
        offered += dispatcher.round()
    offers_s = offered / (time.perf_counter() - t0)
    redis_server.stop()
    return busy, offers_s, rounds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--talk", type=float, default=2.0)
    parser.add_argument("--waiting", type=int, default=500)
    parser.add_argument("--database-url")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the service's processes (e.g. EVENT_BATCH_WAIT=0.005)")
    parser.add_argument("--keep", help="a folder to keep the processes' logs and database in")
    args = parser.parse_args()
    print(f"{datetime.date.today()} {platform.node()} {platform.processor() or platform.machine()} "
          f"cpus={os.cpu_count()} python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as workdir:
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            workdir = args.keep
        ref, latencies, total = offer_latency(args, workdir)
        print(describe("reference: bare bgapi originate -> leg created", ref))
        print(f"callers {total} at {args.rate}/s for {args.seconds:.0f} s, {args.agents} agents; "
              f"offered {len(latencies)}")
        if latencies:
            print(describe("offer latency: caller parked -> agent phone ringing", latencies))
    with tempfile.TemporaryDirectory() as workdir:
        busy, offers_s, rounds = decisions(args, workdir)
        print(f"decisions/s (all {args.agents} agents busy, {args.waiting} waiting): "
              f"{busy:.0f} ({rounds} rounds)")
        print(f"offers/s (agents available): {offers_s:.0f}")


if __name__ == "__main__":
    main()
