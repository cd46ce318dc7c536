"""GET /metrics scraped from the running web (2 gunicorn workers) and events processes, parsed
with prometheus_client's own parser: the counters move as calls happen.

Runs once on SQLite and once on PostgreSQL (when reachable).
"""
import json
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from services.auth import create_key
from tests.conftest import wait_until

TOKEN = "metrics-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def mstack(stack_factory, db_url, sim):
    stack = stack_factory(db_url, sim, web=False, METRICS_TOKEN=TOKEN)
    return stack.start_web(workers=2)


def scrape(stack, headers=None):
    resp = requests.get(stack.url("/metrics"), timeout=15,
                        headers=headers or {"Authorization": f"Bearer {stack.api_key}"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def call_status(stack, call_id):
    return stack.get(f"/api/calls/{call_id}").json()["status"]


def test_counters_move_as_a_call_happens(mstack):
    before = scrape(mstack)
    assert value(before, "callcenter_esl_connected", node="default") == 1 or wait_until(
        lambda: value(scrape(mstack), "callcenter_esl_connected", node="default") == 1, 15,
        message="the events process to report its ESL connection")
    started = value(before, "callcenter_http_requests_total", route="/api/calls/start",
                    method="POST", status="201")
    answers = value(before, "callcenter_events_ingested_total", node="default",
                    type="CHANNEL_ANSWER")

    resp = mstack.post("/api/calls/start", {"to": "15551230001", "gateway": "gw1"})
    assert resp.status_code == 201, resp.text
    call_id = resp.json()["id"]
    assert resp.json()["node"] == "default"
    wait_until(lambda: call_status(mstack, call_id) == "in-progress", 10,
               message="the call to be answered")

    during = wait_until(lambda: (lambda s: s if value(
        s, "callcenter_events_ingested_total", node="default", type="CHANNEL_ANSWER") > answers
        else None)(scrape(mstack)), 10, message="the events counter to count the answer")
    assert value(during, "callcenter_http_requests_total", route="/api/calls/start",
                 method="POST", status="201") == started + 1
    assert value(during, "callcenter_http_request_duration_seconds_count",
                 route="/api/calls/start", method="POST", status="201") >= started + 1
    # The route template, never the raw path with the call's id.
    assert value(during, "callcenter_http_requests_total", route="/api/calls/<uuid:call_id>",
                 method="GET", status="200") >= 1
    assert not [k for k in during if call_id in str(k)]
    assert value(during, "callcenter_calls_live", node="default") >= 1
    assert value(during, "callcenter_events_process_up", node="default") == 1
    assert value(during, "callcenter_redis_up") == 1
    assert value(during, "callcenter_database_up") == 1
    assert any(k[0] == "callcenter_rq_queue_depth" for k in during)
    assert any(k[0] == "callcenter_websocket_clients" for k in during)

    assert mstack.post(f"/api/calls/{call_id}/end", {}).status_code == 200
    # One JSON access-log line per request, with the call it was about.
    lines = [json.loads(line) for line in mstack.log("web").splitlines()
             if line.startswith("{") and call_id in line]
    assert {(x["method"], x["path"].rsplit("/", 1)[-1]) for x in lines
            if x["call_id"] == call_id} >= {("POST", "start"), ("POST", "end")}
    after = wait_until(lambda: (lambda s: s if value(
        s, "callcenter_events_ingested_total", node="default",
        type="CHANNEL_HANGUP_COMPLETE") >= 1 else None)(scrape(mstack)), 10,
        message="the hangup to be counted")
    assert value(after, "callcenter_http_requests_total", route="/api/calls/<uuid:call_id>/end",
                 method="POST", status="200") >= 1


def test_every_web_worker_is_counted(mstack):
    """Requests answered by either gunicorn worker all show up, whichever worker is scraped."""
    route = dict(route="/api/health", method="GET", status="200")
    before = value(scrape(mstack), "callcenter_http_requests_total", **route)
    for _ in range(20):  # new connections: the kernel hands them to both workers
        assert requests.get(mstack.url("/api/health"), timeout=10).status_code == 200
    for _ in range(3):  # any worker's answer has every worker's count
        assert value(scrape(mstack), "callcenter_http_requests_total", **route) == before + 20


def test_metrics_need_an_admin_key_or_the_metrics_token(mstack):
    url = mstack.url("/metrics")
    assert requests.get(url, timeout=10).status_code == 401
    supervisor = create_key("supervisor", f"m-sup-{uuid.uuid4().hex[:6]}",
                            database_url=mstack.env["DATABASE_URL"])
    assert requests.get(url, headers={"Authorization": f"Bearer {supervisor}"},
                        timeout=10).status_code == 403
    assert requests.get(url, headers={"Authorization": "Bearer wrong-token"},
                        timeout=10).status_code == 401
    samples = scrape(mstack, headers={"Authorization": f"Bearer {TOKEN}"})
    assert any(k[0] == "callcenter_http_requests_total" for k in samples)
    # The token opens /metrics only.
    other = requests.get(mstack.url("/api/calls/history"),
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert other.status_code == 401
