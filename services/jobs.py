"""RQ queues and enqueueing with explicit timeouts, TTLs and retries.

Jobs are named by their dotted path ("workers.quality.summarize_call"), so that
services enqueue work without importing the worker modules that sit above them.
"""
import logging

import gevent
import redis
from rq import Queue, Retry

logger = logging.getLogger(__name__)

# The queues the `worker` process's main RQ worker serves (`python -m workers`), in this
# order: a worker takes from a later queue only when the earlier ones are empty.
# Transcription has its own queue, last: waiting transcriptions never go before a
# transcode, and `python -m workers transcripts` can serve them on a machine of their own.
QUEUES = ("default", "recordings", "quality", "transcripts")

# Every job kind states how long it may run, how long results and failures are
# kept, and how it is retried: the worker never guesses.
JOB_POLICY = {
    "quality": dict(job_timeout=60, result_ttl=3600, failure_ttl=7 * 86400,
                    retry=Retry(max=3, interval=[5, 30, 120])),
    "recordings": dict(job_timeout=600, result_ttl=3600, failure_ttl=7 * 86400,
                       retry=Retry(max=3, interval=[10, 60, 300])),
    # Transcribing takes about as long as the call (TRANSCRIPTION_JOB_TIMEOUT overrides).
    "transcripts": dict(job_timeout=3600, result_ttl=3600, failure_ttl=7 * 86400,
                        retry=Retry(max=3, interval=[10, 60, 300])),
    "default": dict(job_timeout=300, result_ttl=3600, failure_ttl=7 * 86400,
                    retry=Retry(max=2, interval=[30, 300])),
    # Webhook drains (workers/webhooks.py), served by their own worker processes: a
    # slow receiver never holds up the other queues. A drain is idempotent; its own
    # schedule (WEBHOOK_RETRY_SCHEDULE) retries deliveries, RQ's only a crashed job.
    "webhooks": dict(job_timeout=600, result_ttl=60, failure_ttl=86400,
                     retry=Retry(max=3, interval=[5, 30, 120])),
}

# Every queue a job is enqueued on, each served by some worker process: QUEUES by the main
# RQ worker, "webhooks" by the worker process's webhook workers (workers/__main__.py).
# Health and /metrics report all of them.
ALL_QUEUES = QUEUES + tuple(name for name in JOB_POLICY if name not in QUEUES)


def queue(name, redis_conn):
    return Queue(name, connection=redis_conn)


def enqueue(redis_conn, queue_name, func, *args, job_id=None, **overrides):
    """Enqueue func(*args) on queue_name with its policy; the job, or None if Redis is down."""
    policy = dict(JOB_POLICY[queue_name])
    policy.update(overrides)
    try:
        return queue(queue_name, redis_conn).enqueue(func, *args, job_id=job_id, **policy)
    except redis.RedisError as exc:
        logger.warning("could not enqueue %s%r: %s", getattr(func, "__name__", func), args, exc)
        return None


def enqueue_many(redis_conn, queue_name, calls):
    """Enqueue [(func, args)] on queue_name in one pipeline; returns the jobs or None."""
    policy = JOB_POLICY[queue_name]
    datas = [Queue.prepare_data(func, tuple(args), timeout=policy["job_timeout"],
                                result_ttl=policy["result_ttl"],
                                failure_ttl=policy["failure_ttl"], retry=policy["retry"])
             for func, args in calls]
    try:
        return queue(queue_name, redis_conn).enqueue_many(datas)
    except redis.RedisError as exc:
        logger.warning("could not enqueue %d jobs on %s: %s", len(datas), queue_name, exc)
        return None


def periodic_enqueue(redis_conn, lock_key, interval, queue_name, func, first_delay=0.0):
    """A background task that enqueues func every interval seconds, once per deployment.

    Every events process runs it; a Redis lock (SET NX EX) lets one of them
    enqueue per interval. Returns the callable to run in a greenlet.
    """
    def run():
        gevent.sleep(first_delay)
        while True:
            try:
                if redis_conn.set(lock_key, "1", nx=True, ex=max(1, int(interval))):
                    enqueue(redis_conn, queue_name, func)
            except redis.RedisError as exc:
                logger.warning("could not schedule %s: %s", func, exc)
            gevent.sleep(interval)
    return run
