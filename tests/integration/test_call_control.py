"""Live call control (hold, mute, DTMF, blind transfer) through the running stack, ESL simulator.

Runs once on SQLite and once on PostgreSQL (when reachable).
"""
import gevent
import pytest

from tests.conftest import wait_until
from tests.esl_sim import templates as T
from tests.esl_sim import transcripts as tr
from tests.esl_sim.server import control_template
from tests.integration.test_bridging import call_of, legs_up, make_agent, number, start

GW = "gw1"


def answered_call(stack, to="15551234001"):
    resp = stack.post("/api/calls/start", {"to": to, "gateway": GW, "agent_id": "agent-cc"})
    assert resp.status_code == 201, resp.text
    call_id = resp.json()["id"]
    wait_until(lambda: stack.get(f"/api/calls/{call_id}").json()["status"] == "in-progress",
               10, message="the call to be answered")
    return stack.get(f"/api/calls/{call_id}").json()


def trail_names(stack, call_id):
    return [e["event_name"] for e in stack.get(f"/api/calls/{call_id}/events").json()]


def post(stack, call_id, action, body=None):
    return stack.post(f"/api/calls/{call_id}/{action}", body)


def test_hold_then_unhold_counts_the_time_on_hold(stack, sim, calls_channel):
    call = answered_call(stack)
    held = post(stack, call["id"], "hold")
    assert held.status_code == 200, held.text
    assert held.json()["on_hold"] is True and held.json()["held_at"]
    assert sim.channels[call["fs_uuid"]].held
    again = post(stack, call["id"], "hold")
    assert again.status_code == 409 and again.json()["error_id"] == "call_on_hold"
    gevent.sleep(1.1)
    unheld = post(stack, call["id"], "unhold")
    assert unheld.status_code == 200, unheld.text
    assert unheld.json()["on_hold"] is False and unheld.json()["hold_seconds"] >= 1
    assert post(stack, call["id"], "unhold").json()["error_id"] == "call_not_on_hold"
    # FreeSWITCH's own CHANNEL_HOLD / CHANNEL_UNHOLD land in the trail beside the API's.
    wait_until(lambda: "CHANNEL_UNHOLD" in trail_names(stack, call["id"]), 15,
               message="CHANNEL_UNHOLD in the trail")
    names = trail_names(stack, call["id"])
    assert names.index("api.hold") < names.index("api.unhold")
    assert "CHANNEL_HOLD" in names
    wait_until(lambda: {"call.held", "call.unheld"} <= {
        m["type"] for m in calls_channel.messages if m["data"].get("id") == call["id"]}, 5,
        message="call.held and call.unheld on the calls channel")
    stack.post(f"/api/calls/{call['id']}/end")


def test_dtmf_reaches_the_customer_leg_and_bad_digits_are_422(stack, sim):
    call = answered_call(stack)
    sent = post(stack, call["id"], "dtmf", {"digits": "12#A*"})
    assert sent.status_code == 200, sent.text
    assert sim.channels[call["fs_uuid"]].dtmf_sent == "12#A*"
    assert "api.dtmf" in trail_names(stack, call["id"])
    for digits in ("12E", "1 2", "", "1;uuid_kill", "9" * 65):
        bad = post(stack, call["id"], "dtmf", {"digits": digits})
        assert bad.status_code == 422, (digits, bad.text)
    assert sim.channels[call["fs_uuid"]].dtmf_sent == "12#A*"
    stack.post(f"/api/calls/{call['id']}/end")


def test_mute_needs_an_agent_leg(stack):
    call = answered_call(stack)
    resp = post(stack, call["id"], "mute")
    assert resp.status_code == 409 and resp.json()["error_id"] == "no_agent_leg"
    stack.post(f"/api/calls/{call['id']}/end")


