"""Migration 0003: agents and their state-change trail.

Frozen copy of models/agent.py's Agent and AgentStateChange as this step creates
them; never edit it, change the tables in a new migration.
"""
import datetime

import peewee

VERSION = 3
NAME = "agents"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Frozen(peewee.Model):
    class Meta:
        database = None
        legacy_table_names = False


class Agent(Frozen):
    id = peewee.CharField(primary_key=True, max_length=64)
    name = peewee.CharField(max_length=128)
    endpoint = peewee.CharField(max_length=255)
    wrapup_seconds = peewee.IntegerField(default=30)
    skills = peewee.TextField(null=True)
    enabled = peewee.BooleanField(default=True)
    state = peewee.CharField(max_length=16, default="logged-out", index=True)
    state_reason = peewee.CharField(max_length=32, null=True)
    state_since = peewee.DateTimeField(default=_now)
    call_id = peewee.CharField(max_length=36, null=True)
    wrapup_until = peewee.DateTimeField(null=True, index=True)
    created_at = peewee.DateTimeField(default=_now)
    updated_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "agent"


class AgentStateChange(Frozen):
    id = peewee.BigAutoField()
    agent = peewee.ForeignKeyField(Agent, on_delete="CASCADE")
    from_state = peewee.CharField(max_length=16, null=True)
    to_state = peewee.CharField(max_length=16)
    reason = peewee.CharField(max_length=32, null=True)
    at = peewee.DateTimeField(default=_now)
    source = peewee.CharField(max_length=16)
    call_id = peewee.CharField(max_length=36, null=True)

    class Meta:
        table_name = "agent_state_change"
        indexes = ((("agent", "at"), False),)


MODELS = [Agent, AgentStateChange]


def apply(database, migrator):
    """Create agent and agent_state_change."""
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)
