"""Inbound queues against the real FreeSWITCH of ../shared/freeswitch (skipped, with the
reason, when it is absent): callers come from the carrier side
(`originate sofia/gateway/carrier/<number> &echo()` reaches the `public` context, answered
and parked), wait hearing a looping tone stream, are offered to the auto-answering phones
1001-1003 and bridged; abandon, overflow at maximum wait, closed hours, skills, ring-all,
and a phone that rings out (`global_setvar farend_phone_N=noanswer`)."""
import uuid

import pytest

from models import Call
from models.queue import QueueMember
from tests.conftest import wait_until
from tests.integration.agent_helpers import agent_of, make_agent
from tests.integration.queue_helpers import (
    call_row,
    entries_of,
    entry_status,
    make_queue,
    route_to,
)

CLOSED_ALWAYS = {"timezone": "UTC", "days": {}}


@pytest.fixture(scope="module")
def real_stack(stack_factory, db_url, real_freeswitch, bound_db):
    return stack_factory(db_url, None, DEFAULT_GATEWAY="farend",
                         FREESWITCH_ORIGINATE_TIMEOUT="4", **real_freeswitch.env)


@pytest.fixture
def phones(real_freeswitch):
    changed = []

    def set_to(user, behaviour):
        changed.append(user)
        real_freeswitch.cli(f"global_setvar farend_phone_{user}={behaviour}")
    yield set_to
    for user in changed:
        real_freeswitch.cli(f"global_setvar farend_phone_{user}=answer")


@pytest.fixture(autouse=True)
def _agents_out(real_stack):
    yield
    for agent in real_stack.get("/api/agents").json():
        if agent["state"] in ("available", "paused", "wrap-up"):
            real_stack.post(f"/api/agents/{agent['id']}/logout")


class Caller:
    """A call from the carrier side: its far-end leg (hang it up to abandon) and the
    inbound channel the service sees."""

    def __init__(self, switch, number):
        self.switch = switch
        self.far_uuid = str(uuid.uuid4())
        reply = switch.cli(f"bgapi originate {{origination_uuid={self.far_uuid}}}"
                           f"sofia/gateway/carrier/{number} &echo()")
        assert "+OK" in reply, reply
        self.call = wait_until(lambda: _inbound_call(number), 15,
                               message=f"the inbound call to {number}")

    def hang_up(self):
        self.switch.cli(f"uuid_kill {self.far_uuid}")

    def application(self):
        return self.switch.cli(f"uuid_getvar {self.call.fs_uuid} current_application_data")


def _inbound_call(number):
    return Call.get_or_none((Call.to_number == number) & (Call.direction == "inbound"))


def test_caller_hears_music_then_is_bridged_to_the_agent(real_stack, real_freeswitch):
    agent_id = make_agent(real_stack, "user/1001", prefix="rq")
    queue_id = make_queue([], wrapup_seconds=3)
    caller = Caller(real_freeswitch, route_to(queue_id))
    wait_until(lambda: entry_status(caller.call.id) == "waiting", 10)
    wait_until(lambda: "loops=-1" in caller.application(), 10, message="music on hold")
    QueueMember.create(queue=queue_id, agent=agent_id)
    wait_until(lambda: call_row(caller.call.id).bridged_at, 20, message="bridged")
    call = call_row(caller.call.id)
    assert call.status == "in-progress" and call.agent_id == agent_id
    wait_until(lambda: agent_of(real_stack, agent_id)["state"] == "on-call", 15)
    assert real_freeswitch.cli(f"uuid_getvar {call.fs_uuid} bridge_uuid").strip() == \
        call.agent_leg_uuid
    entry = entries_of(call.id)[-1]
    assert entry.status == "answered" and entry.wait_seconds >= 0
    caller.hang_up()
    wait_until(lambda: agent_of(real_stack, agent_id)["state"] == "wrap-up", 15)
    wait_until(lambda: call.agent_leg_uuid not in real_freeswitch.channels(), 10,
               message="the agent's leg gone from the switch")


def test_caller_hanging_up_while_waiting_is_abandoned(real_stack, real_freeswitch):
    queue_id = make_queue([])
    caller = Caller(real_freeswitch, route_to(queue_id))
    wait_until(lambda: entry_status(caller.call.id) == "waiting", 10)
    caller.hang_up()
    wait_until(lambda: entry_status(caller.call.id) == "abandoned", 15)
    assert entries_of(caller.call.id)[-1].wait_seconds is not None


def test_max_wait_overflows_to_a_number(real_stack, real_freeswitch):
    queue_id = make_queue([], max_wait_seconds=1,
                          max_wait_action={"action": "number", "target": "5550100"})
    caller = Caller(real_freeswitch, route_to(queue_id))
    wait_until(lambda: entry_status(caller.call.id) == "overflowed", 15)
    # the far end answers nothing at 5550100 (404): the caller's leg is sent there and ends
    wait_until(lambda: call_row(caller.call.id).status not in ("initiated", "ringing",
                                                               "in-progress"), 20)


