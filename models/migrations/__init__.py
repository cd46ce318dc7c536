"""Versioned schema migrations: the only way the database schema changes.

Each step is a module with VERSION, NAME and apply(database, migrator) (a
playhouse.migrate SchemaMigrator). `schema_version` holds one row per applied
step. A database made by `create_tables()` before migrations existed has the
baseline tables but no version table: it counts as version 1, and the upgrade
records the baseline (creating only what it lacks) before the later steps.
"""
import contextlib
import datetime
import logging

import peewee
from playhouse.migrate import SchemaMigrator

from models.migrations import (
    m0001_baseline,
    m0002_outbox,
    m0003_agents,
    m0004_call_legs,
    m0005_queues,
    m0006_transcripts,
    m0007_webhooks,
    m0008_nodes,
    m0009_agent_phones,
    m0010_history_index,
    m0011_outbox_ids,
    m0012_half_hour_rollups,
)

logger = logging.getLogger(__name__)

STEPS = (m0001_baseline, m0002_outbox, m0003_agents, m0004_call_legs, m0005_queues,
         m0006_transcripts, m0007_webhooks, m0008_nodes, m0009_agent_phones,
         m0010_history_index, m0011_outbox_ids, m0012_half_hour_rollups)
LATEST = STEPS[-1].VERSION
MIGRATE_COMMAND = "python -m models.migrate"
VERSION_TABLE = "schema_version"
# Any constant: PostgreSQL serialises concurrent upgrades on this advisory lock.
_PG_LOCK_ID = 7_310_010


class SchemaOutdated(RuntimeError):
    """The database's schema is older than the code: a process must not start on it."""


class SchemaVersion(peewee.Model):
    version = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(max_length=64)
    applied_at = peewee.DateTimeField()

    class Meta:
        database = None
        table_name = VERSION_TABLE


def _real(database):
    """The database behind a DatabaseProxy (bind_ctx and the migrator want the real one)."""
    return database.obj if isinstance(database, peewee.DatabaseProxy) else database


@contextlib.contextmanager
def _connected(database):
    """Use the open connection, or open one for this block only (never close the caller's)."""
    opened = database.is_closed()
    if opened:
        database.connect()
    try:
        yield
    finally:
        if opened and not database.is_closed():
            database.close()


def current_version(database):
    """The applied version: 0 for an empty database, 1 for a pre-migration (baseline) one."""
    database = _real(database)
    tables = set(database.get_tables())
    if VERSION_TABLE in tables:
        with database.bind_ctx([SchemaVersion]):
            return SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar() or 0
    return m0001_baseline.VERSION if "call" in tables else 0


def applied_steps(database):
    """(version, name) of every recorded step, oldest first."""
    database = _real(database)
    if VERSION_TABLE not in database.get_tables():
        return []
    with database.bind_ctx([SchemaVersion]):
        return [(row.version, row.name)
                for row in SchemaVersion.select().order_by(SchemaVersion.version)]


def upgrade(database, target=None):
    """Apply every step up to target (default: the newest); return the versions applied.

    Each step commits with its version row, so an interrupted upgrade resumes
    where it stopped; running it again applies nothing.
    """
    database = _real(database)
    target = LATEST if target is None else target
    applied = []
    with _connected(database):
        for step in STEPS:
            if step.VERSION <= target and _apply(database, step):
                applied.append(step.VERSION)
    return applied


def _apply(database, step):
    with database.atomic():
        if isinstance(database, peewee.PostgresqlDatabase):
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_ID,))
        with database.bind_ctx([SchemaVersion]):
            database.create_tables([SchemaVersion], safe=True)
            done = SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar() or 0
            if done >= step.VERSION:
                return False
            logger.info("schema: applying %04d %s", step.VERSION, step.NAME)
            step.apply(database, SchemaMigrator.from_database(database))
            SchemaVersion.create(version=step.VERSION, name=step.NAME, applied_at=_utcnow())
    return True


def check_schema_current(database):
    """Raise SchemaOutdated, naming the command to run, when the database is behind the code."""
    database = _real(database)
    with _connected(database):
        version = current_version(database)
    if version < LATEST:
        raise SchemaOutdated(
            f"the database is at schema version {version}, this code needs version {LATEST}: "
            f"run `{MIGRATE_COMMAND}` (the Procfile's release step; `make run` runs it), "
            "then start again")
    if version > LATEST:
        # A rolling deploy: the release step already upgraded for newer code.
        logger.warning("the database is at schema version %d, newer than this code (%d)",
                       version, LATEST)
    return version


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
