"""The worker process rides out a Redis outage: its RQ loop waits for Redis and resumes."""
import functools
import signal
import threading

import gevent
import redis
from rq import Queue, SimpleWorker

from tests.conftest import RedisServer, wait_until
from workers.__main__ import run_worker

STOP = threading.Event()


def shut_redis_down(url):
    """A job that stops Redis while the worker is busy with it."""
    try:
        redis.Redis.from_url(url).shutdown(nosave=True)
    except redis.RedisError:
        pass


def mark_done(url, key):
    redis.Redis.from_url(url).set(key, "1")


class InProcessWorker(SimpleWorker):
    """A real RQ worker that runs jobs in this process and stops when the test says so."""

    stop_asked = False

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        if STOP.is_set():
            self.stop_asked = True
            return None
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)


def test_the_worker_waits_for_redis_and_resumes_without_a_restart(tmp_path, caplog):
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    server = RedisServer(tmp_path).start()
    conn = redis.Redis.from_url(server.url)
    Queue("default", connection=conn).enqueue(shut_redis_down, server.url)
    loop = gevent.spawn(run_worker, conn, ["default"], with_scheduler=False,
                        worker_class=functools.partial(InProcessWorker, worker_ttl=16),
                        first_delay=0.1, max_delay=0.5)
    try:
        # RQ itself gives up on an error outside its dequeue ("quitting"): the loop does not
        wait_until(lambda: "Redis is unreachable" in caplog.text, 20, 0.1,
                   "the worker to notice the outage")
        assert not loop.dead
        server.start()
        Queue("default", connection=conn).enqueue(mark_done, server.url, "after-outage")
        wait_until(lambda: conn.get("after-outage") == b"1", 20, 0.1,
                   "the worker to take a job once Redis is back")
        assert "Redis answers again" in caplog.text
        STOP.set()  # checked before the next dequeue: one more job wakes the worker
        Queue("default", connection=conn).enqueue(mark_done, server.url, "last")
        loop.join(timeout=10)
        assert loop.dead  # and it stops when asked, instead of starting again
    finally:
        loop.kill()
        STOP.clear()
        server.stop()
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
