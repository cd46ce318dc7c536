"""Queues and inbound routes through the running web process (against the ESL simulator):
CRUD with members, the 422s for bad patterns, time zones, strategies and hours, the 404s,
the 409s (duplicates, callers waiting, a queue in use) and who may do what.

Runs once on SQLite and once on PostgreSQL (when reachable).
"""
import json
import re
import uuid

import pytest

from models import make_database
from models.queue import QueueEntry
from services.auth import create_key
from tests.conftest import ROOT

HOURS = {"timezone": "Europe/Paris", "days": {"fri": [["13:00", "17:00"], ["08:00", "12:00"]],
                                              "mon": [["09:00", "17:30"]]},
         "closed_dates": ["2026-12-25"]}


def new_id(prefix="q"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def make_agent(stack, agent_id=None):
    agent_id = agent_id or new_id("ag")
    resp = stack.post("/api/agents", {"id": agent_id, "name": "Ann", "endpoint": "user/1001"})
    assert resp.status_code == 201, resp.text
    return agent_id


def make_queue(stack, queue_id=None, **extra):
    queue_id = queue_id or new_id()
    resp = stack.post("/api/queues", {"id": queue_id, "name": "Support", **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def make_route(stack, number, target, match="exact", target_type="queue", **extra):
    resp = stack.post("/api/inbound-routes", {"match": match, "number": number,
                                              "target_type": target_type, "target": target,
                                              **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def unique_number():
    return "+1555" + str(uuid.uuid4().int)[:9]


@pytest.fixture(scope="module")
def keys(stack):
    url, tag = stack.env["DATABASE_URL"], uuid.uuid4().hex[:6]
    return {"supervisor": create_key("supervisor", f"q-sup-{tag}", database_url=url),
            "agent": create_key("agent", f"q-a1-{tag}", "A1", database_url=url)}


def test_queue_crud_with_members(stack):
    ann, bob = make_agent(stack), make_agent(stack)
    overflow = make_queue(stack)
    queue = make_queue(stack, strategy="skills", required_skills={"billing": 5},
                       ring_timeout=20, max_wait_seconds=300,
                       max_wait_action={"action": "queue", "target": overflow["id"]},
                       no_agents_action={"action": "number", "target": "+15550001111"},
                       hours=HOURS, closed_action={"action": "hangup"},
                       service_level_seconds=30, wrapup_seconds=10, max_missed_offers=2,
                       members=[{"agent_id": ann, "tier": 1}, {"agent_id": bob, "tier": 2}])
    assert queue["members"] == [{"agent_id": ann, "tier": 1}, {"agent_id": bob, "tier": 2}]
    assert queue["hours"]["days"] == {"mon": [["09:00", "17:30"]],
                                      "fri": [["08:00", "12:00"], ["13:00", "17:00"]]}
    assert queue["closed_action"] == {"action": "hangup", "target": None}
    assert (queue["strategy"], queue["max_missed_offers"], queue["wrapup_seconds"]) == (
        "skills", 2, 10)
    # defaults
    assert (overflow["strategy"], overflow["ring_timeout"], overflow["service_level_seconds"],
            overflow["max_wait_seconds"], overflow["hours"], overflow["members"]) == (
        "longest-idle-agent", 15, 20, None, None, [])

    shown = stack.get(f"/api/queues/{queue['id']}").json()
    assert shown == queue
    listed = {q["id"]: q for q in stack.get("/api/queues").json()}
    assert listed[queue["id"]]["members"] == queue["members"]

    changed = stack.put(f"/api/queues/{queue['id']}",
                        {"members": [{"agent_id": bob}], "hours": None, "max_wait_seconds": None})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["members"], body["hours"], body["max_wait_seconds"], body["ring_timeout"]) == (
        [{"agent_id": bob, "tier": 1}], None, None, 20)

    assert stack.delete(f"/api/queues/{queue['id']}").status_code == 204
    missing = stack.get(f"/api/queues/{queue['id']}")
    assert missing.status_code == 404 and missing.json()["error_id"] == "queue_not_found"
    for resp in (stack.put(f"/api/queues/{queue['id']}", {"name": "x"}),
                 stack.delete(f"/api/queues/{queue['id']}")):
        assert resp.status_code == 404 and resp.json()["error_id"] == "queue_not_found"


@pytest.mark.parametrize("body, field", [
    ({"strategy": "random"}, "strategy"),
    ({"id": "bad id"}, "id"),
    ({"name": ""}, "name"),
    ({"ring_timeout": 4}, "ring_timeout"), ({"ring_timeout": 121}, "ring_timeout"),
    ({"ring_timeout": "15"}, "ring_timeout"),
    ({"max_wait_seconds": 9}, "max_wait_seconds"), ({"max_wait_seconds": 86401},
                                                    "max_wait_seconds"),
    ({"service_level_seconds": 0}, "service_level_seconds"),
    ({"wrapup_seconds": 3601}, "wrapup_seconds"),
    ({"max_missed_offers": 0}, "max_missed_offers"), ({"max_missed_offers": 21},
                                                      "max_missed_offers"),
    ({"required_skills": {"billing": 11}}, "required_skills"),
    ({"required_skills": {"bill ing": 3}}, "required_skills"),
    ({"hours": {"timezone": "Europe/Atlantis", "days": {}}}, "hours"),
    ({"hours": {"days": {"mon": [["09:00", "17:00"]]}}}, "hours"),
    ({"hours": {"timezone": "UTC", "days": {"funday": [["09:00", "17:00"]]}}}, "hours"),
    ({"hours": {"timezone": "UTC", "days": {"mon": [["17:00", "09:00"]]}}}, "hours"),
    ({"hours": {"timezone": "UTC", "days": {"mon": [["9h", "17h"]]}}}, "hours"),
    ({"hours": {"timezone": "UTC", "closed_dates": ["2026-13-01"]}}, "hours"),
    ({"max_wait_action": {"action": "voicemail", "target": "x"}}, "max_wait_action"),
    ({"max_wait_action": {"action": "queue"}}, "max_wait_action"),
    ({"closed_action": {"action": "hangup", "target": "q"}}, "closed_action"),
    ({"no_agents_action": {"action": "number", "target": "555-1234"}}, "no_agents_action"),
    ({"members": [{"agent_id": "a b"}]}, "members"),
    ({"members": [{"agent_id": "A1", "tier": 0}]}, "members"),
    ({"members": [{"agent_id": "A1"}, {"agent_id": "A1"}]}, "members"),
])
def test_malformed_queues_are_refused_with_422(stack, body, field):
    full = {"id": new_id(), "name": "X", **body}
    resp = stack.post("/api/queues", full)
    assert resp.status_code == 422, resp.text
    error = resp.json()
    assert error["error_id"] == "validation_failed"
    assert field in error["errors"]["json"], error
    assert stack.get(f"/api/queues/{full['id']}").status_code in (404, 422)


def test_refusals_that_need_the_database(stack):
    queue = make_queue(stack)
    again = stack.post("/api/queues", {"id": queue["id"], "name": "Again"})
    assert again.status_code == 409 and again.json()["error_id"] == "queue_exists"

    ghost = stack.post("/api/queues", {"id": new_id(), "name": "X",
                                       "members": [{"agent_id": "nobody-here"}]})
    assert ghost.status_code == 422 and ghost.json()["error_id"] == "queue_member_unknown"
    assert "nobody-here" in ghost.json()["message"]
    for action in ({"action": "queue", "target": "no-such-queue"},
                   {"action": "queue", "target": queue["id"]},
                   {"action": "agent", "target": "nobody-here"}):
        resp = stack.put(f"/api/queues/{queue['id']}", {"max_wait_action": action})
        assert resp.status_code == 422, resp.text
        assert resp.json()["error_id"] == "queue_action_target_invalid"


def test_deleting_a_queue_with_callers_or_in_use_is_409(stack):
    queue, other = make_queue(stack), make_queue(stack)
    make_queue(stack, no_agents_action={"action": "queue", "target": other["id"]})
    resp = stack.delete(f"/api/queues/{other['id']}")
    assert resp.status_code == 409 and resp.json()["error_id"] == "queue_in_use"
    assert "no_agents_action" in resp.json()["message"]

    route = make_route(stack, unique_number(), queue["id"])
    resp = stack.delete(f"/api/queues/{queue['id']}")
    assert resp.status_code == 409 and resp.json()["error_id"] == "queue_in_use"
    assert route["number"] in resp.json()["message"]
    assert stack.delete(f"/api/inbound-routes/{route['id']}").status_code == 204

    database = make_database(stack.env["DATABASE_URL"])
    with database.connection_context(), database.bind_ctx([QueueEntry]):
        entry = QueueEntry.create(queue_id=queue["id"], call_id=str(uuid.uuid4()))
        resp = stack.delete(f"/api/queues/{queue['id']}")
        assert resp.status_code == 409 and resp.json()["error_id"] == "queue_has_callers"
        assert stack.get(f"/api/queues/{queue['id']}").status_code == 200
        QueueEntry.update(status="abandoned").where(QueueEntry.id == entry.id).execute()
    assert stack.delete(f"/api/queues/{queue['id']}").status_code == 204


def test_deleting_an_agent_that_routes_or_queue_actions_send_callers_to_is_409(stack):
    """Deleted, the agent would leave its callers a tone and a hang-up: refused, named."""
    agent = make_agent(stack)
    queue = make_queue(stack, closed_action={"action": "agent", "target": agent})
    route = make_route(stack, unique_number(), agent, target_type="agent")
    resp = stack.delete(f"/api/agents/{agent}")
    assert resp.status_code == 409 and resp.json()["error_id"] == "agent_in_use"
    assert route["number"] in resp.json()["message"]
    assert f"queue {queue['id']}'s closed_action" in resp.json()["message"]
    assert stack.get(f"/api/agents/{agent}").status_code == 200  # nothing changed

    assert stack.delete(f"/api/inbound-routes/{route['id']}").status_code == 204
    resp = stack.delete(f"/api/agents/{agent}")
    assert resp.status_code == 409 and route["number"] not in resp.json()["message"]
    assert stack.put(f"/api/queues/{queue['id']}", {"closed_action": None}).status_code == 200
    assert stack.delete(f"/api/agents/{agent}").status_code == 204

def test_route_crud_and_matching(stack):
    queue, agent = make_queue(stack), make_agent(stack)
    prefix = "+4420" + str(uuid.uuid4().int)[:4]
    broad = make_route(stack, prefix, queue["id"], match="prefix", name="London")
    narrow = make_route(stack, prefix + "77", agent, match="prefix", target_type="agent")
    exact = make_route(stack, prefix + "771234", "+15550009999", target_type="number")
    assert (broad["match"], broad["name"], exact["target_type"]) == ("prefix", "London", "number")

    def matched(number):
        resp = stack.get(f"/api/inbound-routes/match/{number}")
        assert resp.status_code == 200, resp.text
        return resp.json()["id"]

    assert matched(prefix + "771234") == exact["id"]
    assert matched(prefix + "7712345") == narrow["id"]
    assert matched(prefix + "1") == broad["id"]
    nowhere = stack.get("/api/inbound-routes/match/+999")
    assert nowhere.status_code == 404 and nowhere.json()["error_id"] == "inbound_route_not_found"

    twin = stack.post("/api/inbound-routes", {"match": "prefix", "number": prefix,
                                              "target_type": "agent", "target": agent})
    assert twin.status_code == 409 and twin.json()["error_id"] == "inbound_route_exists"
    listed = stack.get("/api/inbound-routes", params={"target": queue["id"]})
    assert [r["id"] for r in listed.json()] == [broad["id"]]
    assert "X-Pagination" in listed.headers

    changed = stack.put(f"/api/inbound-routes/{broad['id']}", {"match": "exact"})
    assert changed.status_code == 200 and changed.json()["match"] == "exact"
    assert stack.get(f"/api/inbound-routes/{broad['id']}").json()["match"] == "exact"
    bad = stack.put(f"/api/inbound-routes/{broad['id']}", {"target_type": "number"})
    assert bad.status_code == 422
    assert bad.json()["error_id"] == "inbound_route_target_unknown"

    for route in (broad, narrow, exact):
        assert stack.delete(f"/api/inbound-routes/{route['id']}").status_code == 204
    missing = stack.get(f"/api/inbound-routes/{broad['id']}")
    assert missing.status_code == 404 and missing.json()["error_id"] == "inbound_route_not_found"
    assert stack.delete(f"/api/inbound-routes/{uuid.uuid4()}").status_code == 404
    assert stack.put("/api/inbound-routes/match", {"name": "x"}).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"number": "+33 1 23"}, "number"), ({"number": "12-34"}, "number"),
    ({"number": "+"}, "number"), ({"number": "1" * 33}, "number"), ({"number": "abc"}, "number"),
    ({"number": "*99"}, "number"), ({"match": "regex"}, "match"),
    ({"target_type": "voicemail"}, "target_type"),
    ({"target_type": "number", "target": "call-me"}, "target"),
    ({"target_type": "queue", "target": "a b"}, "target"),
])
def test_malformed_routes_are_refused_with_422(stack, body, field):
    full = {"match": "exact", "number": unique_number(), "target_type": "queue",
            "target": "support", **body}
    resp = stack.post("/api/inbound-routes", full)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error_id"] == "validation_failed"
    assert field in resp.json()["errors"]["json"]


