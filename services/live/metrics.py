"""The `metrics` channel: MetricsPublisher (events process), RealtimeMetrics (REST), client counts.

MetricsPublisher.run (a services.background_tasks entry) publishes the figures
every METRICS_INTERVAL under a Redis leader lock, so a deployment publishes once
whatever the number of events processes. Each web process's hub reports its
WebSocket client count here, and the publisher adds them up.
"""
import datetime
import json
import logging
import time

import gevent
import peewee
import psutil
import redis

from models import Call, db, utcnow
from services import nodes as node_registry
from services import redis_client
from services.errors import Unavailable
from services.jobs import QUEUES, queue
from services.live.leader import LeaderLock
from services.live.performance import PerformanceAlerts
from services.live.process import now_iso, process_id, rss_mb

logger = logging.getLogger(__name__)

CLIENTS_KEY = redis_client.KEY_PREFIX + "ws:clients"
METRICS_LAST_KEY = redis_client.KEY_PREFIX + "metrics:last"
METRICS_LEADER_KEY = redis_client.KEY_PREFIX + "metrics:leader"

CLIENT_REPORT_STALE = 15.0    # a count older than this belongs to a dead process


def _iso_time(epoch):
    """An epoch time (as the events process stores it) as ISO 8601 UTC text, like every time
    of the API; None stays None."""
    if not isinstance(epoch, (int, float)):
        return None
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_websocket_clients(redis_conn, process, clients):
    """Store this web process's client count, where count_websocket_clients adds them up."""
    report = json.dumps({"clients": clients, "at": time.time()})
    redis_conn.hset(CLIENTS_KEY, process, report)


def count_websocket_clients(redis_conn, now=None):
    """(clients, web processes) across every web process that reported recently."""
    now = now or time.time()
    clients = processes = 0
    stale = []
    for field, raw in redis_conn.hgetall(CLIENTS_KEY).items():
        try:
            report = json.loads(raw)
        except ValueError:
            report = {"at": 0}
        if report.get("at", 0) < now - CLIENT_REPORT_STALE:
            stale.append(field)
            continue
        clients += int(report.get("clients", 0))
        processes += 1
    if stale:
        redis_conn.hdel(CLIENTS_KEY, *stale)
    return clients, processes


class MetricsPublisher:
    """Every METRICS_INTERVAL: gather the figures, publish them on `metrics`, from one process."""

    WINDOW = datetime.timedelta(minutes=5)

    def __init__(self, services, role="events"):
        self.config = services.config
        self.redis = services.redis
        self.notifier = services.live_notifier
        self.interval = float(self.config.get("METRICS_INTERVAL", 10.0))
        self.lock = LeaderLock(self.redis, METRICS_LEADER_KEY, ttl=max(3 * self.interval, 1.0))
        self.alerts = PerformanceAlerts(self.notifier, self.config, role=role)
        self.process = None

    def run(self):
        """The background task: loop until killed, releasing the lock on the way out."""
        self.process = psutil.Process()
        try:
            while True:
                started = time.monotonic()
                try:
                    self.tick()
                except Exception:  # one bad tick must not end the channel
                    logger.exception("metrics tick failed")
                gevent.sleep(max(0.05, self.interval - (time.monotonic() - started)))
        finally:
            self.lock.release()

    def tick(self):
        """One round; returns the published figures, or None when another process leads."""
        rss = rss_mb(self.process)
        self.alerts.memory(rss)
        if not self.lock.hold():
            return None
        try:
            figures = self.collect(rss)
        except redis.RedisError as exc:
            logger.debug("metrics skipped, Redis unavailable: %s", exc)
            return None
        seq = self.notifier.metrics_snapshot(figures)
        if seq is not None:
            self._store_last(figures)
            self.alerts.queue_backlog(figures["queues"])
        return figures

    def collect(self, rss):
        clients, web_processes = count_websocket_clients(self.redis)
        return {
            "generated_at": now_iso(),
            "interval_seconds": self.interval,
            **self._call_figures(),
            "websocket_clients": clients,
            "web_processes": web_processes,
            "freeswitch": self._freeswitch_state(),
            "queues": self._queue_depths(),
            "publisher": {"process": process_id(), "rss_mb": rss},
        }

    def _call_figures(self):
        since = utcnow() - self.WINDOW
        try:
            with db.connection_context():
                live = Call.status.in_(Call.LIVE_STATUSES)
                active = Call.select().where(live).count()
                started = Call.select().where(Call.created_at >= since).count()
                ended = Call.select().where(Call.ended_at >= since).count()
                qualities = [q for (q,) in Call.select(Call.quality)
                             .where(live & Call.quality.is_null(False)).tuples()]
        except peewee.PeeweeException as exc:
            logger.warning("metrics: database unavailable: %s", exc)
            return {"active_calls": None, "calls_started_5m": None, "calls_ended_5m": None,
                    "average_mos": None, "mos_samples": 0}
        mos = [m for m in map(live_mos, qualities) if m is not None]
        return {"active_calls": active, "calls_started_5m": started, "calls_ended_5m": ended,
                "average_mos": round(sum(mos) / len(mos), 2) if mos else None,
                "mos_samples": len(mos)}

    def _freeswitch_state(self):
        """The first node's events connection (state, since), and every node's state."""
        names = [n.name for n in node_registry.parse_nodes(self.config)]
        states = node_registry.read_states(self.redis, names)
        by_node = {n: (states[n] or {}).get("state", "unknown") for n in names}
        first = states[names[0]] or {}
        return {"state": first.get("state", "unknown"), "since": _iso_time(first.get("since")),
                "nodes": by_node}

    def _queue_depths(self):
        return {name: queue(name, self.redis).count for name in QUEUES}

    def _store_last(self, figures):
        ttl = int(max(30, 3 * self.interval))
        self.redis.set(METRICS_LAST_KEY, json.dumps(figures, separators=(",", ":")), ex=ttl)


def live_mos(quality):
    """A live call's MOS from Call.quality: its summary's mos_avg, else the last live sample's."""
    if not isinstance(quality, dict):
        return None
    mos = quality.get("mos_avg")
    if mos is None:
        last = (quality.get("live") or {}).get("last") or {}
        mos = last.get("mos") if isinstance(last, dict) else None
    return mos if isinstance(mos, (int, float)) and not isinstance(mos, bool) else None


class RealtimeMetrics:
    """Read side of the metrics channel for the REST API: the last figures published."""

    def __init__(self, redis_conn):
        self.redis = redis_conn

    def latest(self):
        try:
            raw = self.redis.get(METRICS_LAST_KEY)
        except redis.RedisError:
            raise Unavailable("metrics are unavailable: Redis is down",
                              headers={"Retry-After": "5"}) from None
        if not raw:
            raise Unavailable("no metrics published recently; is the events process running?",
                              headers={"Retry-After": "10"})
        return json.loads(raw)
