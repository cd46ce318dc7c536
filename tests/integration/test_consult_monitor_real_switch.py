"""Attended transfer and supervisor monitoring against the real FreeSWITCH of ../shared/freeswitch
(skipped, with the reason, when it is absent): phones 1001-1003 auto-answer, `answer-*`
far-end numbers answer with a tone."""
import uuid

import pytest

from tests.conftest import wait_until
from tests.integration.agent_helpers import agent_state, make_agent


@pytest.fixture(scope="module")
def real_stack(stack_factory, db_url, real_freeswitch):
    return stack_factory(db_url, None, DEFAULT_GATEWAY="farend",
                         FREESWITCH_ORIGINATE_TIMEOUT="4", **real_freeswitch.env)


def bridged_call(stack, agent_id):
    """A click-to-call with agent_id on the line, customer and agent bridged."""
    resp = stack.post("/api/calls/start", {"to": f"answer-{uuid.uuid4().hex[:8]}",
                                           "agent_id": agent_id})
    assert resp.status_code == 201, resp.text
    call_id = resp.json()["id"]
    wait_until(lambda: stack.get(f"/api/calls/{call_id}").json()["bridged_at"], 15,
               message="customer and agent bridged")
    wait_until(lambda: agent_state(stack, agent_id) == "on-call", 15, message="agent on-call")
    return stack.get(f"/api/calls/{call_id}").json()


def bridge_of(switch, fs_uuid):
    return switch.cli(f"uuid_getvar {fs_uuid} bridge_uuid").strip()


def consulting(stack, switch, call, second):
    resp = stack.post(f"/api/calls/{call['id']}/transfer", {"attended": True,
                                                            "agent_id": second})
    assert resp.status_code == 200, resp.text
    now = resp.json()
    assert now["consult_leg_uuid"] and now["held_at"]
    # The first agent's leg is bridged to the consult leg (the second agent's phone).
    wait_until(lambda: bridge_of(switch, call["agent_leg_uuid"]) == now["consult_leg_uuid"],
               15, message="the agent's leg bridged to the consult leg")
    assert switch.exists(call["fs_uuid"])  # the customer waits, on hold music
    return now


@pytest.fixture(scope="module")
def agents(real_stack):
    return tuple(make_agent(real_stack, phone, wrapup_seconds=30, prefix="cm")
                 for phone in ("user/1001", "user/1002"))


def test_attended_transfer_complete(real_stack, real_freeswitch, agents):
    first, second = agents
    call = bridged_call(real_stack, first)
    consult = consulting(real_stack, real_freeswitch, call, second)
    resp = real_stack.post(f"/api/calls/{call['id']}/transfer/complete")
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert done["id"] == call["id"] and done["agent_id"] == second
    assert done["agent_leg_uuid"] == consult["consult_leg_uuid"]
    assert done["consult_leg_uuid"] is None and done["held_at"] is None
    # FreeSWITCH: the customer is bridged to the second agent; the first agent's leg is gone.
    wait_until(lambda: bridge_of(real_freeswitch, call["fs_uuid"]) == done["agent_leg_uuid"],
               10, message="customer bridged to the second agent")
    wait_until(lambda: call["agent_leg_uuid"] not in real_freeswitch.channels(), 10,
               message="the first agent's leg hung up")
    assert agent_state(real_stack, first) == "wrap-up"
    assert agent_state(real_stack, second) == "on-call"
    trail = real_stack.get(f"/api/calls/{call['id']}/events").json()
    complete = next(e for e in trail if e["event_name"] == "api.transfer_complete")["data"]
    assert complete["from_agent_id"] == first and complete["agent_id"] == second
    assert real_stack.get(f"/api/calls/{call['id']}").json()["status"] == "in-progress"
    real_stack.post(f"/api/calls/{call['id']}/end")
    wait_until(lambda: not {call["fs_uuid"], done["agent_leg_uuid"]} &
               real_freeswitch.channels(), 10, message="every leg hung up")
    for agent_id in agents:
        real_stack.post(f"/api/agents/{agent_id}/ready")


