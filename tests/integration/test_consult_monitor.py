"""Attended transfer and supervisor monitoring against the ESL simulator (the flows of
test_consult_monitor_real_switch.py; the simulator answers them as the real switch did in
tests/fixtures/esl/23_consult_transfer_complete.capture and 23_monitor_eavesdrop.capture,
checked by test_esl_simulator_consult.py).

Runs once on SQLite and once on PostgreSQL (when reachable).
"""
import uuid

import pytest

from tests.conftest import wait_until
from tests.integration.agent_helpers import agent_state, call_of, make_agent

GW = "gw1"


def bridged_call(stack, agent_id):
    """A click-to-call with agent_id on the line, customer and agent bridged."""
    to = "1555" + str(uuid.uuid4().int)[:7]
    resp = stack.post("/api/calls/start", {"to": to, "gateway": GW, "agent_id": agent_id})
    assert resp.status_code == 201, resp.text
    call_id = resp.json()["id"]
    wait_until(lambda: call_of(stack, call_id)["bridged_at"], 15,
               message="customer and agent bridged")
    wait_until(lambda: agent_state(stack, agent_id) == "on-call", 15, message="agent on-call")
    return call_of(stack, call_id)


def bridge_of(sim, fs_uuid):
    """The uuid the leg is bridged to in the simulator (as `uuid_getvar <uuid> bridge_uuid`)."""
    ch = sim.channels.get(fs_uuid)
    if ch is None or ch.bridge is None:
        return ""
    return ch.bridge.other(ch).uuid


def consulting(stack, sim, call, second):
    resp = stack.post(f"/api/calls/{call['id']}/transfer", {"attended": True,
                                                            "agent_id": second})
    assert resp.status_code == 200, resp.text
    now = resp.json()
    assert now["consult_leg_uuid"] and now["held_at"]
    # The first agent's leg is bridged to the consult leg (the second agent's phone).
    wait_until(lambda: bridge_of(sim, call["agent_leg_uuid"]) == now["consult_leg_uuid"],
               15, message="the agent's leg bridged to the consult leg")
    customer = sim.channels[call["fs_uuid"]]  # the customer waits, parked, on hold music
    assert customer.bridge is None and customer.hold_music
    return now


@pytest.fixture(scope="module")
def agents(stack):
    return tuple(make_agent(stack, phone, wrapup_seconds=30, prefix="cm")
                 for phone in ("user/1001", "user/1002"))


def ready_again(stack, agent_id):
    """End the agent's wrap-up once the events process has seen its call end (a ready sent
    while it is still on the call is refused, and the next test would wait out 30 s)."""
    wait_until(lambda: agent_state(stack, agent_id) in ("wrap-up", "available"), 10,
               message=f"agent {agent_id} out of its call")
    if agent_state(stack, agent_id) == "wrap-up":
        stack.post(f"/api/agents/{agent_id}/ready")
    wait_until(lambda: agent_state(stack, agent_id) == "available", 15,
               message=f"agent {agent_id} available")


def test_attended_transfer_complete(stack, sim, agents):
    first, second = agents
    call = bridged_call(stack, first)
    consult = consulting(stack, sim, call, second)
    resp = stack.post(f"/api/calls/{call['id']}/transfer/complete")
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert done["id"] == call["id"] and done["agent_id"] == second
    assert done["agent_leg_uuid"] == consult["consult_leg_uuid"]
    assert done["consult_leg_uuid"] is None and done["held_at"] is None
    # The customer is bridged to the second agent; the first agent's leg is gone.
    wait_until(lambda: bridge_of(sim, call["fs_uuid"]) == done["agent_leg_uuid"], 10,
               message="customer bridged to the second agent")
    wait_until(lambda: call["agent_leg_uuid"] not in sim.channels, 10,
               message="the first agent's leg hung up")
    assert any(f"uuid_bridge {call['fs_uuid']} " in c for c in sim.commands)
    wait_until(lambda: agent_state(stack, first) == "wrap-up", 15)
    assert agent_state(stack, second) == "on-call"
    trail = stack.get(f"/api/calls/{call['id']}/events").json()
    complete = next(e for e in trail if e["event_name"] == "api.transfer_complete")["data"]
    assert complete["from_agent_id"] == first and complete["agent_id"] == second
    assert call_of(stack, call["id"])["status"] == "in-progress"
    # The second agent hangs up: the customer is hung up too, not parked in silence.
    sim.hangup(done["agent_leg_uuid"])
    wait_until(lambda: not {call["fs_uuid"], done["agent_leg_uuid"]} & set(sim.channels), 10,
               message="the customer hung up with the second agent")
    wait_until(lambda: call_of(stack, call["id"])["status"] == "completed", 10)
    for agent_id in agents:
        ready_again(stack, agent_id)


