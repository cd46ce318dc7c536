"""Channel events and reconciliation as the events process applies them, in process.

The handlers run as the listener runs them (one transaction per batch, a
savepoint per event, news sent after the commit) against a real database and
the real Redis; what the `calls` channel carried is read back from its stream.
"""
import datetime
import json
import uuid

import pytest

from freeswitch.esl.commands import ChannelSnapshot
from freeswitch.events.calls import CallEventHandlers
from models import Call, CallEvent, utcnow
from services.calls.service import CallService
from services.outbox import Outbox
from services.publisher import Publisher
from services.redis_client import stream_key


@pytest.fixture
def calls(bound_db, redis_client):
    CallEvent.delete().execute()
    Call.delete().execute()
    return CallService(Publisher(redis_client))


@pytest.fixture
def handlers(calls):
    return CallEventHandlers(calls, grace_seconds=5.0)


def micros(moment):
    return str(int(moment.replace(tzinfo=datetime.UTC).timestamp() * 1_000_000))


def event(name, fs_uuid, **headers):
    base = {"Event-Name": name, "Unique-ID": fs_uuid, "Event-Date-Timestamp": micros(utcnow())}
    base.update(headers)
    return base


def apply(handlers, *events):
    """One batch, as EventListener.apply_batch applies it."""
    subscriptions = handlers.subscriptions()
    outbox = Outbox()
    with outbox.atomic():
        handlers.begin_batch()
        for ev in events:
            name = "reconcile" if isinstance(ev, ChannelSnapshot) else ev["Event-Name"]
            handlers.before_event(name)
            with outbox.savepoint():
                if name == "reconcile":
                    result = handlers.reconcile(ev, outbox)
                else:
                    subscriptions[name](ev, outbox)
        handlers.end_batch()
    return result if events and isinstance(events[-1], ChannelSnapshot) else None


def news(redis_client, call_id=None):
    """(type, status) of every message on `calls` (about call_id), in order."""
    out = []
    for _, fields in redis_client.xrange(stream_key("calls")):
        message = json.loads(fields[b"m"])
        if call_id is None or message["data"].get("id") == call_id:
            out.append((message["type"], message["data"].get("status")))
    return out


def trail(call):
    return [(e.source, e.event_name, e.to_status) for e in
            CallEvent.select().where(CallEvent.call == call.id).order_by(CallEvent.id)]


def api_call(status="initiated", seconds_ago=60, **fields):
    created = utcnow() - datetime.timedelta(seconds=seconds_ago)
    return Call.create(fs_uuid=str(uuid.uuid4()), fs_job_uuid=str(uuid.uuid4()), status=status,
                       to_number="15550001111", created_at=created, updated_at=created, **fields)


# ----- channel events ------------------------------------------------------
def test_an_answered_call_in_one_batch_is_announced_step_by_step(handlers, redis_client):
    call = api_call(seconds_ago=1)
    t = utcnow()
    ids = {"variable_cc_call_id": call.id}
    apply(handlers,
          event("CHANNEL_CREATE", call.fs_uuid, **ids),
          event("CHANNEL_PROGRESS", call.fs_uuid, **ids,
                **{"Caller-Channel-Progress-Time": micros(t)}),
          event("CHANNEL_ANSWER", call.fs_uuid, **ids,
                **{"Caller-Channel-Answered-Time": micros(t + datetime.timedelta(seconds=2))}),
          event("CHANNEL_HANGUP_COMPLETE", call.fs_uuid, **ids,
                **{"Hangup-Cause": "NORMAL_CLEARING", "variable_billsec": "42",
                   "variable_duration": "44", "variable_rtp_audio_in_jitter_max_variance": "1.5",
                   "Caller-Channel-Hangup-Time": micros(t + datetime.timedelta(seconds=44))}))
    stored = Call.get_by_id(call.id)
    assert (stored.status, stored.hangup_cause, stored.billsec, stored.duration) == \
        ("completed", "NORMAL_CLEARING", 42, 44)
    assert stored.rtp_stats == {"in_jitter_max_variance": 1.5}
    # Each message carries the call as it was at that step, not as it ended.
    assert news(redis_client, call.id) == [("call.ringing", "ringing"),
                                           ("call.answered", "in-progress"),
                                           ("call.ended", "completed")]


@pytest.mark.parametrize("cause,status", [("USER_BUSY", "busy"), ("NO_ANSWER", "no-answer"),
                                          ("ORIGINATOR_CANCEL", "canceled"),
                                          ("INCOMPATIBLE_DESTINATION", "failed")])
