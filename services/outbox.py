"""Side effects (publish, enqueue, FreeSWITCH commands) held until the commit succeeds."""
import logging

logger = logging.getLogger(__name__)


class Outbox:
    """Collects callables during a transaction and runs them after commit.

    The database is the truth and Redis only carries news of it, so nothing is
    announced before it is committed; a failing side effect is logged and never
    undoes the committed change.
    """

    def __init__(self):
        self._items = []

    def add(self, fn, *args, **kwargs):
        self._items.append((fn, args, kwargs))

    def discard(self):
        self._items.clear()

    def __len__(self):
        return len(self._items)

    def flush(self):
        items, self._items = self._items, []
        for fn, args, kwargs in items:
            try:
                fn(*args, **kwargs)
            except Exception:  # one failed side effect must not stop the others
                logger.exception("after-commit action %s failed", getattr(fn, "__name__", fn))
