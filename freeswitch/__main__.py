"""The `events` process: one subscribed Event Socket connection per FreeSWITCH node.

Run as `python -m freeswitch [--node NAME]` (NAME from FREESWITCH_NODES; without it the
first node). Builds its objects here and nowhere else.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import redis  # noqa: E402

from gevent_setup import make_db_cooperative  # noqa: E402

make_db_cooperative()

from config import load_config  # noqa: E402
from freeswitch.events import logline  # noqa: E402
from freeswitch.events import queues as queue_events  # noqa: E402
from freeswitch.events import recordings as recording_events  # noqa: E402
from freeswitch.events import sip as sip_events  # noqa: E402
from freeswitch.events.calls import CallEventHandlers  # noqa: E402
from freeswitch.events.listener import RECONCILE_GRACE, EventListener  # noqa: E402
from services import nodes  # noqa: E402
from services.auth import REDACTING_FILTER, install_log_redaction  # noqa: E402
from services.calls import lookup  # noqa: E402
from services.container import build_process_services  # noqa: E402

logger = logging.getLogger("events")


def report_state(listener, redis_conn, node, interval=5.0, count_interval=1.0):
    """Tell the web processes (health, metrics, the choice of a node for a new call) how
    this node's ESL connection is doing, and add the events applied to the shared counters."""
    reported, last_state = {}, 0.0
    while True:
        try:
            if time.monotonic() - last_state >= interval:
                nodes.report_state(redis_conn, node, {
                    "state": listener.state, "since": listener.connected_since,
                    "events_applied": listener.events_applied,
                    "queue": listener.queue.qsize()}, ttl=interval * 3)
                last_state = time.monotonic()
            counts = dict(listener.applied_by_name)
            nodes.add_applied_events(redis_conn, node, {
                name: n - reported.get(name, 0) for name, n in counts.items()
                if n != reported.get(name, 0)})
            reported = counts
        except redis.RedisError as exc:
            logger.debug("could not report state: %s", exc)
        gevent.sleep(count_interval)


def build(cfg):
    services = build_process_services(cfg)
    node = cfg.get("FREESWITCH_NODE") or nodes.DEFAULT_NODE
    configured = [n.name for n in nodes.parse_nodes(cfg)]
    call_handlers = CallEventHandlers(services.calls, grace_seconds=RECONCILE_GRACE, node=node,
                                      calls_of_node=lookup.of_node(node, configured))
    handlers = call_handlers.subscriptions()
    for domain in (recording_events, sip_events):
        handlers.update(domain.subscriptions(services))
    queue_events.add_to(handlers, services, call_handlers)
    listener = EventListener(cfg, handlers, call_handlers.reconcile,
                             batch_size=cfg["EVENT_BATCH_SIZE"], batch_wait=cfg["EVENT_BATCH_WAIT"],
                             reconcile_interval=float(cfg.get("RECONCILE_INTERVAL", 60)),
                             batch_observer=call_handlers,
                             reconcile_suspects=call_handlers.channels_to_check)
    services.listener = listener
    return services, listener


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m freeswitch", description=__doc__)
    parser.add_argument("--node", help="the FreeSWITCH node (a FREESWITCH_NODES name) to listen "
                                       "to; default: the first")
    args = parser.parse_args(argv)
    cfg = nodes.node_config(load_config(), args.node)
    logging.basicConfig(level=cfg["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    logline.install(cfg["LOG_LEVEL"], REDACTING_FILTER)
    services, listener = build(cfg)
    listener.start()
    background = [gevent.spawn(report_state, listener, services.redis, cfg["FREESWITCH_NODE"])]
    for task in getattr(services, "background_tasks", []):
        background.append(gevent.spawn(task))
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    logger.info("events process started (FreeSWITCH node %s at %s:%s)", cfg["FREESWITCH_NODE"],
                cfg["FREESWITCH_HOST"], cfg["FREESWITCH_PORT"])
    stop.wait()
    logger.info("events process stopping")
    listener.stop()
    gevent.killall(background, timeout=2)


if __name__ == "__main__":
    main()
