"""Migration 0004: a call's legs (agent and consult leg uuids, mode) and handling times.

Frozen copy of the columns models/call.py's Call gains in this step; never edit
it, change the table in a new migration.
"""
import peewee

VERSION = 4
NAME = "call_legs"

NULLABLE_COLUMNS = (
    ("agent_leg_uuid", peewee.CharField(max_length=64, null=True)),
    ("consult_leg_uuid", peewee.CharField(max_length=64, null=True)),
    ("mode", peewee.CharField(max_length=16, null=True)),
    ("bridged_at", peewee.DateTimeField(null=True)),
    ("held_at", peewee.DateTimeField(null=True)),
    ("talk_seconds", peewee.IntegerField(null=True)),
    ("ring_seconds", peewee.IntegerField(null=True)),
)
# Added in one statement with its default: peewee's SQLite path for a NOT NULL
# column rebuilds the table, and dropping the old `call` would cascade-delete
# every call's trail, recordings and quality samples.
HOLD_SECONDS = 'ALTER TABLE "call" ADD COLUMN "hold_seconds" INTEGER NOT NULL DEFAULT 0'


def apply(database, migrator):
    """Add the leg and handling-time columns to call (kept when already there)."""
    present = {column.name for column in database.get_columns("call")}
    for name, field in NULLABLE_COLUMNS:
        if name not in present:
            migrator.add_column("call", name, field).run()
    if "hold_seconds" not in present:
        database.execute_sql(HOLD_SECONDS)
    if "call_agent_leg_uuid" not in {index.name for index in database.get_indexes("call")}:
        migrator.add_index("call", ("agent_leg_uuid",), False).run()
