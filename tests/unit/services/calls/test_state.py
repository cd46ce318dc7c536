"""The call state machine: every transition (strict and lenient), every cause, the verdicts."""
import datetime
import itertools

import pytest

from models.call import Call
from services.calls import state as cs

FORWARD = {
    ("initiated", "ringing"), ("initiated", "in-progress"), ("initiated", "completed"),
    ("initiated", "busy"), ("initiated", "no-answer"), ("initiated", "failed"),
    ("initiated", "canceled"),
    ("ringing", "in-progress"), ("ringing", "completed"), ("ringing", "busy"),
    ("ringing", "no-answer"), ("ringing", "failed"), ("ringing", "canceled"),
    ("in-progress", "completed"), ("in-progress", "failed"),
}
EVERY_PAIR = list(itertools.product(cs.ALL, cs.ALL))


def test_the_status_words_are_the_models_own():
    assert cs.LIVE == Call.LIVE_STATUSES == ("initiated", "ringing", "in-progress")
    assert set(cs.ALL) == set(cs.LIVE) | set(cs.TERMINAL) and len(cs.ALL) == 8


@pytest.mark.parametrize("current,requested", sorted(FORWARD))
def test_forward_transitions_apply_for_the_api_and_for_events(current, requested):
    assert cs.decide(current, requested, strict=True) is True
    assert cs.decide(current, requested, strict=False) is True


@pytest.mark.parametrize("current,requested",
                         [p for p in EVERY_PAIR if p not in FORWARD and p[0] != p[1]])
def test_every_other_move_is_refused_for_the_api_and_ignored_for_events(current, requested):
    with pytest.raises(cs.InvalidTransition) as info:
        cs.decide(current, requested, strict=True)
    assert current in str(info.value) and requested in str(info.value)
    assert cs.decide(current, requested, strict=False) is False


@pytest.mark.parametrize("status", cs.ALL)
def test_asking_for_the_status_a_call_has_changes_nothing(status):
    assert cs.decide(status, status, strict=True) is False
    assert cs.decide(status, status, strict=False) is False


@pytest.mark.parametrize("strict", [True, False])
def test_an_unknown_status_is_refused_even_for_events(strict):
    with pytest.raises(cs.InvalidTransition):
        cs.decide("initiated", "exploded", strict=strict)


@pytest.mark.parametrize("cause,status", [
    *[(c, "busy") for c in sorted(cs.BUSY_CAUSES)],
    *[(c, "no-answer") for c in sorted(cs.NO_ANSWER_CAUSES)],
    *[(c, "canceled") for c in sorted(cs.CANCEL_CAUSES)],
    ("NORMAL_TEMPORARY_FAILURE", "failed"), ("INVALID_PROFILE", "failed"),
    ("NORMAL_CLEARING", "failed"), ("", "failed"), (None, "failed"),
    ("user_busy", "busy"),  # FreeSWITCH spells causes in capitals; case does not matter
])
def test_the_hangup_cause_of_an_unanswered_call_decides_its_status(cause, status):
    assert cs.status_for_hangup(cause, answered=False) == status


@pytest.mark.parametrize("cause", ["NORMAL_CLEARING", "USER_BUSY", "NO_ANSWER",
                                   "ORIGINATOR_CANCEL", None])
def test_an_answered_call_that_hangs_up_is_completed_whatever_the_cause(cause):
    assert cs.status_for_hangup(cause, answered=True) == "completed"


@pytest.mark.parametrize("body,cause,status", [
    ("-ERR USER_BUSY", "USER_BUSY", "busy"),
    ("-ERR NO_ANSWER\n", "NO_ANSWER", "no-answer"),
    ("-ERR NORMAL_TEMPORARY_FAILURE extra words", "NORMAL_TEMPORARY_FAILURE", "failed"),
    ("-ERR", "UNKNOWN", "failed"),
    ("", "UNKNOWN", "failed"),
])
def test_a_failed_originate_ends_the_call_by_its_cause(body, cause, status):
    assert cs.originate_failure_cause(body) == cause
    assert cs.status_for_originate_failure(cause) == status


@pytest.mark.parametrize("current,verdict", [
    ("in-progress", ("completed", "NORMAL_CLEARING")),
    ("ringing", ("canceled", "ORIGINATOR_CANCEL")),
    ("initiated", ("canceled", "ORIGINATOR_CANCEL")),
])
def test_a_call_ended_through_the_api(current, verdict):
    assert cs.api_end(current) == verdict
    assert cs.decide(current, verdict[0], strict=True) is True


def test_reconciliation_closes_an_answered_call_as_completed_and_others_as_failed():
    assert cs.reconcile_verdict(answered=True) == "completed"
    assert cs.reconcile_verdict(answered=False) == "failed"


def test_event_types_name_the_reached_state():
    assert cs.event_type("ringing") == "call.ringing"
    assert cs.event_type("in-progress") == "call.answered"
    assert all(cs.event_type(s) == "call.ended" for s in cs.TERMINAL)


T0 = datetime.datetime(2026, 1, 1, 12, 0, 0)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def test_apply_stamps_the_times_and_fills_the_durations():
    call = Call(status="initiated", created_at=T0)
    assert cs.apply(call, "ringing", at=at(2)) == "initiated"
    assert cs.apply(call, "in-progress", at=at(5)) == "ringing"
    assert cs.apply(call, "completed", at=at(65)) == "in-progress"
    assert (call.status, call.ringing_at, call.answered_at, call.ended_at) == \
        ("completed", at(2), at(5), at(65))
    assert (call.duration, call.billsec) == (65, 60)


def test_apply_leaves_a_refused_or_repeated_move_untouched():
    call = Call(status="completed", created_at=T0, ended_at=at(10), duration=10, billsec=0)
    assert cs.apply(call, "ringing", at=at(20)) is None
    assert cs.apply(call, "completed", at=at(20)) is None
    assert (call.status, call.ringing_at, call.ended_at) == ("completed", None, at(10))
    with pytest.raises(cs.InvalidTransition):
        cs.apply(call, "ringing", strict=True)


def test_an_unanswered_call_that_ends_bills_nothing():
    call = Call(status="ringing", created_at=T0, ringing_at=at(1))
    cs.apply(call, "no-answer", at=at(30))
    assert (call.duration, call.billsec, call.answered_at) == (30, 0, None)
