"""The `events` process: one subscribed Event Socket connection per FreeSWITCH node.

Run as `python -m freeswitch`. Builds its objects here and nowhere else.
"""
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import redis  # noqa: E402

from gevent_setup import make_db_cooperative  # noqa: E402

make_db_cooperative()

from config import load_config  # noqa: E402
from freeswitch.events import recordings as recording_events  # noqa: E402
from freeswitch.events import sip as sip_events  # noqa: E402
from freeswitch.events.calls import CallEventHandlers  # noqa: E402
from freeswitch.events.listener import RECONCILE_GRACE, EventListener  # noqa: E402
from services.auth import install_log_redaction  # noqa: E402
from services.container import build_process_services  # noqa: E402
from services.health import EVENTS_STATE_KEY  # noqa: E402

logger = logging.getLogger("events")


def report_state(listener, redis_conn, interval=5.0):
    """Tell the web processes (health, metrics) how the ESL connection is doing."""
    while True:
        state = {"state": listener.state, "since": listener.connected_since,
                 "events_applied": listener.events_applied,
                 "queue": listener.queue.qsize(), "at": time.time()}
        try:
            redis_conn.set(EVENTS_STATE_KEY, json.dumps(state), ex=int(interval * 3))
        except redis.RedisError as exc:
            logger.debug("could not report state: %s", exc)
        gevent.sleep(interval)


def build(cfg):
    services = build_process_services(cfg)
    call_handlers = CallEventHandlers(services.calls, grace_seconds=RECONCILE_GRACE)
    handlers = call_handlers.subscriptions()
    for domain in (recording_events, sip_events):
        handlers.update(domain.subscriptions(services))
    listener = EventListener(cfg, handlers, call_handlers.reconcile,
                             batch_size=cfg["EVENT_BATCH_SIZE"], batch_wait=cfg["EVENT_BATCH_WAIT"],
                             reconcile_interval=float(cfg.get("RECONCILE_INTERVAL", 60)),
                             batch_observer=call_handlers,
                             reconcile_suspects=call_handlers.channels_to_check)
    services.listener = listener
    return services, listener


def main():
    cfg = load_config()
    logging.basicConfig(level=cfg["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    services, listener = build(cfg)
    listener.start()
    background = [gevent.spawn(report_state, listener, services.redis)]
    for task in getattr(services, "background_tasks", []):
        background.append(gevent.spawn(task))
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    logger.info("events process started (FreeSWITCH %s:%s)", cfg["FREESWITCH_HOST"],
                cfg["FREESWITCH_PORT"])
    stop.wait()
    logger.info("events process stopping")
    listener.stop()
    gevent.killall(background, timeout=2)


if __name__ == "__main__":
    main()
