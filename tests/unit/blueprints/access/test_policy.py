"""The role table: unlisted routes need admin, HEAD is GET, WebSockets may authenticate late;
an agent on someone else's call or recording hears 404 with the resource's own error id."""
import uuid

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from app import create_app
from blueprints.access.identity import credential_of
from blueprints.access.policy import ADMIN, AGENT, PUBLIC, WEBSOCKET, is_listed, required_role
from models import Call
from services.auth import create_key
from tests.conftest import free_port


def test_the_table_decides_and_unlisted_routes_need_admin():
    assert required_role("health.Health", "GET") == PUBLIC
    assert required_role("calls.CallById", "HEAD") == AGENT  # HEAD is answered as GET
    assert required_role("calls.CallById", "DELETE") == ADMIN
    assert required_role("brand.NewRoute", "POST") == ADMIN and not is_listed("brand.NewRoute",
                                                                                "POST")
    assert required_role("ws", "GET", websocket=True) == WEBSOCKET


def test_credentials_come_from_headers_and_only_websockets_read_the_query():
    def req(**kw):
        return Request(EnvironBuilder(path="/api/x", **kw).get_environ())
    assert credential_of(req(headers={"Authorization": "Bearer abc"})) == "abc"
    assert credential_of(req(headers={"X-API-Key": " k1 "})) == "k1"
    assert credential_of(req(query_string={"token": "t"})) is None
    assert credential_of(req(query_string={"token": "t"}), allow_query=True) == "t"


@pytest.fixture(scope="module")
def client(bound_db, db_url, redis_server):
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "REDIS_URL": redis_server.url,
                      "FREESWITCH_PORT": free_port(), "RATELIMIT_ENABLED": False})
    return app.test_client()


def test_an_agent_sees_its_own_call_and_not_another(client):
    agent = {"X-API-Key": create_key("agent", f"pol-{uuid.uuid4().hex[:8]}", "A7")}
    mine = Call.create(direction="outbound", to_number="1000", agent_id="A7", status="completed")
    theirs = Call.create(direction="outbound", to_number="1001", agent_id="B1",
                         status="completed")
    assert client.get(f"/api/calls/{mine.id}", headers=agent).status_code == 200
    response = client.get(f"/api/calls/{theirs.id}", headers=agent)
    assert response.status_code == 404 and response.get_json()["error_id"] == "call_not_found"
    response = client.get(f"/api/calls/{theirs.id}/recording", headers=agent)
    assert response.status_code == 404
