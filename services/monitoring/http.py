"""HTTP request metrics of this web process (prometheus_client; multiprocess-safe).

prometheus_client picks its storage when first imported: with PROMETHEUS_MULTIPROC_DIR
set (gunicorn.conf.py sets it before the workers start) every worker writes its own
files there and `render()` adds them up; without it (a single process: tests, flask run)
the figures live in this process.
"""
import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

# Latency buckets (seconds) around what the API answers in: ms for reads, up to the
# FreeSWITCH command timeout for calls.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "(unmatched)"

REQUESTS = Counter("callcenter_http_requests", "HTTP requests answered, by route template, "
                   "method and status", ("route", "method", "status"))
LATENCY = Histogram("callcenter_http_request_duration_seconds", "HTTP request latency, by route "
                    "template, method and status", ("route", "method", "status"), buckets=BUCKETS)


def observe_request(route, method, status, seconds):
    """Count one answered request; route is the URL rule (`/api/calls/<uuid:call_id>`), never
    the raw path, so that ids do not make a series each."""
    labels = (route or UNMATCHED, method, str(status))
    REQUESTS.labels(*labels).inc()
    LATENCY.labels(*labels).observe(max(seconds, 0.0))


def multiprocess_dir():
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


def process_metrics_text():
    """The web processes' own metrics as text: every worker's (multiprocess) or this one's."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
