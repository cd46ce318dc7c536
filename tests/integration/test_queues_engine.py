"""Inbound queues against the ESL simulator: an inbound caller is routed by the number it
dialled to a queue, hears music, is offered to an agent whose phone rings and, answered,
is bridged; abandon, overflow at maximum wait, closed hours, skills, ring-all, and an agent
who does not answer (next agent; paused after the queue's max_missed_offers).

Queues, members and routes are written straight to the stack's database (the REST API for
them has its own tests); everything else is the stack's own work, seen through the API,
the simulator's channels and the database.
"""
import datetime
import time

import gevent
import pytest

from models.queue import QueueEntry, QueueMember
from services.queues.dispatcher import LEADER_KEY, LEADER_TTL
from tests.conftest import ChannelRecorder, wait_until
from tests.integration.agent_helpers import agent_of, make_agent
from tests.integration.queue_helpers import (
    call_of_channel,
    call_row,
    entries_of,
    entry_of,
    entry_status,
    make_queue,
    route_to,
)

CLOSED_ALWAYS = {"timezone": "UTC", "days": {}}


@pytest.fixture(scope="module")
def qstack(stack_factory, db_url, sim, bound_db):
    return stack_factory(db_url, sim)


@pytest.fixture
def phones(sim):
    """Set what phones do (farend_phone_N); all answer again afterwards."""
    def set_to(user, behaviour):
        sim.global_vars[f"farend_phone_{user}"] = behaviour
    yield set_to
    for key in [k for k in sim.global_vars if k.startswith("farend_phone_")]:
        sim.global_vars.pop(key)


@pytest.fixture(autouse=True)
def _agents_out(qstack):
    """Each test starts with every agent logged out (their phones are shared)."""
    yield
    listed = qstack.get("/api/agents").json()
    for agent in listed if isinstance(listed, list) else listed.get("items", []):
        if agent["state"] in ("available", "paused", "wrap-up"):
            qstack.post(f"/api/agents/{agent['id']}/logout")


@pytest.fixture(autouse=True)
def _no_channels_left(sim):
    """The simulator is shared by the SQLite and PostgreSQL runs: no caller outlives its test."""
    yield
    for fs_uuid in list(sim.channels):
        channel = sim.channels.get(fs_uuid)
        if channel is not None and channel.direction == "inbound":
            sim.hangup(fs_uuid)
    wait_until(lambda: not sim.channels, 10, message="no channel left in the simulator")


def agent_leg_of(sim, phone):
    found = [ch for ch in sim.channels.values() if ch.phone_user == phone and not ch.ended]
    return found[0] if found else None


def test_caller_queues_with_music_then_is_answered_by_an_agent(qstack, sim):
    agent_id = make_agent(qstack, "user/1001", prefix="qa")
    queue_id = make_queue([agent_id], wrapup_seconds=7)
    number = route_to(queue_id)
    caller = sim.inbound_call("15550001000", number, answer_after=0.05)
    call = call_of_channel(caller)
    wait_until(lambda: entry_status(call.id) == "answered", 10, message="answered")
    entry = entries_of(call.id)[-1]
    assert entry.queue_id == queue_id and entry.agent_id == agent_id
    assert entry.wait_seconds is not None and entry.offers == 1
    assert any(f"uuid_broadcast {caller} tone_stream://" in c and "loops=-1" in c
               for c in sim.commands), "music was played to the waiting caller"
    wait_until(lambda: call_row(call.id).bridged_at, 10, message="bridged")
    now = call_row(call.id)
    assert now.status == "in-progress" and now.agent_id == agent_id
    wait_until(lambda: agent_of(qstack, agent_id)["state"] == "on-call", 15)
    assert sim.channels[caller].music is None
    sim.hangup(caller)
    wait_until(lambda: agent_of(qstack, agent_id)["state"] == "wrap-up", 10)
    wait_until(lambda: agent_of(qstack, agent_id)["wrapup_until"] and
               _wrapup_seconds(agent_of(qstack, agent_id)) == 7, 5,
               message="the queue's wrap-up time")


