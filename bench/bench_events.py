"""Benchmark: ESL events ingested per second end to end, and POST /api/calls/start latency.

Starts its own redis-server, the ESL simulator and the real `events` and `web`
processes (as the Procfile runs them), on free loopback ports, with SQLite (or
--database-url). Prints figures; asserts nothing about speed.

    .venv/bin/python bench/bench_events.py [--calls 5000] [--requests 500]
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.conftest import RedisServer, Stack, stack_env, wait_until  # noqa: E402
from tests.esl_sim import ESLSimulator  # noqa: E402


def count_completed(db_url):
    from models import Call, db, init_db
    init_db(db_url)
    with db.connection_context():
        return Call.select().where(Call.status == "completed").count()


def bench_ingest(stack, sim, redis_url, calls, db_url):
    import redis

    from services.redis_client import pubsub_channel
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(pubsub_channel("calls"))
    received = [0]

    def listen():
        for msg in pubsub.listen():
            if msg["type"] == "message":
                received[0] += 1
    listener = gevent.spawn(listen)
    gevent.sleep(0.2)
    events_per_call = 4
    t0 = time.perf_counter()
    sim.flood(calls, events_per_call=events_per_call)
    t_sent = time.perf_counter()
    # Every call publishes initiated, ringing, answered, ended.
    wait_until(lambda: received[0] >= calls * 4, 600, 0.05, "all messages published")
    t_done = time.perf_counter()
    listener.kill()
    completed = count_completed(db_url)
    total_events = calls * events_per_call
    return {
        "calls": calls, "events": total_events,
        "simulator_write_s": round(t_sent - t0, 3),
        "end_to_end_s": round(t_done - t0, 3),
        "events_per_s": round(total_events / (t_done - t0)),
        "messages_published": received[0], "calls_completed_in_db": completed,
    }


def bench_start_latency(stack, n):
    session = requests.Session()
    headers = {"Content-Type": "application/json", **stack.http.headers}
    latencies = []
    body = json.dumps({"to": "15550001000", "gateway": "gw1"})
    for _ in range(20):  # warm-up
        session.post(stack.url("/api/calls/start"), data=body, headers=headers)
    for _ in range(n):
        t0 = time.perf_counter()
        resp = session.post(stack.url("/api/calls/start"), data=body, headers=headers)
        latencies.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 201, resp.text
    latencies.sort()
    return {"requests": n, "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
            "max_ms": round(latencies[-1], 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--database-url")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the service's processes (e.g. EVENT_BATCH_SIZE=500)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-events-")
    db_url = args.database_url or f"sqlite:///{work}/bench.db"
    redis_server = RedisServer(work).start()
    sim = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon",
                       recordings_root=os.path.join(work, "rec"))
    sim.start()
    env = stack_env(db_url, redis_server.url, sim.port, work, LOG_LEVEL="WARNING",
                    RATELIMIT_ENABLED="false", **dict(item.split("=", 1) for item in args.set))
    stack = Stack(env, work)
    stack.authenticate()
    try:
        stack.start_events()
        stack.start_web()
        wait_until(lambda: stack.get("/api/health").json().get("events", {}).get("status")
                   == "ok", 30, 0.2, "the events process to connect")
        print(f"machine: {platform.node()} {os.cpu_count()} cores, Python "
              f"{platform.python_version()}, database {db_url.split(':')[0]}")
        ingest = bench_ingest(stack, sim, redis_server.url, args.calls, db_url)
        print("ingest:", json.dumps(ingest))
        latency = bench_start_latency(stack, args.requests)
        print("POST /api/calls/start:", json.dumps(latency))
    finally:
        stack.stop()
        sim.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
