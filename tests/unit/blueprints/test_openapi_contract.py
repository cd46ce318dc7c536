"""The OpenAPI contract's conventions hold for every operation (blueprints/access/openapi.py):
a unique camelCase operationId (a new route without one fails here), every error status
declared with the one error body, the idempotent retry's 200 and its header, the recording
as bytes, and no unknown query parameter accepted."""
import datetime
import re
import uuid

import pytest
from flask.views import MethodView
from flask_smorest import Blueprint

from app import create_app
from blueprints.access.operation_ids import OPERATIONS
from models import Call
from services.auth import create_key
from services.live.metrics import _iso_time

METHODS = ("get", "post", "put", "patch", "delete")


def make_app(db_url, redis_server, extra_blueprint=None):
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "REDIS_URL": redis_server.url,
                      "DEFAULT_GATEWAY": "test-gw"})
    if extra_blueprint is not None:
        app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(
            extra_blueprint)
    return app


@pytest.fixture(scope="module")
def app(bound_db, db_url, redis_server):
    return make_app(db_url, redis_server)


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/api/openapi.json").get_json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def missing_operation_ids(spec):
    return [f"{method.upper()} {path}" for path, method, op in operations(spec)
            if not op.get("operationId")]


def resolve(spec, response):
    if "$ref" in response:
        return spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def test_every_operation_has_a_unique_camel_case_id(spec):
    assert missing_operation_ids(spec) == []
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+([A-Z][a-z0-9]*)*", i) for i in ids), ids
    assert {"startCall", "listCallHistory", "getCall", "downloadRecording"} <= set(ids)


def test_the_table_names_no_route_that_does_not_exist(app):
    routes = {(rule.endpoint, method) for rule in app.url_map.iter_rules()
              for method in rule.methods}
    assert set(OPERATIONS) - routes == set()


def test_a_new_route_without_an_id_is_caught(bound_db, db_url, redis_server):
    blp = Blueprint("extra", __name__, url_prefix="/api/extra")

    @blp.route("/thing")
    class Thing(MethodView):
        @blp.response(204)
        def get(self):
            """An unnamed operation."""

    app = make_app(db_url, redis_server, blp)
    spec = app.test_client().get("/api/openapi.json").get_json()
    assert missing_operation_ids(spec) == ["GET /api/extra/thing"]


def test_every_error_status_is_declared_with_the_error_body(spec):
    for path, method, op in operations(spec):
        responses = op["responses"]
        expected = {"400", "422", "503"}
        if "{" in path:
            expected.add("404")
        if method in ("post", "put", "patch"):
            expected.add("413")
        if "requestBody" in op:
            expected.add("415")
        if op.get("security"):
            expected |= {"401", "403", "429"}
        assert expected <= set(responses), (method, path, expected - set(responses))
        for status, response in responses.items():
            if path.startswith("/api/health") and status == "503":
                continue  # the health report itself, saying what is down
            if status.isdigit() and int(status) >= 400:
                body = resolve(spec, response)
                assert body["description"], (method, path, status)
                schema = body["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_an_idempotent_retry_and_its_header_are_declared(spec):
    start = spec["paths"]["/api/calls/start"]["post"]
    assert start["responses"]["200"]["content"] == start["responses"]["201"]["content"]
    headers = [p for p in start["parameters"] if p["in"] == "header"]
    assert [p["name"] for p in headers] == ["Idempotency-Key"]
    assert "502" in start["responses"]


def test_the_recording_downloads_as_bytes_and_its_start_needs_no_body(spec):
    audio = spec["paths"]["/api/calls/{call_id}/recording"]["get"]["responses"]["200"]
    assert next(iter(audio["content"])) == "application/octet-stream"
    start = spec["paths"]["/api/calls/{call_id}/recording/start"]["post"]
    assert start["requestBody"]["required"] is False


def test_an_unknown_query_parameter_is_refused(app, bound_db):
    key = create_key("admin", f"contract-admin-{uuid.uuid4().hex[:6]}")
    client = app.test_client()
    headers = {"X-API-Key": key}
    assert client.get("/api/calls/history?page=1", headers=headers).status_code == 200
    response = client.get("/api/calls/history?agent=NOPE", headers=headers)
    assert response.status_code == 422
    body = response.get_json()
    assert body["error_id"] == "unknown_query_parameter"
    assert "agent" in body["errors"]["query"]
    response = client.get("/api/agents?nope=1", headers=headers)
    assert response.status_code == 422


def test_repeated_filters_live_and_cursor_paging(app, bound_db):
    key = create_key("admin", f"contract-pager-{uuid.uuid4().hex[:6]}")
    campaign = f"pager-{uuid.uuid4().hex[:6]}"
    at = datetime.datetime(2026, 5, 1, 10, 0, 0)
    made = [Call.create(campaign_id=campaign, status=status, created_at=at)  # same instant:
            for status in ("ringing", "in-progress", "completed")]   # the id breaks ties
    client, headers = app.test_client(), {"X-API-Key": key}

    def ids(query):
        response = client.get(f"/api/calls/history?campaign_id={campaign}&{query}",
                              headers=headers)
        assert response.status_code == 200, response.get_json()
        return {c["id"] for c in response.get_json()}, response
    assert ids("status=ringing&status=in-progress")[0] == {made[0].id, made[1].id}
    assert ids("live=true")[0] == {made[0].id, made[1].id}
    assert ids("live=false")[0] == {made[2].id}
    seen, url = [], f"/api/calls/history?campaign_id={campaign}&page_size=1"
    while url:
        response = client.get(url, headers=headers)
        seen += [c["id"] for c in response.get_json()]
        link = response.headers.get("Link")
        url = link[1:link.index(">")] if link else None
        assert not link or link.endswith('rel="next"')
    assert seen == sorted((c.id for c in made), reverse=True)
    bad = client.get("/api/calls/history?cursor=nonsense", headers=headers)
    assert bad.status_code == 422 and "cursor" in bad.get_json()["errors"]["query"]
    assert _iso_time(1.5) == "1970-01-01T00:00:01.500Z"  # FreeSwitchState.since
