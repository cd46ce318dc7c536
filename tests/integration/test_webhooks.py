"""Webhooks against real HTTP receivers (on 127.0.0.1, WEBHOOK_ALLOW_PRIVATE=true), through
the running web, events and worker processes and the ESL simulator.

Signatures are checked with the standardwebhooks reference code; a receiver that
fails for a while gets every event once per delivery id, in order per call; a
slow receiver holds up neither the other webhooks nor the API.
"""
import collections

import gevent
import gevent.event
import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from tests.conftest import ChannelRecorder, wait_until
from tests.integration.webhook_helpers import REFRESH_WAIT, Receiver

GW = "gw1"
STATES = ["call.initiated", "call.ringing", "call.answered", "call.ended"]
CALLBACK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def hooks_stack(stack_factory, db_url, sim):
    return stack_factory(db_url, sim, worker=True, WEBHOOK_ALLOW_PRIVATE="true",
                         WEBHOOK_RETRY_SCHEDULE="0.3,0.3,0.5,0.5,1,1,1,1,1,1,1,1",
                         WEBHOOK_SWEEP_INTERVAL="1", WEBHOOK_WORKERS="3",
                         WEBHOOK_TIMEOUT="30", WEBHOOK_DISABLE_AFTER="3",
                         WEBHOOK_CALLBACK_SECRET=CALLBACK_SECRET)


@pytest.fixture
def receivers():
    made = []

    def make(**kw):
        made.append(Receiver(**kw))
        return made[-1]
    yield make
    for receiver in made:
        receiver.stop()