def test_closed_hours_tone_then_hang_up(real_stack, real_freeswitch):
    queue_id = make_queue([], hours=CLOSED_ALWAYS)
    caller = Caller(real_freeswitch, route_to(queue_id))
    wait_until(lambda: entry_status(caller.call.id) == "closed", 10)
    wait_until(lambda: call_row(caller.call.id).status == "completed", 15,
               message="hung up after the tone")


def test_skills_and_ring_all(real_stack, real_freeswitch, phones):
    low = make_agent(real_stack, "user/1001", prefix="rs")
    high = make_agent(real_stack, "user/1002", prefix="rs")
    real_stack.put(f"/api/agents/{low}", {"skills": {"billing": 2}})
    real_stack.put(f"/api/agents/{high}", {"skills": {"billing": 9}})
    skills = make_queue([low, high], strategy="skills", required_skills={"billing": 1})
    caller = Caller(real_freeswitch, route_to(skills))
    wait_until(lambda: entry_status(caller.call.id) == "answered", 20)
    assert entries_of(caller.call.id)[-1].agent_id == high
    caller.hang_up()
    wait_until(lambda: agent_of(real_stack, high)["state"] in ("wrap-up", "available"), 15)
    phones("1001", "noanswer")
    ring_all = make_queue([low, high], strategy="ring-all")
    wait_until(lambda: agent_of(real_stack, high)["state"] == "available", 15)
    caller = Caller(real_freeswitch, route_to(ring_all))
    wait_until(lambda: entry_status(caller.call.id) == "answered", 20)
    entry = entries_of(caller.call.id)[-1]
    assert entry.agent_id == high and set(entry.offer_leg_uuids) == {low, high}
    wait_until(lambda: entry.offer_leg_uuids[low] not in real_freeswitch.channels(), 10,
               message="the other phone stops ringing")
    assert agent_of(real_stack, low)["state"] == "available"
    caller.hang_up()


def test_no_answer_next_agent_and_paused_after_misses(real_stack, real_freeswitch, phones):
    phones("1003", "noanswer")
    lazy = make_agent(real_stack, "user/1003", prefix="rn")
    queue_id = make_queue([lazy], ring_timeout=2, max_missed_offers=2)
    caller = Caller(real_freeswitch, route_to(queue_id))
    wait_until(lambda: agent_of(real_stack, lazy)["state"] == "paused", 30,
               message="paused after two misses")
    assert agent_of(real_stack, lazy)["state_reason"] == "no-answer"
    keen = make_agent(real_stack, "user/1001", prefix="rn")
    QueueMember.create(queue=queue_id, agent=keen)
    wait_until(lambda: entry_status(caller.call.id) == "answered", 20)
    assert entries_of(caller.call.id)[-1].agent_id == keen
    assert entries_of(caller.call.id)[-1].offers == 3
    caller.hang_up()


def test_an_agent_transfers_the_caller_into_another_queue(real_stack, real_freeswitch):
    first = make_agent(real_stack, "user/1001", prefix="rt")
    second = make_agent(real_stack, "user/1002", prefix="rt")
    sales, support = make_queue([first]), make_queue([second])
    caller = Caller(real_freeswitch, route_to(sales))
    wait_until(lambda: call_row(caller.call.id).bridged_at, 20, message="bridged to the first")
    wait_until(lambda: agent_of(real_stack, first)["state"] == "on-call", 15)
    first_leg = call_row(caller.call.id).agent_leg_uuid
    moved = real_stack.post(f"/api/calls/{caller.call.id}/transfer", {"queue": support})
    assert moved.status_code == 200, moved.text
    wait_until(lambda: [e.queue_id for e in entries_of(caller.call.id)] == [sales, support]
               and entry_status(caller.call.id) == "answered", 20,
               message="the caller answered in the second queue")
    wait_until(lambda: call_row(caller.call.id).agent_id == second, 10)
    call = call_row(caller.call.id)
    wait_until(lambda: real_freeswitch.cli(f"uuid_getvar {call.fs_uuid} bridge_uuid").strip()
               == call_row(caller.call.id).agent_leg_uuid, 10,
               message="the caller bridged to the second agent's leg")
    wait_until(lambda: first_leg not in real_freeswitch.channels(), 10,
               message="the first agent's leg hung up")
    wait_until(lambda: agent_of(real_stack, first)["state"] in ("wrap-up", "available"), 10)
    # The switch bridges before the events process has read CHANNEL_BRIDGE.
    wait_until(lambda: agent_of(real_stack, second)["state"] == "on-call", 10,
               message="the second agent on-call")
    assert call.status == "in-progress"
    caller.hang_up()
    wait_until(lambda: agent_of(real_stack, second)["state"] in ("wrap-up", "available"), 15)