def test_an_unanswered_hangup_ends_the_call_by_its_cause(handlers, cause, status):
    call = api_call(status="ringing")
    apply(handlers, event("CHANNEL_HANGUP_COMPLETE", call.fs_uuid, **{"Hangup-Cause": cause}))
    stored = Call.get_by_id(call.id)
    assert (stored.status, stored.hangup_cause, stored.billsec) == (status, cause, 0)


def test_a_late_progress_after_the_answer_changes_nothing(handlers, redis_client):
    call = api_call(status="in-progress", answered_at=utcnow())
    apply(handlers, event("CHANNEL_PROGRESS", call.fs_uuid))
    assert Call.get_by_id(call.id).status == "in-progress"
    assert news(redis_client, call.id) == []


def test_an_unknown_inbound_channel_is_adopted_and_its_b_leg_ignored(handlers, redis_client):
    a_leg, b_leg = str(uuid.uuid4()), str(uuid.uuid4())
    apply(handlers,
          event("CHANNEL_CREATE", a_leg, **{"Call-Direction": "inbound",
                                            "Caller-Caller-ID-Number": "15557654321",
                                            "Caller-Destination-Number": "1000"}),
          event("CHANNEL_CREATE", b_leg, **{"Channel-Call-UUID": a_leg}),
          event("CHANNEL_ANSWER", a_leg))
    adopted = Call.get(Call.fs_uuid == a_leg)
    assert (adopted.direction, adopted.from_number, adopted.to_number, adopted.status) == \
        ("inbound", "15557654321", "1000", "in-progress")
    assert Call.get_or_none(Call.fs_uuid == b_leg) is None
    assert trail(adopted)[0] == ("freeswitch", "adopted:CHANNEL_CREATE", "initiated")
    assert news(redis_client, adopted.id) == [("call.initiated", "initiated"),
                                              ("call.answered", "in-progress")]


def test_a_hangup_after_the_api_ended_the_call_fills_in_freeswitchs_figures(handlers,
                                                                            redis_client):
    call = api_call(status="canceled", hangup_cause="ORIGINATOR_CANCEL", ended_at=utcnow(),
                    billsec=0, duration=3)
    hangup = event("CHANNEL_HANGUP_COMPLETE", call.fs_uuid,
                   **{"Hangup-Cause": "ORIGINATOR_CANCEL", "variable_duration": "4"})
    apply(handlers, hangup)
    apply(handlers, hangup)  # a replay changes nothing more
    stored = Call.get_by_id(call.id)
    assert (stored.status, stored.duration) == ("canceled", 4)
    assert news(redis_client, call.id) == [("call.updated", "canceled")]


def test_a_failed_originate_ends_the_call_with_its_cause(handlers, redis_client):
    busy, placed = api_call(seconds_ago=1), api_call(seconds_ago=1)
    apply(handlers,
          {"Event-Name": "BACKGROUND_JOB", "Job-Command": "originate",
           "Job-UUID": busy.fs_job_uuid, "_body": "-ERR USER_BUSY\n"},
          {"Event-Name": "BACKGROUND_JOB", "Job-Command": "originate",
           "Job-UUID": placed.fs_job_uuid, "_body": "+OK " + placed.fs_uuid})
    stored = Call.get_by_id(busy.id)
    assert (stored.status, stored.hangup_cause, stored.status_reason) == \
        ("busy", "USER_BUSY", "originate: -ERR USER_BUSY")
    assert Call.get_by_id(placed.id).status == "initiated"
    assert news(redis_client) == [("call.ended", "busy")]


# ----- reconciliation --------------------------------------------------------
def row(call_or_uuid, dump=None, **fields):
    fs_uuid = getattr(call_or_uuid, "fs_uuid", call_or_uuid)
    out = {"uuid": fs_uuid, "call_uuid": fs_uuid, "direction": "outbound", **fields}
    if dump is not None:
        out["_dump"] = {"Unique-ID": fs_uuid, "Event-Name": "CHANNEL_DATA", **dump}
    return out


def snapshot(rows, gone=(), taken_at=None):
    return ChannelSnapshot(taken_at or utcnow(), rows, set(gone))


def test_reconcile_catches_up_live_calls_and_closes_none_of_them(handlers, redis_client):
    """Three live channels; the initiated one is caught up to ringing while the
    live calls are walked: not met again further along, and not closed."""
    initiated = api_call()
    ringing = api_call(status="ringing", ringing_at=utcnow())
    answered = api_call(status="in-progress", answered_at=utcnow())
    closed, adopted = apply(handlers, snapshot([
        row(initiated, {"Answer-State": "early"}),
        row(ringing, {"Answer-State": "early"}),
        row(answered, {"Answer-State": "answered"})]))
    assert (closed, adopted) == (0, 0)
    assert [Call.get_by_id(c.id).status for c in (initiated, ringing, answered)] == \
        ["ringing", "ringing", "in-progress"]
    assert trail(initiated) == [("reconcile", "reconcile", "ringing")]


