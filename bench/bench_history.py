"""Benchmark: GET /api/calls/history with the keyset cursor, at any depth, at 1M calls.

Seeds --calls synthetic calls (bench/seed_calls.py, no rollups) into SQLite and
PostgreSQL (a database of its own, dropped at the end unless --keep; --reuse
keeps what an earlier run seeded), starts a private redis-server and the real
`web` process (gunicorn + gevent, one worker) on each, and walks the history by
cursor at several depths: the cursor of the row at that depth is built from a
direct SQL lookup (the same base64 JSON [created_at, id] the API's `Link: next`
carries), and each request's first row is checked against the row after it.
Without a filter the depths are rows into the whole log; with an agent filter
(one agent has ~1/100 of the calls) the same fractions of that agent's calls.

Each page is timed by one sequential client over real HTTP (--requests each,
after 2 warm-ups), beside a reference measured in the same run: the same page's
SQL (the service's own query, as peewee renders it) run directly on the database
with its driver, and the capped COUNT behind X-Pagination. Prints p50 / p95 in ms.

    .venv/bin/python bench/bench_history.py [--calls 1000000] [--requests 50]
        [--sqlite /tmp/ccbench/history_1m.db] [--postgres-url postgresql://...|none]
        [--reuse] [--keep] [--explain]

Goal (issue 18): p95 <= 25 ms at any depth, on both databases.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.seed_calls import AGENTS, seed  # noqa: E402
from tests.conftest import RedisServer, Stack, free_port, stack_env  # noqa: E402

DEFAULT_PG = os.environ.get("TEST_POSTGRES_URL",
                            "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
GOAL_MS = 25
DEPTHS = (0, 10_000, 100_000, 500_000, 990_000)
AGENT = AGENTS[7]


def count_calls(url):
    from models import Call, db, init_db
    init_db(url)
    try:
        with db.connection_context():
            return Call.select().count() if Call.table_exists() else 0
    except Exception:
        return 0


def postgres_database(admin_url, name, fresh):
    """URL of database `name` on admin_url's server (created if missing), or None."""
    import psycopg2
    try:
        conn = psycopg2.connect(admin_url, connect_timeout=3)
    except psycopg2.Error as exc:
        print(f"PostgreSQL not reachable at {admin_url} ({exc.__class__.__name__}); skipped")
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


def drop_postgres_database(admin_url, name):
    import psycopg2
    conn = psycopg2.connect(admin_url, connect_timeout=3)
    conn.autocommit = True
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()
    print(f"  dropped database {name}")


