"""Migration 0012: per-dimension half-hour rollups (issue 18).

One agent's (campaign's, gateway's) statistics over local days of a zone other
than UTC were read from that agent's facts: ~100,000 rows scattered over the
table at 10M calls, over a second. HalfHourRollup and HalfHourOutcome hold the
same sums per 30-minute UTC bucket, so such a request reads at most 48 rows a
day. This step creates them and fills them from the facts (the sums
services/quality/rollups.py's rebuild makes). A quality job of the previous
release still running during the upgrade does not add to them: run
`python -m workers.rollups rebuild` once the old workers are gone if they ran
meanwhile.

Frozen copy of the tables models/quality.py declares; never edit it once
released, change them in a new migration.
"""
import peewee

VERSION = 12
NAME = "half_hour_rollups"

HALF_HOUR = 1800
DIMENSIONS = (("agent", "agent_id"), ("campaign", "campaign_id"), ("gateway", "gateway"))
MEASURES = ("calls", "answered", "completed", "busy", "no_answer", "failed", "canceled",
            "billsec", "handle_seconds", "mos_milli", "mos_calls", "mos_below")


class Frozen(peewee.Model):
    class Meta:
        database = None
        legacy_table_names = False


class HalfHourRollup(Frozen):
    calls = peewee.IntegerField(default=0)
    answered = peewee.IntegerField(default=0)
    completed = peewee.IntegerField(default=0)
    busy = peewee.IntegerField(default=0)
    no_answer = peewee.IntegerField(default=0)
    failed = peewee.IntegerField(default=0)
    canceled = peewee.IntegerField(default=0)
    billsec = peewee.BigIntegerField(default=0)
    handle_seconds = peewee.BigIntegerField(default=0)
    mos_milli = peewee.BigIntegerField(default=0)
    mos_calls = peewee.IntegerField(default=0)
    mos_below = peewee.IntegerField(default=0)
    dim = peewee.CharField(max_length=8)
    key = peewee.CharField(max_length=64, default="")
    bucket = peewee.BigIntegerField()

    class Meta:
        table_name = "half_hour_rollup"
        indexes = ((("dim", "key", "bucket"), True),)


class HalfHourOutcome(Frozen):
    dim = peewee.CharField(max_length=8)
    key = peewee.CharField(max_length=64, default="")
    bucket = peewee.BigIntegerField()
    outcome = peewee.CharField(max_length=64)
    calls = peewee.IntegerField(default=0)

    class Meta:
        table_name = "half_hour_outcome"
        indexes = ((("dim", "key", "bucket", "outcome"), True),
                   (("dim", "key", "bucket", "outcome", "calls"), False))


MODELS = [HalfHourRollup, HalfHourOutcome]


def _backfill(database):
    half_hour = f'"bucket" / {HALF_HOUR} * {HALF_HOUR}'  # integer division in both engines
    measures = ", ".join(f'"{name}"' for name in MEASURES)
    sums = ", ".join(f'SUM("{name}")' for name in MEASURES)
    for dim, column in DIMENSIONS:
        database.execute_sql(
            f'INSERT INTO "half_hour_rollup" ("dim", "key", "bucket", {measures}) '
            f"SELECT '{dim}', \"{column}\", {half_hour}, {sums} FROM \"call_fact\" "
            f'GROUP BY "{column}", {half_hour}')
        database.execute_sql(
            'INSERT INTO "half_hour_outcome" ("dim", "key", "bucket", "outcome", "calls") '
            f"SELECT '{dim}', \"{column}\", {half_hour}, \"outcome\", SUM(\"calls\") "
            f"FROM \"call_fact\" WHERE \"outcome\" <> '' "
            f'GROUP BY "{column}", {half_hour}, "outcome"')


def apply(database, migrator):
    """Create the half-hour rollup tables and fill them from the facts (once: not when they
    hold rows already)."""
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)
        if HalfHourRollup.select().exists():
            return
    if isinstance(database, peewee.PostgresqlDatabase):
        # Facts written meanwhile wait: the sums are of one consistent set of facts.
        database.execute_sql('LOCK TABLE "call_fact" IN SHARE MODE')
    _backfill(database)