def test_reconcile_closes_calls_whose_channels_freeswitch_confirmed_gone(handlers,
                                                                         redis_client):
    unanswered = api_call(status="ringing")
    answered = api_call(status="in-progress", answered_at=utcnow() - datetime.timedelta(seconds=30))
    closed, _ = apply(handlers, snapshot([], gone={unanswered.fs_uuid, answered.fs_uuid}))
    assert closed == 2
    assert Call.get_by_id(unanswered.id).status == "failed"
    ended = Call.get_by_id(answered.id)
    assert ended.status == "completed" and "channel gone" in ended.status_reason
    assert news(redis_client, answered.id) == [("call.ended", "completed")]


def test_reconcile_leaves_a_call_missing_from_the_list_that_freeswitch_still_has(handlers):
    """`show channels` lags the channel events: without uuid_exists's word, no verdict."""
    call = api_call(status="in-progress", answered_at=utcnow())
    closed, _ = apply(handlers, snapshot([], gone=()))
    assert closed == 0 and Call.get_by_id(call.id).status == "in-progress"


def test_reconcile_does_not_judge_a_call_with_an_event_newer_than_the_snapshot(handlers):
    call = api_call()
    taken = snapshot([], gone={call.fs_uuid})  # taken before the call rang
    apply(handlers, event("CHANNEL_PROGRESS", call.fs_uuid))
    closed, _ = apply(handlers, taken)
    assert closed == 0
    assert Call.get_by_id(call.id).status == "ringing"
    assert [t[0] for t in trail(call)] == ["freeswitch"]


def test_reconcile_gives_a_young_initiated_call_time_to_get_its_channel(handlers):
    young = api_call(seconds_ago=1)
    closed, _ = apply(handlers, snapshot([], gone={young.fs_uuid},
                                         taken_at=utcnow() + datetime.timedelta(seconds=1)))
    assert closed == 0 and Call.get_by_id(young.id).status == "initiated"


def test_reconcile_adopts_an_unknown_a_leg_but_not_its_b_leg(handlers, redis_client):
    a_leg, b_leg = str(uuid.uuid4()), str(uuid.uuid4())
    closed, adopted = apply(handlers, snapshot([
        row(a_leg, {"Answer-State": "answered", "Call-Direction": "inbound",
                    "Caller-Caller-ID-Number": "15551112222"}),
        row(b_leg, call_uuid=a_leg)]))
    assert (closed, adopted) == (0, 1)
    call = Call.get(Call.fs_uuid == a_leg)
    assert (call.direction, call.from_number, call.status) == \
        ("inbound", "15551112222", "in-progress")
    assert Call.get_or_none(Call.fs_uuid == b_leg) is None
    assert news(redis_client, call.id) == [("call.initiated", "initiated"),
                                           ("call.answered", "in-progress")]


def test_the_channels_to_ask_about_are_the_live_calls_missing_from_the_list(handlers):
    listed, missing = api_call(), api_call(status="in-progress")
    api_call(status="completed")
    assert handlers.channels_to_check({listed.fs_uuid}) == [missing.fs_uuid]


# ----- a call closed by reconciliation that shows up live --------------------
def closed_by_reconcile(handlers, status="ringing", **fields):
    """A live call that a snapshot (wrongly) judged gone: reconcile closes it."""
    call = api_call(status=status, **fields)
    closed, _ = apply(handlers, snapshot([], gone={call.fs_uuid}))
    assert closed == 1
    return Call.get_by_id(call.id)


def test_a_reconcile_closed_call_whose_answer_arrives_is_reopened(handlers, redis_client):
    call = closed_by_reconcile(handlers)
    assert call.status == "failed"
    apply(handlers, event("CHANNEL_ANSWER", call.fs_uuid, **{"variable_cc_call_id": call.id}))
    stored = Call.get_by_id(call.id)
    assert (stored.status, stored.status_reason, stored.ended_at) == ("in-progress", None, None)
    assert trail(call) == [("reconcile", "reconcile", "failed"),
                           ("reconcile", "reopen:CHANNEL_ANSWER", "in-progress")]
    assert news(redis_client, call.id)[-1] == ("call.answered", "in-progress")
    # ... and its real hangup then ends it as what it was: answered, so completed
    apply(handlers, event("CHANNEL_HANGUP_COMPLETE", call.fs_uuid,
                          **{"Hangup-Cause": "NORMAL_CLEARING", "variable_billsec": "7"}))
    stored = Call.get_by_id(call.id)
    assert (stored.status, stored.billsec) == ("completed", 7)


