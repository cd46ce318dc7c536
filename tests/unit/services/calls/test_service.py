"""CallService and CallNotifier in process: API actions against a real database, Redis and
the ESL simulator; what the `calls` channel carried is read back from its stream."""
import json
import uuid

import pytest

from freeswitch.esl.commands import FreeSwitchCommands
from models import Call, CallEvent, utcnow
from services.calls.service import CallService
from services.errors import Conflict, NotFound, Unprocessable
from services.outbox import Outbox
from services.publisher import Publisher
from services.redis_client import stream_key


@pytest.fixture
def calls(bound_db, redis_client, sim):
    CallEvent.delete().execute()
    Call.delete().execute()
    commands = FreeSwitchCommands("127.0.0.1", sim.port, "ClueCon")
    yield CallService(Publisher(redis_client), commands=commands,
                      config={"DEFAULT_GATEWAY": None})
    commands.close()


def news(redis_client):
    out = []
    for _, fields in redis_client.xrange(stream_key("calls")):
        message = json.loads(fields[b"m"])
        out.append((message["type"], message["data"]))
    return out


def live(sim, status):
    fs_uuid = sim.inbound_call(answer_after=None)
    return Call.create(fs_uuid=fs_uuid, status=status,
                       answered_at=utcnow() if status == "in-progress" else None)


@pytest.mark.parametrize("status,ended,cause", [
    ("in-progress", "completed", "NORMAL_CLEARING"),
    ("ringing", "canceled", "ORIGINATOR_CANCEL"),
    ("initiated", "canceled", "ORIGINATOR_CANCEL"),
])
def test_ending_a_live_call_hangs_it_up_and_records_why(calls, sim, redis_client, status,
                                                        ended, cause):
    call = live(sim, status)
    result = calls.end(call.id, outcome="sale")
    assert (result.status, result.hangup_cause, result.outcome) == (ended, cause, "sale")
    assert sim.wait_for(lambda: sim.api("uuid_exists", call.fs_uuid) == "false")
    assert [(t, d["status"]) for t, d in news(redis_client)] == [("call.ended", ended)]
    assert [e.event_name for e in calls.events_of(call.id)] == ["api.end"]


def test_ending_an_ended_call_again_changes_only_its_notes(calls, redis_client):
    call = Call.create(fs_uuid=str(uuid.uuid4()), status="busy", hangup_cause="USER_BUSY")
    result = calls.end(call.id, notes="called back later")
    assert (result.status, result.notes) == ("busy", "called back later")
    assert [t for t, _ in news(redis_client)] == ["call.updated"]


def test_an_impossible_status_update_is_refused_with_a_stable_error_id(calls, redis_client):
    call = Call.create(fs_uuid=str(uuid.uuid4()), status="completed")
    with pytest.raises(Conflict) as info:
        calls.update(call.id, {"status": "ringing", "notes": "lost"})
    assert info.value.error_id == "invalid_transition"
    stored = Call.get_by_id(call.id)
    assert (stored.status, stored.notes) == ("completed", None)  # the update rolled back
    assert news(redis_client) == []


def test_deleting_an_ended_call_announces_it_and_a_live_one_is_refused(calls, sim, redis_client):
    ended = Call.create(fs_uuid=str(uuid.uuid4()), status="failed")
    calls.delete(ended.id)
    with pytest.raises(NotFound) as info:
        calls.get(ended.id)
    assert info.value.error_id == "call_not_found"
    assert news(redis_client) == [("call.deleted", {"id": ended.id})]
    up = live(sim, "ringing")
    with pytest.raises(Conflict):
        calls.delete(up.id)
    sim.hangup(up.fs_uuid)


def test_quality_news_carry_the_call_as_rest_shows_it(calls, redis_client):
    call = Call.create(fs_uuid=str(uuid.uuid4()), status="in-progress", answered_at=utcnow())
    alert = {"active": True, "thresholds": ["mos"]}
    with Outbox().atomic() as outbox:
        calls.notifier.quality_alert(call, "call.quality_degraded", alert, outbox)
        call.quality = {"mos": 4.1}
        calls.notifier.quality_summary(call, outbox)
        assert news(redis_client) == []  # nothing before the commit
    (degraded_type, degraded), (summary_type, summary) = news(redis_client)
    assert (degraded_type, degraded["id"], degraded["alert"]) == \
        ("call.quality_degraded", call.id, alert)
    assert degraded["quality"] is None  # the dump was made when it was queued
    assert (summary_type, summary["quality"]) == ("call.quality_summary", {"mos": 4.1})


def test_ending_a_call_the_database_thinks_ended_hangs_up_its_live_channel(calls, sim,
                                                                           redis_client):
    """Reconciliation closed it, but FreeSWITCH still has the channel: /end kills it."""
    fs_uuid = sim.inbound_call(answer_after=None)
    call = Call.create(fs_uuid=fs_uuid, status="failed", status_reason="channel gone")
    result = calls.end(call.id, notes="was still up")
    assert (result.status, result.notes) == ("failed", "was still up")  # answered as before
    assert sim.wait_for(lambda: sim.api("uuid_exists", fs_uuid) == "false")
    assert any(c.startswith("uuid_kill " + fs_uuid) for c in sim_api_commands(sim))


def test_ending_an_ended_call_whose_channel_is_gone_sends_no_hangup(calls, sim):
    call = Call.create(fs_uuid=str(uuid.uuid4()), status="completed")
    calls.end(call.id)
    assert not any(c.startswith("uuid_kill " + call.fs_uuid) for c in sim_api_commands(sim))


def test_a_call_with_no_gateway_and_no_default_is_refused_under_gateway(calls):
    with pytest.raises(Unprocessable) as info:
        calls.start({"to": "15550001111"})
    error = info.value
    assert error.error_id == "gateway_required"
    assert list(error.errors["json"]) == ["gateway"]
    assert "DEFAULT_GATEWAY" in error.message and "gateway" in error.errors["json"]["gateway"][0]
    assert Call.select().count() == 0


def sim_api_commands(sim):
    """The API commands the simulator received, without their `api ` prefix."""
    return [c[4:] for c in sim.commands if c.startswith("api ")]