def ensure_seeded(url, calls, reuse):
    from models import db, init_db
    from models.migrations import upgrade
    have = count_calls(url)
    if have >= calls and reuse:
        print(f"  reusing {have:,} calls")
    else:
        if have and url.startswith("sqlite"):
            path = url.split("///", 1)[1]
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
        print(f"  seeding {calls:,} calls over 180 days")
        timings = seed(url, calls, 180, rebuild_rollups=False)
        print("  " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    init_db(url)
    with db.connection_context():
        t0 = time.perf_counter()
        applied = upgrade(db)  # as the release step does (an index added since the seed)
        if applied:
            print(f"  migrated {applied} in {time.perf_counter() - t0:.1f} s")
    if url.startswith("postgres") and (applied or have < calls or not reuse):
        import psycopg2
        conn = psycopg2.connect(url)
        conn.autocommit = True
        conn.cursor().execute("VACUUM ANALYZE")  # what autovacuum soon does after a bulk load
        conn.close()


def p95(samples):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


class Pages:
    """The cases: (label, filters, cursor, the id the page must start with), from SQL."""

    def __init__(self, url, page_size):
        from models import Call, db, init_db
        init_db(url)
        self.url, self.page_size = url, page_size
        self.cases = []
        with db.connection_context():
            agent_total = Call.select().where(Call.agent_id == AGENT).count()
            total = Call.select().count()
            for filters, size, name in (({}, total, "no filter"),
                                        ({"agent_id": AGENT}, agent_total, "agent filter")):
                for depth in DEPTHS:
                    depth = depth if not filters else int(depth / 1_000_000 * size)
                    if depth >= size:
                        continue
                    self.cases.append(self._case(name, filters, depth))

    @staticmethod
    def _case(name, filters, depth):
        from blueprints.pagination import encode_cursor
        from services.calls.history import history_query
        rows = list(history_query(filters).offset(max(0, depth - 1)).limit(2))
        if depth == 0:
            return (f"{name}, first page", filters, None, rows[0].id, depth)
        return (f"{name}, after {depth:,} rows", filters, encode_cursor(rows[0]), rows[1].id,
                depth)

    def page_sql(self, filters, cursor):
        """The SQL of the page and of the capped count, as the service builds them."""
        from blueprints.pagination import COUNT_CAP, CursorField
        from models import Call
        from services.calls.history import history_query
        args = dict(filters)
        if cursor:
            args["cursor"] = CursorField().deserialize(cursor)
        query = history_query(args)
        page = query.limit(self.page_size).sql()
        capped = query.order_by().select(Call.id).limit(COUNT_CAP + 1)
        return page, (f"SELECT COUNT(1) FROM ({capped.sql()[0]}) AS _c", capped.sql()[1])


def raw_connection(url):
    if url.startswith("sqlite"):
        import sqlite3
        return sqlite3.connect(url.split("///", 1)[1]), "?"
    import psycopg2
    return psycopg2.connect(url), "%s"


def time_sql(conn, sql, params, repeat):
    samples = []
    cur = conn.cursor()
    for n in range(repeat + 2):
        t0 = time.perf_counter()
        cur.execute(sql, params)
        rows = cur.fetchall()
        if n >= 2:
            samples.append((time.perf_counter() - t0) * 1000)
    return samples, rows


def explain(conn, url, sql, params):
    cur = conn.cursor()
    if url.startswith("sqlite"):
        cur.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join("        " + str(row[-1]) for row in cur.fetchall())
    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
    return "\n".join("        " + row[0] for row in cur.fetchall())


def web_cpu(stack):
    """CPU seconds the web process's workers have used so far (user + system)."""
    import psutil
    master = psutil.Process(stack.procs["web"][0].pid)
    return sum(sum(child.cpu_times()[:2]) for child in master.children())


def time_http(stack, params, first_id, repeat):
    """Client-measured ms per request, and the web worker's CPU ms per request."""
    samples = []
    for n in range(repeat + 2):
        if n == 2:
            cpu = web_cpu(stack)
        t0 = time.perf_counter()
        resp = stack.get("/api/calls/history", params=params, timeout=60)
        elapsed = (time.perf_counter() - t0) * 1000
        if resp.status_code != 200:
            raise RuntimeError(f"{params}: {resp.status_code} {resp.text[:300]}")
        body = resp.json()
        if not body or body[0]["id"] != first_id:
            raise RuntimeError(f"{params}: the page does not start after its cursor")
        if len(body) == params["page_size"] and 'rel="next"' not in resp.headers.get("Link", ""):
            raise RuntimeError(f"{params}: a full page without a next link")
        if n >= 2:
            samples.append(elapsed)
    return samples, (web_cpu(stack) - cpu) * 1000 / repeat


def run_engine(name, url, args, redis_server):
    print(f"\n== {name}: {url.split('@')[-1]}")
    ensure_seeded(url, args.calls, args.reuse)
    pages = Pages(url, args.page_size)
    workdir = tempfile.mkdtemp(prefix=f"bench-history-{name}-")
    env = stack_env(url, redis_server.url, free_port(), workdir, LOG_LEVEL="WARNING",
                    RATELIMIT_DEFAULT="1000000 per minute", AUTH_ENABLED="true")
    stack = Stack(env, workdir)
    stack.authenticate("admin")
    stack.start_web(workers=1)
    conn, _ = raw_connection(url)
    results = []
    try:
        auth, cpu = time_http_plain(stack, args.requests)
        print(f"  baseline GET /api/auth/me: p50 {statistics.median(auth):6.1f}  "
              f"p95 {p95(auth):6.1f} ms, web CPU {cpu:.1f} ms per request")
        print(f"  {'page (page_size ' + str(args.page_size) + ')':<34} {'HTTP p50':>9} "
              f"{'HTTP p95':>9} {'web CPU':>8} | {'SQL page p50/p95':>17} | "
              f"{'SQL count p50/p95':>18}")
        for label, filters, cursor, first_id, depth in pages.cases:
            params = dict(filters, page_size=args.page_size)
            if cursor:
                params["cursor"] = cursor
            http, cpu = time_http(stack, params, first_id, args.requests)
            (page_sql, page_params), (count_sql, count_params) = pages.page_sql(filters, cursor)
            sql_page, rows = time_sql(conn, page_sql, page_params, args.requests)
            sql_count, _ = time_sql(conn, count_sql, count_params, args.requests)
            assert len(rows) == args.page_size
            mark = "ok  " if p95(http) <= GOAL_MS else "SLOW"
            print(f"  {mark}{label:<30} {statistics.median(http):9.1f} {p95(http):9.1f} "
                  f"{cpu:8.1f} | "
                  f"{statistics.median(sql_page):7.2f} / {p95(sql_page):7.2f} | "
                  f"{statistics.median(sql_count):7.2f} / {p95(sql_count):7.2f}")
            if args.explain:
                print(explain(conn, url, page_sql, page_params))
            results.append((label, http, cpu, sql_page, sql_count))
    finally:
        conn.close()
        stack.stop()
    return results


def time_http_plain(stack, repeat):
    samples = []
    for n in range(repeat + 2):
        if n == 2:
            cpu = web_cpu(stack)
        t0 = time.perf_counter()
        assert stack.get("/api/auth/me").status_code == 200
        if n >= 2:
            samples.append((time.perf_counter() - t0) * 1000)
    return samples, (web_cpu(stack) - cpu) * 1000 / repeat


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--sqlite", default="/tmp/ccbench/history_1m.db")
    parser.add_argument("--postgres-url", default=DEFAULT_PG,
                        help="a server's admin URL ('none' to skip PostgreSQL)")
    parser.add_argument("--pg-database", default="callcenter_bench_history",
                        help="the PostgreSQL database seeded (and dropped unless --keep)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the databases an earlier run seeded (--keep)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the seeded databases for a later --reuse")
    parser.add_argument("--explain", action="store_true", help="print each page's plan")
    args = parser.parse_args()
    os.system("uptime")
    print(f"bench_history: {args.calls:,} calls, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    redis_server = RedisServer(tempfile.mkdtemp(prefix="bench-redis-")).start()
    pg = None
    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.sqlite)), exist_ok=True)
        engines = [("sqlite", "sqlite:///" + os.path.abspath(args.sqlite))]
        if args.postgres_url != "none":
            pg = postgres_database(args.postgres_url, args.pg_database, not args.reuse)
            if pg:
                engines.append(("postgresql", pg))
        for name, url in engines:
            run_engine(name, url, args, redis_server)
    finally:
        redis_server.stop()
        if not args.keep:
            if pg:
                drop_postgres_database(args.postgres_url, args.pg_database)
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(args.sqlite + suffix):
                    os.remove(args.sqlite + suffix)
        os.system("uptime")


if __name__ == "__main__":
    main()
