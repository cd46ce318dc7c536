"""Benchmark: GET /api/calls/export (CSV and NDJSON) of --calls calls, with the web process's
peak memory measured beside its idle memory in the same run.

Seeds --calls synthetic calls (bench/seed_calls.py) into SQLite and, when
reachable, PostgreSQL, starts a private redis-server and the real `web`
process (gunicorn + gevent, one worker), reads its worker's RSS when idle
(after a warm-up request), then streams each export while sampling the RSS
every 20 ms, and counts the rows read. Prints rows, seconds, rows/s, idle and
peak RSS and their difference; asserts nothing.

    .venv/bin/python bench/bench_export.py [--calls 100000] [--sqlite /tmp/ccbench/export.db]
        [--postgres-url postgresql://...|none] [--reseed]

Goal (issue 16): peak RSS of the web process <= 50 MB above idle, in constant memory
(the same difference at 10x the rows).
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import psutil  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.bench_statistics import ensure_seeded, postgres_database  # noqa: E402
from tests.conftest import RedisServer, Stack, free_port, stack_env  # noqa: E402

DEFAULT_PG = os.environ.get("TEST_POSTGRES_URL",
                            "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
GOAL_MB = 50


def web_worker(stack):
    """The gunicorn worker process (the one that serves requests)."""
    master = psutil.Process(stack.procs["web"][0].pid)
    children = master.children(recursive=True)
    return children[0] if children else master


def rss_mb(process):
    return process.memory_info().rss / 1024 / 1024


def stream_export(stack, accept, worker):
    """(rows, seconds, peak MB) of one export read to the end."""
    peak = [rss_mb(worker)]
    done = [False]

    def sample():
        while not done[0]:
            peak[0] = max(peak[0], rss_mb(worker))
            gevent.sleep(0.02)

    sampler = gevent.spawn(sample)
    t0 = time.perf_counter()
    lines = 0
    with stack.http.get(stack.url("/api/calls/export"), headers={"Accept": accept},
                        stream=True, timeout=600) as resp:
        assert resp.status_code == 200, resp.text[:300]
        for chunk in resp.iter_content(chunk_size=65536):
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - t0
    done[0] = True
    sampler.join()
    peak[0] = max(peak[0], rss_mb(worker))
    rows = lines - 1 if accept == "text/csv" else lines
    return rows, seconds, peak[0]


def run_engine(name, url, args, redis_server):
    print(f"\n== {name}: {url.split('@')[-1]}")
    ensure_seeded(url, args.calls, 180, args.reseed)
    workdir = tempfile.mkdtemp(prefix=f"bench-export-{name}-")
    env = stack_env(url, redis_server.url, free_port(), workdir, LOG_LEVEL="WARNING",
                    RATELIMIT_ENABLED="false")
    stack = Stack(env, workdir)
    stack.start_web(workers=1)
    stack.authenticate("admin")
    try:
        worker = web_worker(stack)
        stack.get("/api/calls/history", params={"page_size": 50})  # warm: imports, pool
        idle = rss_mb(worker)
        print(f"  idle RSS of the web worker: {idle:.1f} MB")
        for label, accept in (("CSV", "text/csv"), ("NDJSON", "application/x-ndjson")):
            rows, seconds, peak = stream_export(stack, accept, worker)
            mark = "ok " if peak - idle <= GOAL_MB else "HIGH"
            print(f"  {mark} {label:<6} {rows:>9,} rows in {seconds:6.1f} s "
                  f"({rows / seconds:>8,.0f} rows/s)  peak RSS {peak:6.1f} MB "
                  f"(+{peak - idle:5.1f} MB over idle)")
    finally:
        stack.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--sqlite", default=None, help="default /tmp/ccbench/export-<N>.db")
    parser.add_argument("--postgres-url", default=DEFAULT_PG,
                        help="a server's admin URL ('none' to skip PostgreSQL)")
    parser.add_argument("--reseed", action="store_true", help="drop and seed again")
    args = parser.parse_args()
    print(f"bench_export: {args.calls:,} calls, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()}")
    sqlite = args.sqlite or f"/tmp/ccbench/export-{args.calls}.db"
    redis_server = RedisServer(tempfile.mkdtemp(prefix="bench-redis-")).start()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(sqlite)), exist_ok=True)
        engines = [("sqlite", "sqlite:///" + os.path.abspath(sqlite))]
        if args.postgres_url != "none":
            pg = postgres_database(args.postgres_url, f"cc_bench_export_{args.calls}",
                                   args.reseed)
            if pg:
                engines.append(("postgresql", pg))
        for name, url in engines:
            run_engine(name, url, args, redis_server)
    finally:
        redis_server.stop()


if __name__ == "__main__":
    main()
