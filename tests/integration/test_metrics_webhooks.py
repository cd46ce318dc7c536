"""The webhook backlog in GET /metrics and every worker queue in /metrics and the health
report, through the running web, events and worker processes and the ESL simulator.

A webhook whose receiver is down (nothing listens on its port) piles up a call's
deliveries: the scrape shows them pending by the webhook's id, with the age of the
oldest; once a receiver answers on that port, the retries deliver them and the
backlog is back to 0. The webhook's URL and secret never appear in the scrape.
Runs once on SQLite and once on PostgreSQL (when reachable).
"""
import gevent
import pytest
import requests
from gevent.pywsgi import WSGIServer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, wait_until
from tests.integration.webhook_helpers import REFRESH_WAIT

STATES = ["call.initiated", "call.ringing", "call.answered", "call.ended"]
PENDING = "callcenter_webhook_deliveries_pending"
OLDEST = "callcenter_webhook_oldest_pending_seconds"


@pytest.fixture(scope="module")
def wstack(stack_factory, db_url, sim):
    # Retries every second for a minute: the backlog empties soon after the receiver is up,
    # and no delivery runs out of attempts (failed) while it is down.
    return stack_factory(db_url, sim, worker=True, WEBHOOK_ALLOW_PRIVATE="true",
                         WEBHOOK_RETRY_SCHEDULE=",".join(["1"] * 60),
                         WEBHOOK_SWEEP_INTERVAL="1", WEBHOOK_WORKERS="1", WEBHOOK_TIMEOUT="5")


def scrape_text(stack):
    resp = requests.get(stack.url("/metrics"), timeout=15,
                        headers={"Authorization": f"Bearer {stack.api_key}"})
    assert resp.status_code == 200, resp.text
    return resp.text


def samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))))


class ReceiverOn:
    """An HTTP receiver started later on a given port (answers 200, counts requests)."""

    def __init__(self, port):
        self.requests = []
        self.server = WSGIServer(("127.0.0.1", port), self._app, log=None, error_log=None)
        self.server.start()

    def _app(self, environ, start_response):
        self.requests.append(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def stop(self):
        self.server.stop(timeout=1)


def run_call(stack, agent_id):
    resp = stack.post("/api/calls/start", {"to": "15551230001", "gateway": "gw1",
                                           "agent_id": agent_id})
    assert resp.status_code == 201, resp.text
    call = resp.json()
    wait_until(lambda: stack.get(f"/api/calls/{call['id']}").json()["status"] == "in-progress",
               15, message="the call to be answered")
    assert stack.post(f"/api/calls/{call['id']}/end", {}).status_code == 200
    return call


def test_a_down_receivers_backlog_shows_in_metrics_and_empties_when_it_answers(wstack):
    port = free_port()  # nothing listens here yet: every attempt is refused
    url = f"http://127.0.0.1:{port}/hooks/backlog-check"
    resp = wstack.post("/api/webhooks", {"url": url, "event_types": STATES,
                                         "filter": {"agent_id": "wh-backlog"}})
    assert resp.status_code == 201, resp.text
    hook, secret = resp.json(), resp.json()["secret"]
    before = samples(scrape_text(wstack))
    assert value(before, PENDING, webhook=hook["id"]) == 0
    assert value(before, OLDEST, webhook=hook["id"]) == 0
    assert value(before, PENDING, webhook="status_callbacks") == 0
    gevent.sleep(REFRESH_WAIT)

    run_call(wstack, "wh-backlog")
    text = wait_until(lambda: (lambda t: t if value(samples(t), PENDING, webhook=hook["id"]) == 4
                               else None)(scrape_text(wstack)), 20,
                      message="the call's four deliveries to be pending")
    # The oldest ages while nothing can be sent (the gauge is as old as its last refresh).
    during = wait_until(lambda: (lambda s: s if value(s, OLDEST, webhook=hook["id"]) >= 1.0
                                 else None)(samples(scrape_text(wstack))), 20, 0.2,
                        "the oldest pending delivery to age past a second")
    assert value(during, PENDING, webhook=hook["id"]) == 4
    assert value(during, OLDEST, webhook=hook["id"]) < 60
    assert url not in text and secret not in text and secret.removeprefix("whsec_") not in text
    assert f"127.0.0.1:{port}" not in text
    # The backlog counts deliveries still in the webhook's Redis inbox too: under load the
    # webhook worker stores them (and tries the first) a moment later.

    def stored_and_tried():
        found = wstack.get(f"/api/webhooks/{hook['id']}/deliveries").json()
        return found if len(found) == 4 and max(d["attempts"] for d in found) >= 1 else None
    attempted = wait_until(stored_and_tried, 20, 0.2,
                           "the four deliveries stored and tried (refused), not just queued")
    assert {d["status"] for d in attempted} == {"pending"}

    receiver = ReceiverOn(port)
    try:
        after = wait_until(lambda: (lambda s: s if value(s, PENDING, webhook=hook["id"]) == 0
                                    else None)(samples(scrape_text(wstack))), 30,
                           message="the backlog to empty once the receiver answers")
        assert value(after, OLDEST, webhook=hook["id"]) == 0
        assert len(receiver.requests) == 4
        delivered = wstack.get(f"/api/webhooks/{hook['id']}/deliveries").json()
        assert [d["status"] for d in delivered] == ["succeeded"] * 4
    finally:
        receiver.stop()


def test_every_queue_a_worker_listens_on_is_in_metrics_and_health(wstack):
    found = samples(scrape_text(wstack))
    for name in ("default", "recordings", "quality", "transcripts", "webhooks"):
        assert value(found, "callcenter_rq_queue_depth", queue=name) is not None, name
        assert value(found, "callcenter_rq_failed_jobs", queue=name) is not None, name
    report = wstack.get("/api/health/detailed").json()
    assert {q["name"] for q in report["queues"]["queues"]} == {
        "default", "recordings", "quality", "transcripts", "webhooks"}
