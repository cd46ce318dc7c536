"""Migration 0005: Queues, queue members, inbound routes, queue entries (issue 13).

Frozen copy of the tables this step creates (models/queue.py) and of the column
models/agent.py's Agent gains; never edit it once released, change the tables
in a new migration.
"""
import datetime
import uuid

import peewee

VERSION = 5
NAME = "queues"

# Added in one statement with its default: peewee's SQLite path for a NOT NULL
# column rebuilds the table, and dropping the old `agent` would cascade-delete
# every agent's state-change trail (see m0004's hold_seconds).
MISSED_OFFERS = 'ALTER TABLE "agent" ADD COLUMN "missed_offers" INTEGER NOT NULL DEFAULT 0'


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _new_id():
    return str(uuid.uuid4())


class Frozen(peewee.Model):
    class Meta:
        database = None
        legacy_table_names = False


class Agent(Frozen):
    """Only what the foreign key needs (the table exists since m0003)."""

    id = peewee.CharField(primary_key=True, max_length=64)

    class Meta:
        table_name = "agent"


class Queue(Frozen):
    id = peewee.CharField(primary_key=True, max_length=64)
    name = peewee.CharField(max_length=128)
    strategy = peewee.CharField(max_length=24, default="longest-idle-agent")
    required_skills = peewee.TextField(null=True)
    ring_timeout = peewee.IntegerField(default=15)
    max_wait_seconds = peewee.IntegerField(null=True)
    max_wait_action = peewee.TextField(null=True)
    no_agents_action = peewee.TextField(null=True)
    hours = peewee.TextField(null=True)
    closed_action = peewee.TextField(null=True)
    service_level_seconds = peewee.IntegerField(default=20)
    wrapup_seconds = peewee.IntegerField(null=True)
    max_missed_offers = peewee.IntegerField(default=3)
    created_at = peewee.DateTimeField(default=_now)
    updated_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "queue"


class QueueMember(Frozen):
    id = peewee.BigAutoField()
    queue = peewee.ForeignKeyField(Queue, on_delete="CASCADE")
    agent = peewee.ForeignKeyField(Agent, on_delete="CASCADE")
    tier = peewee.IntegerField(default=1)
    last_offered_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "queue_member"
        indexes = ((("queue", "agent"), True),)


class InboundRoute(Frozen):
    id = peewee.CharField(primary_key=True, max_length=36, default=_new_id)
    match = peewee.CharField(max_length=8)
    number = peewee.CharField(max_length=32)
    target_type = peewee.CharField(max_length=8)
    target = peewee.CharField(max_length=64)
    name = peewee.CharField(max_length=128, null=True)
    created_at = peewee.DateTimeField(default=_now)
    updated_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "inbound_route"
        indexes = ((("match", "number"), True),)


class QueueEntry(Frozen):
    id = peewee.CharField(primary_key=True, max_length=36, default=_new_id)
    queue_id = peewee.CharField(max_length=64, index=True)
    call_id = peewee.CharField(max_length=36, index=True)
    status = peewee.CharField(max_length=16, default="waiting")
    priority = peewee.IntegerField(default=0)
    entered_at = peewee.DateTimeField(default=_now)
    offered_at = peewee.DateTimeField(null=True)
    answered_at = peewee.DateTimeField(null=True)
    left_at = peewee.DateTimeField(null=True)
    agent_id = peewee.CharField(max_length=64, null=True)
    offering_agents = peewee.TextField(null=True)
    offer_leg_uuids = peewee.TextField(null=True)
    offers = peewee.IntegerField(default=0)
    wait_seconds = peewee.IntegerField(null=True)
    node = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "queue_entry"
        indexes = ((("queue_id", "status", "entered_at"), False), (("entered_at",), False))


MODELS = [Queue, QueueMember, InboundRoute, QueueEntry]


def apply(database, migrator):
    """Create the queue tables and add agent.missed_offers (kept when already there)."""
    with database.bind_ctx(MODELS + [Agent]):
        database.create_tables(MODELS, safe=True)
    if "missed_offers" not in {column.name for column in database.get_columns("agent")}:
        database.execute_sql(MISSED_OFFERS)


# ----- KPI rollups (Q-KPI): models/queue_stats.py's tables, created after the ones above ----
class _KpiMeasures(Frozen):
    offered = peewee.IntegerField(default=0)
    answered = peewee.IntegerField(default=0)
    answered_in_sl = peewee.IntegerField(default=0)
    abandoned = peewee.IntegerField(default=0)
    short_abandoned = peewee.IntegerField(default=0)
    overflowed = peewee.IntegerField(default=0)
    timed_out = peewee.IntegerField(default=0)
    closed = peewee.IntegerField(default=0)
    answer_wait_sum = peewee.BigIntegerField(default=0)
    wait_sum = peewee.BigIntegerField(default=0)
    waited = peewee.IntegerField(default=0)
    wait_max = peewee.IntegerField(default=0)
    handled = peewee.IntegerField(default=0)
    talk_sum = peewee.BigIntegerField(default=0)
    hold_sum = peewee.BigIntegerField(default=0)
    wrapup_sum = peewee.BigIntegerField(default=0)
    transfers = peewee.IntegerField(default=0)
    answer_waits = peewee.TextField(null=True)


class QueueQuarterStat(_KpiMeasures):
    queue_id = peewee.CharField(max_length=64)
    bucket = peewee.BigIntegerField()

    class Meta:
        table_name = "queue_quarter_stat"
        indexes = ((("queue_id", "bucket"), True), (("bucket",), False))


class AgentQuarterStat(_KpiMeasures):
    agent_id = peewee.CharField(max_length=64)
    bucket = peewee.BigIntegerField()
    offers = peewee.IntegerField(default=0)
    logged_in_seconds = peewee.IntegerField(default=0)
    paused_seconds = peewee.IntegerField(default=0)
    available_seconds = peewee.IntegerField(default=0)
    ringing_seconds = peewee.IntegerField(default=0)
    on_call_seconds = peewee.IntegerField(default=0)
    wrap_up_seconds = peewee.IntegerField(default=0)

    class Meta:
        table_name = "agent_quarter_stat"
        indexes = ((("agent_id", "bucket"), True), (("bucket",), False))


KPI_MODELS = [QueueQuarterStat, AgentQuarterStat]
_apply_queue_tables = apply


def apply(database, migrator):  # noqa: F811  (wraps the queue step above)
    """Create the queue tables and agent.missed_offers, then the KPI rollup tables."""
    _apply_queue_tables(database, migrator)
    with database.bind_ctx(KPI_MODELS):
        database.create_tables(KPI_MODELS, safe=True)
