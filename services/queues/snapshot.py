"""The `queue.snapshot` message: each queue's state now, published every second on change.

SnapshotPublisher.run is a background task of every events process; a Redis
leader lock (services/live/leader.py) lets one of them publish. Each second it
reads, per queue: callers waiting and the longest wait now, its members' agents
by state, and today's offered / answered / abandoned (short abandons apart),
service level and ASA (today = since local midnight in the zone of the queue's
hours, UTC for a queue without hours; same formulas as the statistics). A queue's
snapshot is published when it differs from the last one published (while callers
wait, the longest wait changes every second), and again every
QUEUE_SNAPSHOT_REFRESH seconds so that a late subscriber's resume has a recent one.
"""
import datetime
import logging
import time
import zoneinfo

import gevent
import peewee
from peewee import Case, fn

from models import db, utcnow
from models.agent import Agent
from models.queue import ABANDONED, ANSWERED, CLOSED, ENTRY_LIVE, Queue, QueueEntry, QueueMember
from services import redis_client
from services.live.leader import LeaderLock
from services.queues.kpi_rollups import SHORT_ABANDON_SECONDS, as_datetime, epoch_of
from services.queues.notifier import QueueNotifier

logger = logging.getLogger(__name__)

SNAPSHOT_LEADER_KEY = redis_client.KEY_PREFIX + "queues:snapshot:leader"


def _zone_of(hours):
    name = hours.get("timezone") if isinstance(hours, dict) else None
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _midnight_utc(zone, now):
    local = now.replace(tzinfo=datetime.timezone.utc).astimezone(zone)
    midnight = datetime.datetime.combine(local.date(), datetime.time.min, tzinfo=zone)
    return midnight.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def _ratio(part, whole, digits=4):
    return round(part / whole, digits) if whole else None


def today_figures(rows):
    """Today's figures from (status, callers, wait_sum, short, in_sl) rows of one queue."""
    by_status = {status: (n, w, s, sl) for status, n, w, s, sl in rows}
    offered = sum(int(n) for status, (n, *_) in by_status.items() if status != CLOSED)
    answered, answer_waits, _, in_sl = by_status.get(ANSWERED, (0, 0, 0, 0))
    abandoned, _, short, _ = by_status.get(ABANDONED, (0, 0, 0, 0))
    answered, abandoned, short = int(answered), int(abandoned), int(short or 0)
    return {"offered": offered, "answered": answered, "abandoned": abandoned,
            "short_abandoned": short,
            "service_level": _ratio(int(in_sl or 0), offered - short),
            "asa": _ratio(int(answer_waits or 0), answered, 1)}


class SnapshotCollector:
    """Reads every queue's snapshot from the database."""

    def collect(self, now=None):
        now = now or utcnow()
        queues = list(Queue.select(Queue.id, Queue.name, Queue.hours))
        waiting = {q: (n, as_datetime(oldest)) for q, n, oldest in
                   QueueEntry.select(QueueEntry.queue_id, fn.COUNT(QueueEntry.id),
                                     fn.MIN(QueueEntry.entered_at))
                   .where(QueueEntry.status.in_(ENTRY_LIVE))
                   .group_by(QueueEntry.queue_id).tuples()}
        agents = {}
        for queue_id, state, n in (QueueMember.select(QueueMember.queue, Agent.state,
                                                      fn.COUNT(Agent.id))
                                   .join(Agent).group_by(QueueMember.queue, Agent.state)
                                   .tuples()):
            agents.setdefault(queue_id, {})[state] = n
        zones = {q.id: _zone_of(q.hours) for q in queues}
        today = self._today(zones, now)
        result = {}
        for queue in queues:
            count, oldest = waiting.get(queue.id, (0, None))
            longest = max(0, int(epoch_of(now) - epoch_of(oldest))) if oldest else 0
            result[queue.id] = {
                "queue_id": queue.id, "name": queue.name, "callers_waiting": int(count),
                "longest_wait_seconds": longest, "agents": agents.get(queue.id, {}),
                "today": dict(today.get(queue.id) or today_figures([]),
                              tz=zones[queue.id].key),
            }
        return result

    @staticmethod
    def _today(zones, now):
        """{queue_id: today's figures}, one query per distinct zone."""
        e = QueueEntry
        wait = fn.COALESCE(e.wait_seconds, 0)
        short = fn.SUM(Case(None, [((e.status == ABANDONED) & (wait < SHORT_ABANDON_SECONDS),
                                    1)], 0))
        in_sl = fn.SUM(Case(None, [((e.status == ANSWERED)
                                    & (wait <= Queue.service_level_seconds), 1)], 0))
        figures = {}
        for zone in {z.key: z for z in zones.values()}.values():
            ids = [q for q, z in zones.items() if z.key == zone.key]
            rows = {}
            query = (e.select(e.queue_id, e.status, fn.COUNT(e.id), fn.SUM(wait), short, in_sl)
                     .join(Queue, on=(Queue.id == e.queue_id))
                     .where(e.entered_at >= _midnight_utc(zone, now), e.queue_id.in_(ids))
                     .group_by(e.queue_id, e.status).tuples())
            for queue_id, *row in query:
                rows.setdefault(queue_id, []).append(row)
            figures.update({q: today_figures(r) for q, r in rows.items()})
        return figures


class SnapshotPublisher:
    """Every QUEUE_SNAPSHOT_INTERVAL: publish each changed queue's snapshot, from one process."""

    def __init__(self, services):
        config = services.config or {}
        self.interval = float(config.get("QUEUE_SNAPSHOT_INTERVAL", 1.0))
        self.refresh = float(config.get("QUEUE_SNAPSHOT_REFRESH", 30.0))
        self.notifier = QueueNotifier(services.publisher)
        self.collector = SnapshotCollector()
        self.lock = LeaderLock(services.redis, SNAPSHOT_LEADER_KEY,
                               ttl=max(3 * self.interval, 1.0))
        self.last = {}  # queue_id -> (snapshot, monotonic time published)

    def run(self):
        try:
            while True:
                started = time.monotonic()
                try:
                    self.tick()
                except Exception:  # one bad tick must not end the channel
                    logger.exception("queue snapshot tick failed")
                gevent.sleep(max(0.05, self.interval - (time.monotonic() - started)))
        finally:
            self.lock.release()

    def tick(self, now=None):
        """One round; returns the queue ids published ([] when another process leads)."""
        if not self.lock.hold():
            self.last.clear()  # a new leader starts by publishing everything
            return []
        try:
            with db.connection_context():
                snapshots = self.collector.collect(now)
        except peewee.PeeweeException as exc:
            logger.warning("queue snapshot: database unavailable: %s", exc)
            return []
        published, clock = [], time.monotonic()
        for queue_id, snapshot in snapshots.items():
            previous = self.last.get(queue_id)
            if previous and previous[0] == snapshot and clock - previous[1] < self.refresh:
                continue
            data = dict(snapshot, generated_at=utcnow().isoformat(timespec="seconds") + "Z")
            if self.notifier.snapshot(data) is not None:
                self.last[queue_id] = (snapshot, clock)
                published.append(queue_id)
        for gone in set(self.last) - set(snapshots):
            del self.last[gone]
        return published