def _wrapup_seconds(agent):
    since = datetime.datetime.fromisoformat(agent["state_since"].rstrip("Z"))
    until = datetime.datetime.fromisoformat(agent["wrapup_until"].rstrip("Z"))
    return round((until - since).total_seconds())


@pytest.fixture
def queues_channel(redis_server):
    recorder = ChannelRecorder(redis_server.url, ("queues",))
    gevent.sleep(0.1)
    yield recorder
    recorder.close()


def test_caller_who_hangs_up_while_waiting_abandoned(qstack, sim, queues_channel):
    queue_id = make_queue([])
    number = route_to(queue_id)
    caller = sim.inbound_call("15550001001", number, answer_after=0.05)
    call = call_of_channel(caller)
    entry_of(call.id)
    joined = time.monotonic()
    mine = lambda: [m for m in queues_channel.messages if m["data"].get("call_id") == call.id]  # noqa: E731
    # Positions go out once a second at most, on a dispatch round: wait for this caller's
    # first one (a loaded machine may take longer than a second), then for 1.2 s of waiting.
    wait_until(lambda: "queue.caller_position" in [m["type"] for m in mine()], 10,
               message="the caller's position on the queues channel")
    gevent.sleep(max(0.0, 1.2 - (time.monotonic() - joined)))
    sim.hangup(caller)
    wait_until(lambda: entry_status(call.id) == "abandoned", 10)
    entry = entries_of(call.id)[-1]
    assert entry.wait_seconds >= 1 and entry.left_at is not None
    wait_until(lambda: "queue.caller_left" in [m["type"] for m in mine()], 15)
    kinds = [m["type"] for m in mine()]
    assert kinds[0] == "queue.caller_joined" and "queue.caller_position" in kinds
    position = next(m["data"] for m in mine() if m["type"] == "queue.caller_position")
    assert position["position"] == 1 and position["estimated_wait_seconds"] >= 0
    left = next(m["data"] for m in mine() if m["type"] == "queue.caller_left")
    assert left["reason"] == "abandoned" and left["wait_seconds"] >= 1


def test_caller_overflows_to_another_queue_at_max_wait(qstack, sim):
    agent_id = make_agent(qstack, "user/1002", prefix="qo")
    second = make_queue([agent_id])
    first = make_queue([], max_wait_seconds=1,
                       max_wait_action={"action": "queue", "target": second})
    caller = sim.inbound_call("15550001002", route_to(first), answer_after=0.05)
    call = call_of_channel(caller)
    wait_until(lambda: [e.status for e in entries_of(call.id)] == ["overflowed", "answered"],
               10, message="overflowed, then answered in the second queue")
    assert [e.queue_id for e in entries_of(call.id)] == [first, second]
    wait_until(lambda: call_row(call.id).agent_id == agent_id, 15)
    sim.hangup(caller)


def test_closed_queue_plays_a_tone_and_hangs_up(qstack, sim):
    queue_id = make_queue([], hours=CLOSED_ALWAYS)
    caller = sim.inbound_call("15550001003", route_to(queue_id), answer_after=0.05)
    call = call_of_channel(caller)
    wait_until(lambda: entry_status(call.id) == "closed", 10)
    wait_until(lambda: caller not in sim.channels, 10, message="the caller hung up")
    assert any("sched_hangup +" in c and caller in c for c in sim.commands)
    wait_until(lambda: call_row(call.id).status == "completed", 10)


def test_skills_route_to_the_agent_with_the_best_level(qstack, sim):
    low = make_agent(qstack, "user/1001", prefix="qs")
    high = make_agent(qstack, "user/1002", prefix="qs")
    none = make_agent(qstack, "user/1003", prefix="qs")
    qstack.put(f"/api/agents/{low}", {"skills": {"billing": 3}})
    qstack.put(f"/api/agents/{high}", {"skills": {"billing": 8}})
    queue_id = make_queue([low, high, none], strategy="skills", required_skills={"billing": 2})
    caller = sim.inbound_call("15550001004", route_to(queue_id), answer_after=0.05)
    call = call_of_channel(caller)
    wait_until(lambda: entry_status(call.id) == "answered", 10)
    assert entries_of(call.id)[-1].agent_id == high
    sim.hangup(caller)


