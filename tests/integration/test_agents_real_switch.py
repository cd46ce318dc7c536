"""Agent phones against the real FreeSWITCH of ../shared/freeswitch (skipped, with the reason,
when it is absent): its phones 1001-1003 are registered, 1004 and up are not."""
import pytest


@pytest.fixture(scope="module")
def real_stack(stack_factory, db_url, real_freeswitch):
    """web + events (the wrap-up timer) against the real switch."""
    return stack_factory(db_url, None, **real_freeswitch.env)


def create(stack, agent_id, endpoint):
    resp = stack.post("/api/agents", {"id": agent_id, "name": agent_id, "endpoint": endpoint})
    assert resp.status_code == 201, resp.text


def test_an_agent_on_a_registered_phone_logs_in(real_stack, real_freeswitch):
    assert "1001" in real_freeswitch.cli("show registrations")
    create(real_stack, "real-1001", "user/1001")
    assert real_stack.get("/api/agents/real-1001").json()["phone_registered"] is True
    resp = real_stack.post("/api/agents/real-1001/login")
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "available" and resp.json()["phone_registered"] is True
    trail = real_stack.get("/api/agents/real-1001/states").json()
    assert [c["to_state"] for c in trail] == ["available"]


def test_an_agent_on_an_unregistered_phone_is_refused(real_stack):
    create(real_stack, "real-1010", "user/1010")
    assert real_stack.get("/api/agents/real-1010").json()["phone_registered"] is False
    # The list (what the wallboard shows) tells registered and offline phones apart too.
    listed = {a["id"]: a["phone_registered"] for a in real_stack.get("/api/agents").json()}
    assert listed["real-1010"] is False
    assert listed.get("real-1001", True) is True
    resp = real_stack.post("/api/agents/real-1010/login")
    assert resp.status_code == 409, resp.text
    assert resp.json()["error_id"] == "agent_phone_not_registered"
    assert real_stack.get("/api/agents/real-1010").json()["state"] == "logged-out"
