"""What the agent and bridging tests share: agents made and logged in, calls and agents read."""
import uuid


def make_agent(stack, endpoint="user/1001", wrapup_seconds=1, prefix="ag"):
    """A new agent on endpoint, logged in and available; returns its id."""
    agent_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    resp = stack.post("/api/agents", {"id": agent_id, "name": agent_id, "endpoint": endpoint,
                                      "wrapup_seconds": wrapup_seconds})
    assert resp.status_code == 201, resp.text
    resp = stack.post(f"/api/agents/{agent_id}/login")
    assert resp.status_code == 200 and resp.json()["state"] == "available", resp.text
    return agent_id


def call_of(stack, call_id):
    return stack.get(f"/api/calls/{call_id}").json()


def agent_of(stack, agent_id):
    return stack.get(f"/api/agents/{agent_id}").json()


def agent_state(stack, agent_id):
    return agent_of(stack, agent_id)["state"]