def test_ring_all_rings_everyone_first_answer_wins(qstack, sim, phones):
    a1 = make_agent(qstack, "user/1001", prefix="qr")
    a2 = make_agent(qstack, "user/1002", prefix="qr")
    phones("1002", "noanswer")
    queue_id = make_queue([a1, a2], strategy="ring-all")
    caller = sim.inbound_call("15550001005", route_to(queue_id), answer_after=0.05)
    call = call_of_channel(caller)
    wait_until(lambda: entry_status(call.id) == "answered", 10)
    entry = entries_of(call.id)[-1]
    assert entry.agent_id == a1 and set(entry.offer_leg_uuids) == {a1, a2}
    wait_until(lambda: agent_of(qstack, a2)["state"] == "available", 15,
               message="the other agent stops ringing")
    assert entry.offer_leg_uuids[a2] not in sim.channels
    sim.hangup(caller)


def test_no_answer_tries_the_next_agent_and_pauses_after_n_misses(qstack, sim, phones):
    lazy = make_agent(qstack, "user/1002", prefix="qn")
    phones("1002", "noanswer")
    queue_id = make_queue([lazy], max_missed_offers=2)
    caller = sim.inbound_call("15550001006", route_to(queue_id), answer_after=0.05)
    call = call_of_channel(caller)
    wait_until(lambda: agent_of(qstack, lazy)["state"] == "paused", 15,
               message="paused after 2 misses in a row")
    assert agent_of(qstack, lazy)["state_reason"] == "no-answer"
    assert entries_of(call.id)[-1].offers == 2
    assert entry_status(call.id) == "waiting"
    keen = make_agent(qstack, "user/1001", prefix="qn")
    QueueMember.create(queue=queue_id, agent=keen)
    wait_until(lambda: entry_status(call.id) == "answered", 10, message="the next agent")
    assert entries_of(call.id)[-1].agent_id == keen
    sim.hangup(caller)


def test_callers_api_lists_position_and_estimated_wait(qstack, sim):
    queue_id = make_queue([])
    number = route_to(queue_id)
    callers = [sim.inbound_call(f"1555000200{i}", number, answer_after=0.05) for i in range(3)]
    calls = [call_of_channel(c) for c in callers]
    for call in calls:
        entry_of(call.id)
    resp = qstack.get(f"/api/queues/{queue_id}/callers")
    if resp.status_code == 404 and "queue" not in resp.text:
        pytest.skip("GET /api/queues/<id>/callers is not routed yet")
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert [i["call_id"] for i in items] == [c.id for c in calls]
    assert [i["position"] for i in items] == [1, 2, 3]
    assert all(i["estimated_wait_seconds"] >= 0 for i in items)
    for caller in callers:
        sim.hangup(caller)
    wait_until(lambda: not QueueEntry.select().where(
        (QueueEntry.queue_id == queue_id) & QueueEntry.status.in_(("waiting",))).exists(), 10)


def test_route_to_an_agent_rings_it_and_bridges_the_caller(qstack, sim):
    agent_id = make_agent(qstack, "user/1003", prefix="qd")
    caller = sim.inbound_call("15550003000", route_to(agent_id, target_type="agent"),
                              answer_after=0.05)
    call = call_of_channel(caller)
    wait_until(lambda: call_row(call.id).bridged_at, 10, message="bridged to the agent")
    assert call_row(call.id).agent_id == agent_id and not entries_of(call.id)
    wait_until(lambda: agent_of(qstack, agent_id)["state"] == "on-call", 15)
    sim.hangup(caller)
    wait_until(lambda: agent_of(qstack, agent_id)["state"] in ("wrap-up", "available"), 10)


