"""Seed N synthetic ended calls (bulk inserts in chunks), then rebuild the statistics rollups.

    python -m bench.seed_calls --calls 1000000 --database-url sqlite:////tmp/bench.db
    python -m bench.seed_calls --calls 1000000 --database-url postgresql://u:p@host/db

Calls are spread evenly over --days days ending now, with office-hours
weighting, 100 agents, 20 campaigns, 6 gateways, a realistic mix of statuses
and outcomes, and a quality summary (MOS) on answered calls, as the quality
job would have left them. Deterministic for a given --seed.
"""
import argparse
import datetime
import os
import random
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models import Call, create_tables, db, init_db, utcnow  # noqa: E402
from services.quality.rollups import bulk_insert  # noqa: E402

STATUSES = (("completed", 55), ("no-answer", 20), ("busy", 10), ("canceled", 10),
            ("failed", 5))
CAUSES = {"completed": "NORMAL_CLEARING", "no-answer": "NO_ANSWER", "busy": "USER_BUSY",
          "canceled": "ORIGINATOR_CANCEL", "failed": "NORMAL_TEMPORARY_FAILURE"}
OUTCOMES = (("not_interested", 40), ("callback", 20), ("sale", 12), ("voicemail", 10),
            (None, 18))
AGENTS = [f"agent-{i:03d}" for i in range(100)]
CAMPAIGNS = [f"campaign-{i:02d}" for i in range(20)]
GATEWAYS = ["carrier-a", "carrier-b", "carrier-c", "carrier-d", "carrier-e", "carrier-f"]
# Gateways differ in quality, so "worst gateways" has something to find.
GATEWAY_MOS = {"carrier-a": 4.2, "carrier-b": 4.1, "carrier-c": 3.9, "carrier-d": 3.7,
               "carrier-e": 3.5, "carrier-f": 3.2}
FIELDS = (Call.id, Call.fs_uuid, Call.direction, Call.from_number, Call.to_number,
          Call.caller_id, Call.agent_id, Call.campaign_id, Call.gateway, Call.status,
          Call.hangup_cause, Call.created_at, Call.ringing_at, Call.answered_at, Call.ended_at,
          Call.updated_at, Call.duration, Call.billsec, Call.outcome, Call.record, Call.quality)


def _weighted(choices):
    values = [v for v, _ in choices]
    weights = [w for _, w in choices]
    return values, weights


def _uuid(rnd):
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


