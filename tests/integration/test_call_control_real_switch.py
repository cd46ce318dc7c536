"""Live call control against the real FreeSWITCH (skipped with the reason when it is absent).

The Procfile's web and events processes talk to a throw-away switch whose far end
(`sofia/gateway/farend/...`) answers; its log shows what the far end received.
"""
import re
from pathlib import Path

import gevent
import pytest

from tests.conftest import wait_until

# The far end's channel logs each digit it received (once at INFO, once more at DEBUG).
FAR_END_DTMF = re.compile(rb"\[INFO\] switch_channel\.c:[0-9]+ RECV DTMF ([0-9*#A-D]):")


@pytest.fixture(scope="module")
def real_stack(stack_factory, db_url, real_freeswitch):
    stack = stack_factory(db_url, None, **real_freeswitch.env, DEFAULT_GATEWAY="farend",
                          AUTH_ENABLED="false", RATELIMIT_ENABLED="false")
    yield stack
    stack.stop()


def answered(stack, to):
    resp = stack.post("/api/calls/start", {"to": to})
    assert resp.status_code == 201, resp.text
    call_id = resp.json()["id"]
    wait_until(lambda: stack.get(f"/api/calls/{call_id}").json()["status"] == "in-progress",
               15, message=f"{to} to answer")
    return stack.get(f"/api/calls/{call_id}").json()


def trail(stack, call_id):
    return stack.get(f"/api/calls/{call_id}/events").json()


def test_hold_and_unhold_on_the_real_switch(real_stack):
    call = answered(real_stack, "answer-hold1")
    assert real_stack.post(f"/api/calls/{call['id']}/hold").status_code == 200
    gevent.sleep(1.2)
    resp = real_stack.post(f"/api/calls/{call['id']}/unhold")
    assert resp.status_code == 200, resp.text
    assert resp.json()["hold_seconds"] >= 1
    # FreeSWITCH's events of our (customer) leg are in the trail.
    wait_until(lambda: {"CHANNEL_HOLD", "CHANNEL_UNHOLD"} <= {
        e["event_name"] for e in trail(real_stack, call["id"])
        if (e["data"] or {}).get("leg") == "customer"}, 10,
        message="CHANNEL_HOLD and CHANNEL_UNHOLD of the customer leg")
    real_stack.post(f"/api/calls/{call['id']}/end")


def test_dtmf_reaches_the_far_end(real_stack, real_freeswitch):
    log = Path(real_freeswitch.info["log_file"])
    start = log.stat().st_size
    call = answered(real_stack, "answer-dtmf1")
    resp = real_stack.post(f"/api/calls/{call['id']}/dtmf", {"digits": "12#"})
    assert resp.status_code == 200, resp.text

    def received():
        with log.open("rb") as f:
            f.seek(start)
            return FAR_END_DTMF.findall(f.read())
    wait_until(lambda: received() == [b"1", b"2", b"#"], 15,
               message="the far end to receive 1 2 # (RECV DTMF in the switch's log)")
    bad = real_stack.post(f"/api/calls/{call['id']}/dtmf", {"digits": "1X"})
    assert bad.status_code == 422
    real_stack.post(f"/api/calls/{call['id']}/end")


def test_blind_transfer_to_another_far_end_number(real_stack, real_freeswitch):
    call = answered(real_stack, "answer-xfer1")
    resp = real_stack.post(f"/api/calls/{call['id']}/transfer", {"to": "answer-xfer2"})
    assert resp.status_code == 200, resp.text
    leg = next(e for e in trail(real_stack, call["id"])
               if e["event_name"] == "api.transfer")["data"]["leg"]
    # The new leg is up, and our customer leg is still there, the call still live.
    wait_until(lambda: leg in real_freeswitch.channels(), 15,
               message="the transfer target's leg in show channels")
    assert real_freeswitch.exists(call["fs_uuid"])
    assert real_stack.get(f"/api/calls/{call['id']}").json()["status"] == "in-progress"
    real_stack.post(f"/api/calls/{call['id']}/end")
    wait_until(lambda: leg not in real_freeswitch.channels(), 15,
               message="the target leg to hang up with the call")


def test_an_action_on_an_ended_call_is_409(real_stack):
    call = answered(real_stack, "answer-ended1")
    real_stack.post(f"/api/calls/{call['id']}/end")
    resp = real_stack.post(f"/api/calls/{call['id']}/hold")
    assert resp.status_code == 409 and resp.json()["error_id"] == "call_not_live"
