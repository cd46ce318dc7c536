"""Call quality and statistics: live samples, one fact row per ended call, and the rollups.

The statistics read two kinds of table:

- `CallFact`: one row per ended call whose quality job has run: the figures
  the statistics need (status flags, talk time, MOS) with its start time as
  integer epoch seconds, so bucketing in any time zone is integer arithmetic
  that SQLite and PostgreSQL compute the same way. It is also the record of
  what the call contributed to the rollups, so that a re-run job subtracts
  exactly that before adding the new figures (idempotent, never double counted).
- `QuarterHourRollup` (all calls, per 15-minute UTC bucket), `DailyRollup`
  (per UTC day, per agent / campaign / gateway) and `HalfHourRollup` (per
  30-minute UTC bucket, per agent / campaign / gateway), with outcome counts
  beside them in `QuarterHourOutcome`, `DailyOutcome` and `HalfHourOutcome`:
  sums of the facts, kept up to date by the quality job and rebuilt from the
  facts by `python -m workers.rollups rebuild`.

Every current IANA zone's offset is a whole number of quarter hours, so a local
day is a whole number of 15-minute UTC buckets and day/week/month series come
from the quarter-hour rollup exactly; one agent's, campaign's or gateway's
series come from the half-hour rollup in every zone whose offsets are whole
half hours (all but Nepal, the Chatham Islands and Eucla), or from the daily
one for UTC days. Other requests (two filters, zones with other offsets) are
answered from the facts.

Dimension keys are '' rather than NULL: a NULL never matches a unique index,
which the ON CONFLICT upserts of the rollups rely on.
"""
import peewee

from models.call import Call
from models.db import BaseModel, utcnow


class QualitySample(BaseModel):
    """One quality measurement pushed by a client during a live call."""

    id = peewee.BigAutoField()
    call = peewee.ForeignKeyField(Call, backref="quality_samples", on_delete="CASCADE",
                                  index=True)
    created_at = peewee.DateTimeField(default=utcnow)
    latency_ms = peewee.FloatField()
    jitter_ms = peewee.FloatField()
    packet_loss_pct = peewee.FloatField()
    mos = peewee.FloatField()
    r_factor = peewee.FloatField(null=True)
    mos_source = peewee.CharField(max_length=8)  # client | e-model
    # The sample crossed at least one alert threshold, and the call's alert
    # state after it: the next sample's rule starts from here, in any process.
    crossed = peewee.BooleanField(default=False)
    alert_active = peewee.BooleanField(default=False)


class RollupMeasures(BaseModel):
    """The sums every rollup and fact row carry (MOS in thousandths: integer sums stay exact)."""

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

    MEASURES = ("calls", "answered", "completed", "busy", "no_answer", "failed", "canceled",
                "billsec", "handle_seconds", "mos_milli", "mos_calls", "mos_below")


class CallFact(RollupMeasures):
    """One ended call as the statistics count it (0/1 flags and the call's own figures)."""

    call_id = peewee.CharField(max_length=36, primary_key=True)
    created_epoch = peewee.BigIntegerField()
    bucket = peewee.BigIntegerField()  # start of the call's 15-minute UTC bucket, epoch seconds
    day = peewee.IntegerField()  # UTC day number since 1970-01-01
    agent_id = peewee.CharField(max_length=64, default="")
    campaign_id = peewee.CharField(max_length=64, default="")
    gateway = peewee.CharField(max_length=64, default="")
    outcome = peewee.CharField(max_length=64, default="")
    status = peewee.CharField(max_length=16)

    class Meta:
        indexes = (
            (("created_epoch",), False),
            (("agent_id", "created_epoch"), False),
            (("campaign_id", "created_epoch"), False),
            (("gateway", "created_epoch"), False),
        )


class QuarterHourRollup(RollupMeasures):
    """All ended calls per 15-minute UTC bucket (by start time)."""

    bucket = peewee.BigIntegerField(unique=True)


class DailyRollup(RollupMeasures):
    """Ended calls per UTC day, per agent, campaign or gateway (dim)."""

    dim = peewee.CharField(max_length=8)  # agent | campaign | gateway
    key = peewee.CharField(max_length=64, default="")
    day = peewee.IntegerField()

    class Meta:
        indexes = ((("dim", "day", "key"), True),)


class HalfHourRollup(RollupMeasures):
    """Ended calls per 30-minute UTC bucket, per agent, campaign or gateway (dim): one of
    them over local days of any half-hour zone without reading its calls' facts."""

    dim = peewee.CharField(max_length=8)
    key = peewee.CharField(max_length=64, default="")
    bucket = peewee.BigIntegerField()  # epoch seconds, a multiple of 1800

    class Meta:
        indexes = ((("dim", "key", "bucket"), True),)


# Outcome counts live apart from the measures: a call has one outcome, and
# carrying a dozen sums per (bucket, outcome) would multiply the rows every
# statistics query scans by the number of outcomes.
class QuarterHourOutcome(BaseModel):
    """Ended calls with an outcome, per 15-minute UTC bucket and outcome."""

    bucket = peewee.BigIntegerField()
    outcome = peewee.CharField(max_length=64)
    calls = peewee.IntegerField(default=0)

    class Meta:
        # The second index covers the statistics queries (no table lookups).
        indexes = ((("bucket", "outcome"), True), (("bucket", "outcome", "calls"), False))


class DailyOutcome(BaseModel):
    """Ended calls with an outcome, per UTC day, agent/campaign/gateway and outcome."""

    dim = peewee.CharField(max_length=8)
    key = peewee.CharField(max_length=64, default="")
    day = peewee.IntegerField()
    outcome = peewee.CharField(max_length=64)
    calls = peewee.IntegerField(default=0)

    class Meta:
        indexes = ((("dim", "day", "key", "outcome"), True),
                   (("dim", "day", "key", "outcome", "calls"), False))


class HalfHourOutcome(BaseModel):
    """Ended calls with an outcome, per 30-minute UTC bucket, agent/campaign/gateway and
    outcome."""

    dim = peewee.CharField(max_length=8)
    key = peewee.CharField(max_length=64, default="")
    bucket = peewee.BigIntegerField()
    outcome = peewee.CharField(max_length=64)
    calls = peewee.IntegerField(default=0)

    class Meta:
        indexes = ((("dim", "key", "bucket", "outcome"), True),
                   (("dim", "key", "bucket", "outcome", "calls"), False))


MODELS = [QualitySample, CallFact, QuarterHourRollup, DailyRollup, QuarterHourOutcome,
          DailyOutcome, HalfHourRollup, HalfHourOutcome]
