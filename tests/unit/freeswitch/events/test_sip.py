"""sofia::gateway_state events FreeSWITCH sent (tests/fixtures/esl/06_*) -> the stored state.

In process: the events module's handler, SipService, the real database of
bound_db and the real Redis; no FreeSWITCH (the handler never asks it).
"""
import datetime
import json
from types import SimpleNamespace

import pytest

from freeswitch.events.sip import gateway_state_report, subscriptions
from models.sip import SipGateway, SipGatewayState
from services.outbox import Outbox
from services.publisher import Publisher
from services.redis_client import stream_key
from services.sip.service import SipService
from tests.esl_sim.transcripts import transcript_events


def captured(state):
    """The first captured gateway_state event of reg_fail_gw in that state."""
    events = [dict(e.headers) for e in transcript_events("06_gateway_state_events_json")
              if e.subclass == "sofia::gateway_state"]
    return next(event for event in events if event["State"] == state)


@pytest.fixture
def handle(bound_db, redis_client, tmp_path):
    """Feeds events to the real handler; each event in its own outbox transaction."""
    SipGatewayState.delete().execute()
    SipGateway.delete().execute()
    redis_client.delete(stream_key("sip"))
    service = SipService({"SECRET_KEY": "unit-secret", "FREESWITCH_GATEWAY_DIR": str(tmp_path)},
                         Publisher(redis_client), commands=None, redis_conn=redis_client)
    handler = subscriptions(SimpleNamespace(sip=service))["sofia::gateway_state"]

    def feed(*events):
        for event in events:
            outbox = Outbox()
            with outbox.atomic():
                handler(event, outbox)
    return feed


def managed(name="reg_fail_gw"):
    return SipGateway.create(name=name, host="127.0.0.1", port=5099, transport="udp",
                             username="reg_fail_user", apply_state="applied")


def sip_messages(redis_client):
    return [json.loads(fields[b"m"]) for _, fields in redis_client.xrange(stream_key("sip"))]


def test_the_handler_is_listed_for_the_custom_subclass():
    assert list(subscriptions(SimpleNamespace(sip=None))) == ["sofia::gateway_state"]


def test_a_captured_failure_reads_as_facts():
    event = captured("FAILED")
    report = gateway_state_report(event)
    assert (report.name, report.state, report.status_code, report.phrase) == \
        ("reg_fail_gw", "FAILED", 503, "Service Unavailable")
    assert report.core_uuid == event["Core-UUID"]
    assert report.sequence == int(event["Event-Sequence"])
    micros = int(event["Event-Date-Timestamp"])
    assert report.at == datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=micros)


def test_an_event_without_gateway_or_state_is_no_report():
    event = captured("FAILED")
    assert gateway_state_report({**event, "Gateway": ""}) is None
    assert gateway_state_report({k: v for k, v in event.items() if k != "State"}) is None


def test_a_captured_503_is_stored_as_the_gateways_failure(handle, redis_client):
    managed()
    event = captured("FAILED")

    handle(event)

    row = SipGatewayState.get(SipGatewayState.name == "reg_fail_gw")
    assert (row.state, row.ping_status) == ("FAILED", "DOWN")
    assert (row.status_code, row.failure_reason) == (503, "503 Service Unavailable")
    assert (row.core_uuid, row.event_seq) == (event["Core-UUID"], int(event["Event-Sequence"]))
    assert row.failure_at == gateway_state_report(event).at
    [message] = sip_messages(redis_client)
    assert message["type"] == "sip.failed"
    assert message["data"]["failure_reason"] == "503 Service Unavailable"


def test_the_failure_stays_through_fail_wait_until_registered(handle):
    managed()
    failed, waiting = captured("FAILED"), captured("FAIL_WAIT")
    handle(failed, waiting)
    row = SipGatewayState.get(SipGatewayState.name == "reg_fail_gw")
    assert row.state == "FAIL_WAIT" and row.failure_reason == "503 Service Unavailable"

    registered = dict(waiting, State="REGED", **{"Ping-Status": "UP", "Event-Sequence": "9999"})
    handle(registered)
    row = SipGatewayState.get(SipGatewayState.name == "reg_fail_gw")
    assert (row.state, row.ping_status, row.failure_reason) == ("REGED", "UP", None)


def test_an_event_of_a_gateway_not_managed_here_stores_and_says_nothing(handle, redis_client):
    handle(captured("FAILED"))
    assert SipGatewayState.select().count() == 0
    assert sip_messages(redis_client) == []
