"""Click-to-call with the agent on the line, and an inbound call sent to an agent, against the
ESL simulator (the flows of test_bridging_real_switch.py; the simulator answers them as the
real switch did in tests/fixtures/esl/22_bridge_*.capture, checked by
test_esl_simulator_bridging.py).

Runs once on SQLite and once on PostgreSQL (when reachable).
"""
import uuid

import gevent
import pytest

from tests.conftest import wait_until
from tests.integration.agent_helpers import agent_of, call_of, make_agent

GW = "gw1"
LIVE = {"initiated", "ringing", "in-progress"}


def number(prefix="1555"):
    return prefix + str(uuid.uuid4().int)[:7]


def start(stack, to, agent_id, **extra):
    resp = stack.post("/api/calls/start", {"to": to, "gateway": GW, "agent_id": agent_id, **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def dialled(sim, to):
    return any(to in command for command in sim.commands)


def legs_up(sim, call):
    return {call["fs_uuid"], call["agent_leg_uuid"]} & set(sim.channels)


@pytest.fixture
def phone_1002(sim):
    """Phone 1002 does what the test says (farend_phone_1002), and answers again after."""
    def set_to(behaviour):
        sim.global_vars["farend_phone_1002"] = behaviour
    yield set_to
    sim.global_vars.pop("farend_phone_1002", None)


def test_agent_first_rings_the_agent_then_bridges_the_customer(stack, sim):
    agent_id = make_agent(stack)
    call = start(stack, number(), agent_id)
    assert call["mode"] == "agent_first" and call["agent_leg_uuid"]
    assert agent_of(stack, agent_id)["state"] == "ringing"
    wait_until(lambda: call_of(stack, call["id"])["bridged_at"], 10, message="bridged")
    assert call_of(stack, call["id"])["status"] == "in-progress"
    wait_until(lambda: agent_of(stack, agent_id)["state"] == "on-call", 15)
    assert sim.channels[call["agent_leg_uuid"]].bridge is sim.channels[call["fs_uuid"]].bridge
    trail = stack.get(f"/api/calls/{call['id']}/events").json()
    agent_events = [e["event_name"] for e in trail if (e["data"] or {}).get("leg") == "agent"]
    assert "CHANNEL_ANSWER" in agent_events and "CHANNEL_BRIDGE" in agent_events
    gevent.sleep(1.1)
    assert stack.post(f"/api/calls/{call['id']}/end", {}).status_code == 200
    wait_until(lambda: not legs_up(sim, call), 15, message="no leg left in the simulator")
    wait_until(lambda: call_of(stack, call["id"])["talk_seconds"] is not None, 10)
    ended = call_of(stack, call["id"])
    assert ended["status"] == "completed" and ended["talk_seconds"] >= 1
    wait_until(lambda: agent_of(stack, agent_id)["state"] in ("wrap-up", "available"), 15)
    states = [c["to_state"] for c in stack.get(f"/api/agents/{agent_id}/states").json()]
    assert states[:4] == ["available", "ringing", "on-call", "wrap-up"]


def test_agent_no_answer_never_dials_the_customer(stack, sim, phone_1002):
    agent_id = make_agent(stack, "user/1002")
    phone_1002("noanswer")
    to = number()
    call = start(stack, to, agent_id)
    wait_until(lambda: call_of(stack, call["id"])["status"] not in LIVE, 10)
    ended = call_of(stack, call["id"])
    assert ended["status"] == "failed" and ended["status_reason"] == "agent-no-answer", ended
    assert not legs_up(sim, call)
    # The customer's leg was only ever named inside the agent's &bridge(...): never created.
    assert call["fs_uuid"] not in {e for e in sim.channels}
    agent = agent_of(stack, agent_id)
    assert agent["state"] == "paused" and agent["state_reason"] == "no-answer"


def test_agent_busy_fails_the_call_agent_busy(stack, sim, phone_1002):
    agent_id = make_agent(stack, "user/1002")
    phone_1002("busy")
    call = start(stack, number(), agent_id)
    wait_until(lambda: call_of(stack, call["id"])["status"] not in LIVE, 10)
    ended = call_of(stack, call["id"])
    assert ended["status"] == "failed" and ended["status_reason"] == "agent-busy", ended
    wait_until(lambda: agent_of(stack, agent_id)["state"] == "available", 15)


def test_customer_busy_ends_busy_and_leaves_no_leg(stack, sim):
    agent_id = make_agent(stack)
    call = start(stack, number("486"), agent_id)
    wait_until(lambda: call_of(stack, call["id"])["status"] not in LIVE, 10)
    assert call_of(stack, call["id"])["status"] == "busy"
    assert not legs_up(sim, call)  # the answered agent's leg was hung up: no orphan
    wait_until(lambda: agent_of(stack, agent_id)["state"] == "available", 15)


def test_customer_first_bridges_the_agent_when_the_customer_answers(stack, sim):
    agent_id = make_agent(stack)
    call = start(stack, number(), agent_id, mode="customer_first")
    assert call["mode"] == "customer_first"
    wait_until(lambda: call_of(stack, call["id"])["bridged_at"], 10, message="bridged")
    assert call_of(stack, call["id"])["status"] == "in-progress"
    wait_until(lambda: agent_of(stack, agent_id)["state"] == "on-call", 15)
    agent_leg = sim.channels[call["agent_leg_uuid"]]
    assert agent_leg.variables["cc_leg"] == "agent" and agent_leg.phone_user == "1001"
    assert stack.post(f"/api/calls/{call['id']}/end", {}).status_code == 200
    wait_until(lambda: not legs_up(sim, call), 15, message="no leg left in the simulator")
    wait_until(lambda: call_of(stack, call["id"])["status"] == "completed", 15)


def test_two_concurrent_starts_for_one_agent_one_wins(stack, sim):
    agent_id = make_agent(stack)
    jobs = [gevent.spawn(stack.post, "/api/calls/start",
                         {"to": number(), "gateway": GW, "agent_id": agent_id}) for _ in range(2)]
    gevent.joinall(jobs, timeout=20)
    codes = sorted(job.value.status_code for job in jobs)
    assert codes == [201, 409], [job.value.text for job in jobs]
    loser = next(job.value for job in jobs if job.value.status_code == 409)
    assert loser.json()["error_id"] == "agent_not_available"
    winner = next(job.value for job in jobs if job.value.status_code == 201).json()
    wait_until(lambda: call_of(stack, winner["id"])["bridged_at"], 10)
    stack.post(f"/api/calls/{winner['id']}/end", {})
    wait_until(lambda: not legs_up(sim, winner), 15, message="no leg left in the simulator")


def test_a_parked_inbound_call_is_sent_to_an_agent(stack, sim):
    agent_id = make_agent(stack, "user/1003")
    caller = number()
    fs_uuid = sim.inbound_call(from_number=caller, to_number="1000", answer_after=0.05)

    def adopted():
        rows = stack.get("/api/calls/history", params={"direction": "inbound",
                                                       "number": caller}).json()
        return rows[0] if rows and rows[0]["status"] == "in-progress" else None
    call = wait_until(adopted, 10, message="the inbound call adopted and answered")
    assert call["fs_uuid"] == fs_uuid
    resp = stack.post(f"/api/calls/{call['id']}/transfer", {"agent_id": agent_id})
    assert resp.status_code == 200, resp.text
    leg = resp.json()["agent_leg_uuid"]
    assert leg and resp.json()["agent_id"] == agent_id
    # The agent's phone rings (a new leg of the customer's call) and is bridged to the caller.
    wait_until(lambda: call_of(stack, call["id"])["bridged_at"], 10, message="bridged")
    assert sim.channels[leg].phone_user == "1003"
    assert sim.channels[fs_uuid].bridge is sim.channels[leg].bridge
    wait_until(lambda: agent_of(stack, agent_id)["state"] == "on-call", 15)
    assert stack.post(f"/api/calls/{call['id']}/end", {}).status_code == 200
    wait_until(lambda: not {fs_uuid, leg} & set(sim.channels), 15, message="no leg left")
