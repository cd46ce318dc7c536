"""The events process's core: one subscribed ESL connection, reconnect, reconcile, batched writes.

Events are read by greenswitch's reader greenlet and put on a bounded queue;
one writer greenlet takes them in batches and applies each batch in ONE
transaction (SQLite allows one writer, and a transaction per event cannot keep
up with a burst), then publishes after the commit.
"""
import collections
import logging
import random
import time

import gevent
import gevent.event
import gevent.queue
import peewee

from freeswitch.esl.commands import take_channel_snapshot
from freeswitch.esl.connection import ESLConnection, FreeSwitchUnavailable
from freeswitch.events.logline import log_applied
from models import db, utcnow
from models.db import is_transient_conflict
from services.calls.guard import CallChangedMeanwhile
from services.outbox import Outbox

logger = logging.getLogger(__name__)

_RECONCILE = object()
# The database failed (down, locked, connection lost), not an event's handler.
_DATABASE_DOWN = (peewee.OperationalError, peewee.InterfaceError)
RECONCILE_GRACE = 5.0
MAX_DUMPS = 5000
# Reconnect backoff. Until the first connection the cap is low: FreeSWITCH is
# usually just starting (with the service, or in a demo), and a call placed in its
# first seconds must not wait for a long backoff to have its events seen.
MAX_BACKOFF = 30.0
FIRST_CONNECT_MAX_BACKOFF = 2.0


class _NoObserver:
    def begin_batch(self, events=None):
        pass

    def before_event(self, name):
        pass

    def end_batch(self):
        pass


def subscription_names(handlers):
    """Handler keys -> the names for `event json ...` (CUSTOM subclasses after CUSTOM)."""
    plain = [name for name in handlers if "::" not in name]
    custom = [name for name in handlers if "::" in name]
    return plain + (["CUSTOM"] + custom if custom else [])


def _drop_connection():
    try:
        if not db.is_closed():
            db.close()
    except Exception as exc:  # a broken connection may fail to close: it is gone anyway
        logger.debug("closing the writer's connection failed: %s", exc)


