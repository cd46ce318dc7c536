"""Two FreeSWITCH nodes (two ESL simulators) behind one service: FREESWITCH_NODES, one events
process per node (`python -m freeswitch --node NAME`), calls spread by load and stuck to
their node, gateways on both, per-node health and metrics, a node going away and back.

Runs once on SQLite and once on PostgreSQL (when reachable).
"""
import json
import os
import sys
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ChannelRecorder, wait_until
from tests.integration.agent_helpers import agent_of, call_of

NUMBER = "15551230001"  # the simulator answers it and keeps the call up


@pytest.fixture(scope="module")
def sim_b(tmp_path_factory):
    from tests.esl_sim import ESLSimulator
    root = tmp_path_factory.mktemp("fs-b")
    simulator = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon",
                             recordings_root=str(root / "recordings"), hostname="node-b")
    simulator.gateway_dir = str(root / "gateways")
    os.makedirs(simulator.gateway_dir, exist_ok=True)
    simulator.start()
    yield simulator
    simulator.stop()


def subscribed(simulator):
    return sum(1 for c in simulator.connections if c.authenticated and c.events_enabled)


def start_events(stack, node, simulator):
    before = subscribed(simulator)
    stack._spawn(f"events-{node}", [sys.executable, "-m", "freeswitch", "--node", node])
    wait_until(lambda: subscribed(simulator) > before, 30, 0.05,
               f"the events process of node {node} to subscribe")


def nodes_connected(stack):
    events = stack.get("/api/health").json()["events"]
    return all(events["nodes"].get(n, {}).get("status") == "ok" for n in ("a", "b"))


@pytest.fixture(scope="module")
def two(stack_factory, db_url, sim, sim_b):
    nodes = [{"name": "a", "host": "127.0.0.1", "port": sim.port, "password": "ClueCon",
              "gateway_dir": sim.gateway_dir},
             {"name": "b", "host": "127.0.0.1", "port": sim_b.port, "password": "ClueCon",
              "gateway_dir": sim_b.gateway_dir}]
    stack = stack_factory(db_url, sim, events=False, web=False,
                          FREESWITCH_NODES=json.dumps(nodes))
    start_events(stack, "a", sim)
    start_events(stack, "b", sim_b)
    stack.start_web()
    wait_until(lambda: nodes_connected(stack), 20, 0.2, "both nodes reported connected")
    return stack


def start(stack):
    resp = stack.post("/api/calls/start", {"to": NUMBER, "gateway": "gw1"})
    assert resp.status_code == 201, resp.text
    return resp.json()


def get(stack, call_id):
    return stack.get(f"/api/calls/{call_id}").json()


def sent_to(simulator, text):
    return [c for c in simulator.commands if text in c]


def end_all_live(stack):
    for call in stack.get("/api/calls/history", params={"page_size": 100}).json():
        if call["status"] in ("initiated", "ringing", "in-progress"):
            stack.post(f"/api/calls/{call['id']}/end")


def test_calls_spread_by_load_and_stick_to_their_node(two, sim, sim_b):
    end_all_live(two)
    wait_until(lambda: not [c for c in two.get("/api/calls/history").json()
                            if c["status"] in ("initiated", "ringing", "in-progress")], 10,
               message="no live call left")
    calls = [start(two) for _ in range(4)]
    assert [c["node"] for c in calls] == ["a", "b", "a", "b"]
    for call in calls:
        mine, other = (sim, sim_b) if call["node"] == "a" else (sim_b, sim)
        assert len(sent_to(mine, f"cc_call_id={call['id']}")) == 1
        assert not sent_to(other, call["id"])
        wait_until(lambda: get(two, call["id"])["status"] == "in-progress", 10,
                   message="the call answered on its node")
    # Ending goes to the node the call is on, and only there.
    on_b = next(c for c in calls if c["node"] == "b")
    ended = two.post(f"/api/calls/{on_b['id']}/end", {"outcome": "done"})
    assert ended.status_code == 200 and ended.json()["status"] == "completed"
    assert sent_to(sim_b, f"uuid_kill {on_b['fs_uuid']}")
    assert not sent_to(sim, f"uuid_kill {on_b['fs_uuid']}")
    # One call fewer on b: the next call goes there.
    assert start(two)["node"] == "b"
    end_all_live(two)


def test_an_inbound_call_records_the_node_it_arrived_on(two, sim_b):
    fs_uuid = sim_b.inbound_call(from_number="15550007777", to_number="1000", answer_after=0.05)

    def adopted():
        rows = two.get("/api/calls/history", params={"direction": "inbound",
                                                     "number": "15550007777"}).json()
        return rows[0] if rows else None
    call = wait_until(adopted, 10, message="the inbound call adopted")
    assert call["fs_uuid"] == fs_uuid and call["node"] == "b"
    two.post(f"/api/calls/{call['id']}/end")
    assert wait_until(lambda: sent_to(sim_b, f"uuid_kill {fs_uuid}"), 15, message="the kill on b")


