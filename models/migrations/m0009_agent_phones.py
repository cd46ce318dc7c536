"""Migration 0009: agents' browser phones (the SIP credentials the service owns; issue 15).

Frozen copy of models/agent_phone.py's AgentPhone as this step creates it; never edit
it once released, change the table in a new migration.
"""
import datetime

import peewee

VERSION = 9
NAME = "agent_phones"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Frozen(peewee.Model):
    class Meta:
        database = None
        legacy_table_names = False


class Agent(Frozen):
    """Only the key the foreign key points at (the table exists since 0003)."""

    id = peewee.CharField(primary_key=True, max_length=64)

    class Meta:
        table_name = "agent"


class AgentPhone(Frozen):
    agent = peewee.ForeignKeyField(Agent, primary_key=True, on_delete="CASCADE")
    username = peewee.CharField(max_length=64, unique=True)
    password_encrypted = peewee.TextField()
    rotated_at = peewee.DateTimeField(default=_now)
    created_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "agent_phone"


MODELS = [AgentPhone]


def apply(database, migrator):
    """Create agent_phone."""
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)