class CallFactory:
    """Makes one synthetic call row (a tuple in FIELDS order) at a time."""

    def __init__(self, seed, end, days):
        self.rnd = random.Random(seed)
        self.end = end
        self.span = days * 86400
        self.statuses = _weighted(STATUSES)
        self.outcomes = _weighted(OUTCOMES)

    def _created_at(self):
        rnd = self.rnd
        while True:
            offset = rnd.random() * self.span
            hour = ((offset % 86400) // 3600)
            # Most calls between 08:00 and 20:00 UTC; some at any hour.
            if 8 <= hour < 20 or rnd.random() < 0.15:
                return self.end - datetime.timedelta(seconds=self.span - offset)

    def row(self):
        rnd = self.rnd
        created = self._created_at().replace(microsecond=rnd.randrange(1000) * 1000)
        status = rnd.choices(*self.statuses)[0]
        ring = rnd.randint(2, 30)
        ringing = created + datetime.timedelta(seconds=1)
        answered = billsec = None
        outcome = quality = None
        gateway = rnd.choice(GATEWAYS)
        if status == "completed":
            answered = created + datetime.timedelta(seconds=ring)
            billsec = rnd.randint(5, 900)
            ended = answered + datetime.timedelta(seconds=billsec)
            outcome = rnd.choices(*self.outcomes)[0]
            mos = max(1.0, min(4.5, rnd.gauss(GATEWAY_MOS[gateway], 0.35)))
            quality = {"mos_min": round(mos - rnd.random() * 0.3, 3), "mos_avg": round(mos, 3),
                       "samples": 0, "sources": {"mos": "freeswitch"}}
        else:
            ended = created + datetime.timedelta(seconds=ring if status != "failed" else 1)
            billsec = 0
        duration = int((ended - created).total_seconds())
        number = f"1555{rnd.randrange(10**7):07d}"
        return (_uuid(rnd), _uuid(rnd), "outbound", "15550001000", number, "15550001000",
                rnd.choice(AGENTS), rnd.choice(CAMPAIGNS), gateway, status, CAUSES[status],
                created, ringing, answered, ended, ended, duration, billsec, outcome, False,
                quality)


def seed(database_url, calls, days=180, chunk=1000, seed_value=42, rebuild_rollups=True,
         echo=print):
    """Insert `calls` synthetic calls into database_url; returns seconds taken per phase."""
    init_db(database_url)
    timings = {}
    with db.connection_context():
        create_tables()
        factory = CallFactory(seed_value, utcnow().replace(microsecond=0),
                              days)
        t0 = time.perf_counter()
        done = 0
        while done < calls:
            with db.atomic():
                for _ in range(50):  # 50 statements of `chunk` rows per transaction
                    n = min(chunk, calls - done)
                    if n <= 0:
                        break
                    bulk_insert(Call, FIELDS, [factory.row() for _ in range(n)])
                    done += n
            echo(f"\r  inserted {done:,} calls ({done / (time.perf_counter() - t0):,.0f}/s)",
                 end="", flush=True)
        timings["insert_s"] = time.perf_counter() - t0
        echo("")
        if rebuild_rollups:
            from services.quality import rollups
            t1 = time.perf_counter()
            rollups.rebuild(3.5, echo=lambda msg: echo("  " + msg))
            timings["rollups_s"] = time.perf_counter() - t1
    return timings


def multiply(database_url, factor, echo=print):
    """PostgreSQL: grow the seeded calls `factor` times over, in SQL (minutes for 10M where
    seed() takes about an hour): each copy of a call and of its fact has new ids (md5 of
    the old id and the copy number) and the same times, status, agent and outcome, so the
    rollups (rebuilt after) scale by factor and every bucket keeps its shape."""
    from models.quality import CallFact
    from services.quality import rollups
    if not database_url.startswith("postgres"):
        raise SystemExit("multiply needs PostgreSQL")
    init_db(database_url)
    timings = {}
    with db.connection_context():
        t0 = time.perf_counter()
        db.execute_sql('CREATE TEMP TABLE base_ids AS SELECT "id" FROM "call"')
        for model, id_column, new_ids in ((Call, "id", ("id", "fs_uuid", "idempotency_key")),
                                          (CallFact, "call_id", ("call_id",))):
            table = model._meta.table_name
            columns = [f.column_name for f in model._meta.sorted_fields]
            quoted = ", ".join(f'"{c}"' for c in columns)
            for copy in range(1, factor):
                picked = ", ".join(
                    f'md5(t."{c}" || \':{copy}\')::uuid::text' if c in new_ids else f't."{c}"'
                    for c in columns)
                with db.atomic():
                    db.execute_sql(f'INSERT INTO "{table}" ({quoted}) SELECT {picked} '
                                   f'FROM "{table}" t JOIN base_ids b ON b."id" = t."{id_column}"')
                echo(f"  {table}: copy {copy + 1} of {factor} "
                     f"({time.perf_counter() - t0:.0f} s)", flush=True)
        timings["multiply_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        rows = rollups.rebuild_rollups()
        echo("  rollups: " + ", ".join(f"{table} {n}" for table, n in rows.items()))
        timings["rollups_s"] = time.perf_counter() - t1
    return timings


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.seed_calls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        required="DATABASE_URL" not in os.environ)
    parser.add_argument("--days", type=int, default=180, help="spread calls over this many days")
    parser.add_argument("--chunk", type=int, default=1000, help="rows per INSERT statement")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-rollups", action="store_true",
                        help="skip `workers.rollups rebuild` after inserting")
    args = parser.parse_args(argv)
    timings = seed(args.database_url, args.calls, args.days, args.chunk, args.seed,
                   rebuild_rollups=not args.no_rollups)
    print(", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