def create_hook(stack, url, types=STATES, **extra):
    resp = stack.post("/api/webhooks", {"url": url, "event_types": types, **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def run_call(stack, agent_id, **extra):
    resp = stack.post("/api/calls/start", {"to": "15551230001", "gateway": GW,
                                           "agent_id": agent_id, **extra})
    assert resp.status_code == 201, resp.text
    call = resp.json()
    wait_until(lambda: stack.get(f"/api/calls/{call['id']}").json()["status"] == "in-progress",
               15, message="the call to be answered")
    assert stack.post(f"/api/calls/{call['id']}/end", {}).status_code == 200
    return call


def types_of(requests):
    return [r["envelope"]["type"] for r in requests]


def test_deliveries_are_signed_standard_webhooks_with_the_live_envelope(hooks_stack, receivers,
                                                                        redis_server):
    receiver = receivers()
    hook = create_hook(hooks_stack, receiver.url, filter={"agent_id": "wh-signed"})
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    assert "secret" not in hooks_stack.get(f"/api/webhooks/{hook['id']}").json()
    assert all("secret" not in h for h in hooks_stack.get("/api/webhooks").json())
    gevent.sleep(REFRESH_WAIT)
    live = ChannelRecorder(redis_server.url, ("calls",))
    try:
        gevent.sleep(0.1)
        call = run_call(hooks_stack, "wh-signed")
        run_call(hooks_stack, "someone-else")  # filtered out
        got = wait_until(lambda: receiver.accepted() if len(receiver.accepted()) >= 4 else None,
                         20, message="four deliveries")
        for request in got:
            payload = StandardWebhook(secret).verify(request["body"], request["headers"])
            assert payload["channel"] == "calls" and payload["data"]["id"] == call["id"]
            assert request["headers"]["webhook-id"].startswith("msg_")
        assert types_of(got) == STATES
        published = {m["id"]: m for m in live.for_call(call["id"])}
        for request in got:  # the same envelope as the live channel (id, type, data)
            envelope = request["envelope"]
            assert published[envelope["id"]]["type"] == envelope["type"]
            assert published[envelope["id"]]["data"] == envelope["data"]
        with pytest.raises(Exception):
            StandardWebhook(CALLBACK_SECRET).verify(got[0]["body"], got[0]["headers"])
    finally:
        live.close()
    deliveries = wait_until(lambda: (lambda found: found if {d["status"] for d in found} == {
        "succeeded"} else None)(hooks_stack.get(f"/api/webhooks/{hook['id']}/deliveries").json()),
        10, message="the deliveries to be recorded as succeeded")
    assert len(deliveries) == 4
    assert {d["response_code"] for d in deliveries} == {200}
    for name in ("web", "events", "worker"):  # the secret is never logged
        assert secret not in hooks_stack.log(name)
        assert secret.removeprefix("whsec_") not in hooks_stack.log(name)


def test_a_receiver_failing_for_a_while_gets_each_event_once_and_in_order(hooks_stack,
                                                                          receivers):
    receiver = receivers(answer=lambda n: 500 if n < 7 else 200)
    hook = create_hook(hooks_stack, receiver.url, filter={"campaign_id": "flaky"})
    gevent.sleep(REFRESH_WAIT)
    calls = [run_call(hooks_stack, f"wh-flaky-{n}", campaign_id="flaky") for n in range(3)]
    wait_until(lambda: len(receiver.accepted()) >= 12, 30, message="12 accepted deliveries")
    gevent.sleep(1.5)  # nothing more may come (no duplicate of an accepted delivery)
    accepted = receiver.accepted()
    ids = collections.Counter(r["headers"]["webhook-id"] for r in accepted)
    assert len(accepted) == 12 and set(ids.values()) == {1}
    for call in calls:
        mine = receiver.accepted_for_call(call["id"])
        assert types_of(mine) == STATES
        assert [r["envelope"]["id"] for r in mine] == sorted(r["envelope"]["id"] for r in mine)
    failed = [r for r in receiver.requests if r["status"] == 500]
    assert len(failed) == 7
    assert {r["headers"]["webhook-id"] for r in failed} <= set(ids)  # retried, then accepted
    deliveries = wait_until(lambda: (lambda found: found if {d["status"] for d in found} == {
        "succeeded"} else None)(hooks_stack.get(f"/api/webhooks/{hook['id']}/deliveries").json()),
        10, message="the deliveries to be recorded as succeeded")
    assert len(deliveries) == 12
    assert max(d["attempts"] for d in deliveries) > 1
    assert set(ids) == {d["id"] for d in deliveries}


def test_a_slow_receiver_delays_neither_other_webhooks_nor_the_api(hooks_stack, receivers):
    release = gevent.event.Event()
    slow = receivers(hold=release)
    fast = receivers()
    create_hook(hooks_stack, slow.url, filter={"agent_id": "wh-slow"})
    create_hook(hooks_stack, fast.url, filter={"agent_id": "wh-slow"})
    gevent.sleep(REFRESH_WAIT)
    call = run_call(hooks_stack, "wh-slow")
    wait_until(lambda: len(fast.accepted_for_call(call["id"])) == 4, 20,
               message="the fast receiver to get the call's four events")
    # The slow receiver still holds its first request, and the API answers meanwhile.
    assert slow.in_flight == 1 and slow.requests == []
    assert hooks_stack.get("/api/calls/history").status_code == 200
    other = run_call(hooks_stack, "wh-slow")
    wait_until(lambda: len(fast.accepted_for_call(other["id"])) == 4, 20,
               message="the fast receiver to get the second call's events")
    release.set()
    wait_until(lambda: len(slow.accepted()) == 8, 30, message="the slow receiver to catch up")
    assert types_of(slow.accepted_for_call(call["id"])) == STATES


def test_status_callback_gets_the_calls_events_signed_with_the_callback_secret(hooks_stack,
                                                                              receivers):
    receiver = receivers()
    call = run_call(hooks_stack, "wh-callback", status_callback=receiver.url)
    assert call["metadata"]["status_callback"] == receiver.url
    wait_until(lambda: {"call.ended"} <= set(types_of(receiver.accepted())), 20,
               message="the status callback to get call.ended")
    got = receiver.accepted()
    for request in got:
        assert StandardWebhook(CALLBACK_SECRET).verify(request["body"], request["headers"])
    assert types_of(got)[:4] == STATES
    bad = hooks_stack.post("/api/calls/start", {"to": "15551230001", "gateway": GW,
                                                "status_callback": "ftp://example.com/x"})
    assert bad.status_code == 422


def test_crud_validation_redelivery_and_delete(hooks_stack, receivers):
    receiver = receivers()
    bad = hooks_stack.post("/api/webhooks", {"url": receiver.url, "event_types": ["call.nope"]})
    assert bad.status_code == 422
    bad = hooks_stack.post("/api/webhooks", {"url": "file:///etc/passwd",
                                             "event_types": ["call.*"]})
    assert bad.status_code == 422
    hook = create_hook(hooks_stack, receiver.url, types=["call.*"],
                       filter={"agent_id": "wh-crud"})
    changed = hooks_stack.put(f"/api/webhooks/{hook['id']}", {"event_types": ["call.ended"],
                                                              "description": "ends only"})
    assert changed.status_code == 200 and changed.json()["event_types"] == ["call.ended"]
    assert "secret" not in changed.json()
    gevent.sleep(REFRESH_WAIT)
    call = run_call(hooks_stack, "wh-crud")
    first = wait_until(lambda: receiver.accepted_for_call(call["id"]), 20,
                       message="call.ended to be delivered")
    assert types_of(first) == ["call.ended"]
    delivery_id = first[0]["headers"]["webhook-id"]
    again = hooks_stack.post(f"/api/webhooks/{hook['id']}/deliveries/{delivery_id}/redeliver")
    assert again.status_code == 202, again.text
    wait_until(lambda: len(receiver.accepted()) == 2, 20, message="the redelivery")
    assert receiver.accepted()[1]["headers"]["webhook-id"] == delivery_id
    assert receiver.accepted()[1]["body"] == first[0]["body"]
    missing = hooks_stack.post(f"/api/webhooks/{hook['id']}/deliveries/msg_nope/redeliver")
    assert missing.status_code == 404 and missing.json()["error_id"] == \
        "webhook_delivery_not_found"
    assert hooks_stack.delete(f"/api/webhooks/{hook['id']}").status_code == 204
    gone = hooks_stack.get(f"/api/webhooks/{hook['id']}")
    assert gone.status_code == 404 and gone.json()["error_id"] == "webhook_not_found"


def test_a_webhook_failing_without_end_is_disabled_with_an_event_and_an_alert(
        hooks_stack, receivers, redis_server):
    receiver = receivers(answer=lambda n: 503)
    watcher = create_hook(hooks_stack, receivers().url, types=["webhook.disabled"])
    hook = create_hook(hooks_stack, receiver.url, filter={"agent_id": "wh-dead"})
    live = ChannelRecorder(redis_server.url, ("webhooks", "performance"))
    try:
        gevent.sleep(REFRESH_WAIT)
        run_call(hooks_stack, "wh-dead")
        wait_until(lambda: not hooks_stack.get(f"/api/webhooks/{hook['id']}").json()["enabled"],
                   30, message="the webhook to be disabled")
        types = wait_until(lambda: {m["type"] for m in live.messages} >= {
            "webhook.disabled", "performance.webhook_disabled"} and live.messages, 10,
            message="the event and the alert")
        assert any(m["data"].get("id") == hook["id"] for m in types
                   if m["type"] == "webhook.disabled")
    finally:
        live.close()
    shown = hooks_stack.get(f"/api/webhooks/{hook['id']}").json()
    assert "WEBHOOK_DISABLE_AFTER" in shown["disabled_reason"]
    deliveries = hooks_stack.get(f"/api/webhooks/{hook['id']}/deliveries").json()
    assert deliveries and all(d["response_code"] in (503, None) for d in deliveries)
    assert watcher["id"]
