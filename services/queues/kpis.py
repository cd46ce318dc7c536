"""Wiring of the queue KPIs: statistics and staffing (web); rollup schedule, snapshots (events)."""
from services.jobs import periodic_enqueue
from services.queues.snapshot import SnapshotPublisher
from services.queues.staffing import Staffing
from services.queues.statistics import QueueStatistics

ROLLUP_JOB = "workers.queue_rollups.refresh_recent"
ROLLUP_QUEUE = "default"
ROLLUP_LOCK_KEY = "cc:queues:rollups"


def register(services):
    """services.queue_statistics / queue_staffing; the events process enqueues the rollup job
    every QUEUE_ROLLUP_INTERVAL (once per deployment) and publishes queue snapshots."""
    services.queue_statistics = QueueStatistics()
    services.queue_staffing = Staffing()
    interval = float(services.config.get("QUEUE_ROLLUP_INTERVAL", 60.0))
    services.background_tasks.append(periodic_enqueue(services.redis, ROLLUP_LOCK_KEY, interval,
                                                      ROLLUP_QUEUE, ROLLUP_JOB,
                                                      first_delay=min(5.0, interval)))
    services.background_tasks.append(SnapshotPublisher(services).run)
