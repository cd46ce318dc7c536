"""Performance alerts reach the `performance` channel, one per route per interval, never a flood."""
import json

import pytest

from services.live.notifier import LiveNotifier
from services.live.performance import PerformanceAlerts
from services.publisher import Publisher
from services.redis_client import stream_key

CONFIG = {"SLOW_REQUEST_SECONDS": 0.5, "MEMORY_ALERT_MB": 100, "QUEUE_BACKLOG_ALERT": 10}


@pytest.fixture
def alerts(redis_client):
    return PerformanceAlerts(LiveNotifier(Publisher(redis_client)), CONFIG, role="web")


def published(redis_client):
    return [json.loads(fields[b"m"])
            for _, fields in redis_client.xrange(stream_key("performance"))]


def test_a_slow_request_is_announced_with_its_route_and_timing(redis_client, alerts):
    alerts.slow_request("GET", "/api/calls/<uuid:call_id>", 200, 1.2345)

    (message,) = published(redis_client)
    assert message["type"] == "performance.slow_request"
    assert message["data"]["route"] == "/api/calls/<uuid:call_id>"
    assert message["data"]["duration_ms"] == 1234.5
    assert message["data"]["threshold_ms"] == 500.0
    assert message["data"]["suppressed"] == 0 and message["data"]["role"] == "web"


def test_repeats_of_one_route_are_suppressed_then_counted(redis_client, alerts):
    for _ in range(3):
        alerts.slow_request("GET", "/api/calls", 200, 2.0)
    alerts.slow_request("POST", "/api/calls/start", 201, 2.0)  # another route has its own budget
    assert [m["data"]["route"] for m in published(redis_client)] == [
        "/api/calls", "/api/calls/start"]

    alerts.SLOW_REQUEST_EVERY = 0.0  # the interval has passed
    alerts.slow_request("GET", "/api/calls", 200, 2.0)

    assert published(redis_client)[-1]["data"]["suppressed"] == 2


def test_memory_alerts_only_above_the_threshold_and_once_per_interval(redis_client, alerts):
    assert alerts.memory(99.0) is None
    alerts.memory(150.0)
    alerts.memory(160.0)

    (message,) = published(redis_client)
    assert message["type"] == "performance.memory_high"
    assert message["data"]["rss_mb"] == 150.0 and message["data"]["threshold_mb"] == 100.0


def test_a_backlogged_queue_is_announced_once_per_interval(redis_client, alerts):
    alerts.queue_backlog({"default": 11, "quality": 10, "recordings": None})
    alerts.queue_backlog({"default": 50})

    (message,) = published(redis_client)
    assert message["type"] == "performance.queue_backlog"
    assert message["data"]["queue"] == "default" and message["data"]["depth"] == 11


def test_a_web_process_checks_its_memory_at_most_every_interval(alerts):
    assert alerts.memory_check_due() is True
    assert alerts.memory_check_due() is False
