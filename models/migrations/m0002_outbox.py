"""Migration 0002: the transactional outbox table (news stored with the change it reports).

Frozen copy of models/outbox.py's OutboxMessage as this step creates it; never
edit it, change the table in a new migration.
"""
import datetime

import peewee

VERSION = 2
NAME = "outbox_message"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class OutboxMessage(peewee.Model):
    id = peewee.BigAutoField()
    kind = peewee.CharField(max_length=16)
    target = peewee.CharField(max_length=64)
    name = peewee.CharField(max_length=255)
    payload = peewee.TextField()
    created_at = peewee.DateTimeField(default=_now)

    class Meta:
        database = None
        table_name = "outbox_message"


MODELS = [OutboxMessage]


def apply(database, migrator):
    """Create outbox_message (kept if an interim create_tables() already made it)."""
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)
