"""The browser phone's HTTP routes on a running stack (web + events on the ESL simulator):
an agent gets its own phone config and rotates its own password, never another agent's;
supervisors never see one; the directory file FreeSWITCH reads follows."""
import os
import stat
import uuid

import pytest
import requests

from freeswitch.esl.directory_xml import parse_directory_xml


@pytest.fixture(scope="module")
def web(stack_factory, db_url, sim, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("cc_agents"))
    stack = stack_factory(db_url, sim, FREESWITCH_DIRECTORY_DIR=folder,
                          PHONE_WS_URL="wss://pbx.example.com:7443")
    yield stack
    stack.stop()


def key(stack, role, agent_id=None):
    from services.auth import create_key
    return create_key(role, f"phone-{role}-{uuid.uuid4().hex[:8]}", agent_id,
                      database_url=stack.env["DATABASE_URL"])


def as_(stack, credential, method, path):
    return requests.request(method, stack.url(path), timeout=15,
                            headers={"Authorization": f"Bearer {credential}"})


def make_agent(web, endpoint):
    agent_id = f"ph-{uuid.uuid4().hex[:6]}"
    resp = web.post("/api/agents", {"id": agent_id, "name": "Pat", "endpoint": endpoint})
    assert resp.status_code == 201, resp.text
    return agent_id


def directory(web):
    path = os.path.join(web.env["FREESWITCH_DIRECTORY_DIR"], "cc_agents.xml")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as fh:
        return parse_directory_xml(fh.read())


def test_an_agent_gets_and_rotates_its_own_phone_only(web):
    mine, other = make_agent(web, "user/1007"), make_agent(web, "user/1008")
    agent_key = key(web, "agent", mine)
    got = as_(web, agent_key, "GET", f"/api/agents/{mine}/phone/config")
    assert got.status_code == 200 and got.headers["Cache-Control"] == "no-store"
    body = got.json()
    assert (body["username"], body["sip_uri"], body["ws_url"]) == (
        "1007", "sip:1007@pbx.example.com", "wss://pbx.example.com:7443")
    assert directory(web)["1007"][0] == body["password"]
    assert as_(web, agent_key, "GET", f"/api/agents/{other}/phone/config").status_code == 404
    assert as_(web, agent_key, "POST",
               f"/api/agents/{other}/phone/credentials").status_code == 404

    rotated = as_(web, agent_key, "POST", f"/api/agents/{mine}/phone/credentials")
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    assert rotated.json()["password"] != body["password"]
    assert directory(web)["1007"][0] == rotated.json()["password"]
    again = as_(web, agent_key, "GET", f"/api/agents/{mine}/phone/config").json()
    assert again["password"] == rotated.json()["password"]
    # the password never shows up in the agent's own record
    assert rotated.json()["password"] not in web.get(f"/api/agents/{mine}").text


def test_supervisors_never_see_a_phone_password_and_admins_do(web):
    agent_id = make_agent(web, "user/1009")
    supervisor = key(web, "supervisor")
    for method, path in (("GET", "config"), ("POST", "credentials")):
        resp = as_(web, supervisor, method, f"/api/agents/{agent_id}/phone/{path}")
        assert resp.status_code == 404
        assert resp.json()["error_id"] == "phone_credentials_hidden"
    assert web.get(f"/api/agents/{agent_id}/phone/config").status_code == 200  # admin


def test_only_a_directory_user_can_be_a_browser_phone(web):
    agent_id = make_agent(web, "sip:pat@10.0.0.7")
    resp = web.get(f"/api/agents/{agent_id}/phone/config")
    assert resp.status_code == 409 and resp.json()["error_id"] == "agent_phone_not_user"
    assert web.get("/api/agents/nobody-here/phone/config").status_code == 404
