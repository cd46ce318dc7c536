"""The events process's first connection: FreeSWITCH starting just after the service."""
import time

import gevent

from freeswitch.events.listener import EventListener
from tests.conftest import free_port
from tests.esl_sim import ESLSimulator


def test_a_switch_that_comes_up_late_is_reached_within_seconds(bound_db):
    """Nothing was ever connected: the backoff stays short (a call placed in the switch's
    first seconds must not wait up to 30 s for its events to be seen)."""
    port = free_port()
    config = {"FREESWITCH_HOST": "127.0.0.1", "FREESWITCH_PORT": port,
              "FREESWITCH_PASSWORD": "ClueCon", "FREESWITCH_TIMEOUT": 1.0}
    listener = EventListener(config, {"CHANNEL_CREATE": lambda event, outbox: None},
                             reconcile=lambda snapshot, outbox: (0, 0))
    runner = gevent.spawn(listener.run_connection)
    sim = None
    try:
        gevent.sleep(4.0)  # four failed attempts: the backoff has grown past 2 s
        assert listener.state == "unreachable"
        sim = ESLSimulator(host="127.0.0.1", port=port, password="ClueCon").start()
        up_at = time.monotonic()
        while listener.state != "connected" and time.monotonic() - up_at < 8:
            gevent.sleep(0.05)
        assert listener.state == "connected"
        # Attempts at about 0, 0.5, 1.5 and 3.5 s: with the first-connection cap of 2 s the
        # next is at 5.5 s (1.5 s after the switch came up); without it, at 7.5 s (3.5 s).
        assert time.monotonic() - up_at < 3.0
    finally:
        listener.stop()
        runner.kill()
        if sim is not None:
            sim.stop()
