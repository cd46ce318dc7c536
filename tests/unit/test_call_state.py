"""The call state machine: transitions, no-ops and hangup causes."""
import pytest

from services.calls import state as cs


@pytest.mark.parametrize("current,requested", [
    ("initiated", "ringing"), ("initiated", "in-progress"), ("ringing", "in-progress"),
    ("in-progress", "completed"), ("ringing", "busy"), ("ringing", "no-answer"),
    ("initiated", "failed"), ("initiated", "canceled"), ("ringing", "canceled"),
])
def test_forward_transitions_apply(current, requested):
    assert cs.decide(current, requested, strict=True) is True


@pytest.mark.parametrize("current,requested", [
    ("in-progress", "ringing"), ("completed", "in-progress"), ("busy", "ringing"),
    ("failed", "completed"), ("in-progress", "busy"), ("canceled", "initiated"),
])
def test_impossible_transitions_are_refused_for_the_api(current, requested):
    with pytest.raises(cs.InvalidTransition) as info:
        cs.decide(current, requested, strict=True)
    assert current in str(info.value) and requested in str(info.value)


@pytest.mark.parametrize("current,requested", [
    ("in-progress", "ringing"), ("completed", "in-progress"), ("completed", "completed"),
    ("busy", "failed"), ("ringing", "ringing"),
])
def test_replayed_or_late_events_change_nothing(current, requested):
    assert cs.decide(current, requested, strict=False) is False


def test_unknown_status_is_refused_even_for_events():
    with pytest.raises(cs.InvalidTransition):
        cs.decide("initiated", "exploded", strict=False)


@pytest.mark.parametrize("cause,answered,status", [
    ("NORMAL_CLEARING", True, "completed"),
    ("USER_BUSY", False, "busy"),
    ("NO_ANSWER", False, "no-answer"),
    ("NO_USER_RESPONSE", False, "no-answer"),
    ("ORIGINATOR_CANCEL", False, "canceled"),
    ("NORMAL_TEMPORARY_FAILURE", False, "failed"),
    ("INVALID_PROFILE", False, "failed"),
    (None, False, "failed"),
    ("USER_BUSY", True, "completed"),
])
def test_hangup_cause_decides_the_final_status(cause, answered, status):
    assert cs.status_for_hangup(cause, answered) == status


def test_event_types_name_the_reached_state():
    assert cs.event_type("ringing") == "call.ringing"
    assert cs.event_type("in-progress") == "call.answered"
    assert all(cs.event_type(s) == "call.ended" for s in cs.TERMINAL)
