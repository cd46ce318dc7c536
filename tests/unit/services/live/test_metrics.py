"""The metrics figures: WebSocket clients added up across web processes, live MOS, the REST read."""
import json
import time

import pytest

from services.errors import Unavailable
from services.live.metrics import (
    CLIENTS_KEY,
    METRICS_LAST_KEY,
    RealtimeMetrics,
    count_websocket_clients,
    live_mos,
    report_websocket_clients,
)


def test_clients_of_every_live_web_process_are_added_up(redis_client):
    report_websocket_clients(redis_client, "web-1:10", 3)
    report_websocket_clients(redis_client, "web-2:20", 4)

    assert count_websocket_clients(redis_client) == (7, 2)


def test_a_dead_process_count_is_left_out_and_forgotten(redis_client):
    report_websocket_clients(redis_client, "web-1:10", 3)
    report_websocket_clients(redis_client, "web-2:20", 4)

    later = time.time() + 60  # neither reported for a minute: both are gone
    assert count_websocket_clients(redis_client, now=later) == (0, 0)
    assert redis_client.hlen(CLIENTS_KEY) == 0


@pytest.mark.parametrize("quality, mos", [
    ({"mos_avg": 4.1, "live": {"last": {"mos": 3.0}}}, 4.1),
    ({"live": {"last": {"mos": 3.5}}}, 3.5),
    ({"live": {}}, None),
    ({"mos_avg": True}, None),
    (None, None),
])
def test_a_live_call_mos_prefers_its_summary(quality, mos):
    assert live_mos(quality) == mos


def test_rest_returns_the_last_published_figures(redis_client):
    reader = RealtimeMetrics(redis_client)
    with pytest.raises(Unavailable) as missing:
        reader.latest()
    assert missing.value.code == 503

    redis_client.set(METRICS_LAST_KEY, json.dumps({"active_calls": 2}))

    assert reader.latest() == {"active_calls": 2}
