"""Fault soak: 2,000 simulated calls while the Event Socket is cut 5 times, the events
process is killed (SIGKILL) twice and Redis is stopped for 30 seconds; prints the counts.

Runs the real Procfile processes against the ESL simulator, on SQLite (or
--database-url). Asserts nothing; tests/integration/test_fault_soak.py is the bounded
version that `make test` runs.

    .venv/bin/python bench/bench_fault_soak.py [--calls 2000] [--rate 15] [--redis-down 30]
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.esl_sim import ESLSimulator  # noqa: E402
from tests.fault_soak import Plan, Soak  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=15.0)
    parser.add_argument("--redis-down", type=float, default=30.0)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="soak-")
    db_url = args.database_url or "sqlite:///" + os.path.join(work, "calls.db")
    sim = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon",
                       recordings_root=os.path.join(work, "recordings"))
    sim.gateway_dir = os.path.join(work, "gateways")
    os.makedirs(sim.gateway_dir, exist_ok=True)
    sim.start()
    print(f"fault soak on {platform.node()} ({os.cpu_count()} cores), "
          f"{db_url.split(':')[0]}, {time.strftime('%Y-%m-%d %H:%M')}")
    soak = Soak(Plan(calls=args.calls, rate=args.rate, redis_down_seconds=args.redis_down,
                     settle_seconds=180.0), db_url, sim, work)
    try:
        figures = soak.run()
    finally:
        soak.stop()
        sim.stop()
    print(f"load phase {soak.load_seconds:.0f} s; ESL cuts 5, events kills 2, "
          f"Redis down {args.redis_down:.0f} s")
    print(figures.report())
    if figures.wrong:
        print("wrong final statuses (first 10):", figures.wrong[:10])
    for call_id, status, announced, trail in figures.feed_missing_final[:5]:
        print(f"final status not announced: call {call_id} is {status}, last announced "
              f"{announced}; trail {trail}")


if __name__ == "__main__":
    main()