def test_attended_transfer_cancel(stack, sim, agents):
    first, second = agents
    wait_until(lambda: all(agent_state(stack, a) == "available" for a in agents), 10,
               message="both agents available")
    call = bridged_call(stack, first)
    consult = consulting(stack, sim, call, second)
    resp = stack.post(f"/api/calls/{call['id']}/transfer/cancel")
    assert resp.status_code == 200, resp.text
    back = resp.json()
    assert back["consult_leg_uuid"] is None and back["held_at"] is None
    assert back["agent_id"] == first and back["hold_seconds"] is not None
    wait_until(lambda: consult["consult_leg_uuid"] not in sim.channels, 10,
               message="the consult leg hung up")
    wait_until(lambda: bridge_of(sim, call["fs_uuid"]) == call["agent_leg_uuid"], 10,
               message="the customer back with the first agent")
    wait_until(lambda: agent_state(stack, second) == "available", 15)
    assert agent_state(stack, first) == "on-call"
    assert call_of(stack, call["id"])["status"] == "in-progress"
    again = stack.post(f"/api/calls/{call['id']}/transfer/cancel")
    assert again.status_code == 409 and again.json()["error_id"] == "no_consult"
    # The customer hangs up: the first agent's leg ends too, it does not stay parked.
    sim.hangup(call["fs_uuid"])
    wait_until(lambda: not {call["fs_uuid"], call["agent_leg_uuid"]} & set(sim.channels), 10,
               message="the agent's leg hung up with the customer")
    wait_until(lambda: call_of(stack, call["id"])["status"] == "completed", 10)
    ended = stack.post(f"/api/calls/{call['id']}/transfer", {"attended": True,
                                                              "to": "answer-x"})
    assert ended.status_code == 409 and ended.json()["error_id"] == "call_not_live"
    ready_again(stack, first)


def test_monitor_listen_switch_and_stop(stack, sim, agents):
    first = agents[0]
    wait_until(lambda: agent_state(stack, first) == "available", 10)
    call = bridged_call(stack, first)
    resp = stack.post(f"/api/calls/{call['id']}/monitor",
                      {"mode": "listen", "endpoint": "user/1003"})
    assert resp.status_code == 200, resp.text
    trail = stack.get(f"/api/calls/{call['id']}/events").json()
    leg = next(e for e in trail if e["event_name"] == "api.monitor")["data"]["leg"]

    def eavesdropping():
        ch = sim.channels.get(leg)
        return ch is not None and ch.answered and ch.eavesdrop_target == call["agent_leg_uuid"]
    wait_until(eavesdropping, 15, message="an eavesdrop channel on the agent's leg")
    assert sim.channels[leg].phone_user == "1003"
    assert sim.channels[leg].eavesdrop_mode == "listen"
    for mode in ("whisper", "barge", "listen"):
        resp = stack.put(f"/api/calls/{call['id']}/monitor/mode", {"mode": mode})
        assert resp.status_code == 200, resp.text
        assert sim.channels[leg].eavesdrop_mode == mode  # eavesdrop's DTMF control reached it
    assert stack.post(f"/api/calls/{call['id']}/monitor/mode",
                      {"mode": "shout"}).status_code == 422
    assert stack.post(f"/api/calls/{call['id']}/monitor/stop").status_code == 200
    wait_until(lambda: leg not in sim.channels, 10, message="monitor leg gone")
    assert stack.post(f"/api/calls/{call['id']}/monitor/stop").status_code == 409
    # The call went on untouched.
    assert call_of(stack, call["id"])["status"] == "in-progress"
    assert bridge_of(sim, call["fs_uuid"]) == call["agent_leg_uuid"]
    assert agent_state(stack, first) == "on-call"
    # An agent's key may not monitor, not even its own call.
    admin = stack.http.headers["Authorization"]
    try:
        stack.authenticate("agent", first)
        resp = stack.post(f"/api/calls/{call['id']}/monitor",
                          {"mode": "listen", "endpoint": "user/1003"})
        assert resp.status_code == 403
    finally:
        stack.http.headers["Authorization"] = admin
    stack.post(f"/api/calls/{call['id']}/end")
    wait_until(lambda: not {call["fs_uuid"], call["agent_leg_uuid"]} & set(sim.channels), 10)
    ended = stack.post(f"/api/calls/{call['id']}/monitor", {"endpoint": "user/1003"})
    assert ended.status_code == 409 and ended.json()["error_id"] == "call_not_live"
    ready_again(stack, first)


@pytest.mark.parametrize("mode", ["whisper", "barge"])
def test_monitor_starts_in_the_mode_asked(stack, sim, agents, mode):
    first = agents[0]
    wait_until(lambda: agent_state(stack, first) == "available", 10)
    call = bridged_call(stack, first)
    resp = stack.post(f"/api/calls/{call['id']}/monitor",
                      {"mode": mode, "endpoint": "user/1003"})
    assert resp.status_code == 200, resp.text
    trail = stack.get(f"/api/calls/{call['id']}/events").json()
    leg = next(e for e in trail if e["event_name"] == "api.monitor")["data"]["leg"]
    wait_until(lambda: leg in sim.channels and sim.channels[leg].answered, 10)
    assert sim.channels[leg].eavesdrop_mode == mode
    # Ending the call ends the monitor leg too (eavesdrop stops with the agent's leg).
    stack.post(f"/api/calls/{call['id']}/end")
    wait_until(lambda: not {call["fs_uuid"], call["agent_leg_uuid"], leg} & set(sim.channels),
               10, message="every leg hung up, the monitor's too")
    ready_again(stack, first)
