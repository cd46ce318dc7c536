"""Side effects (publish, enqueue, FreeSWITCH commands) held until the commit succeeds."""
import contextlib
import logging

from models import db
from services.jobs import enqueue_many

logger = logging.getLogger(__name__)


class Outbox:
    """Collects callables during a transaction and runs them after commit.

    The database is the truth and Redis only carries news of it, so nothing is
    announced before it is committed; a failing side effect is logged and never
    undoes the committed change.
    """

    def __init__(self):
        self._items = []
        self._publishes = {}
        self._jobs = {}

    @contextlib.contextmanager
    def atomic(self):
        """A transaction whose news is sent once it commits (and dropped if it rolls back).

        Nested inside another transaction (a savepoint), the news waits for the
        outermost commit: whoever opened that one flushes.
        """
        outermost = not db.in_transaction()
        mark = self.mark()
        try:
            with db.atomic():
                yield self
        except BaseException:
            self.rollback_to(mark)
            raise
        if outermost:
            self.flush()

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
        return (len(self._items), {k: len(v) for k, v in self._publishes.items()},
                {k: len(v) for k, v in self._jobs.items()})

    def rollback_to(self, mark):
        """Forget what was queued after mark (its savepoint rolled back)."""
        items, publishes, jobs = mark
        del self._items[items:]
        for store, counts in ((self._publishes, publishes), (self._jobs, jobs)):
            for key in list(store):
                keep = counts.get(key, 0)
                if keep:
                    del store[key][keep:]
                else:
                    del store[key]

    def add(self, fn, *args, **kwargs):
        self._items.append((fn, args, kwargs))

    def publish(self, notifier, channel, event_type, data):
        """Queue a notifier message; a flush sends them all in one Redis round trip."""
        self._publishes.setdefault(notifier, []).append((channel, event_type, data))

    def enqueue(self, redis_conn, queue_name, func, *args):
        """Queue an RQ job; a flush enqueues each queue's jobs in one pipeline."""
        self._jobs.setdefault((redis_conn, queue_name), []).append((func, args))

    def discard(self):
        self._items.clear()
        self._publishes.clear()
        self._jobs.clear()

    def __len__(self):
        return (len(self._items) + sum(map(len, self._publishes.values()))
                + sum(map(len, self._jobs.values())))

    def flush(self):
        """Publish (in order), then enqueue, then run the other actions (in order)."""
        publishes, self._publishes = self._publishes, {}
        jobs, self._jobs = self._jobs, {}
        items, self._items = self._items, []
        for notifier, messages in publishes.items():
            self._safely(notifier.publish_many, messages)
        for (redis_conn, queue_name), calls in jobs.items():
            self._safely(enqueue_many, redis_conn, queue_name, calls)
        for fn, args, kwargs in items:
            self._safely(fn, *args, **kwargs)

    @staticmethod
    def _safely(fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except Exception:  # one failed side effect must not stop the others
            logger.exception("after-commit action %s failed", getattr(fn, "__name__", fn))