def test_attended_transfer_cancel(real_stack, real_freeswitch, agents):
    first, second = agents
    wait_until(lambda: all(agent_state(real_stack, a) == "available" for a in agents), 10,
               message="both agents available")
    call = bridged_call(real_stack, first)
    consult = consulting(real_stack, real_freeswitch, call, second)
    resp = real_stack.post(f"/api/calls/{call['id']}/transfer/cancel")
    assert resp.status_code == 200, resp.text
    back = resp.json()
    assert back["consult_leg_uuid"] is None and back["held_at"] is None
    assert back["agent_id"] == first and back["hold_seconds"] is not None
    wait_until(lambda: consult["consult_leg_uuid"] not in real_freeswitch.channels(), 10,
               message="the consult leg hung up")
    wait_until(lambda: bridge_of(real_freeswitch, call["fs_uuid"]) == call["agent_leg_uuid"],
               10, message="the customer back with the first agent")
    assert agent_state(real_stack, second) == "available"
    assert agent_state(real_stack, first) == "on-call"
    again = real_stack.post(f"/api/calls/{call['id']}/transfer/cancel")
    assert again.status_code == 409 and again.json()["error_id"] == "no_consult"
    real_stack.post(f"/api/calls/{call['id']}/end")
    ended = real_stack.post(f"/api/calls/{call['id']}/transfer", {"attended": True,
                                                                   "to": "answer-x"})
    assert ended.status_code == 409 and ended.json()["error_id"] == "call_not_live"
    real_stack.post(f"/api/agents/{first}/ready")


def test_monitor_listen_switch_and_stop(real_stack, real_freeswitch, agents):
    first = agents[0]
    wait_until(lambda: agent_state(real_stack, first) == "available", 10)
    call = bridged_call(real_stack, first)
    resp = real_stack.post(f"/api/calls/{call['id']}/monitor",
                           {"mode": "listen", "endpoint": "user/1003"})
    assert resp.status_code == 200, resp.text
    trail = real_stack.get(f"/api/calls/{call['id']}/events").json()
    leg = next(e for e in trail if e["event_name"] == "api.monitor")["data"]["leg"]

    def eavesdropping():
        rows = real_freeswitch.cli("show channels as json")
        return leg in rows and "eavesdrop" in rows and call["agent_leg_uuid"] in rows
    wait_until(eavesdropping, 15, message="an eavesdrop channel on the agent's leg")
    for mode in ("whisper", "barge", "listen"):
        resp = real_stack.put(f"/api/calls/{call['id']}/monitor/mode", {"mode": mode})
        assert resp.status_code == 200, resp.text
    assert real_stack.post(f"/api/calls/{call['id']}/monitor/mode",
                           {"mode": "shout"}).status_code == 422
    assert real_stack.post(f"/api/calls/{call['id']}/monitor/stop").status_code == 200
    wait_until(lambda: leg not in real_freeswitch.channels(), 10, message="monitor leg gone")
    assert real_stack.post(f"/api/calls/{call['id']}/monitor/stop").status_code == 409
    # The call went on untouched.
    assert real_stack.get(f"/api/calls/{call['id']}").json()["status"] == "in-progress"
    # An agent's key may not monitor, not even its own call.
    admin = real_stack.http.headers["Authorization"]
    try:
        real_stack.authenticate("agent", first)
        resp = real_stack.post(f"/api/calls/{call['id']}/monitor",
                               {"mode": "listen", "endpoint": "user/1003"})
        assert resp.status_code == 403
    finally:
        real_stack.http.headers["Authorization"] = admin
    real_stack.post(f"/api/calls/{call['id']}/end")
    ended = real_stack.post(f"/api/calls/{call['id']}/monitor", {"endpoint": "user/1003"})
    assert ended.status_code == 409 and ended.json()["error_id"] == "call_not_live"
