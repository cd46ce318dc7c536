"""Click-to-call with the agent on the line, against the real FreeSWITCH of ../shared/freeswitch
(skipped, with the reason, when it is absent): its phones 1001-1003 auto-answer unless told
otherwise (`global_setvar farend_phone_N=noanswer`), the far end answers `answer-*` and
is busy for `busy-*`."""
import glob
import json
import uuid

import gevent
import pytest

from tests.conftest import wait_until
from tests.integration.agent_helpers import agent_of, call_of, make_agent

LIVE = {"initiated", "ringing", "in-progress"}


@pytest.fixture(scope="module")
def real_stack(stack_factory, db_url, real_freeswitch):
    return stack_factory(db_url, None, DEFAULT_GATEWAY="farend",
                         FREESWITCH_ORIGINATE_TIMEOUT="4", **real_freeswitch.env)


def number(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def dialled_numbers(switch):
    """Every destination the switch's channels had (one JSON CDR per leg that ended)."""
    seen = set()
    for path in glob.glob(f"{switch.info['cdr_dir']}/*.json"):
        with open(path) as fh:
            cdr = json.load(fh)
        for flow in cdr.get("callflow") or []:
            seen.add((flow.get("caller_profile") or {}).get("destination_number"))
    return seen


def start(stack, to, agent_id, **extra):
    resp = stack.post("/api/calls/start", {"to": to, "agent_id": agent_id, **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_agent_first_rings_the_agent_then_bridges_the_customer(real_stack, real_freeswitch):
    agent_id = make_agent(real_stack)
    call = start(real_stack, number("answer"), agent_id)
    assert call["mode"] == "agent_first" and call["agent_leg_uuid"]
    assert agent_of(real_stack, agent_id)["state"] == "ringing"
    wait_until(lambda: call_of(real_stack, call["id"])["bridged_at"], 15, message="bridged")
    now = call_of(real_stack, call["id"])
    assert now["status"] == "in-progress"
    wait_until(lambda: agent_of(real_stack, agent_id)["state"] == "on-call", 15)
    legs = {call["fs_uuid"], call["agent_leg_uuid"]}
    # `show channels` lags the channel events by ~150 ms (20_show_channels_lag.capture)
    wait_until(lambda: legs <= real_freeswitch.channels(), 15, message="both legs listed")
    # FreeSWITCH itself says the two legs are bridged to each other.
    assert real_freeswitch.cli(f"uuid_getvar {call['agent_leg_uuid']} bridge_uuid").strip() \
        == call["fs_uuid"]
    trail = real_stack.get(f"/api/calls/{call['id']}/events").json()
    agent_events = [e["event_name"] for e in trail if (e["data"] or {}).get("leg") == "agent"]
    assert "CHANNEL_ANSWER" in agent_events and "CHANNEL_BRIDGE" in agent_events
    gevent.sleep(1.2)
    assert real_stack.post(f"/api/calls/{call['id']}/end", {}).status_code == 200
    wait_until(lambda: not legs & real_freeswitch.channels(), 10, message="legs gone")
    wait_until(lambda: call_of(real_stack, call["id"])["talk_seconds"] is not None, 10)
    ended = call_of(real_stack, call["id"])
    assert ended["status"] == "completed" and ended["talk_seconds"] >= 1
    wait_until(lambda: agent_of(real_stack, agent_id)["state"] in ("wrap-up", "available"), 15)
    states = [c["to_state"] for c in real_stack.get(f"/api/agents/{agent_id}/states").json()]
    assert states[:4] == ["available", "ringing", "on-call", "wrap-up"]


def test_agent_no_answer_never_dials_the_customer(real_stack, real_freeswitch):
    agent_id = make_agent(real_stack, "user/1002")
    real_freeswitch.cli("global_setvar farend_phone_1002=noanswer")
    try:
        to = number("answer")
        call = start(real_stack, to, agent_id)
        wait_until(lambda: call_of(real_stack, call["id"])["status"] not in LIVE, 15)
    finally:
        real_freeswitch.cli("global_setvar farend_phone_1002=answer")
    ended = call_of(real_stack, call["id"])
    assert ended["status"] == "failed" and ended["status_reason"] == "agent-no-answer", ended
    wait_until(lambda: call["agent_leg_uuid"] not in real_freeswitch.channels(), 15)
    wait_until(lambda: call["fs_uuid"] not in real_freeswitch.channels(), 15)
    gevent.sleep(0.5)  # the CDRs of the hung-up legs are written
    assert to not in dialled_numbers(real_freeswitch)
    agent = agent_of(real_stack, agent_id)
    assert agent["state"] == "paused" and agent["state_reason"] == "no-answer"


def test_customer_busy_ends_busy_and_leaves_no_leg(real_stack, real_freeswitch):
    agent_id = make_agent(real_stack)
    call = start(real_stack, number("busy"), agent_id)
    wait_until(lambda: call_of(real_stack, call["id"])["status"] not in LIVE, 15)
    assert call_of(real_stack, call["id"])["status"] == "busy"
    # The agent's leg (answered, its bridge failed) is hung up: no orphan.
    wait_until(lambda: not {call["agent_leg_uuid"], call["fs_uuid"]}
               & real_freeswitch.channels(), 10, message="no leg left")
    wait_until(lambda: agent_of(real_stack, agent_id)["state"] == "available", 15)


def test_customer_first_bridges_the_agent_when_the_customer_answers(real_stack,
                                                                   real_freeswitch):
    agent_id = make_agent(real_stack)
    call = start(real_stack, number("answer"), agent_id, mode="customer_first")
    assert call["mode"] == "customer_first"
    wait_until(lambda: call_of(real_stack, call["id"])["bridged_at"], 15, message="bridged")
    assert call_of(real_stack, call["id"])["status"] == "in-progress"
    wait_until(lambda: agent_of(real_stack, agent_id)["state"] == "on-call", 15)
    legs = {call["fs_uuid"], call["agent_leg_uuid"]}
    # `show channels` lags the channel events by ~150 ms (20_show_channels_lag.capture)
    wait_until(lambda: legs <= real_freeswitch.channels(), 15, message="both legs listed")
    assert real_stack.post(f"/api/calls/{call['id']}/end", {}).status_code == 200
    wait_until(lambda: not legs & real_freeswitch.channels(), 10, message="legs gone")


def test_two_concurrent_starts_for_one_agent_one_wins(real_stack, real_freeswitch):
    agent_id = make_agent(real_stack)
    jobs = [gevent.spawn(real_stack.post, "/api/calls/start",
                         {"to": number("answer"), "agent_id": agent_id}) for _ in range(2)]
    gevent.joinall(jobs, timeout=20)
    codes = sorted(job.value.status_code for job in jobs)
    assert codes == [201, 409], [job.value.text for job in jobs]
    loser = next(job.value for job in jobs if job.value.status_code == 409)
    assert loser.json()["error_id"] == "agent_not_available"
    winner = next(job.value for job in jobs if job.value.status_code == 201).json()
    wait_until(lambda: call_of(real_stack, winner["id"])["bridged_at"], 15)
    real_stack.post(f"/api/calls/{winner['id']}/end", {})
    wait_until(lambda: not {winner["fs_uuid"], winner["agent_leg_uuid"]}
               & real_freeswitch.channels(), 10)
