"""Two real FreeSWITCH instances as two nodes (skipped without ../shared/freeswitch): calls
spread over both and are ended on their own switch; a gateway is loaded on both; an agent
whose phone is registered on b only logs in and its calls are placed on b.

On SQLite only: the node logic is the same on PostgreSQL (tests/integration/test_nodes.py).
"""
import json
import sys
import uuid

import pytest

from tests.conftest import wait_until
from tests.integration.conftest import start_real_freeswitch, stop_real_freeswitch


@pytest.fixture(scope="module")
def switches(tmp_path_factory):
    a = start_real_freeswitch(tmp_path_factory.mktemp("fs-a"), "--phones", "none")
    try:
        # phone 1001 registers (and auto-answers) on b only
        b = start_real_freeswitch(tmp_path_factory.mktemp("fs-b"), "--phones", "1001")
    except BaseException:
        stop_real_freeswitch(a)
        raise
    yield {"a": a, "b": b}
    stop_real_freeswitch(a)
    stop_real_freeswitch(b)


@pytest.fixture(scope="module")
def real_two(request, stack_factory, db_url):
    if "sqlite" not in db_url:
        pytest.skip("two real switches: on SQLite only")
    switches = request.getfixturevalue("switches")  # started only when needed
    nodes = [{"name": name, "host": s.env["FREESWITCH_HOST"],
              "port": int(s.env["FREESWITCH_PORT"]), "password": s.env["FREESWITCH_PASSWORD"],
              "gateway_dir": s.env["FREESWITCH_GATEWAY_DIR"]} for name, s in switches.items()]
    stack = stack_factory(db_url, None, events=False, web=False, DEFAULT_GATEWAY="farend",
                          FREESWITCH_NODES=json.dumps(nodes), FREESWITCH_PROFILE="external")
    for name in switches:
        stack._spawn(f"events-{name}", [sys.executable, "-m", "freeswitch", "--node", name])
    stack.start_web()

    def both_connected():
        nodes = stack.get("/api/health").json()["events"].get("nodes", {})
        return all(nodes.get(n, {}).get("status") == "ok" for n in switches)
    wait_until(both_connected, 30, 0.2, "both events processes connected")
    return stack


def get(stack, call_id):
    return stack.get(f"/api/calls/{call_id}").json()


def test_calls_spread_over_two_real_switches_and_end_on_their_own(real_two, switches):
    calls = []
    for n in range(2):
        resp = real_two.post("/api/calls/start", {"to": f"answer-{n}"})
        assert resp.status_code == 201, resp.text
        calls.append(resp.json())
    assert sorted(c["node"] for c in calls) == ["a", "b"]
    for call in calls:
        wait_until(lambda: get(real_two, call["id"])["status"] == "in-progress", 20,
                   message="the call answered by its switch's far end")
        own, other = switches[call["node"]], switches["b" if call["node"] == "a" else "a"]
        # `show channels` lags the channel events: wait for the switch's own list.
        wait_until(lambda: call["fs_uuid"] in own.channels(), 10,
                   message="the channel listed by its own switch")
        assert call["fs_uuid"] not in other.channels()
    on_b = next(c for c in calls if c["node"] == "b")
    ended = real_two.post(f"/api/calls/{on_b['id']}/end")
    assert ended.status_code == 200 and ended.json()["status"] == "completed"
    wait_until(lambda: on_b["fs_uuid"] not in switches["b"].channels(), 10,
               message="the channel gone from switch b")
    on_a = next(c for c in calls if c["node"] == "a")
    assert get(real_two, on_a["id"])["status"] == "in-progress"
    assert real_two.post(f"/api/calls/{on_a['id']}/end").status_code == 200
    wait_until(lambda: on_a["fs_uuid"] not in switches["a"].channels(), 10,
               message="the channel gone from switch a")


def test_a_gateway_is_loaded_on_both_real_switches(real_two, switches):
    body = {"name": "pbx-two", "provider": "asterisk", "host": "127.0.0.1", "port": 5099,
            "username": "agent1000", "password": "s3cret-Pass", "caller_id": "+15551230000",
            "register": False}
    resp = real_two.post("/api/sip/configure", body)
    assert resp.status_code == 201, resp.text
    for switch in switches.values():
        assert "pbx-two" in switch.cli("sofia xmlstatus gateway pbx-two")
    entry = next(g for g in real_two.get("/api/sip/status").json()["gateways"]
                 if g["name"] == "pbx-two")
    assert entry["nodes"]["a"]["loaded"] is True and entry["nodes"]["b"]["loaded"] is True
    assert real_two.delete("/api/sip/gateways/pbx-two").status_code in (200, 204)
    for switch in switches.values():
        assert "Invalid Gateway" in switch.cli("sofia xmlstatus gateway pbx-two")


def registered_users(switch):
    rows = json.loads(switch.cli("show registrations as json") or "{}").get("rows") or []
    return {row.get("reg_user") for row in rows}


def test_an_agent_whose_phone_is_on_b_only_logs_in_and_its_call_is_placed_on_b(real_two,
                                                                               switches):
    wait_until(lambda: "1001" in registered_users(switches["b"]), 15, 0.2,
               "phone 1001 registered on b")
    assert "1001" not in registered_users(switches["a"])
    agent_id = f"two-{uuid.uuid4().hex[:8]}"
    assert real_two.post("/api/agents", {"id": agent_id, "name": "Bea", "endpoint": "user/1001",
                                         "wrapup_seconds": 1}).status_code == 201
    login = real_two.post(f"/api/agents/{agent_id}/login")
    assert login.status_code == 200 and login.json()["state"] == "available", login.text
    # no call is live: by load alone the call would go to a (a tie goes to the first node)
    resp = real_two.post("/api/calls/start", {"to": f"answer-{uuid.uuid4().hex[:6]}",
                                              "agent_id": agent_id})
    assert resp.status_code == 201, resp.text
    call = resp.json()
    assert call["node"] == "b"
    wait_until(lambda: get(real_two, call["id"])["bridged_at"], 20, 0.2,
               "the agent's phone and the far end bridged on b")
    legs = {call["fs_uuid"], call["agent_leg_uuid"]}
    wait_until(lambda: legs <= switches["b"].channels(), 15, 0.1, "both legs on switch b")
    assert not legs & switches["a"].channels()
    assert real_two.post(f"/api/calls/{call['id']}/end").status_code == 200
    wait_until(lambda: not legs & switches["b"].channels(), 15, 0.1, "the legs gone from b")