def test_blind_transfer_to_a_number_keeps_the_call(stack, sim, calls_channel):
    call = answered_call(stack)
    resp = post(stack, call["id"], "transfer", {"to": "15551234999"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == call["id"] and resp.json()["status"] == "in-progress"
    assert sim.channels[call["fs_uuid"]].transferred_to.startswith("bridge:{origination_uuid=")
    assert sim.channels[call["fs_uuid"]].transferred_to.endswith(f"sofia/gateway/{GW}/15551234999")
    events = stack.get(f"/api/calls/{call['id']}/events").json()
    transfer = next(e for e in events if e["event_name"] == "api.transfer")
    assert transfer["data"]["to"] == "15551234999"
    wait_until(lambda: any(m["type"] == "call.transferred" and m["data"]["id"] == call["id"]
                           for m in calls_channel.messages), 5,
               message="call.transferred on the calls channel")
    stack.post(f"/api/calls/{call['id']}/end")


@pytest.mark.parametrize("body", [{}, {"to": "1555", "agent_id": "a1"}, {"to": "15 55"}])
def test_transfer_needs_one_valid_target(stack, body):
    call = answered_call(stack)
    assert post(stack, call["id"], "transfer", body).status_code == 422
    stack.post(f"/api/calls/{call['id']}/end")


@pytest.mark.parametrize("action,body", [("hold", None), ("unhold", None), ("mute", None),
                                         ("dtmf", {"digits": "1"}),
                                         ("transfer", {"to": "15551234999"})])
def test_actions_on_an_ended_call_are_409(stack, action, body):
    call = answered_call(stack)
    stack.post(f"/api/calls/{call['id']}/end")
    resp = post(stack, call["id"], action, body)
    assert resp.status_code == 409 and resp.json()["error_id"] == "call_not_live", resp.text


def test_the_simulator_holds_like_the_real_switch(stack, sim):
    """Its replies to uuid_hold are the real switch's, and the CHANNEL_HOLD / CHANNEL_UNHOLD
    it renders for a channel have the real held leg's header names in the real order
    (22_call_control_hold_dtmf.capture), with the channel's own uuid."""
    real = {e.get("Event-Name"): [k for k, _ in e.headers if k != "Content-Length"]
            for _, e in tr.capture_events("22_call_control_hold_dtmf")
            if e.get("Call-Direction") == "outbound" and "HOLD" in e.get("Event-Name")}
    call = answered_call(stack)
    ch = sim.channels[call["fs_uuid"]]
    assert sim.api("uuid_hold", call["fs_uuid"]) == "+OK Success\n"
    assert sim.api("uuid_hold", call["fs_uuid"]) == "-ERR Operation failed\n"
    assert sim.api("uuid_hold", f"off {call['fs_uuid']}") == "+OK Success\n"
    assert sim.api("uuid_hold", f"off {call['fs_uuid']}") == "-ERR Operation failed\n"
    for name in ("CHANNEL_HOLD", "CHANNEL_UNHOLD"):
        rendered = T.render(control_template(name), sim._context(), ch)
        # The channel's own originate {variables} take the captured ones' place.
        assert [k for k, _ in rendered if not k.startswith("variable_")] == \
            [k for k in real[name] if not k.startswith("variable_")]
        assert dict(rendered)["Unique-ID"] == ch.uuid
    stack.post(f"/api/calls/{call['id']}/end")


def test_mute_and_unmute_silence_the_agent_leg(stack, sim):
    agent_id = make_agent(stack)
    call = start(stack, number(), agent_id)
    wait_until(lambda: call_of(stack, call["id"])["bridged_at"], 10, message="bridged")
    muted = stack.post(f"/api/calls/{call['id']}/mute")
    assert muted.status_code == 200, muted.text
    assert sim.channels[call["agent_leg_uuid"]].muted
    assert not getattr(sim.channels[call["fs_uuid"]], "muted", False)  # the customer is not muted
    unmuted = stack.post(f"/api/calls/{call['id']}/unmute")
    assert unmuted.status_code == 200, unmuted.text
    assert not sim.channels[call["agent_leg_uuid"]].muted
    stack.post(f"/api/calls/{call['id']}/end", {})
    wait_until(lambda: not legs_up(sim, call), 15)


def test_hold_follows_the_switch_when_the_leg_already_is_held_there(stack, sim):
    """Held at the switch but not in the record (a phone's own hold key, a lost answer):
    the switch answers -ERR Operation failed, and the API records the hold instead of a 502."""
    call = answered_call(stack)
    assert sim.api("uuid_hold", call["fs_uuid"]) == "+OK Success\n"
    held = post(stack, call["id"], "hold")
    assert held.status_code == 200, held.text
    assert held.json()["on_hold"] is True
    assert sim.api("uuid_hold", f"off {call['fs_uuid']}") == "+OK Success\n"
    back = post(stack, call["id"], "unhold")
    assert back.status_code == 200 and back.json()["on_hold"] is False
    stack.post(f"/api/calls/{call['id']}/end")
