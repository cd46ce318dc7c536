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
from tests.esl_sim.transcripts import capture_events, transcript_events


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


# ----- refreshes of a working registration (issue 11, item 2) -----------------------------
def captured_states(name):
    """The gateway_state events of a timed capture of the real switch, as header dicts."""
    return [dict(event.headers) for _, event in capture_events(name)
            if event.subclass == "sofia::gateway_state"]


def reg_gw():
    return SipGateway.create(name="reg_gw", host="127.0.0.1", port=21000, transport="udp",
                             username="1010", expiry=60, apply_state="applied")


@pytest.mark.parametrize("capture", ["21_gateway_refresh_expire60",
                                     "21_gateway_refresh_expire10"])
def test_refreshes_of_a_registered_gateway_publish_and_store_nothing(handle, redis_client,
                                                                     capture):
    reg_gw()
    events = captured_states(capture)
    first_reged = next(i for i, e in enumerate(events) if e["State"] == "REGED")
    handle(*events[:first_reged + 1])
    registered = SipGatewayState.get(SipGatewayState.name == "reg_gw")
    told = [m["type"] for m in sip_messages(redis_client)]
    assert told[-1] == "sip.registered" and "sip.failed" not in told
    assert all(m["data"]["failure_reason"] is None for m in sip_messages(redis_client))
    refreshes = events[first_reged + 1:]
    assert {e["State"] for e in refreshes} >= {"REGISTER", "REGED"}

    for event in refreshes:
        handle(event)
        row = SipGatewayState.get(SipGatewayState.name == "reg_gw")
        assert (row.state, row.failure_reason, row.changed_at) == \
            ("REGED", None, registered.changed_at)

    assert [m["type"] for m in sip_messages(redis_client)] == told
    assert row.event_seq == int(refreshes[-1]["Event-Sequence"])


def test_the_unreged_trying_refresh_of_the_switch_is_silent(handle, redis_client):
    reg_gw()
    events = captured_states("21_gateway_refresh_expire10")
    cycle = [e["State"] for e in events[3:7]]
    assert cycle == ["UNREGED", "TRYING", "REGISTER", "REGED"]
    handle(*events[:3])
    count = len(sip_messages(redis_client))
    handle(*events[3:7])
    assert len(sip_messages(redis_client)) == count
    assert SipGatewayState.get(SipGatewayState.name == "reg_gw").state == "REGED"


def test_a_real_403_after_registration_is_reported_at_once(handle, redis_client):
    reg_gw()
    handle(*captured_states("21_gateway_refresh_expire60")[:4])
    failure = captured_states("21_gateway_register_403")
    assert [e["State"] for e in failure] == ["DOWN", "TRYING", "FAILED", "FAIL_WAIT"]
    before = len(sip_messages(redis_client))

    handle(*failure[1:3])  # TRYING, FAILED 403

    row = SipGatewayState.get(SipGatewayState.name == "reg_gw")
    assert (row.state, row.status_code, row.failure_reason) == ("FAILED", 403, "403 Forbidden")
    told = sip_messages(redis_client)[before:]
    assert told[-1]["type"] == "sip.failed"
    assert told[-1]["data"]["failure_reason"] == "403 Forbidden"
    assert told[-1]["data"]["registered"] is False


@pytest.mark.parametrize("status,phrase", [(401, "Unauthorized"), (408, "Request Timeout"),
                                           (503, "Service Unavailable")])
def test_a_register_answered_with_an_error_during_a_refresh_is_a_failure(
        handle, redis_client, status, phrase):
    reg_gw()
    events = captured_states("21_gateway_refresh_expire60")
    handle(*events[:4])
    answer = dict(events[4], Status=str(status), Phrase=phrase)
    answer["Event-Sequence"] = str(int(events[4]["Event-Sequence"]))

    handle(answer)

    row = SipGatewayState.get(SipGatewayState.name == "reg_gw")
    assert row.failure_reason == f"{status} {phrase}"
    assert sip_messages(redis_client)[-1]["data"]["failure_reason"] == f"{status} {phrase}"
