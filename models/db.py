"""Database set-up: one DatabaseProxy, bound from DATABASE_URL at start-up."""
import contextlib
import datetime
import json
import logging
import sqlite3
import time
import uuid

import peewee
from playhouse.db_url import connect, parse

logger = logging.getLogger(__name__)

db = peewee.DatabaseProxy()

# WAL lets readers (web) and the one writer (events) work at once; busy_timeout
# makes a second writer wait for the lock instead of failing at once.
SQLITE_PRAGMAS = (
    ("journal_mode", "wal"),
    ("busy_timeout", 10000),
    ("synchronous", "normal"),
    ("foreign_keys", 1),
    ("cache_size", -32000),
)


class CooperativeSqliteDatabase(peewee.SqliteDatabase):
    """SQLite whose BEGIN IMMEDIATE waits for another process's write transaction in short
    sleeps of Python's own (gevent's, in the service's processes).

    SQLite's busy handler sleeps inside the C library in steps of up to 100 ms: a request
    whose transaction finds the events process committing stalls its whole gevent worker
    and then oversleeps the lock by tens of milliseconds. Only the BEGIN waits here (the
    busy timeout is off for it); every other statement keeps the busy timeout.
    """

    def begin(self, lock_type=None):
        lock_type = lock_type or self._lock_type
        statement = f"BEGIN {lock_type}" if lock_type else "BEGIN"
        cursor = self.cursor()
        deadline, pause = None, 0.0005
        cursor.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    cursor.execute(statement)
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise peewee.OperationalError(exc, *exc.args) from exc
                    now = time.monotonic()
                    deadline = deadline or now + (self._timeout or 0)
                    if now >= deadline:
                        raise peewee.OperationalError(exc, *exc.args) from exc
                    time.sleep(pause)  # gevent's sleep once monkey-patched
                    pause = min(pause * 2, 0.004)
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int((self._timeout or 0) * 1000)}")


def make_database(url):
    """Create (but do not bind) a peewee database for a DATABASE_URL."""
    if url.startswith("sqlite"):
        # IMMEDIATE: a transaction that reads and then writes must not fail with
        # "database is locked" when another process committed in between.
        # No pool: a pooled connection keeps the WAL index mapped, and a database
        # file that turns read-only under it then kills the process (SIGBUS)
        # instead of failing a request with 503.
        params = dict(parse(url), pragmas=SQLITE_PRAGMAS, timeout=10, lock_type="IMMEDIATE",
                      check_same_thread=False)
        database = CooperativeSqliteDatabase(**params) if url.startswith("sqlite:") else \
            connect(url, **{k: v for k, v in params.items() if k != "database"})
    elif url.startswith(("postgres", "postgresql")):
        # A pool: a new PostgreSQL connection per request costs ~15 ms. Under
        # gevent each greenlet checks one out and gives it back on close().
        url = url.replace("postgres://", "postgresql://", 1)
        url = url.replace("postgresql://", "postgresql+pool://", 1)
        database = connect(url, autorollback=True, max_connections=32, stale_timeout=300,
                           timeout=10)
    else:
        database = connect(url)
    return database


def init_db(url):
    """Bind the proxy to the database named by url and return it."""
    database = make_database(url)
    db.initialize(database)
    return database


@contextlib.contextmanager
def db_session():
    """Use the open connection, or open one for this block only.

    Worker jobs and after-commit actions may run where the connection was
    already released; closing a connection this block did not open would pull
    it from under its owner.
    """
    opened = db.is_closed()
    if opened:
        db.connect()
    try:
        yield
    finally:
        if opened and not db.is_closed():
            db.close()


def write_transaction():
    """A transaction that will write.

    On SQLite every transaction already begins IMMEDIATE (see make_database): one
    that read first and then wrote after another process committed would fail at
    once with "database is locked", whatever the busy_timeout.
    """
    return db.atomic()


def is_sqlite():
    return isinstance(db.obj, peewee.SqliteDatabase)


# PostgreSQL's answers that mean "this transaction lost a race; run it again": a deadlock
# (the other side went on) and a serialization failure.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def is_transient_conflict(exc):
    """Whether exc (as peewee raised it) is a deadlock or serialization failure: the
    transaction was rolled back and running it again is the fix."""
    for cause in (exc, *getattr(exc, "args", ())[:1], exc.__cause__, exc.__context__):
        if getattr(cause, "pgcode", None) in TRANSIENT_SQLSTATES:
            return True
    return False


def utcnow():
    """Naive UTC now: stored naive, always meaning UTC, on every engine."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def new_id():
    return str(uuid.uuid4())


class JSONTextField(peewee.TextField):
    """JSON stored as text, so SQLite and PostgreSQL behave the same."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


_LOOKUP_SQL = {}


class BaseModel(peewee.Model):
    class Meta:
        database = db
        legacy_table_names = False

    @classmethod
    def find_by(cls, field_name, value):
        """The first row whose field equals value, with the SELECT built once per database.

        The events process looks rows up for every event; building a SELECT of
        many columns anew each time costs more than running it.
        """
        database = cls._meta.database
        # Keyed by the database object itself (not its id, which Python reuses).
        key = (getattr(database, "obj", database), cls, field_name)
        sql = _LOOKUP_SQL.get(key)
        if sql is None:
            sql, _ = cls.select().where(getattr(cls, field_name) == "").limit(1).sql()
            _LOOKUP_SQL[key] = sql
        for row in cls.raw(sql, value, 1):
            return row
        return None
