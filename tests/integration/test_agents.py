"""Agents through the running web and events processes, against the ESL simulator (phones
1001-1003 registered, as on the real test switch): CRUD, state actions, the registration
check, the trail, who may do what, and the `agents` live channel with resume.

Runs once on SQLite and once on PostgreSQL (when reachable).
"""
import uuid

import pytest

from models import db, make_database, utcnow
from models.agent import Agent
from services.auth import create_key
from tests.conftest import wait_until
from tests.integration.test_live_ws import connect


def new_id(prefix="ag"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(stack, agent_id=None, endpoint="user/1001", **extra):
    agent_id = agent_id or new_id()
    resp = stack.post("/api/agents", {"id": agent_id, "name": "Ann Agent", "endpoint": endpoint,
                                      **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def sockets():
    opened = []
    yield opened
    for client in opened:
        client.close()


def test_crud_with_its_404_409_and_422(stack):
    agent = create(stack, endpoint={"number": "+15551234", "gateway": "carrier"},
                   skills={"billing": 7}, wrapup_seconds=15)
    assert agent["endpoint"] == "gateway/carrier/+15551234"
    assert (agent["state"], agent["enabled"], agent["skills"]) == ("logged-out", True,
                                                                   {"billing": 7})
    again = stack.post("/api/agents", {"id": agent["id"], "name": "B", "endpoint": "user/1002"})
    assert again.status_code == 409 and again.json()["error_id"] == "agent_exists"

    changed = stack.put(f"/api/agents/{agent['id']}", {"name": "Ann B", "endpoint": "user/1002"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["endpoint"]) == ("Ann B", "user/1002")
    shown = stack.get(f"/api/agents/{agent['id']}").json()
    assert shown["name"] == "Ann B" and shown["phone_registered"] is True
    assert agent["id"] in [a["id"] for a in stack.get("/api/agents").json()]
    assert agent["id"] in [a["id"] for a in stack.get("/api/agents?state=logged-out").json()]

    assert stack.delete(f"/api/agents/{agent['id']}").status_code == 204
    missing = stack.get(f"/api/agents/{agent['id']}")
    assert missing.status_code == 404 and missing.json()["error_id"] == "agent_not_found"
    assert stack.post(f"/api/agents/{agent['id']}/login").status_code == 404
    assert stack.delete(f"/api/agents/{agent['id']}").status_code == 404


@pytest.mark.parametrize("body", [
    {"endpoint": "user/1001,user/1002"}, {"endpoint": "user/{x=y}1001"},
    {"endpoint": "sip:bob@host;transport=tcp"}, {"endpoint": "user/10 01"},
    {"endpoint": {"number": "555|1", "gateway": "gw"}}, {"endpoint": "gateway/gw/5'5"},
    {"id": "bad id"}, {"id": "x{y}"}, {"skills": {"billing": 11}}, {"skills": {"billing": 0}},
    {"skills": {"bill ing": 3}}, {"wrapup_seconds": -1}, {"enabled": "yes"}, {"name": ""},
])
def test_malformed_agents_are_refused_with_422(stack, body):
    full = {"id": new_id(), "name": "X", "endpoint": "user/1001", **body}
    resp = stack.post("/api/agents", full)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error_id"] == "validation_failed"
    assert stack.get(f"/api/agents/{full['id']}").status_code == 404


def test_an_agent_whose_phone_is_not_registered_cannot_log_in(stack, sim):
    agent = create(stack, endpoint="user/1010")
    assert stack.get(f"/api/agents/{agent['id']}").json()["phone_registered"] is False
    listed = {a["id"]: a for a in stack.get("/api/agents").json()}
    assert listed[agent["id"]]["phone_registered"] is False
    resp = stack.post(f"/api/agents/{agent['id']}/login")
    assert resp.status_code == 409, resp.text
    assert resp.json()["error_id"] == "agent_phone_not_registered"
    assert "user/1010" in resp.json()["message"] and "not registered" in resp.json()["message"]
    assert stack.get(f"/api/agents/{agent['id']}").json()["state"] == "logged-out"
    assert any("show registrations as json" in c for c in sim.commands)


def test_login_pause_resume_logout_and_the_trail_with_dates(stack):
    agent_id = create(stack)["id"]
    logged_in = stack.post(f"/api/agents/{agent_id}/login")
    assert logged_in.status_code == 200, logged_in.text
    assert logged_in.json()["state"] == "available"
    assert logged_in.json()["phone_registered"] is True
    bad = stack.post(f"/api/agents/{agent_id}/pause", {"reason": "nap"})
    assert bad.status_code == 422
    paused = stack.post(f"/api/agents/{agent_id}/pause", {"reason": "lunch"}).json()
    assert (paused["state"], paused["state_reason"]) == ("paused", "lunch")
    refused = stack.post(f"/api/agents/{agent_id}/ready")
    assert refused.status_code == 409
    assert refused.json()["error_id"] == "invalid_agent_transition"
    assert "paused" in refused.json()["message"]
    assert stack.post(f"/api/agents/{agent_id}/resume").json()["state"] == "available"
    assert stack.post(f"/api/agents/{agent_id}/logout").json()["state"] == "logged-out"

    trail = stack.get(f"/api/agents/{agent_id}/states").json()
    assert [(c["from_state"], c["to_state"], c["reason"]) for c in trail] == [
        ("logged-out", "available", None), ("available", "paused", "lunch"),
        ("paused", "available", None), ("available", "logged-out", None)]
    assert all(c["agent_id"] == agent_id and c["source"] == "api" for c in trail)
    pause_at = trail[1]["at"]
    since_pause = stack.get(f"/api/agents/{agent_id}/states",
                            params={"date_from": pause_at}).json()
    assert [c["to_state"] for c in since_pause] == ["paused", "available", "logged-out"]
    before_pause = stack.get(f"/api/agents/{agent_id}/states",
                             params={"date_to": pause_at}).json()
    assert [c["to_state"] for c in before_pause] == ["available"]
    assert stack.get(f"/api/agents/{agent_id}/states",
                     params={"date_from": "not a date"}).status_code == 422


def test_agent_keys_change_only_their_own_state_supervisors_any(stack):
    url = stack.env["DATABASE_URL"]
    mine, other = create(stack)["id"], create(stack)["id"]
    agent_key = create_key("agent", f"k-{uuid.uuid4().hex[:6]}", mine, database_url=url)
    supervisor_key = create_key("supervisor", f"s-{uuid.uuid4().hex[:6]}", database_url=url)
    as_agent, as_supervisor = bearer(agent_key), bearer(supervisor_key)

    own = stack.post(f"/api/agents/{mine}/login", headers=as_agent)
    assert own.status_code == 200 and own.json()["state"] == "available"
    assert stack.get(f"/api/agents/{mine}/states", headers=as_agent).status_code == 200
    for action in ("login", "logout", "resume", "ready"):
        foreign = stack.post(f"/api/agents/{other}/{action}", headers=as_agent)
        assert foreign.status_code == 404, (action, foreign.text)
        assert foreign.json()["error_id"] == "agent_not_found"
    assert stack.get(f"/api/agents/{other}", headers=as_agent).status_code == 404
    assert stack.get("/api/agents", headers=as_agent).status_code == 403
    assert stack.post("/api/agents", {"id": new_id(), "name": "x", "endpoint": "user/1001"},
                      headers=as_agent).status_code == 403
    assert stack.get(f"/api/agents/{other}").json()["state"] == "logged-out"

    assert stack.post(f"/api/agents/{other}/login", headers=as_supervisor).status_code == 200
    assert stack.post(f"/api/agents/{mine}/pause", {"reason": "break"},
                      headers=as_supervisor).json()["state"] == "paused"
    assert stack.delete(f"/api/agents/{other}", headers=as_supervisor).status_code == 403
    assert stack.put(f"/api/agents/{other}", {"name": "y"},
                     headers=as_supervisor).status_code == 403


def test_the_agents_channel_in_order_and_resumed_after_a_disconnect(stack, sockets):
    agent_id = create(stack)["id"]
    client = connect(stack, sockets)
    client.subscribe(["agents"])
    for path, body in (("login", None), ("pause", {"reason": "break"}), ("resume", None),
                       ("logout", None)):
        assert stack.post(f"/api/agents/{agent_id}/{path}", body).status_code == 200
    mine = []

    def four_seen(message):
        if message.get("channel") == "agents" and message["data"].get("id") == agent_id:
            mine.append(message)
        return len(mine) == 4
    client.until(four_seen)
    assert [m["type"] for m in mine] == ["agent.available", "agent.paused", "agent.available",
                                         "agent.logged_out"]
    assert mine[1]["data"]["state_reason"] == "break"
    ids = [m["id"] for m in mine]
    assert ids == sorted(ids) and len(set(ids)) == 4
    client.close()

    # Resume from the first message: the three after it are replayed, in order.
    again = connect(stack, sockets)
    again.subscribe(["agents"], since={"agents": ids[0]})
    replayed = []

    def three_replayed(message):
        if message.get("channel") == "agents" and message["data"].get("id") == agent_id:
            replayed.append(message)
        return len(replayed) == 3
    again.until(three_replayed)
    assert [m["id"] for m in replayed] == ids[1:]
    assert [m["type"] for m in replayed] == [m["type"] for m in mine[1:]]


def leave_in_wrap_up(stack, agent_id):
    """Put the agent in wrap-up whose deadline has passed, as a call's end would leave it."""
    previous, database = db.obj, make_database(stack.env["DATABASE_URL"])
    db.initialize(database)
    try:
        with database.connection_context():
            Agent.update(state="wrap-up", call_id=str(uuid.uuid4()),
                         wrapup_until=utcnow()).where(Agent.id == agent_id).execute()
    finally:
        db.initialize(previous)


def test_the_events_process_ends_a_wrap_up_whose_time_is_over(stack):
    agent_id = create(stack)["id"]
    assert stack.post(f"/api/agents/{agent_id}/login").status_code == 200
    leave_in_wrap_up(stack, agent_id)
    agent = wait_until(lambda: (lambda a: a if a["state"] == "available" else None)(
        stack.get(f"/api/agents/{agent_id}").json()), 10, message="wrap-up to end")
    assert agent["call_id"] is None and agent["wrapup_until"] is None
    trail = stack.get(f"/api/agents/{agent_id}/states").json()
    assert (trail[-1]["from_state"], trail[-1]["to_state"], trail[-1]["source"]) == (
        "wrap-up", "available", "timer")


def test_the_welcome_lists_the_agents_channel_and_the_spec_has_the_routes(stack, sockets):
    client = connect(stack, sockets)
    assert "agents" in client.seen[0]["data"]["channels"]
    paths = stack.get("/api/openapi.json").json()["paths"]
    assert {"/api/agents", "/api/agents/{agent_id}", "/api/agents/{agent_id}/pause",
            "/api/agents/{agent_id}/states"} <= set(paths)
