"""Every error answers with the one JSON body and a stable error_id (in process, real SQLite
and Redis); every error_id in the code is documented in docs/errors.md."""
import ast
import os
import re
import uuid

import peewee
import pytest
import redis

from app import create_app
from services.auth import create_key
from services.errors import FreeSwitchUnavailable, NotFound
from tests.conftest import ROOT, free_port

BODY_KEYS = {"code", "status", "message", "errors", "error_id"}
SECRET = "password=hunter2 on db-7.internal"

# Test-only routes that raise what views may let escape.
RAISES = {
    "service": lambda: NotFound("widget 7 not found", error_id="widget_not_found"),
    "database": lambda: peewee.OperationalError("could not connect to server"),
    "integrity": lambda: peewee.IntegrityError("UNIQUE constraint failed: api_key.name"),
    "data": lambda: peewee.DataError("integer out of range"),
    "redis": lambda: redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
    "freeswitch": lambda: FreeSwitchUnavailable("not connected to FreeSWITCH"),
    "unexpected": lambda: RuntimeError(SECRET),
}


def raise_kind(kind):
    raise RAISES[kind]()


def make_app(db_url, redis_server, **config):
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "REDIS_URL": redis_server.url,
                      "FREESWITCH_HOST": "127.0.0.1", "FREESWITCH_PORT": free_port(),
                      "FREESWITCH_TIMEOUT": 0.5, "DEFAULT_GATEWAY": "test-gw",
                      "MAX_CONTENT_LENGTH": 1000, **config})
    app.add_url_rule("/api/test/raise/<kind>", "test_raise", raise_kind)
    return app


@pytest.fixture(scope="module")
def client(bound_db, db_url, redis_server):
    return make_app(db_url, redis_server).test_client()


@pytest.fixture(scope="module")
def keys(bound_db):
    suffix = uuid.uuid4().hex[:8]
    return {"admin": {"X-API-Key": create_key("admin", f"err-admin-{suffix}")},
            "agent": {"X-API-Key": create_key("agent", f"err-agent-{suffix}", "A1")}}


