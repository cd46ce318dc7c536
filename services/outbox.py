"""The transactional outbox: news stored with the change it reports, sent to Redis after the commit.

A commit writes its news (publishes, job enqueues) in the same transaction as
the change, with one bulk insert, then sends it and deletes the sent rows. News
that could not be sent (Redis down, another sender busy, the process died)
stays in the table, and the relay (services/outbox_relay.py) sends it later,
strictly in id order. Other after-commit actions (FreeSWITCH commands) stay in
memory: they make sense only right after the commit.
"""
import contextlib
import itertools
import logging
import threading

from models import db, fastsql
from models.db import db_session
from models.outbox import ENQUEUE, PUBLISH
from services.outbox_send import deliver, job_path, send_in_order, store
from services.publisher import encode_data

logger = logging.getLogger(__name__)

# The innermost Outbox.atomic() open in this thread (greenlet, under gevent): an Outbox
# opened inside another hands its news and rows over, to go out after the outer commit.
_active = threading.local()


def insert_row(model, **values):
    """INSERT a row nobody reads back in this transaction (a call's trail row): with the
    open Outbox.atomic()'s other rows just before its commit, else at once."""
    outbox = getattr(_active, "outbox", None)
    if outbox is None:
        fastsql.insert_values(model, **values)
    else:
        outbox.insert_later(model, values)


def _shape(row):
    return row[0], tuple(row[1])


class Outbox:
    """News and actions queued during a transaction, stored with it and sent after its commit.

    The database is the truth and Redis only carries news of it: nothing is
    announced before it is committed, nothing committed goes unannounced, and a
    failing side effect never undoes the committed change.
    """

    def __init__(self):
        self._items = []  # (fn, args, kwargs): in memory only
        self._news = []  # (kind, sender, target, name, data) not yet stored
        self._stored = []  # (row id, news) stored in the open transaction
        self._rows = []  # (model, field values): INSERTed together just before the commit

    @contextlib.contextmanager
    def atomic(self):
        """A transaction whose news is stored with it and sent once it commits.

        Nested inside another Outbox.atomic(), the news waits for the outermost
        commit; inside a transaction no outbox owns, it is stored with that
        transaction and the relay sends it.
        """
        outer = getattr(_active, "outbox", None)
        if outer is not None or db.in_transaction():
            _active.outbox = self  # rows written inside go where a rollback drops them
            try:
                with self.savepoint():
                    yield self
            finally:
                _active.outbox = outer
            if outer is None:
                self._insert_rows()
                self._store_pending()
            elif outer is not self:
                outer._adopt(self)
            return
        mark = self.mark()
        _active.outbox = self
        try:
            with db.atomic():
                yield self
                self._insert_rows()
                self._store_pending()  # one INSERT, just before the commit
        except BaseException:
            self.rollback_to(mark)
            raise
        finally:
            _active.outbox = None
        self._after_commit()

    @contextlib.contextmanager
    def savepoint(self):
        """A savepoint whose queued news is dropped when it rolls back."""
        mark = self.mark()
        try:
            with db.atomic():
                yield self
        except BaseException:
            self.rollback_to(mark)
            raise

    def mark(self):
        """Where the queue stands now, for rollback_to()."""
        return len(self._items), len(self._news), len(self._stored), len(self._rows)

    def rollback_to(self, mark):
        """Forget what was queued after mark (its savepoint rolled back)."""
        items, news, stored, rows = mark
        del self._items[items:]
        del self._news[news:]
        del self._stored[stored:]
        del self._rows[rows:]

    def insert_later(self, model, values):
        """INSERT a row nobody reads back in this transaction (a call's trail) with the
        others, just before the commit: one statement for a batch of events."""
        self._rows.append((model, values))

    def add(self, fn, *args, **kwargs):
        """Run fn after the commit (in memory only: a FreeSWITCH command, a file removal)."""
        self._items.append((fn, args, kwargs, False))

    def add_first(self, fn, *args, **kwargs):
        """Run fn after the commit before the news and the other actions (a phone to ring:
        a batch of events may queue dozens of commands ahead of it)."""
        self._items.append((fn, args, kwargs, True))

    @property
    def urgent(self):
        """Whether something added with add_first waits for the commit."""
        return any(item[3] for item in self._items)

    def publish(self, publisher, channel, event_type, data):
        """Announce on a live channel after the commit."""
        self._news.append((PUBLISH, publisher, channel, event_type, data))

    def enqueue(self, redis_conn, queue_name, func, *args):
        """Enqueue the job named func ("workers.module.function") with args after the commit."""
        self._news.append((ENQUEUE, redis_conn, queue_name, job_path(func), list(args)))

    def discard(self):
        self._items.clear()
        self._news.clear()
        self._stored.clear()
        self._rows.clear()

    def __len__(self):
        return len(self._items) + len(self._news) + len(self._stored) + len(self._rows)

    def _adopt(self, inner):
        self._items.extend(inner._items)
        self._news.extend(inner._news)
        self._stored.extend(inner._stored)
        self._rows.extend(inner._rows)
        inner.discard()

    def _insert_rows(self):
        """The rows queued with insert_later, in order: one INSERT per run of one shape."""
        rows, self._rows = self._rows, []
        for (model, _), run in itertools.groupby(rows, key=_shape):
            fastsql.insert_many(model, [values for _, values in run])

    def _store_pending(self):
        news, self._news = self._news, []
        if news:
            # Encoded once: the same text is stored and published.
            news = [(kind, sender, target, name, encode_data(data) if kind == PUBLISH else data)
                    for kind, sender, target, name, data in news]
            self._stored.extend(zip(store(news), news))

    def flush(self):
        """Send what was queued, for callers that committed with db.atomic() themselves.

        Inside an Outbox.atomic() the news joins it; otherwise it is first stored
        in a short transaction of its own, so that a Redis outage does not lose it.
        """
        outer = getattr(_active, "outbox", None)
        if outer is not None and outer is not self:
            outer._adopt(self)
            return
        if self._news and db.in_transaction():
            news, self._news = self._news, []
            send_in_order(news)  # in a transaction nobody's outbox owns: as before, at once
        elif self._news:
            with db_session(), db.atomic():
                self._store_pending()
        self._after_commit()

    def _after_commit(self):
        stored, self._stored = self._stored, []
        items, self._items = self._items, []
        for fn, args, kwargs, first in items:
            if first:
                self._safely(fn, *args, **kwargs)
        if stored:
            self._safely(deliver, stored)
        for fn, args, kwargs, first in items:
            if not first:
                self._safely(fn, *args, **kwargs)

    @staticmethod
    def _safely(fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except Exception:  # one failed side effect must not stop the others
            logger.exception("after-commit action %s failed", getattr(fn, "__name__", fn))