class EventListener:
    """Keeps one subscribed connection to a FreeSWITCH node alive and applies its events."""

    def __init__(self, config, handlers, reconcile, queue_size=200_000,
                 batch_size=100, batch_wait=0.005, reconcile_interval=60.0, batch_observer=None,
                 reconcile_suspects=None):
        self.config = config
        self.handlers = dict(handlers)
        # reconcile(snapshot, outbox) -> (closed, adopted) runs in the writer;
        # reconcile_suspects(channel uuids) -> the live calls' channels the snapshot
        # lacks, each then checked with uuid_exists (none checked: none closed).
        self.reconcile = reconcile
        self.reconcile_suspects = reconcile_suspects or (lambda channel_uuids: ())
        self.queue = gevent.queue.Queue(maxsize=queue_size)
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.reconcile_interval = reconcile_interval
        # Told when a batch begins and ends and before each event (begin_batch,
        # before_event(name), end_batch), so handlers may share state per batch.
        self.batch_observer = batch_observer or _NoObserver()
        self.state = "starting"
        self.connected_since = None
        self.events_applied = 0
        self.applied_by_name = collections.Counter()  # event name -> applied (for /metrics)
        self._closed = gevent.event.Event()
        self._stop = gevent.event.Event()
        self._conn = None
        self._greenlets = []

    # ----- connection ----------------------------------------------------
    def _on_event(self, event):
        name = event.get("Event-Name")
        if name == "CUSTOM":
            name = event.get("Event-Subclass")
        if name in self.handlers:
            self.queue.put((name, event))  # blocks when full: back-pressure, never loss

    def _on_close(self):
        self._closed.set()

    def _connect(self):
        conn = ESLConnection(
            self.config["FREESWITCH_HOST"], self.config["FREESWITCH_PORT"],
            self.config["FREESWITCH_PASSWORD"], timeout=self.config.get("FREESWITCH_TIMEOUT", 5.0),
            events=subscription_names(self.handlers), on_event=self._on_event,
            on_close=self._on_close)
        self._closed.clear()
        conn.connect()
        return conn

    def run_connection(self):
        """Connect, reconcile, wait for the drop, back off, repeat; until stop()."""
        delay = 0.5
        ever_connected = False
        where = f"{self.config['FREESWITCH_HOST']}:{self.config['FREESWITCH_PORT']}"
        while not self._stop.is_set():
            try:
                self._conn = self._connect()
            except FreeSwitchUnavailable as exc:
                self.state = "unreachable"
                logger.warning("FreeSWITCH unreachable at %s (%s); retrying in %.1fs",
                               where, exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2,
                            MAX_BACKOFF if ever_connected else FIRST_CONNECT_MAX_BACKOFF)
                continue
            delay, ever_connected = 0.5, True
            self.state = "connected"
            self.connected_since = time.time()
            logger.info("connected to FreeSWITCH at %s; subscribed to %s", where,
                        " ".join(subscription_names(self.handlers)))
            self.request_reconcile()
            # Again once originates that were in flight have had time to show up.
            later = gevent.spawn_later(RECONCILE_GRACE + 1, self.request_reconcile)
            self._closed.wait()
            later.kill()
            self._conn = None
            if not self._stop.is_set():
                self.state = "reconnecting"
                logger.warning("lost the event connection to FreeSWITCH at %s; reconnecting",
                               where)

    def request_reconcile(self):
        """Take a channel snapshot and queue its reconciliation behind the events received.

        The snapshot's time is taken before `show channels` is sent: a call
        changed after it is not judged by it. Live calls missing from the list
        are asked about with `uuid_exists` here, on the connection, so the
        writer only closes calls FreeSWITCH confirmed gone.
        """
        conn = self._conn
        if conn is None:
            return
        taken_at = utcnow()
        try:
            with db.connection_context():
                snapshot = take_channel_snapshot(conn.api, taken_at, self.reconcile_suspects,
                                                 max_queries=MAX_DUMPS)
        except FreeSwitchUnavailable as exc:
            logger.warning("could not list channels for reconciliation: %s", exc)
            return
        except ValueError as exc:
            logger.warning("no reconciliation: %s", exc)
            return
        self.queue.put((_RECONCILE, snapshot))

    def _periodic_reconcile(self):
        while not self._stop.wait(self.reconcile_interval):
            self.request_reconcile()

    # ----- the writer ----------------------------------------------------
    def _take_batch(self):
        first = self.queue.get()
        batch = [first]
        deadline = time.monotonic() + self.batch_wait
        while len(batch) < self.batch_size:
            try:
                batch.append(self.queue.get_nowait())
            except gevent.queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self.queue.get(timeout=remaining))
                except gevent.queue.Empty:
                    break
        return batch

    def apply_batch(self, batch):
        """Apply events in one transaction; publish after commit.

        The batch is first applied without a savepoint per event (a SAVEPOINT and a
        RELEASE per event are two more round trips to PostgreSQL). Should any event
        fail, that transaction rolls back and the batch is applied again with each event
        in its own savepoint: an event whose handler fails rolls back its savepoint and,
        with it, the news it had queued: nothing is announced that was not stored. The news of
        the batch is stored with it (one INSERT) and sent after the commit. An event
        that asked for something urgent (Outbox.add_first: a phone to ring) commits the
        events so far at once, and the rest follow in a transaction of their own.
        Events committed are removed from batch: a retry applies only the rest.
        """
        while batch:
            done = self._apply_part(batch)
            self.events_applied += done
            self.applied_by_name.update(name for name, _ in batch[:done]
                                        if name is not _RECONCILE)
            del batch[:done]

    def _apply_part(self, batch):
        """Apply batch up to its end or its first urgent event, in one transaction; returns
        how many events were applied."""
        # The writer keeps its connection from batch to batch (opening one and setting its
        # pragmas cost ~10 % of a small batch); a batch that fails drops it (run_writer).
        if db.is_closed():
            db.connect()
        try:
            return self._apply_in_one_transaction(batch, careful=False)
        except Exception as exc:
            self.batch_observer.end_batch()
            if is_transient_conflict(exc) or isinstance(exc, _DATABASE_DOWN):
                raise  # not an event's fault: run_writer applies the whole batch again
            # Rolled back whole: nothing of it was stored or announced. Again, each event
            # in its own savepoint, so that only the failing one is skipped.
            logger.debug("a batch of %d events failed (%r); applying it event by event",
                         len(batch), exc)
            if db.is_closed():
                db.connect()
            return self._apply_in_one_transaction(batch, careful=True)

    def _apply_in_one_transaction(self, batch, careful):
        outbox = Outbox()
        observer = self.batch_observer
        applied = 0
        with outbox.atomic():
            observer.begin_batch(batch)
            for name, event in batch:
                observer.before_event("reconcile" if name is _RECONCILE else name)
                if careful:
                    self._apply_one(name, event, outbox)
                else:
                    self._apply_plain(name, event, outbox)
                applied += 1
                if outbox.urgent:
                    break
            observer.end_batch()
        return applied

    def _apply_plain(self, name, event, outbox):
        """One event, no savepoint of its own: a failure fails the whole transaction."""
        if name is _RECONCILE:
            closed, adopted = self.reconcile(event, outbox)
            if closed or adopted:
                logger.info("reconciled: %d calls closed, %d adopted", closed, adopted)
        else:
            self.handlers[name](event, outbox)
            log_applied(self.config.get("FREESWITCH_NODE"), name, event)

    def _apply_one(self, name, event, outbox, retry=True):
        """One event in its own savepoint; a failure drops what it wrote and queued."""
        observer = self.batch_observer
        try:
            with outbox.savepoint():
                self._apply_plain(name, event, outbox)
        except CallChangedMeanwhile:
            observer.begin_batch()  # the API moved the call first: apply on what it stored
            if retry:
                self._apply_one(name, event, outbox, retry=False)
            else:
                logger.warning("%s skipped: its call kept changing under it", name)
        except Exception:
            observer.begin_batch()  # its savepoint rolled back: reload calls
            logger.exception("handler for %s failed; event skipped",
                             "reconcile" if name is _RECONCILE else name)

    def run_writer(self):
        while True:
            batch = self._take_batch()
            attempt = 0
            while True:
                try:
                    self.apply_batch(batch)
                    break
                except Exception as exc:
                    attempt += 1
                    if is_transient_conflict(exc) and attempt <= 3:
                        # A deadlock's victim (an API request locked the call and its agent
                        # in the other order): rolled back, the other side went on.
                        logger.warning("a deadlock rolled back %d events; applying them "
                                       "again", len(batch))
                        gevent.sleep(random.uniform(0.005, 0.05))
                        continue
                    # The database itself failed (locked, down): keep the batch and retry
                    # rather than lose events; the bounded queue holds the rest. The
                    # connection may be broken: the retry opens a new one.
                    _drop_connection()
                    logger.exception("could not commit %d events (attempt %d); retrying",
                                     len(batch), attempt)
                    gevent.sleep(min(2 ** attempt, 10))

    # ----- lifetime ------------------------------------------------------
    def start(self):
        self._greenlets = [gevent.spawn(self.run_writer), gevent.spawn(self.run_connection),
                           gevent.spawn(self._periodic_reconcile)]
        return self

    def stop(self):
        self._stop.set()
        if self._conn is not None:
            self._conn.close()
        self._closed.set()
        gevent.killall(self._greenlets, timeout=5)
