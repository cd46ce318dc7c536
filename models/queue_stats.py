"""Queue and agent KPI rollups: one row per 15-minute UTC bucket per queue and per agent.

Rows are recomputed whole from the queue entries, calls, call trail and agent
trail of their bucket (services/queues/kpi_rollups.py), so a job that runs
twice writes the same row. A caller counts in the bucket in which it entered
the queue (QueueEntry.entered_at); agent time in state is split at bucket edges.
Every current IANA zone's offset is a whole number of quarter hours, so local
15-minute, hour, day, week and month buckets are unions of these rows.

`answer_waits` is the exact histogram of the answered callers' waits
({"seconds": callers}, JSON) from which the 90th percentile is read.
"""
import peewee

from models.db import BaseModel


class QueueStatMeasures(BaseModel):
    """The sums a queue or agent bucket carries (seconds unless named otherwise)."""

    offered = peewee.IntegerField(default=0)
    answered = peewee.IntegerField(default=0)
    answered_in_sl = peewee.IntegerField(default=0)  # within the queue's threshold
    abandoned = peewee.IntegerField(default=0)  # includes the short ones
    short_abandoned = peewee.IntegerField(default=0)  # abandoned within 5 s
    overflowed = peewee.IntegerField(default=0)
    timed_out = peewee.IntegerField(default=0)
    closed = peewee.IntegerField(default=0)  # arrived while closed: not offered
    answer_wait_sum = peewee.BigIntegerField(default=0)
    wait_sum = peewee.BigIntegerField(default=0)  # every caller who left or was answered
    waited = peewee.IntegerField(default=0)  # callers wait_sum counts
    wait_max = peewee.IntegerField(default=0)
    handled = peewee.IntegerField(default=0)  # answered calls that have ended
    talk_sum = peewee.BigIntegerField(default=0)
    hold_sum = peewee.BigIntegerField(default=0)
    wrapup_sum = peewee.BigIntegerField(default=0)
    transfers = peewee.IntegerField(default=0)
    answer_waits = peewee.TextField(null=True)

    MEASURES = ("offered", "answered", "answered_in_sl", "abandoned", "short_abandoned",
                "overflowed", "timed_out", "closed", "answer_wait_sum", "wait_sum", "waited",
                "wait_max", "handled", "talk_sum", "hold_sum", "wrapup_sum", "transfers")


class QueueQuarterStat(QueueStatMeasures):
    """One queue's callers who entered it in one 15-minute UTC bucket."""

    queue_id = peewee.CharField(max_length=64)
    bucket = peewee.BigIntegerField()  # epoch seconds, a multiple of 900

    class Meta:
        table_name = "queue_quarter_stat"
        indexes = ((("queue_id", "bucket"), True), (("bucket",), False))


class AgentQuarterStat(QueueStatMeasures):
    """One agent's queue calls (by the caller's entry time) and time in each state."""

    agent_id = peewee.CharField(max_length=64)
    bucket = peewee.BigIntegerField()
    offers = peewee.IntegerField(default=0)  # times the agent's phone rang for a call
    logged_in_seconds = peewee.IntegerField(default=0)  # any state but logged-out
    paused_seconds = peewee.IntegerField(default=0)
    available_seconds = peewee.IntegerField(default=0)
    ringing_seconds = peewee.IntegerField(default=0)
    on_call_seconds = peewee.IntegerField(default=0)
    wrap_up_seconds = peewee.IntegerField(default=0)

    STATE_MEASURES = ("offers", "logged_in_seconds", "paused_seconds", "available_seconds",
                      "ringing_seconds", "on_call_seconds", "wrap_up_seconds")

    class Meta:
        table_name = "agent_quarter_stat"
        indexes = ((("agent_id", "bucket"), True), (("bucket",), False))


MODELS = [QueueQuarterStat, AgentQuarterStat]
