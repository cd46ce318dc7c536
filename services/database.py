"""The database as the HTTP and live layers need it without touching models: a connection
for work outside a request, and recovery after a statement the database refused."""
import contextlib
import logging

import peewee

from models import fastsql
from models.db import db, is_transient_conflict  # noqa: F401  (for the HTTP layer)

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def database_connection():
    """A connection for work outside a request (the WebSocket hub's greenlets, the CLI):
    opened and closed here only if this greenlet had none open."""
    opened_here = db.is_closed()
    if opened_here:
        db.connect()
    try:
        yield
    finally:
        if opened_here and not db.is_closed():
            db.close()


def rollback_failed_statement():
    """Roll back what a refused statement left open, so the connection goes back clean
    (PostgreSQL refuses every later statement of an aborted transaction)."""
    if db.is_closed():
        return
    try:
        db.rollback()
    except peewee.PeeweeException as exc:  # nothing was open (autocommit): nothing to undo
        logger.debug("no transaction to roll back: %s", exc)


def page_rows(query):
    """The rows of a page query (a model's whole rows), read the fast way (models/fastsql)."""
    return fastsql.select_all(query)