def test_a_reconcile_closed_call_listed_live_by_a_later_snapshot_is_reopened(handlers,
                                                                             redis_client):
    call = closed_by_reconcile(handlers)
    closed, adopted = apply(handlers, snapshot([row(call, {"Answer-State": "answered"})]))
    assert (closed, adopted) == (0, 0)
    assert Call.get_by_id(call.id).status == "in-progress"
    assert trail(call)[-1] == ("reconcile", "reopen:reconcile", "in-progress")


def test_a_stale_row_of_a_gone_channel_does_not_reopen_its_call(handlers):
    """`show channels` lists a channel for a moment after it is gone; uuid_dump knows."""
    call = closed_by_reconcile(handlers)
    apply(handlers, snapshot([row(call)]))  # listed, but no uuid_dump could be read
    assert Call.get_by_id(call.id).status == "failed"


def test_a_hangup_of_a_reconcile_closed_call_sets_the_status_its_cause_means(handlers,
                                                                              redis_client):
    call = closed_by_reconcile(handlers)  # guessed failed
    apply(handlers, event("CHANNEL_HANGUP_COMPLETE", call.fs_uuid, **{"Hangup-Cause": "USER_BUSY"}))
    stored = Call.get_by_id(call.id)
    assert (stored.status, stored.hangup_cause, stored.status_reason) == \
        ("busy", "USER_BUSY", None)
    assert news(redis_client, call.id) == [("call.ended", "failed"), ("call.ended", "busy")]


def test_only_a_reconcile_closed_call_may_come_back(handlers, redis_client):
    hung_up = api_call(status="failed", status_reason="originate: -ERR NO_ROUTE")
    apply(handlers, event("CHANNEL_ANSWER", hung_up.fs_uuid))
    assert Call.get_by_id(hung_up.id).status == "failed"
    assert news(redis_client, hung_up.id) == []


def test_a_late_hangup_agreeing_with_reconciliation_only_fills_in_the_figures(handlers):
    call = closed_by_reconcile(handlers, status="in-progress", answered_at=utcnow())
    apply(handlers, event("CHANNEL_HANGUP_COMPLETE", call.fs_uuid,
                          **{"Hangup-Cause": "NORMAL_CLEARING", "variable_billsec": "9"}))
    stored = Call.get_by_id(call.id)
    assert (stored.status, stored.billsec) == ("completed", 9)
    assert [t[2] for t in trail(call)] == ["completed", "completed"]  # no reopen-and-close


def test_a_call_the_api_canceled_as_it_was_answered_ends_completed(handlers, redis_client):
    """The API hung up while the answer's event was still on its way: POST /end saw a
    ringing call and stored `canceled`; FreeSWITCH's hangup says it had been answered."""
    ringing = utcnow() - datetime.timedelta(seconds=10)
    answered, ended = ringing + datetime.timedelta(seconds=4), utcnow()
    call = api_call(status="canceled", hangup_cause="ORIGINATOR_CANCEL", ringing_at=ringing,
                    ended_at=ended, billsec=0, duration=60, ring_seconds=10)
    late_answer = event("CHANNEL_ANSWER", call.fs_uuid,
                        **{"Caller-Channel-Answered-Time": micros(answered)})
    hangup = event("CHANNEL_HANGUP_COMPLETE", call.fs_uuid,
                   **{"Hangup-Cause": "NORMAL_CLEARING", "variable_billsec": "6",
                      "Caller-Channel-Answered-Time": micros(answered)})
    apply(handlers, late_answer)
    assert Call.get_by_id(call.id).status == "canceled"  # an answer alone reopens nothing
    apply(handlers, hangup)
    apply(handlers, hangup)  # a replay changes nothing more
    stored = Call.get_by_id(call.id)
    assert (stored.status, stored.hangup_cause, stored.billsec) == \
        ("completed", "NORMAL_CLEARING", 6)
    assert abs((stored.answered_at - answered).total_seconds()) < 0.001
    assert stored.ring_seconds == 4
    assert [t[2] for t in trail(call)] == ["completed"]
    assert news(redis_client, call.id) == [("call.ended", "completed")]


def test_a_canceled_call_whose_hangup_says_unanswered_stays_canceled(handlers, redis_client):
    call = api_call(status="canceled", hangup_cause="ORIGINATOR_CANCEL", ended_at=utcnow(),
                    billsec=0, duration=3)
    apply(handlers, event("CHANNEL_HANGUP_COMPLETE", call.fs_uuid,
                          **{"Hangup-Cause": "ORIGINATOR_CANCEL",
                             "Caller-Channel-Answered-Time": "0"}))
    assert Call.get_by_id(call.id).status == "canceled"
    assert trail(call) == [] and news(redis_client, call.id) == []
