"""Migration 0011: outbox ids are never given twice (SQLite).

SQLite gives a new row the largest id in the table plus one, so once the outbox
has been emptied (it is, after every send) ids start again at 1. A commit that
waited for the send lock while another sender had already sent (and deleted)
its rows then found other processes' new rows under its ids, took them for its
own, sent its news a second time and deleted theirs unsent: a `calls` message
lost under load (seen in the fault soak). AUTOINCREMENT makes SQLite never give
an id twice. PostgreSQL's sequence never does: nothing to change there.
"""
import peewee

VERSION = 11
NAME = "outbox_ids"

TABLE = "outbox_message"
COLUMNS = "id, kind, target, name, payload, created_at"
CREATE = (
    'CREATE TABLE "outbox_message_new" ('
    '"id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, '
    '"kind" VARCHAR(16) NOT NULL, "target" VARCHAR(64) NOT NULL, '
    '"name" VARCHAR(255) NOT NULL, "payload" TEXT NOT NULL, '
    '"created_at" DATETIME NOT NULL)')


def _autoincrement(database):
    row = database.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone()
    return row is not None and "AUTOINCREMENT" in row[0].upper()


def apply(database, migrator):
    """Rebuild outbox_message with AUTOINCREMENT on SQLite, its rows kept (ids too)."""
    if not isinstance(database, peewee.SqliteDatabase) or _autoincrement(database):
        return
    database.execute_sql(CREATE)
    database.execute_sql(f'INSERT INTO "outbox_message_new" ({COLUMNS}) '
                         f'SELECT {COLUMNS} FROM "{TABLE}" ORDER BY id')
    database.execute_sql(f'DROP TABLE "{TABLE}"')
    database.execute_sql(f'ALTER TABLE "outbox_message_new" RENAME TO "{TABLE}"')
