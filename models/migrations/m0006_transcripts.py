"""Migration 0006: Transcripts of recorded calls (issue 17).

Frozen copy of the tables this step creates; never edit it once released,
change the tables in a new migration.
"""
import datetime
import json

import peewee

VERSION = 6
NAME = "transcripts"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class _JSONText(peewee.TextField):
    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


class Frozen(peewee.Model):
    class Meta:
        database = None
        legacy_table_names = False


class Call(Frozen):
    """Only the key the foreign key points at (the table exists already)."""

    id = peewee.CharField(primary_key=True, max_length=36)

    class Meta:
        table_name = "call"


class Recording(Frozen):
    id = peewee.CharField(primary_key=True, max_length=36)

    class Meta:
        table_name = "recording"


class Transcript(Frozen):
    id = peewee.AutoField()
    call = peewee.ForeignKeyField(Call, on_delete="CASCADE", unique=True)
    recording = peewee.ForeignKeyField(Recording, on_delete="CASCADE", unique=True)
    status = peewee.CharField(max_length=16, default="processing", index=True)
    error = peewee.CharField(max_length=255, null=True)
    engine = peewee.CharField(max_length=32, null=True)
    channels = peewee.IntegerField(null=True)
    duration = peewee.FloatField(null=True)
    text = peewee.TextField(null=True)
    utterances = _JSONText(null=True)
    analysis = _JSONText(null=True)
    customer_sentiment = peewee.FloatField(null=True)
    compliance_found = peewee.BooleanField(null=True)
    created_at = peewee.DateTimeField(default=_now, index=True)
    updated_at = peewee.DateTimeField(default=_now)
    completed_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "transcript"


SQLITE_SEARCH_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS transcript_fts USING fts5("
    "text, content='transcript', content_rowid='id')",
    "CREATE TRIGGER IF NOT EXISTS transcript_fts_insert AFTER INSERT ON transcript BEGIN "
    "INSERT INTO transcript_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS transcript_fts_delete AFTER DELETE ON transcript BEGIN "
    "INSERT INTO transcript_fts(transcript_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " END",
    "CREATE TRIGGER IF NOT EXISTS transcript_fts_update AFTER UPDATE OF text ON transcript BEGIN "
    "INSERT INTO transcript_fts(transcript_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " INSERT INTO transcript_fts(rowid, text) VALUES (new.id, new.text); END",
)
POSTGRES_SEARCH_DDL = (
    "CREATE INDEX IF NOT EXISTS transcript_text_search ON transcript "
    "USING GIN (to_tsvector('english', coalesce(text, '')))",
)


def apply(database, migrator):
    """Create transcript and its text search index (FTS5 on SQLite, GIN on PostgreSQL)."""
    with database.bind_ctx([Transcript]):
        database.create_tables([Transcript], safe=True)
    if isinstance(database, peewee.PostgresqlDatabase):
        statements = POSTGRES_SEARCH_DDL
    elif isinstance(database, peewee.SqliteDatabase):
        statements = SQLITE_SEARCH_DDL
    else:
        statements = ()
    for statement in statements:
        database.execute_sql(statement)
