"""One JSON line per applied FreeSWITCH event (logger `events.applied`, at DEBUG).

With the web's access log (one JSON line per request, with its request id and call id)
it lets one call be followed across processes: grep its call id. Off by default
(LOG_LEVEL=DEBUG turns it on): a busy switch sends thousands of events a second.
"""
import json
import logging
import sys
import time

TRAIL = logging.getLogger("events.applied")


def install(level, redacting_filter=None):
    """Bare JSON lines on stderr, like the access log (no timestamp prefix)."""
    if not TRAIL.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        if redacting_filter is not None:
            handler.addFilter(redacting_filter)
        TRAIL.addHandler(handler)
        TRAIL.propagate = False
    TRAIL.setLevel(level)


def log_applied(node, name, event):
    """Log one applied event, if the `events.applied` logger is on."""
    if not TRAIL.isEnabledFor(logging.DEBUG):
        return
    TRAIL.debug(json.dumps({
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "event": "freeswitch_event", "node": node, "name": name,
        "call_id": event.get("variable_cc_call_id"), "channel": event.get("Unique-ID"),
        "leg": event.get("variable_cc_leg"), "job": event.get("Job-UUID"),
    }, separators=(",", ":")))
