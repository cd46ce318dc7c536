"""Handling times and the reasons a call with an agent ends with."""
import datetime

from models.call import Call
from services.calls.bridging import agent_failure_reason, fill_handling_times, leg_of

T0 = datetime.datetime(2024, 5, 1, 12, 0, 0)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def test_ring_talk_and_hold_seconds_at_the_end():
    call = Call(created_at=T0, ringing_at=at(3), answered_at=at(8), bridged_at=at(9),
                held_at=at(40), hold_seconds=10, ended_at=at(70))
    fill_handling_times(call)
    # on hold 10 s before, and again from 40 s to the end (30 s)
    assert (call.ring_seconds, call.hold_seconds, call.held_at) == (5, 40, None)
    assert call.talk_seconds == 61 - 40


def test_a_call_never_bridged_has_no_talk_time_and_rang_until_it_ended():
    call = Call(created_at=T0, ended_at=at(12), hold_seconds=0)
    fill_handling_times(call)
    assert call.talk_seconds is None and call.ring_seconds == 12


def test_the_reason_names_what_the_agent_did():
    assert agent_failure_reason("NO_ANSWER") == "agent-no-answer"
    assert agent_failure_reason("USER_BUSY") == "agent-busy"
    assert agent_failure_reason("CALL_REJECTED") == "agent-busy"
    assert agent_failure_reason("USER_NOT_REGISTERED") == "agent-failed"


def test_an_event_belongs_to_the_leg_it_is_tagged_with_else_by_its_uuid():
    call = Call(fs_uuid="c-1", agent_leg_uuid="a-1")
    assert leg_of(call, {"Unique-ID": "a-1", "variable_cc_leg": "agent"}) == "agent"
    assert leg_of(call, {"Unique-ID": "c-1", "variable_cc_leg": "customer"}) == "customer"
    assert leg_of(call, {"Unique-ID": "a-1"}) == "agent"
    assert leg_of(call, {"Unique-ID": "c-1"}) == "customer"


def test_an_agent_leg_the_call_no_longer_has_is_a_former_leg():
    """After a transfer the old agent's channel hangs up: it must move neither the call
    nor the agent who now has it."""
    call = Call(fs_uuid="c-1", agent_leg_uuid="a-2")
    assert leg_of(call, {"Unique-ID": "a-1", "variable_cc_leg": "agent"}) == "former"
    call.agent_leg_uuid = None  # transferred to an outside number
    assert leg_of(call, {"Unique-ID": "a-2", "variable_cc_leg": "agent"}) == "former"