def test_a_route_to_a_missing_queue_or_agent_is_422(stack):
    for target_type in ("queue", "agent"):
        resp = stack.post("/api/inbound-routes", {"number": unique_number(), "target": "ghost",
                                                  "target_type": target_type})
        assert resp.status_code == 422 and (
            resp.json()["error_id"] == "inbound_route_target_unknown")


def test_who_may_do_what(stack, keys):
    queue = make_queue(stack)
    agent, supervisor = bearer(keys["agent"]), bearer(keys["supervisor"])
    # agents list the queues (to offer "transfer to queue"), nothing more
    listed = stack.get("/api/queues", headers=agent)
    assert listed.status_code == 200 and queue["id"] in [q["id"] for q in listed.json()]
    for resp in (stack.post("/api/queues", {"id": new_id(), "name": "X"}, headers=agent),
                 stack.put(f"/api/queues/{queue['id']}", {"name": "X"}, headers=agent),
                 stack.delete(f"/api/queues/{queue['id']}", headers=agent),
                 stack.get("/api/inbound-routes", headers=agent),
                 stack.post("/api/inbound-routes", {"number": unique_number(),
                                                    "target_type": "queue",
                                                    "target": queue["id"]}, headers=agent)):
        assert resp.status_code == 403, resp.text
        assert resp.json()["error_id"] == "forbidden"
    # supervisors read everything and change nothing
    assert stack.get(f"/api/queues/{queue['id']}", headers=supervisor).status_code == 200
    assert stack.get("/api/inbound-routes", headers=supervisor).status_code == 200
    assert stack.put(f"/api/queues/{queue['id']}", {"name": "X"},
                     headers=supervisor).status_code == 403
    assert stack.delete(f"/api/queues/{queue['id']}", headers=supervisor).status_code == 403
    assert stack.get(f"/api/queues/{queue['id']}").json()["name"] == "Support"
    assert stack.get("/api/queues", headers={"Authorization": None}).status_code == 401


def test_the_readme_examples_are_accepted_as_written(stack):
    with open(f"{ROOT}/README.md", encoding="utf-8") as fh:
        text = fh.read()
    section = text[text.index("### Configuring queues and routes"):]
    blocks = re.findall(r"```json\n(.*?)```", section, re.S)
    queue_body, route_body = json.loads(blocks[0]), json.loads(blocks[1])
    for agent_id in ("ann", "bob"):
        make_agent(stack, agent_id)
    make_queue(stack, "overflow")
    resp = stack.post("/api/queues", queue_body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["members"] == queue_body["members"]
    resp = stack.post("/api/inbound-routes", route_body)
    assert resp.status_code == 201, resp.text
    assert stack.get("/api/inbound-routes/match/+33187654321").json()["target"] == "support"
