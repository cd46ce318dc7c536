"""The worker process: RQ workers that ride out Redis outages, and the outbox relay."""
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time

import redis
from rq import Worker

from config import load_config
from models import init_db
from services.auth import install_log_redaction
from services.container import build_process_services
from services.jobs import QUEUES
from services.outbox_relay import OutboxRelay
from services.publisher import Publisher
from services.redis_client import make_redis
from services.webhooks.fanout import QUEUE as WEBHOOK_QUEUE
from workers.context import set_services

logger = logging.getLogger("worker")


class StoppableWorker(Worker):
    """An RQ worker that remembers whether it was asked to stop (SIGTERM, SIGINT), so that
    only a Redis failure, never a shutdown, makes the loop below start it again."""

    stop_asked = False

    def request_stop(self, signum, frame):
        self.stop_asked = True
        super().request_stop(signum, frame)


def _exit_now(signum, frame):
    raise SystemExit(0)


def wait_for_redis(conn, first_delay=0.5, max_delay=10.0):
    """Block until Redis answers PING, backing off; the seconds waited."""
    delay, waited = first_delay, 0.0
    while True:
        try:
            conn.ping()
            return waited
        except redis.RedisError:
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, max_delay)


def run_worker(conn, names, worker_class=StoppableWorker, with_scheduler=True, **wait):
    """Run an RQ worker until asked to stop; when Redis goes away (RQ then quits its loop),
    wait until it answers again and start a new worker, without a process restart."""
    while True:
        worker = worker_class(names, connection=conn)
        try:
            worker.work(with_scheduler=with_scheduler)
        except redis.RedisError as exc:  # raised by start-up or teardown while Redis is down
            logger.debug("the RQ worker stopped on a Redis error: %s", exc)
        if worker.stop_asked:
            return
        # RQ's handlers would talk to Redis: until the next worker, a signal just exits.
        signal.signal(signal.SIGTERM, _exit_now)
        signal.signal(signal.SIGINT, _exit_now)
        try:
            conn.ping()
        except redis.RedisError as exc:
            logger.error("Redis is unreachable (%s): jobs pause until it answers; the worker "
                         "waits and resumes by itself", exc)
            waited = wait_for_redis(conn, **wait)
            logger.warning("Redis answers again after %.1fs: the worker resumes", waited)
        else:
            logger.error("the RQ worker loop ended unexpectedly; starting it again")
            time.sleep(1.0)


def _exit_with(parent_pid):
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(0)


def run_relay(cfg, parent_pid):
    """The outbox relay, in a child process with its own database and Redis connections
    (RQ forks a process per job: a connection must never be shared with those)."""
    threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True).start()
    init_db(cfg["DATABASE_URL"])
    conn = make_redis(cfg["REDIS_URL"])
    relay = OutboxRelay(Publisher(conn, history=cfg.get("STREAM_HISTORY", 1000)), conn)
    relay.run()


def run_webhook_worker(cfg, parent_pid):
    """An RQ worker for the "webhooks" queue only, in a child process of its own: a slow
    receiver holds up one of these, never the other queues or the other webhooks."""
    threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True).start()
    set_services(build_process_services(cfg))
    run_worker(make_redis(cfg["REDIS_URL"], socket_timeout=None), [WEBHOOK_QUEUE])


def start_webhook_workers(cfg):
    """WEBHOOK_WORKERS processes serving the webhook deliveries (not daemonic: RQ's
    scheduler is a child process of theirs; each exits with this one by itself)."""
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=run_webhook_worker, args=(cfg, os.getpid()),
                                name=f"webhook-worker-{n}", daemon=False)
                for n in range(max(0, int(cfg.get("WEBHOOK_WORKERS", 4))))]
    for child in children:
        child.start()
    return children


def main(argv=None):
    cfg = load_config()
    logging.basicConfig(level=cfg["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    relay = multiprocessing.get_context("fork").Process(target=run_relay, args=(cfg, os.getpid()),
                                                        name="outbox-relay", daemon=True)
    relay.start()
    names = (argv or sys.argv[1:]) or list(QUEUES)
    children = [relay] + (start_webhook_workers(cfg) if WEBHOOK_QUEUE not in names else [])
    set_services(build_process_services(cfg))
    conn = make_redis(cfg["REDIS_URL"], socket_timeout=None)
    try:
        run_worker(conn, names)
    finally:
        for child in children:
            child.terminate()


if __name__ == "__main__":
    main()