def error_of(response, status):
    """The error body, checked against the one format; returns its error_id."""
    body = response.get_json()
    assert response.status_code == status, body
    assert response.mimetype == "application/json"
    assert set(body) <= BODY_KEYS and {"code", "status", "message", "error_id"} <= set(body)
    assert body["code"] == status and isinstance(body["status"], str) and body["status"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", body["error_id"]), body["error_id"]
    return body["error_id"]


def test_unknown_route_and_method(client):
    assert error_of(client.get("/api/no/such/route"), 404) == "not_found"
    response = client.patch("/api/health")
    assert error_of(response, 405) == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_credentials_missing_invalid_or_too_weak(client, keys):
    assert error_of(client.get("/api/calls/history"), 401) == "unauthorized"
    response = client.get("/api/calls/history", headers={"X-API-Key": "cck_not-a-real-key"})
    assert error_of(response, 401) == "invalid_credentials"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.delete(f"/api/calls/{uuid.uuid4()}", headers=keys["agent"])
    assert error_of(response, 403) == "forbidden"


def test_missing_call_is_call_not_found_for_admins_and_agents(client, keys):
    call_id = uuid.uuid4()
    for who in ("admin", "agent"):
        response = client.get(f"/api/calls/{call_id}", headers=keys[who])
        assert error_of(response, 404) == "call_not_found", who


def test_schema_validation_and_bad_bodies(client, keys):
    response = client.post("/api/calls/start", json={}, headers=keys["admin"])
    assert error_of(response, 422) == "validation_failed"
    assert "to" in response.get_json()["errors"]["json"]
    response = client.post("/api/calls/start", data="{not json",
                           headers={**keys["admin"], "Content-Type": "application/json"})
    assert error_of(response, 400) == "invalid_json"
    response = client.post("/api/calls/start", data="to=100",
                           headers={**keys["admin"], "Content-Type": "text/plain"})
    assert error_of(response, 415) == "unsupported_media_type"
    response = client.post("/api/calls/start", json={"to": "1" * 2000}, headers=keys["admin"])
    assert error_of(response, 413) == "payload_too_large"
    response = client.get("/api/calls/history?status=a%00b", headers=keys["admin"])
    assert error_of(response, 400) == "nul_character"


def test_freeswitch_down_when_placing_a_call(client, keys):
    response = client.post("/api/calls/start", json={"to": "1000"}, headers=keys["admin"])
    assert error_of(response, 503) == "freeswitch_unavailable"
    assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("kind, status, error_id", [
    ("service", 404, "widget_not_found"),
    ("database", 503, "database_unavailable"),
    ("integrity", 409, "conflict"),
    ("data", 422, "value_out_of_range"),
    ("redis", 503, "redis_unavailable"),
    ("freeswitch", 503, "freeswitch_unavailable"),
    ("unexpected", 500, "internal_error"),
])
def test_escaped_exceptions(client, keys, kind, status, error_id):
    response = client.get(f"/api/test/raise/{kind}", headers=keys["admin"])
    assert error_of(response, status) == error_id


def test_unexpected_error_does_not_leak_its_text(client, keys):
    response = client.get("/api/test/raise/unexpected",
                          headers={**keys["admin"], "X-Request-ID": "req-42"})
    assert error_of(response, 500) == "internal_error"
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "db-7" not in text and "RuntimeError" not in text
    assert "req-42" in response.get_json()["message"]


def test_rate_limited(bound_db, db_url, redis_server, keys):
    redis_server.client().flushall()
    client = make_app(db_url, redis_server, RATELIMIT_DEFAULT="2 per minute").test_client()
    statuses = [client.get("/api/auth/me", headers=keys["agent"]) for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    assert error_of(statuses[2], 429) == "rate_limited"
    assert int(statuses[2].headers["Retry-After"]) > 0


def test_spec_documents_error_id(client):
    spec = client.get("/api/openapi.json").get_json()
    assert "error_id" in spec["components"]["schemas"]["Error"]["properties"]


# ----- the documented list ----------------------------------------------------
def error_ids_in_code():
    """{error_id: where} for each id named in services/ and blueprints/: error_id="x",
    error_id = "x" (class defaults) and the string values of *_IDS tables."""
    found = {}
    for top in ("services", "blueprints"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in (f for f in files if f.endswith(".py")):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as fh:
                    tree = ast.parse(fh.read())
                for node in ast.walk(tree):
                    for value in _named_ids(node):
                        found.setdefault(value, f"{os.path.relpath(path, ROOT)}:{node.lineno}")
    return found


def _named_ids(node):
    if isinstance(node, ast.keyword) and node.arg == "error_id":
        value = node.value
    elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and (t.id == "error_id" or t.id.endswith("_IDS"))
            for t in node.targets):
        value = node.value
    else:
        return []
    if isinstance(value, ast.Dict):
        return [v.value for v in value.values if isinstance(v, ast.Constant)]
    if isinstance(value, ast.Call):  # NOT_FOUND_IDS.get(name, "not_found")
        return [a.value for a in value.args if isinstance(a, ast.Constant)
                and isinstance(a.value, str)]
    return [value.value] if isinstance(value, ast.Constant) else []


def documented_ids():
    with open(os.path.join(ROOT, "docs", "errors.md"), encoding="utf-8") as fh:
        return set(re.findall(r"^\| `([a-z0-9_]+)` \|", fh.read(), re.MULTILINE))


def test_every_error_id_in_the_code_is_documented():
    found = error_ids_in_code()
    assert {"call_not_found", "invalid_transition", "not_found", "internal_error"} <= set(found)
    malformed = {i: w for i, w in found.items() if not re.fullmatch(r"[a-z][a-z0-9_]*", i)}
    assert not malformed, f"error ids must be snake_case: {malformed}"
    missing = {i: w for i, w in found.items() if i not in documented_ids()}
    assert not missing, f"error ids missing from docs/errors.md: {missing}"