def test_a_gateway_is_applied_on_every_node(two, sim, sim_b):
    recorder = ChannelRecorder(two.env["REDIS_URL"], ("sip",))
    body = {"name": "pbx-both", "provider": "asterisk", "host": "127.0.0.1", "port": 5090,
            "username": "agent1000", "password": "s3cret-Pass", "caller_id": "+15551230000"}
    resp = two.post("/api/sip/configure", body)
    assert resp.status_code == 201, resp.text
    for simulator in (sim, sim_b):
        assert os.path.exists(os.path.join(simulator.gateway_dir, "pbx-both.xml"))
        assert "pbx-both" in simulator.gateways
    status = two.get("/api/sip/status").json()
    assert set(status["nodes"]) == {"a", "b"}
    assert all(n["freeswitch_reachable"] for n in status["nodes"].values())
    entry = next(g for g in status["gateways"] if g["name"] == "pbx-both")
    assert entry["nodes"]["a"]["loaded"] is True and entry["nodes"]["b"]["loaded"] is True
    # A registration change is announced with the node whose events process saw it.
    try:
        wait_until(lambda: [m for m in recorder.messages if m["type"] in (
                            "sip.registered", "sip.trying", "sip.noreg", "sip.state")
                            and m["data"].get("name") == "pbx-both"
                            and set(m["data"].get("nodes") or {}) & {"a", "b"}], 10,
                   message="a sip message naming its node")
    finally:
        recorder.close()
    assert two.delete("/api/sip/gateways/pbx-both").status_code in (200, 204)
    assert "pbx-both" not in sim.gateways and "pbx-both" not in sim_b.gateways


def scrape(stack):
    text = stack.get("/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_health_and_metrics_are_per_node(two):
    health = two.get("/api/health").json()
    assert set(health["freeswitch"]["nodes"]) == {"a", "b"}
    assert health["freeswitch"]["status"] == "ok" and health["events"]["status"] == "ok"
    call = start(two)
    wait_until(lambda: get(two, call["id"])["status"] == "in-progress", 10, message="answered")
    node = call["node"]

    def counted():
        samples = scrape(two)
        return samples if samples.get(("callcenter_events_ingested_total", (
            ("node", node), ("type", "CHANNEL_ANSWER")))) else None
    samples = wait_until(counted, 10, message="the answer counted for its node")
    for name in ("a", "b"):
        assert samples[("callcenter_esl_connected", (("node", name),))] == 1
    assert samples[("callcenter_calls_live", (("node", node),))] >= 1
    two.post(f"/api/calls/{call['id']}/end")


def test_a_node_that_goes_away_takes_no_calls_and_is_reconciled_when_back(two, sim, sim_b):
    end_all_live(two)
    on_b = [c for c in (start(two), start(two)) if c["node"] == "b"]
    assert on_b
    for call in on_b:
        wait_until(lambda: get(two, call["id"])["status"] == "in-progress", 10,
                   message="answered on b")
    sim_b.stop()  # node b dies with its calls (and tells nobody)
    try:
        wait_until(lambda: two.get("/api/health").json()["events"]["nodes"]["b"]["status"]
                   != "ok", 20, 0.2, "health to see node b down")
        health = two.get("/api/health").json()
        assert health["status"] == "degraded" and "b" in health["events"]["detail"]
        placed = [start(two) for _ in range(3)]
        assert {c["node"] for c in placed} == {"a"}
        for call in placed:
            wait_until(lambda: get(two, call["id"])["status"] == "in-progress", 10,
                       message="answered on a")
        assert get(two, on_b[0]["id"])["status"] == "in-progress"  # nothing judged while away
    finally:
        sim_b.start()
    # Back: b's events process reconnects and reconciles; its calls are gone there.
    for call in on_b:
        final = wait_until(lambda: (lambda c: c if c["status"] not in (
            "initiated", "ringing", "in-progress") else None)(get(two, call["id"])), 30,
            message="node b's call reconciled")
        assert final["status"] == "completed"
    # The calls on a were not touched by b's reconciliation.
    assert all(get(two, c["id"])["status"] == "in-progress" for c in placed)
    end_all_live(two)


def test_an_agents_phone_registered_on_one_node_logs_in_and_its_calls_go_there(two, sim, sim_b):
    """A phone registered on node b only: b's `show registrations` counts (login, the
    agent's `phone_registered`), and a call with the agent on the line is placed on b
    although the load alone would pick a (a tie goes to the first node). Only nodes whose
    events process reports in are asked (a call is never placed on another)."""
    wait_until(lambda: nodes_connected(two), 30, 0.2, "both nodes reported connected")
    end_all_live(two)
    wait_until(lambda: not [c for c in two.get("/api/calls/history").json()
                            if c["status"] in ("initiated", "ringing", "in-progress")], 10,
               message="no live call left")
    user = f"19{uuid.uuid4().int % 100:02d}"
    sim.phones.pop(user, None)
    sim_b.phones[user] = "127.0.0.1"
    agent_id = f"nb-{uuid.uuid4().hex[:8]}"
    try:
        assert two.post("/api/agents", {"id": agent_id, "name": "Nia", "endpoint": f"user/{user}",
                                        "wrapup_seconds": 1}).status_code == 201
        assert agent_of(two, agent_id)["phone_registered"] is True
        login = two.post(f"/api/agents/{agent_id}/login")
        assert login.status_code == 200 and login.json()["state"] == "available", login.text
        resp = two.post("/api/calls/start", {"to": NUMBER, "gateway": "gw1",
                                             "agent_id": agent_id})
        assert resp.status_code == 201, resp.text
        call = resp.json()
        assert call["node"] == "b"
        assert sent_to(sim_b, f"user/{user}") and not sent_to(sim, f"user/{user}")
        wait_until(lambda: call_of(two, call["id"])["bridged_at"], 15, message="bridged on b")
        assert start(two)["node"] == "a"  # a call without an agent still goes by load
        end_all_live(two)
        wait_until(lambda: agent_of(two, agent_id)["state"] in ("wrap-up", "available"), 15,
                   message="the agent's call over")
        assert two.post(f"/api/agents/{agent_id}/logout").status_code == 200

        sim_b.phones.pop(user)  # registered nowhere now
        refused = two.post(f"/api/agents/{agent_id}/login")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error_id"] == "agent_phone_not_registered"
        assert agent_of(two, agent_id)["phone_registered"] is False
    finally:
        sim_b.phones.pop(user, None)
        end_all_live(two)
