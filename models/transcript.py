"""Transcripts of recorded calls: one row per recording, with its utterances and figures.

The text is searchable: on SQLite through an FTS5 index kept by triggers, on
PostgreSQL through a GIN index on to_tsvector('english', text). Both are made
with the table (Transcript.create_table, and migration 0006 with the same SQL).
"""
import re

import peewee

from models.call import Call
from models.db import BaseModel, JSONTextField, utcnow
from models.recording import Recording

PROCESSING = "processing"
READY = "ready"
FAILED = "failed"
STATUSES = (PROCESSING, READY, FAILED)

# Speakers: a stereo recording has the agent on one channel and the customer on
# the other; a mono one cannot tell who spoke.
AGENT = "agent"
CUSTOMER = "customer"
UNKNOWN = "unknown"
SPEAKERS = (AGENT, CUSTOMER, UNKNOWN)

# The search indexes (the migration keeps its own frozen copy of these statements).
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


class Transcript(BaseModel):
    """What was said in a call's recording, who said it when, and what it adds up to.

    `utterances`: [{speaker, start, end, text, confidence, sentiment}] (seconds from
    the start of the recording). `analysis`: talk shares, silence, monologue,
    overlaps, sentiment per speaker and the phrases found (services/transcripts).
    """

    # An integer key: SQLite's FTS5 index refers to rows by it (a rowid that never moves).
    id = peewee.AutoField()
    call = peewee.ForeignKeyField(Call, backref="transcripts", on_delete="CASCADE", unique=True)
    recording = peewee.ForeignKeyField(Recording, backref="transcripts", on_delete="CASCADE",
                                       unique=True)
    status = peewee.CharField(max_length=16, default=PROCESSING, index=True)
    error = peewee.CharField(max_length=255, null=True)
    engine = peewee.CharField(max_length=32, null=True)
    channels = peewee.IntegerField(null=True)
    duration = peewee.FloatField(null=True)
    text = peewee.TextField(null=True)
    utterances = JSONTextField(null=True)
    analysis = JSONTextField(null=True)
    # Per call, for the statistics: the customer's (or, in mono, everyone's) mean
    # sentiment, and whether any compliance phrase was said.
    customer_sentiment = peewee.FloatField(null=True)
    compliance_found = peewee.BooleanField(null=True)
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    updated_at = peewee.DateTimeField(default=utcnow)
    completed_at = peewee.DateTimeField(null=True)

    STATUSES = STATUSES

    @classmethod
    def create_table(cls, safe=True, **options):
        super().create_table(safe=safe, **options)
        create_search_index(cls._meta.database)

    @classmethod
    def matching_calls(cls, words):
        """A subquery of the call ids whose ready transcript contains every word."""
        database = cls._meta.database
        tokens = search_tokens(words)
        if isinstance(getattr(database, "obj", database), peewee.PostgresqlDatabase):
            return (cls.select(cls.call).where(peewee.SQL(
                "to_tsvector('english', coalesce(text, '')) @@ plainto_tsquery('english', %s)",
                [" ".join(tokens)])))
        match = " ".join(f'"{token}"' for token in tokens) or '""'
        return (cls.select(cls.call).where(cls.id.in_(peewee.SQL(
            "(SELECT rowid FROM transcript_fts WHERE transcript_fts MATCH ?)", [match]))))


def search_tokens(words):
    """The words of a search, lowercased, without punctuation (safe inside FTS5 quotes)."""
    return re.findall(r"[a-z0-9]+", (words or "").lower().replace("'", ""))


def create_search_index(database):
    """The text search index of the transcript table, on either engine."""
    real = getattr(database, "obj", database)
    statements = (POSTGRES_SEARCH_DDL if isinstance(real, peewee.PostgresqlDatabase)
                  else SQLITE_SEARCH_DDL if isinstance(real, peewee.SqliteDatabase) else ())
    for statement in statements:
        database.execute_sql(statement)


MODELS = [Transcript]