def test_an_agent_transfers_the_caller_into_another_queue(qstack, sim):
    first = make_agent(qstack, "user/1001", prefix="qt")
    second = make_agent(qstack, "user/1002", prefix="qt")
    sales = make_queue([first])
    support = make_queue([second])
    caller = sim.inbound_call("15550001001", route_to(sales), answer_after=0.05)
    call = call_of_channel(caller)
    wait_until(lambda: call_row(call.id).bridged_at and call_row(call.id).agent_id == first,
               10, message="bridged to the first agent")
    wait_until(lambda: agent_of(qstack, first)["state"] == "on-call", 15)
    # attended transfers into a queue do not exist: a clear 422, nothing moved
    refused = qstack.post(f"/api/calls/{call.id}/transfer", {"queue": support, "attended": True})
    assert refused.status_code == 422 and "queue" in refused.text
    missing = qstack.post(f"/api/calls/{call.id}/transfer", {"queue": "no-such-queue"})
    assert missing.status_code == 404 and missing.json()["error_id"] == "queue_not_found"
    moved = qstack.post(f"/api/calls/{call.id}/transfer", {"queue": support})
    assert moved.status_code == 200, moved.text
    assert f"api uuid_transfer {caller} park inline" in sim.commands
    wait_until(lambda: [e.queue_id for e in entries_of(call.id)] == [sales, support]
               and entry_status(call.id) == "answered", 15,
               message="the caller answered in the second queue")
    wait_until(lambda: call_row(call.id).agent_id == second, 10, message="the second agent")
    wait_until(lambda: agent_of(qstack, second)["state"] == "on-call", 10)
    assert agent_of(qstack, first)["state"] in ("wrap-up", "available")
    assert call_row(call.id).status == "in-progress"
    trail = [e for e in qstack.get(f"/api/calls/{call.id}/events").json()
             if e["event_name"] == "api.transfer"]
    assert trail and trail[-1]["data"]["queue"] == support
    sim.hangup(caller)
    wait_until(lambda: agent_of(qstack, second)["state"] == "wrap-up", 10)


@pytest.fixture
def no_dispatcher(redis_server):
    """Take the dispatcher's leader lock away from the stack's processes for the test."""
    client = redis_server.client()
    client.set(LEADER_KEY, "test:holds-the-lead", px=60_000)
    gevent.sleep(LEADER_TTL / 10)  # a round already under way finishes
    yield client
    client.delete(LEADER_KEY)


def test_a_caller_is_offered_on_arrival_and_an_older_caller_keeps_its_turn(
        qstack, sim, no_dispatcher):
    """With no dispatcher leading, a newcomer to a queue nobody waits in still rings an
    available agent (offered in the events process's own transaction); a newcomer behind an
    older waiting caller does not jump it when an agent frees up."""
    first = make_agent(qstack, "user/1001", prefix="qn")
    queue_id = make_queue([first])
    number = route_to(queue_id)
    early = call_of_channel(sim.inbound_call("15550004001", number, answer_after=0.05))
    wait_until(lambda: entry_status(early.id) == "answered", 10,
               message="the first caller answered without a dispatcher")
    assert agent_leg_of(sim, "1001") is not None
    # The only agent is busy: the next caller waits, then one more arrives behind it.
    waiting = call_of_channel(sim.inbound_call("15550004002", number, answer_after=0.05))
    wait_until(lambda: entry_status(waiting.id) == "waiting", 10)
    second = make_agent(qstack, "user/1002", prefix="qn")
    QueueMember.create(queue=queue_id, agent=second)
    later = call_of_channel(sim.inbound_call("15550004003", number, answer_after=0.05))
    wait_until(lambda: entry_status(later.id) == "waiting", 10)
    gevent.sleep(0.5)
    assert entry_status(later.id) == "waiting", "the newcomer jumped the older caller"
    assert agent_of(qstack, second)["state"] == "available"
    no_dispatcher.delete(LEADER_KEY)  # the dispatcher leads again: oldest first
    wait_until(lambda: entry_status(waiting.id) == "answered", 15,
               message="the older caller answered first")
    assert entries_of(waiting.id)[-1].agent_id == second
    assert entry_status(later.id) == "waiting"
