"""Benchmark: GET /api/calls/statistics, /api/calls/quality and /api/calls/history at 1M calls.

Seeds --calls synthetic calls (bench/seed_calls.py, rollups rebuilt) into
SQLite and, when reachable, PostgreSQL (a database per size, reused on later
runs), starts a private redis-server and the real `web` process (gunicorn +
gevent, one worker) on each, and times requests from one sequential client:
statistics for all three periods and both groupings, quality trends, and
history pages. Prints median and p95 per request; asserts nothing. Also times
the history page's two SQL statements (the COUNT(*) behind X-Pagination and
the page itself) in-process, to show which one a slow page is waiting for.

    .venv/bin/python bench/bench_statistics.py [--calls 1000000] [--days 180]
        [--sqlite /tmp/ccbench/calls.db] [--postgres-url postgresql://...|none]
        [--repeat 20] [--history-requests 200] [--reseed] [--no-history]
        [--grow-from 1000000]   (PostgreSQL: 10M calls as 10 SQL copies of 1M; --sqlite none)

Goals: statistics p95 <= 100 ms at 10M calls on PostgreSQL (issue 18; issue 6 asked 250 ms
at 1M), history page p95 <= 25 ms.
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

from bench.seed_calls import AGENTS, multiply, seed  # noqa: E402
from tests.conftest import RedisServer, Stack, free_port, stack_env  # noqa: E402

DEFAULT_PG = os.environ.get("TEST_POSTGRES_URL",
                            "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
STATS_GOAL_MS, HISTORY_GOAL_MS = 100, 25  # issue 18 (issue 6 asked 250 ms)


def count_calls(url):
    from models import Call, db, init_db
    init_db(url)
    try:
        with db.connection_context():
            return Call.select().count() if Call.table_exists() else 0
    except Exception:
        return 0


def postgres_database(admin_url, name, fresh):
    """URL of database `name` on the server of admin_url (created if missing), or None."""
    try:
        import psycopg2
        conn = psycopg2.connect(admin_url, connect_timeout=3)
    except Exception as exc:
        print(f"PostgreSQL not reachable at {admin_url} ({exc.__class__.__name__}); skipped. "
              "Start one, e.g. as postgres: initdb -D /tmp/pg && pg_ctl -D /tmp/pg start")
        return None
    conn.autocommit = True
    cur = conn.cursor()
    if fresh:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    if not cur.fetchone():
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def ensure_seeded(url, calls, days, fresh, grow_from=None):
    have = count_calls(url)
    if have >= calls and not fresh:
        print(f"  reusing {have:,} calls")
        upgrade_schema(url)
        return
    if grow_from and url.startswith("postgres") and calls % grow_from == 0:
        if have:
            raise SystemExit(f"{url}: {have:,} calls, not {calls:,}: run with --reseed")
        print(f"  seeding {grow_from:,} calls over {days} days, then {calls // grow_from} "
              "copies of each in SQL")
        timings = seed(url, grow_from, days)
        timings.update(multiply(url, calls // grow_from))
        print("  " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
        vacuum_analyze(url)
        return
    if have and url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    print(f"  seeding {calls:,} calls over {days} days")
    timings = seed(url, calls, days)
    print("  " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    if url.startswith("postgres"):
        vacuum_analyze(url)


def upgrade_schema(url):
    """A database seeded by older code gets the newer schema steps (timed: what an
    operator's release step costs at this size), then fresh planner statistics."""
    from models import db, init_db, migrate_database
    init_db(url)
    t0 = time.perf_counter()
    with db.connection_context():
        applied = migrate_database()
    if applied:
        print(f"  schema steps {applied} applied in {time.perf_counter() - t0:.1f} s")
        if url.startswith("postgres"):
            vacuum_analyze(url)


def vacuum_analyze(url):
    """What autovacuum would soon do: planner statistics and the visibility map."""
    import psycopg2
    conn = psycopg2.connect(url)
    conn.autocommit = True
    conn.cursor().execute("VACUUM ANALYZE")
    conn.close()


def timed(stack, path, params, repeat):
    for _ in range(2):  # warm caches and the connection
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


def p95(samples):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def report(label, samples, goal):
    median, worst = statistics.median(samples), p95(samples)
    mark = "ok " if worst <= goal else "SLOW"
    print(f"  {mark} {label:<58} median {median:7.1f} ms   p95 {worst:7.1f} ms")
    return {"label": label, "median": median, "p95": worst}


def bench_statistics(stack, days, repeat):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    full = {"date_from": (today - datetime.timedelta(days=days)).isoformat(),
            "date_to": today.isoformat()}
    month = {"date_from": (today - datetime.timedelta(days=29)).isoformat(),
             "date_to": today.isoformat()}
    cases = []
    for tz in ("UTC", "Europe/Berlin", "Asia/Kolkata"):
        for extra in ({"period": "day"}, {"period": "week"}, {"period": "month"},
                      {"group_by": "agent"}, {"group_by": "campaign"}):
            if tz == "Asia/Kolkata" and "group_by" in extra:
                continue
            cases.append((f"{days + 1} days {tz}", dict(full, time_zone=tz, **extra)))
    cases.append(("30 days Europe/Berlin", dict(month, time_zone="Europe/Berlin", period="day",
                                                group_by="agent")))
    cases.append((f"{days + 1} days UTC one agent (daily rollups)",
                  dict(full, period="week", agent_id=AGENTS[7])))
    for tz in ("Europe/Berlin", "Asia/Kolkata"):
        cases.append((f"{days + 1} days {tz} one agent (half-hour rollups)",
                      dict(full, time_zone=tz, period="week", agent_id=AGENTS[7])))
    cases.append(("30 days Europe/Berlin one agent (half-hour rollups)",
                  dict(month, time_zone="Europe/Berlin", period="day", agent_id=AGENTS[7])))
    # Kathmandu's +5:45 is not on half hours: the one filtered request left to the facts.
    cases.append(("30 days Asia/Kathmandu one agent (facts)",
                  dict(month, time_zone="Asia/Kathmandu", period="day", agent_id=AGENTS[7])))
    results = [report("baseline: GET /api/auth/me (auth, no query)",
                      timed(stack, "/api/auth/me", {}, repeat), STATS_GOAL_MS)]
    print(f"  GET /api/calls/statistics ({repeat} requests each, after 2 warm-ups)")
    for label, params in cases:
        shown = ",".join(f"{k}={v}" for k, v in params.items()
                         if k in ("period", "group_by", "agent_id"))
        results.append(report(f"{label} {shown}", timed(stack, "/api/calls/statistics", params,
                                                        repeat), STATS_GOAL_MS))
    print("  GET /api/calls/quality")
    for tz in ("UTC", "Europe/Berlin"):
        results.append(report(f"{days + 1} days {tz} period=day",
                              timed(stack, "/api/calls/quality",
                                    dict(full, time_zone=tz, period="day"), repeat),
                              STATS_GOAL_MS))
    return results


def bench_history(stack, requests_count):
    rnd = random.Random(7)
    shapes = [
        ("no filter, random page 1-100", lambda: {"page": rnd.randint(1, 100)}),
        ("agent_id filter, random page 1-20",
         lambda: {"agent_id": rnd.choice(AGENTS), "page": rnd.randint(1, 20)}),
        ("status=busy, random page 1-20", lambda: {"status": "busy", "page": rnd.randint(1, 20)}),
        ("first page only", lambda: {"page": 1}),
    ]
    results = []
    print(f"  GET /api/calls/history (page_size 50, {requests_count} requests each)")
    for label, make in shapes:
        for _ in range(2):
            stack.get("/api/calls/history", params=dict(make(), page_size=50))
        samples = []
        for _ in range(requests_count):
            params = dict(make(), page_size=50)
            t0 = time.perf_counter()
            resp = stack.get("/api/calls/history", params=params, timeout=60)
            samples.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.text[:300]
        results.append(report(label, samples, HISTORY_GOAL_MS))
    return results


def history_sql_breakdown(url):
    """Time the COUNT(*) behind X-Pagination apart from the page query, in-process."""
    from models import Call, db, init_db
    from services.calls.service import CallService
    init_db(url)
    service = CallService(None)
    print("  history SQL in-process (median of 10): COUNT(*) for X-Pagination vs the page")
    with db.connection_context():
        for label, filters in (("no filter", {}), ("agent_id filter", {"agent_id": AGENTS[3]}),
                               ("status=busy", {"status": "busy"})):
            query = service.history_query(filters)
            counts, pages = [], []
            for _ in range(10):
                t0 = time.perf_counter()
                total = query.order_by().count()
                counts.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                rows = list(query.limit(50).offset(50 * 10))
                pages.append((time.perf_counter() - t0) * 1000)
            print(f"      {label:<16} COUNT(*) {statistics.median(counts):7.1f} ms "
                  f"({total:,} rows)   page of {len(rows)} {statistics.median(pages):6.1f} ms")
        Call.select().limit(1).execute()


def run_engine(name, url, args, redis_server):
    print(f"\n== {name}: {url.split('@')[-1]}")
    ensure_seeded(url, args.calls, args.days, args.reseed, args.grow_from)
    workdir = tempfile.mkdtemp(prefix=f"bench-stats-{name}-")
    env = stack_env(url, redis_server.url, free_port(), workdir, LOG_LEVEL="WARNING",
                    RATELIMIT_DEFAULT="1000000 per minute", AUTH_ENABLED="true")
    stack = Stack(env, workdir)
    stack.start_web(workers=1)
    stack.authenticate("admin")
    try:
        results = bench_statistics(stack, args.days, args.repeat)
        if not args.no_history:
            results += bench_history(stack, args.history_requests)
    finally:
        stack.stop()
    if not args.no_history:
        history_sql_breakdown(url)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--sqlite", default="/tmp/ccbench/calls.db")
    parser.add_argument("--postgres-url", default=DEFAULT_PG,
                        help="a server's admin URL ('none' to skip PostgreSQL)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--history-requests", type=int, default=200)
    parser.add_argument("--reseed", action="store_true", help="drop and seed again")
    parser.add_argument("--grow-from", type=int, default=None, metavar="N",
                        help="PostgreSQL: seed N calls, then copy them in SQL up to --calls "
                             "(10M in minutes; --calls a multiple of N)")
    parser.add_argument("--no-history", action="store_true", help="statistics only")
    args = parser.parse_args()
    print(f"bench_statistics: {args.calls:,} calls, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    redis_server = RedisServer(tempfile.mkdtemp(prefix="bench-redis-")).start()
    try:
        if args.sqlite != "none":
            os.makedirs(os.path.dirname(os.path.abspath(args.sqlite)), exist_ok=True)
        engines = [] if args.sqlite == "none" else [
            ("sqlite", "sqlite:///" + os.path.abspath(args.sqlite))]
        if args.postgres_url != "none":
            pg = postgres_database(args.postgres_url, f"cc_bench_{args.calls}", args.reseed)
            if pg:
                engines.append(("postgresql", pg))
        for name, url in engines:
            run_engine(name, url, args, redis_server)
    finally:
        redis_server.stop()


if __name__ == "__main__":
    main()
