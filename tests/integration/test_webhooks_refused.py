"""By default a webhook is never delivered to a loopback (or private) address."""
import gevent
import pytest

from tests.conftest import wait_until
from tests.integration.webhook_helpers import REFRESH_WAIT, Receiver


@pytest.fixture(scope="module")
def strict_stack(stack_factory, db_url, sim):
    return stack_factory(db_url, sim, worker=True, WEBHOOK_SWEEP_INTERVAL="1",
                         WEBHOOK_WORKERS="1")


def test_a_receiver_on_127_0_0_1_is_refused_when_private_addresses_are_not_allowed(
        strict_stack):
    receiver = Receiver()
    try:
        resp = strict_stack.post("/api/webhooks", {"url": receiver.url,
                                                   "event_types": ["call.initiated"],
                                                   "filter": {"agent_id": "wh-refused"}})
        assert resp.status_code == 201, resp.text
        hook = resp.json()
        gevent.sleep(REFRESH_WAIT)
        started = strict_stack.post("/api/calls/start", {"to": "15551230001", "gateway": "gw1",
                                                         "agent_id": "wh-refused"})
        assert started.status_code == 201
        deliveries = wait_until(lambda: [d for d in strict_stack.get(
            f"/api/webhooks/{hook['id']}/deliveries").json() if d["status"] == "failed"], 20,
            message="the delivery to fail")
        assert "127.0.0.1 is a loopback address" in deliveries[0]["last_error"]
        assert "WEBHOOK_ALLOW_PRIVATE" in deliveries[0]["last_error"]
        assert deliveries[0]["attempts"] == 1 and deliveries[0]["response_code"] is None
        assert receiver.requests == []
    finally:
        receiver.stop()
