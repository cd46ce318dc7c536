"""The outbox relay: sends news left in the database, in id order, once Redis answers."""
import logging
import threading

import peewee
import redis

from services.outbox_send import WAKE_KEY, SendLock, send_stored

logger = logging.getLogger(__name__)


class OutboxRelay:
    """Drains outbox rows left behind (Redis was down, a sender was busy, a process died).

    Runs in the events and worker processes; the Redis send lock lets one relay
    (or one committing process) send at a time, so rows go out once and in order.
    """

    def __init__(self, publisher, redis_conn, idle=1.0, limit=500, max_backoff=5.0):
        self.publisher = publisher
        self.redis = redis_conn
        self.idle = idle
        self.limit = limit
        self.max_backoff = max_backoff
        self._stopped = threading.Event()

    def stop(self):
        self._stopped.set()

    def drain(self):
        """Send every stored row, oldest first; how many went out (0 if another sender is busy)."""
        lock = SendLock(self.redis)
        if not lock.acquire():
            return 0
        total = 0
        try:
            more = True
            while more:
                sent, more = send_stored(self.publisher, self.redis, self.limit)
                total += sent
                if more:
                    lock.extend()
        finally:
            lock.release()
        if total:
            logger.info("outbox relay sent %d messages that had waited", total)
        return total

    def run(self):
        """Background task: drain, then wait for a wake-up or a second; ride out outages."""
        failures = 0
        while not self._stopped.is_set():
            try:
                self.drain()
                self.redis.blpop([WAKE_KEY], timeout=self.idle)
                if failures:
                    logger.info("outbox relay: Redis answers again; waiting news is sent")
                failures = 0
            except redis.RedisError as exc:
                failures += 1
                if failures == 1:
                    logger.warning("outbox relay: Redis unreachable (%s); news waits in the "
                                   "database until it answers", exc)
                self._stopped.wait(min(0.25 * 2 ** failures, self.max_backoff))
            except peewee.DatabaseError as exc:
                logger.warning("outbox relay: database error (%s); retrying", exc)
                self._stopped.wait(self.idle)
            except Exception:  # the relay must outlive any one failure
                logger.exception("outbox relay: unexpected error; retrying")
                self._stopped.wait(self.idle)


def register(services):
    """Run the relay as one of the events process's background tasks."""
    services.outbox_relay = OutboxRelay(services.publisher, services.redis)
    services.background_tasks.append(services.outbox_relay.run)
