"""The deployment's figures for `/metrics`, read at scrape time from Redis and the database.

Counters that several processes add to (events applied per node) live in Redis, where
every events process adds its counts (services.nodes.add_applied_events); states and
depths are read as they are now. A part whose store is down is left out of the answer
and `callcenter_redis_up` / `callcenter_database_up` say why.
"""
import logging

import peewee
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rq.registry import FailedJobRegistry

from models import db
from services import nodes as node_registry
from services.jobs import ALL_QUEUES, queue
from services.live.metrics import count_websocket_clients
from services.webhooks.backlog import read_backlog

logger = logging.getLogger(__name__)


class ClusterCollector:
    """A prometheus_client collector over the shared state of one deployment."""

    def __init__(self, services):
        self.services = services
        self.redis = services.redis
        self.node_names = [n.name for n in node_registry.parse_nodes(services.config)]

    def collect(self):
        redis_up = GaugeMetricFamily("callcenter_redis_up", "1 when Redis answered this scrape")
        try:
            families = list(self._from_redis())
            redis_up.add_metric([], 1)
        except redis.RedisError as exc:
            logger.warning("/metrics: Redis unavailable: %s", exc)
            families = []
            redis_up.add_metric([], 0)
        yield redis_up
        yield from families
        yield from self._from_database()

    def _from_redis(self):
        yield from self._node_states()
        events = CounterMetricFamily(
            "callcenter_events_ingested", "FreeSWITCH events applied by the events processes "
            "(parsed, stored, committed), by node and event type", labels=("node", "type"))
        for (node, name), count in sorted(node_registry.applied_events(self.redis).items()):
            events.add_metric([node, name], count)
        yield events
        clients, web_processes = count_websocket_clients(self.redis)
        yield GaugeMetricFamily("callcenter_websocket_clients",
                                "WebSocket clients connected to all web processes", clients)
        yield GaugeMetricFamily("callcenter_web_processes",
                                "web processes that reported their WebSocket clients recently",
                                web_processes)
        yield from self._rq()

    def _node_states(self):
        states = node_registry.read_states(self.redis, self.node_names)
        connected = GaugeMetricFamily(
            "callcenter_esl_connected", "1 when the node's events process reports its Event "
            "Socket connection up (0: down, reconnecting, or no report)", labels=("node",))
        reporting = GaugeMetricFamily(
            "callcenter_events_process_up", "1 when the node's events process reported in the "
            "last 15 seconds", labels=("node",))
        backlog = GaugeMetricFamily(
            "callcenter_events_queue", "events received and not yet applied, by node",
            labels=("node",))
        for name in self.node_names:
            state = states.get(name) or {}
            connected.add_metric([name], int(state.get("state") == node_registry.CONNECTED))
            reporting.add_metric([name], int(bool(state)))
            if state:
                backlog.add_metric([name], int(state.get("queue") or 0))
        yield from (connected, reporting, backlog)

    def _rq(self):
        depth = GaugeMetricFamily("callcenter_rq_queue_depth", "RQ jobs waiting, by queue",
                                  labels=("queue",))
        failed = GaugeMetricFamily("callcenter_rq_failed_jobs",
                                   "RQ jobs in the failed registry, by queue", labels=("queue",))
        for name in ALL_QUEUES:
            depth.add_metric([name], queue(name, self.redis).count)
            failed.add_metric([name], FailedJobRegistry(name, connection=self.redis).count)
        yield from (depth, failed)

    def _from_database(self):
        database_up = GaugeMetricFamily("callcenter_database_up",
                                        "1 when the database answered this scrape")
        live = GaugeMetricFamily("callcenter_calls_live", "calls initiated, ringing or in "
                                 "progress, by FreeSWITCH node", labels=("node",))
        commands = self.services.commands
        try:
            with db.connection_context():
                counts = commands.live_calls_by_node()
                backlog, _ = read_backlog(self.redis)
            database_up.add_metric([], 1)
        except peewee.PeeweeException as exc:
            logger.warning("/metrics: database unavailable: %s", exc)
            database_up.add_metric([], 0)
            yield database_up
            return
        for name, count in counts.items():
            live.add_metric([name], count)
        yield from (database_up, live)
        yield from self._webhooks(backlog)

    @staticmethod
    def _webhooks(backlog):
        """The webhook backlog by webhook id (never its URL); status_callbacks: every call's
        status callback together."""
        pending = GaugeMetricFamily(
            "callcenter_webhook_deliveries_pending", "webhook deliveries not yet sent (waiting "
            "in Redis or stored pending: first attempt or a retry), by webhook id",
            labels=("webhook",))
        oldest = GaugeMetricFamily(
            "callcenter_webhook_oldest_pending_seconds", "age of the oldest webhook delivery "
            "not yet sent, by webhook id (0 when none waits)", labels=("webhook",))
        for label, count, age in backlog.ages():
            pending.add_metric([label], count)
            oldest.add_metric([label], round(age, 3))
        yield from (pending, oldest)


def cluster_metrics_text(services):
    registry = CollectorRegistry()
    registry.register(ClusterCollector(services))
    return generate_latest(registry)
