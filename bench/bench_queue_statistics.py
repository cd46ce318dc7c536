"""Benchmark: queue and agent KPIs (GET /api/queues/<id>/statistics, /staffing,
/api/agents/<id>/statistics) at a million queue entries, beside a raw SQL reference.

Seeds --entries synthetic queue entries over --days days ending now (10 queues,
100 agents, office-hours weighting; 85 % answered, 10 % abandoned, a third of
them within 5 s, 3 % overflowed, 2 % closed), each answered one with its call
(talk, hold) and its agent's trail (ringing, on-call, wrap-up, available), into
SQLite and, when reachable, PostgreSQL (a database per size, reused on later
runs). Times the full rollup rebuild and the periodic job (the last 3 hours),
then starts a private redis-server and the real `web` process and times
requests from one sequential client. The reference is the same month-by-day
answer computed straight from queue_entry by one GROUP BY (no rollups, no wait
percentile, no handling time), timed in-process. Asserts nothing.

The cost of a long range grows with the quarter-hour rollup rows it reads (and the
answered-wait pairs in their histograms), printed before the requests; with
--no-rebuild and an existing database nothing is seeded or rebuilt.

    .venv/bin/python bench/bench_queue_statistics.py [--entries 1000000] [--days 180]
        [--sqlite /tmp/ccbench/queues.db|none] [--postgres-url postgresql://...|none]
        [--repeat 20] [--reseed] [--no-rebuild]
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import datetime  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.bench_statistics import p95, postgres_database, vacuum_analyze  # noqa: E402
from tests.conftest import RedisServer, Stack, free_port, stack_env  # noqa: E402

DEFAULT_PG = os.environ.get("TEST_POSTGRES_URL",
                            "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
QUEUES = [f"queue-{i}" for i in range(10)]
AGENTS = [f"qagent-{i:03d}" for i in range(100)]
GOAL_MS = 250
CHUNK = 20_000


def count_entries(url):
    from models import db, init_db
    from models.queue import QueueEntry
    init_db(url)
    try:
        with db.connection_context():
            return QueueEntry.select().count() if QueueEntry.table_exists() else 0
    except Exception:
        return 0


def _entry(rnd, end, span):
    """(entry tuple, call tuple or None, trail tuples) of one synthetic caller."""
    from models.db import new_id
    day = rnd.randrange(span // 86400)
    second = int(rnd.triangular(7 * 3600, 20 * 3600, 11 * 3600))  # office hours
    entered = end - datetime.timedelta(days=day + 1, seconds=-second)
    call_id, roll = new_id(), rnd.random()
    status = ("answered" if roll < 0.85 else "abandoned" if roll < 0.95
              else "overflowed" if roll < 0.98 else "closed")
    wait = 0 if status == "closed" else int(rnd.expovariate(1 / 25))
    if status == "abandoned" and rnd.random() < 0.33:
        wait = rnd.randrange(5)
    done = entered + datetime.timedelta(seconds=wait)
    agent = rnd.choice(AGENTS) if status == "answered" else None
    entry = (new_id(), rnd.choice(QUEUES), call_id, status, entered,
             done if agent else None, None if agent else done, agent, wait, 0, int(bool(agent)))
    if agent is None:
        return entry, None, []
    talk, hold = int(rnd.expovariate(1 / 180)), (30 if rnd.random() < 0.2 else 0)
    call = (call_id, "inbound", "completed", entered, done, talk, hold, agent, False)
    t = done + datetime.timedelta(seconds=talk + hold)
    trail = [(agent, "available", "ringing", done - datetime.timedelta(seconds=3), call_id),
             (agent, "ringing", "on-call", done, call_id),
             (agent, "on-call", "wrap-up", t, call_id),
             (agent, "wrap-up", "available", t + datetime.timedelta(seconds=30), None)]
    trail = [row + ("call",) for row in trail]
    return entry, call, trail


def seed(url, entries, days):
    from models import Call, db, init_db, migrate_database, utcnow
    from models.agent import Agent, AgentStateChange
    from models.queue import Queue, QueueEntry
    from services.quality.rollups import bulk_insert
    init_db(url)
    e, c, a = QueueEntry, Call, AgentStateChange
    entry_fields = (e.id, e.queue_id, e.call_id, e.status, e.entered_at, e.answered_at,
                    e.left_at, e.agent_id, e.wait_seconds, e.priority, e.offers)
    call_fields = (c.id, c.direction, c.status, c.created_at, c.updated_at, c.talk_seconds,
                   c.hold_seconds, c.agent_id, c.record)
    trail_fields = (a.agent, a.from_state, a.to_state, a.at, a.call_id, a.source)
    rnd, end, t0 = random.Random(13), utcnow(), time.perf_counter()
    with db.connection_context():
        migrate_database()
        with db.atomic():
            for q in QUEUES:
                Queue.insert(id=q, name=q).on_conflict_ignore().execute()
            for agent in AGENTS:
                Agent.insert(id=agent, name=agent,
                             endpoint="user/" + agent).on_conflict_ignore().execute()
        shifts = []
        for day in range(days + 1):
            base = datetime.datetime.combine((end - datetime.timedelta(days=day)).date(),
                                             datetime.time.min)
            for agent in AGENTS:
                shifts += [(agent, "logged-out", "available", base + datetime.timedelta(hours=7),
                            None, "api"),
                           (agent, "available", "logged-out", base + datetime.timedelta(hours=21),
                            None, "api")]
        with db.atomic():
            bulk_insert(a, trail_fields, shifts)
        for start in range(0, entries, CHUNK):
            rows = [_entry(rnd, end, days * 86400) for _ in range(min(CHUNK, entries - start))]
            with db.atomic():
                bulk_insert(e, entry_fields, [r[0] for r in rows])
                bulk_insert(c, call_fields, [r[1] for r in rows if r[1]])
                bulk_insert(a, trail_fields, [t for r in rows for t in r[2]])
    print(f"  seeded {entries:,} entries in {time.perf_counter() - t0:.1f}s")


def rollups(url):
    from models import db, init_db
    from services.queues import kpi_rollups
    init_db(url)
    with db.connection_context():
        t0 = time.perf_counter()
        kpi_rollups.rebuild(echo=lambda line: print("  " + line))
        print(f"  rollup rebuild (all days): {time.perf_counter() - t0:.1f}s")
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            kpi_rollups.refresh_recent(3 * 3600)
            samples.append((time.perf_counter() - t0) * 1000)
        print(f"  periodic job (last 3 h): median {statistics.median(samples):.0f} ms")


def count_rollups(url):
    """(queue rows, agent rows, queue rows of the benched queue): the work grows with these."""
    from models import db, init_db
    from models.queue_stats import AgentQuarterStat, QueueQuarterStat
    init_db(url)
    with db.connection_context():
        return (QueueQuarterStat.select().count(), AgentQuarterStat.select().count(),
                QueueQuarterStat.select().where(QueueQuarterStat.queue_id == QUEUES[0]).count())


def timed(stack, path, params, repeat):
    for _ in range(2):
        resp = stack.get(path, params=params, timeout=120)
        if resp.status_code != 200:
            raise RuntimeError(f"{path} {params}: {resp.status_code} {resp.text[:300]}")
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        resp = stack.get(path, params=params, timeout=120)
        samples.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, resp.text[:300]
    return samples


def report(label, samples, reference=None):
    worst = p95(samples)
    mark = "ok " if worst <= GOAL_MS else "SLOW"
    ref = f"   raw SQL p95 {p95(reference):7.1f} ms" if reference else ""
    print(f"  {mark} {label:<52} median {statistics.median(samples):7.1f} ms   "
          f"p95 {worst:7.1f} ms{ref}")


def raw_reference(url, first_day, last_day, repeat):
    """The month-by-day counts straight from queue_entry (one GROUP BY), in-process."""
    from peewee import fn

    from models import db, init_db
    from models.queue import QueueEntry as e
    init_db(url)
    start = datetime.datetime.combine(first_day, datetime.time.min)
    end = datetime.datetime.combine(last_day + datetime.timedelta(days=1), datetime.time.min)
    day = fn.DATE(e.entered_at) if url.startswith("sqlite") else fn.date_trunc("day",
                                                                               e.entered_at)
    query = (e.select(day, e.status, fn.COUNT(e.id), fn.SUM(e.wait_seconds))
             .where(e.queue_id == QUEUES[0], e.entered_at >= start, e.entered_at < end)
             .group_by(day, e.status))
    samples = []
    with db.connection_context():
        for _ in range(repeat + 2):
            t0 = time.perf_counter()
            list(query.tuples())
            samples.append((time.perf_counter() - t0) * 1000)
    return samples[2:]


def bench_requests(stack, url, repeat):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    month_from = (today - datetime.timedelta(days=29)).isoformat()
    q, a = f"/api/queues/{QUEUES[0]}", f"/api/agents/{AGENTS[0]}"
    reference = raw_reference(url, today - datetime.timedelta(days=29), today, repeat)
    cases = [
        ("queue 30 days by day Europe/Paris", q + "/statistics",
         {"interval": "day", "from": month_from, "tz": "Europe/Paris"}, reference),
        ("queue 1 day by 15m Europe/Paris", q + "/statistics",
         {"interval": "15m", "tz": "Europe/Paris"}, None),
        ("queue 7 days by hour Asia/Kolkata", q + "/statistics",
         {"interval": "hour", "from": (today - datetime.timedelta(days=6)).isoformat(),
          "tz": "Asia/Kolkata"}, None),
        ("queue 180 days by week UTC", q + "/statistics",
         {"interval": "week", "from": (today - datetime.timedelta(days=180)).isoformat()}, None),
        ("queue 180 days by month Europe/Paris", q + "/statistics",
         {"interval": "month", "from": (today - datetime.timedelta(days=180)).isoformat(),
          "tz": "Europe/Paris"}, None),
        ("agent 30 days by day Europe/Paris", a + "/statistics",
         {"interval": "day", "from": month_from, "tz": "Europe/Paris"}, None),
        ("agent 180 days by month Europe/Paris", a + "/statistics",
         {"interval": "month", "from": (today - datetime.timedelta(days=180)).isoformat(),
          "tz": "Europe/Paris"}, None),
        ("staffing measured over the last 7 days", q + "/staffing",
         {"from": (today - datetime.timedelta(days=7)).isoformat()}, None),
    ]
    print(f"  ({repeat} requests each after 2 warm-ups; goal p95 <= {GOAL_MS} ms)")
    report("baseline: GET /api/auth/me (auth, no query)", timed(stack, "/api/auth/me", {},
                                                                repeat))
    for label, path, params, ref in cases:
        report(label, timed(stack, path, params, repeat), ref)


def run_engine(name, url, args, redis_server):
    print(f"\n== {name}: {url.split('@')[-1]}")
    have = count_entries(url)
    if have < args.entries or args.reseed:
        if have and url.startswith("sqlite"):
            for suffix in ("", "-wal", "-shm"):
                path = url.split("///", 1)[1] + suffix
                if os.path.exists(path):
                    os.remove(path)
        seed(url, args.entries, args.days)
        if url.startswith("postgres"):
            vacuum_analyze(url)
    else:
        print(f"  reusing {have:,} entries")
    if not args.no_rebuild:
        rollups(url)
    if url.startswith("postgres"):
        vacuum_analyze(url)
    print("  rollup rows: {:,} queue, {:,} agent ({:,} of {})".format(*count_rollups(url),
                                                                     QUEUES[0]))
    workdir = tempfile.mkdtemp(prefix=f"bench-qstats-{name}-")
    env = stack_env(url, redis_server.url, free_port(), workdir, LOG_LEVEL="WARNING",
                    RATELIMIT_DEFAULT="1000000 per minute", QUEUE_ROLLUP_INTERVAL="100000")
    stack = Stack(env, workdir)
    try:
        stack.start_web(workers=1)
    except AssertionError:  # a loaded machine: give it one more start
        stack.stop()
        stack.start_web(workers=1)
    stack.authenticate("admin")
    try:
        bench_requests(stack, url, args.repeat)
    finally:
        stack.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--sqlite", default="/tmp/ccbench/queues.db", help="'none' to skip")
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--no-rebuild", action="store_true",
                        help="time the requests over the rollups a previous run left")
    args = parser.parse_args()
    print(f"bench_queue_statistics: {args.entries:,} queue entries over {args.days} days, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, "
          f"{datetime.date.today()}")
    redis_server = RedisServer(tempfile.mkdtemp(prefix="bench-redis-")).start()
    try:
        engines = []
        if args.sqlite != "none":
            os.makedirs(os.path.dirname(os.path.abspath(args.sqlite)), exist_ok=True)
            engines.append(("sqlite", "sqlite:///" + os.path.abspath(args.sqlite)))
        if args.postgres_url != "none":
            pg = postgres_database(args.postgres_url, f"cc_qbench_{args.entries}", args.reseed)
            if pg:
                engines.append(("postgresql", pg))
        for name, url in engines:
            run_engine(name, url, args, redis_server)
    finally:
        redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
