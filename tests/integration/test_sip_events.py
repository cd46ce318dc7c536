"""sofia::gateway_state handling as the events process runs it, fed events FreeSWITCH sent.

In-process: the events module's handler (freeswitch/events/sip.py) feeding
SipService, the real database (SQLite and PostgreSQL)
and the real Redis, with the CUSTOM events of the captured transcripts
(06_gateway_state_events_json: reg_fail_gw failing with 503 every ~17 s).
"""
import json
from types import SimpleNamespace

import pytest

from freeswitch.events.sip import subscriptions
from models.sip import SipGateway, SipGatewayState
from services.outbox import Outbox
from services.publisher import Publisher
from services.redis_client import stream_key
from services.sip.service import SipService
from tests.esl_sim.transcripts import transcript_events


def captured_gateway_states():
    return [dict(event.headers) for event in transcript_events("06_gateway_state_events_json")
            if event.subclass == "sofia::gateway_state"]


@pytest.fixture
def service(bound_db, redis_client, tmp_path):
    SipGatewayState.delete().execute()
    SipGateway.delete().execute()
    config = {"SECRET_KEY": "events-test-secret", "FREESWITCH_GATEWAY_DIR": str(tmp_path)}
    return SipService(config, Publisher(redis_client), commands=None, redis_conn=redis_client)


def managed(name):
    return SipGateway.create(name=name, host="127.0.0.1", port=5099, transport="udp",
                             username="reg_fail_user", apply_state="applied")


def apply(service, events):
    handler = subscriptions(SimpleNamespace(sip=service))["sofia::gateway_state"]
    outbox = Outbox()
    for event in events:
        handler(event, outbox)
    published = len(outbox)
    outbox.flush()
    return published


def sip_messages(redis_client):
    return [json.loads(fields[b"m"]) for _, fields in redis_client.xrange(stream_key("sip"))]


def test_captured_registration_failures_are_recorded_and_published(service, redis_client):
    managed("reg_fail_gw")
    events = captured_gateway_states()
    assert [e["State"] for e in events][:4] == ["DOWN", "TRYING", "FAILED", "FAIL_WAIT"]

    apply(service, events)

    row = SipGatewayState.get(SipGatewayState.name == "reg_fail_gw")
    assert row.state == "FAIL_WAIT"
    assert (row.status_code, row.failure_reason) == (503, "503 Service Unavailable")
    assert row.event_seq == int(events[-1]["Event-Sequence"])
    messages = sip_messages(redis_client)
    types = [m["type"] for m in messages]
    assert types[:4] == ["sip.down", "sip.trying", "sip.failed", "sip.fail_wait"]
    assert types.count("sip.failed") == 3  # one per retry cycle of the capture
    failed = next(m for m in messages if m["type"] == "sip.failed")
    assert failed["channel"] == "sip" and failed["data"]["name"] == "reg_fail_gw"
    assert failed["data"]["failure_reason"] == "503 Service Unavailable"
    assert failed["data"]["registered"] is False


def test_a_replayed_event_changes_nothing_and_publishes_nothing(service, redis_client):
    managed("reg_fail_gw")
    events = captured_gateway_states()[:3]
    apply(service, events)
    before = SipGatewayState.get(SipGatewayState.name == "reg_fail_gw")
    count = len(sip_messages(redis_client))

    assert apply(service, events) == 0  # the same Core-UUID and sequence numbers again

    after = SipGatewayState.get(SipGatewayState.name == "reg_fail_gw")
    assert (after.state, after.event_seq, after.changed_at) == \
        (before.state, before.event_seq, before.changed_at)
    assert len(sip_messages(redis_client)) == count


def test_a_restarted_freeswitch_numbers_events_afresh_and_is_heard(service):
    managed("reg_fail_gw")
    apply(service, captured_gateway_states())
    restarted = dict(captured_gateway_states()[0], State="REGED", **{
        "Core-UUID": "00000000-1111-2222-3333-444444444444", "Event-Sequence": "5",
        "Ping-Status": "UP"})
    assert apply(service, [restarted]) == 1
    row = SipGatewayState.get(SipGatewayState.name == "reg_fail_gw")
    assert row.state == "REGED" and row.failure_reason is None


def test_gateways_not_managed_here_are_ignored(service, redis_client):
    assert apply(service, captured_gateway_states()) == 0
    assert SipGatewayState.select().count() == 0
    assert sip_messages(redis_client) == []
