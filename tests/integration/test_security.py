"""Access control, headers, CORS, body rules and access logs of the running web process.

Runs once on SQLite and once on PostgreSQL (when reachable). Keys are made the
way an operator makes them: with `flask api-keys` or services.auth.create_key.
"""
import datetime
import hashlib
import json
import os
import subprocess
import sys
import uuid

import gevent
import jwt
import pytest

from services.auth import create_key, database_connection
from tests.conftest import ROOT, wait_until

NO_KEY = {"Authorization": None}
SECRET = "test-secret-key-0123456789"  # stack_env's SECRET_KEY


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keys(stack):
    url = stack.env["DATABASE_URL"]
    suffix = uuid.uuid4().hex[:6]
    return {"admin": stack.api_key,
            "supervisor": create_key("supervisor", f"sup-{suffix}", database_url=url),
            "A1": create_key("agent", f"a1-{suffix}", "A1", database_url=url),
            "A2": create_key("agent", f"a2-{suffix}", "A2", database_url=url)}


def retrying(send, attempts=5):
    """Send again on 503 (the API's "try again shortly"), as a well-behaved client does:
    a write that meets the events process's batch on SQLite may be told to come back."""
    for _ in range(attempts - 1):
        resp = send()
        if resp.status_code != 503:
            return resp
        gevent.sleep(0.2)
    return send()


def start_call(stack, key, **body):
    body = {"to": "15551230000", "gateway": "gw1", **body}
    resp = stack.post("/api/calls/start", body, headers=bearer(key))
    assert resp.status_code == 201, resp.text
    return resp.json()


# ----- authentication ---------------------------------------------------------
def test_only_health_and_the_api_docs_answer_without_a_key(stack):
    for path in ("/api/health", "/api/openapi.json", "/api/docs"):
        assert stack.get(path, headers=NO_KEY).status_code == 200, path
    resp = stack.get("/api/calls/history", headers=NO_KEY)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    body = resp.json()
    assert body["code"] == 401 and body["status"] == "Unauthorized" and "Bearer" in body["message"]


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": "Bearer cck_" + "A" * 43},
    {"Authorization": "Basic YWRtaW46YWRtaW4="},
    {"Authorization": "Bearer " + "x" * 5000},
    {"Authorization": "Bearer a.b.c"},
    {"Authorization": None, "X-API-Key": "cck_wrong"},
])
def test_bad_credentials_are_401_in_the_json_error_format(stack, headers):
    resp = stack.get("/api/calls/history", headers=headers)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert resp.json()["message"] == "invalid, expired or revoked credentials"


def test_x_api_key_works_like_a_bearer_key(stack, keys):
    resp = stack.get("/api/auth/me", headers={"Authorization": None, "X-API-Key": keys["A1"]})
    assert resp.status_code == 200
    assert resp.json() == {"name": resp.json()["name"], "role": "agent", "agent_id": "A1",
                           "via": "key"}


def on_stack_db(stack, fn):
    """Run fn against the stack's database (the ApiKey model bound there for the call)."""
    from models.auth import ApiKey
    from models.db import make_database
    database = make_database(stack.env["DATABASE_URL"])
    try:
        with database.bind_ctx([ApiKey]), database.connection_context():
            return fn()
    finally:
        database.close()
        if hasattr(database, "close_all"):
            database.close_all()


def stored_key_row(stack, name):
    from models.auth import ApiKey
    return on_stack_db(stack, lambda: ApiKey.select().where(ApiKey.name == name).dicts().get())


def revoke_key(stack, name):
    from services.auth import ApiKeyService
    return on_stack_db(stack, lambda: ApiKeyService().revoke(name))


@pytest.fixture(scope="module")
def local_app(redis_server, tmp_path_factory):
    """The app in this process on its own SQLite file (for the CLI runner and odd routes)."""
    from app import create_app
    from models import db, init_db, migrate_database
    previous = db.obj
    path = tmp_path_factory.mktemp("local") / "local.db"
    init_db(f"sqlite:///{path}")
    with db.connection_context():
        migrate_database()  # as the release step does, before the app starts
    app = create_app({"DATABASE_URL": f"sqlite:///{path}", "REDIS_URL": redis_server.url,
                      "RATELIMIT_ENABLED": False, "FREESWITCH_PORT": 1})

    def explode():
        raise RuntimeError("kaboom")
    app.add_url_rule("/api/explode", "explode", explode)  # unlisted in POLICY: admin only
    yield app
    db.initialize(previous)


def test_the_cli_shows_a_key_once_stores_only_its_hash_and_revokes_it(local_app):
    env = {**os.environ, "DATABASE_URL": local_app.config["DATABASE_URL"],
           "REDIS_URL": local_app.config["REDIS_URL"]}

    def flask(*args):  # exactly as an operator types it
        return subprocess.run([sys.executable, "-m", "flask", "--app", "app:create_app",
                               "api-keys", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60, check=False)
    made = flask("create", "--role", "supervisor", "--name", "ops")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("cck_") and len(key.splitlines()) == 1 and "shown" in made.stderr
    client = local_app.test_client()
    assert client.get("/api/calls/history", headers=bearer(key)).status_code == 200

    runner = local_app.test_cli_runner()
    listing = runner.invoke(args=["api-keys", "list"]).output
    assert "ops" in listing and key[:10] in listing and key not in listing
    from models.auth import ApiKey
    with database_connection():
        row = ApiKey.select().where(ApiKey.name == "ops").dicts().get()
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps(row, default=str)
    database_file = local_app.config["DATABASE_URL"].removeprefix("sqlite:///")
    with open(database_file, "rb") as stored:
        assert key.encode() not in stored.read()

    revoked = flask("revoke", "ops")
    assert revoked.returncode == 0 and "revoked key 'ops'" in revoked.stdout
    assert "revoked" in runner.invoke(args=["api-keys", "list"]).output
    # (that a revoked key is refused by the running service: test_forged_expired_...)


@pytest.mark.parametrize("args,complaint", [
    (["--role", "agent", "--name", "no-agent"], "--agent-id"),
    (["--role", "admin", "--name", "bad name!"], "name: must be"),
    (["--role", "root", "--name", "x"], "'root' is not one of"),
    (["--role", "supervisor", "--name", "sup", "--agent-id", "A1"], "only agent keys"),
])
def test_the_cli_refuses_bad_keys_with_a_reason(local_app, args, complaint):
    result = local_app.test_cli_runner().invoke(args=["api-keys", "create", *args])
    assert result.exit_code != 0
    assert complaint in result.output and "cck_" not in result.output


def test_the_cli_refuses_a_second_key_with_the_same_name(local_app):
    runner = local_app.test_cli_runner()
    assert runner.invoke(args=["api-keys", "create", "--role", "admin", "--name", "twin"]
                         ).exit_code == 0
    again = runner.invoke(args=["api-keys", "create", "--role", "admin", "--name", "twin"])
    assert again.exit_code != 0 and "exists already" in again.output
    assert "no API key named" in runner.invoke(args=["api-keys", "revoke", "ghost"]).output


# ----- roles and agent scoping -----------------------------------------------
def test_agents_see_and_touch_only_their_own_calls(stack, keys):
    own = start_call(stack, keys["A1"], agent_id="A2")  # an agent cannot place calls for others
    assert own["agent_id"] == "A1"
    other = start_call(stack, keys["admin"], agent_id="A2")

    for query in ("", "?agent_id=A2"):
        listed = stack.get("/api/calls/history" + query, headers=bearer(keys["A1"])).json()
        assert own["id"] in [c["id"] for c in listed]
        assert {c["agent_id"] for c in listed} == {"A1"}
    everyone = stack.get("/api/calls/history", headers=bearer(keys["supervisor"])).json()
    assert {own["id"], other["id"]} <= {c["id"] for c in everyone}

    missing = stack.get(f"/api/calls/{uuid.uuid4()}", headers=bearer(keys["A1"]))
    for resp in (stack.get(f"/api/calls/{other['id']}", headers=bearer(keys["A1"])),
                 stack.get(f"/api/calls/{other['id']}/events", headers=bearer(keys["A1"])),
                 stack.put(f"/api/calls/{other['id']}/update", {"notes": "x"},
                           headers=bearer(keys["A1"])),
                 stack.post(f"/api/calls/{other['id']}/end", headers=bearer(keys["A1"]))):
        # the same answer as for a call that does not exist: nothing leaks
        assert resp.status_code == 404 and resp.json()["status"] == missing.json()["status"]
    assert stack.get(f"/api/calls/{other['id']}").json()["status"] != "canceled"

    updated = retrying(lambda: stack.put(f"/api/calls/{own['id']}/update", {"notes": "mine"},
                                         headers=bearer(keys["A1"])))
    assert updated.status_code == 200 and updated.json()["notes"] == "mine", updated.text
    ended = retrying(lambda: stack.post(f"/api/calls/{own['id']}/end", headers=bearer(keys["A1"])))
    assert ended.status_code == 200
    for role in ("A1", "supervisor"):
        denied = stack.delete(f"/api/calls/{own['id']}", headers=bearer(keys[role]))
        assert denied.status_code == 403 and "admin" in denied.json()["message"]
    deleted = retrying(lambda: stack.delete(f"/api/calls/{own['id']}",
                                            headers=bearer(keys["admin"])))
    assert deleted.status_code == 204


def test_an_idempotency_key_never_hands_one_agent_anothers_call(stack, keys):
    idem = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = stack.post("/api/calls/start", {"to": "15551230001", "gateway": "gw1"},
                       headers={**bearer(keys["A2"]), **idem})
    assert first.status_code == 201
    stolen = stack.post("/api/calls/start", {"to": "15551230001", "gateway": "gw1"},
                        headers={**bearer(keys["A1"]), **idem})
    assert stolen.status_code == 409 and first.json()["id"] not in stolen.text
    again = stack.post("/api/calls/start", {"to": "15551230001", "gateway": "gw1"},
                       headers={**bearer(keys["A2"]), **idem})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


# ----- tokens -----------------------------------------------------------------
def test_a_key_buys_a_short_lived_token_with_the_same_rights(stack, keys):
    resp = stack.post("/api/auth/token", headers=bearer(keys["A1"]))
    assert resp.status_code == 201
    issued = resp.json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 900
    assert issued["role"] == "agent" and issued["agent_id"] == "A1"
    token = issued["token"]
    me = stack.get("/api/auth/me", headers=bearer(token)).json()
    assert me["via"] == "token" and me["agent_id"] == "A1"
    assert stack.get("/api/health/detailed", headers=bearer(token)).status_code == 403
    # a token does not buy another token: stolen tokens die with their 15 minutes
    assert stack.post("/api/auth/token", headers=bearer(token)).status_code == 403


def test_forged_expired_and_orphaned_tokens_are_401(stack):
    url = stack.env["DATABASE_URL"]
    key = create_key("supervisor", f"tok-{uuid.uuid4().hex[:6]}", database_url=url)
    token = stack.post("/api/auth/token", headers=bearer(key)).json()["token"]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    forged = {
        "expired": jwt.encode({**claims, "iat": past, "exp": past + datetime.timedelta(minutes=15)},
                              SECRET, algorithm="HS256"),
        "other secret": jwt.encode({**claims, "role": "admin"}, "guess", algorithm="HS256"),
        "tampered": token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        "alg none": jwt.encode(claims, None, algorithm="none"),
    }
    for label, bad in forged.items():
        assert stack.get("/api/calls/history", headers=bearer(bad)).status_code == 401, label
    assert stack.get("/api/calls/history", headers=bearer(token)).status_code == 200
    revoke_key(stack, claims["name"])
    # revoking a key ends the key and every token bought with it, at once
    assert stack.get("/api/calls/history", headers=bearer(token)).status_code == 401
    assert stack.get("/api/calls/history", headers=bearer(key)).status_code == 401


# ----- the operator's health view -------------------------------------------
def test_detailed_health_shows_every_dependency_to_admins_only(stack, keys):
    assert stack.get("/api/health/detailed", headers=bearer(keys["supervisor"])
                     ).status_code == 403
    report = stack.get("/api/health/detailed", headers=bearer(keys["admin"])).json()
    assert report["database"]["status"] == "ok" and report["database"]["engine"] in (
        "sqlite", "postgresql")
    assert report["redis"]["status"] == "ok" and report["freeswitch"]["status"] == "ok"
    assert {q["name"] for q in report["queues"]["queues"]} == {"default", "recordings", "quality",
                                                              "transcripts", "webhooks"}
    # no RQ worker runs in this stack: the operator is told, the service is only degraded
    assert report["workers"]["count"] == 0 and report["workers"]["status"] == "degraded"
    assert report["status"] == "degraded"
    assert report["disk"]["path"] == stack.env["SIP_RECORDING_PATH"]
    assert report["disk"]["total_mb"] >= report["disk"]["free_mb"] > 0
    assert report["memory"]["process_rss_mb"] > 10 and report["pid"] > 0


# ----- headers, CORS, request ids -------------------------------------------
API_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
               "Referrer-Policy": "no-referrer"}


@pytest.mark.parametrize("path,headers", [
    ("/api/health", NO_KEY), ("/api/calls/history", NO_KEY), ("/api/calls/history", {}),
    ("/api/nothing-here", {}), (f"/api/calls/{uuid.uuid4()}", {}),
])
def test_every_response_carries_the_security_headers(stack, path, headers):
    resp = stack.get(path, headers=headers)
    for name, value in API_HEADERS.items():
        assert resp.headers[name] == value
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP here
    assert resp.headers["Content-Type"].startswith("application/json")


def test_hsts_behind_an_https_proxy_and_a_csp_the_docs_page_can_live_with(stack):
    resp = stack.get("/api/health", headers={"X-Forwarded-Proto": "https"})
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    docs = stack.get("/api/docs", headers=NO_KEY)
    assert "script-src 'self';" in docs.headers["Content-Security-Policy"]  # no CDN, no inline
    assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]
    assert "cdn.jsdelivr.net" not in stack.get("/api/health").headers["Content-Security-Policy"]


def test_request_ids_are_echoed_when_sane_and_made_up_otherwise(stack):
    assert stack.get("/api/health", headers={"X-Request-ID": "trace-42.a"}).headers[
        "X-Request-ID"] == "trace-42.a"
    made = stack.get("/api/health", headers={"X-Request-ID": "<script>" + "x" * 200}).headers[
        "X-Request-ID"]
    assert len(made) == 32 and made.isalnum()


def test_cors_answers_the_frontend_and_nobody_else(stack):
    frontend = stack.env.get("FRONTEND_URL", "http://localhost:3000")
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type", **NO_KEY}
    ok = stack.http.options(stack.url("/api/calls/start"), timeout=5,
                            headers={"Origin": frontend, **preflight})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == frontend
    assert "authorization" in ok.headers["Access-Control-Allow-Headers"].lower()
    evil = stack.http.options(stack.url("/api/calls/start"), timeout=5,
                              headers={"Origin": "https://evil.example", **preflight})
    assert "Access-Control-Allow-Origin" not in evil.headers
    real = stack.get("/api/calls/history", headers={"Origin": frontend})
    assert real.headers["Access-Control-Allow-Origin"] == frontend
    assert "X-Request-ID" in real.headers["Access-Control-Expose-Headers"]


# ----- bodies -----------------------------------------------------------------
def test_json_routes_refuse_other_content_types_with_415(stack, keys):
    for content_type, body in (("text/plain", "to=1555"),
                               ("application/x-www-form-urlencoded", "to=1555"),
                               ("application/xml", "<to>1555</to>")):
        resp = stack.http.post(stack.url("/api/calls/start"), data=body, timeout=5,
                               headers={"Content-Type": content_type})
        assert resp.status_code == 415, content_type
        assert resp.json()["code"] == 415 and "application/json" in resp.json()["message"]


def test_optional_bodies_may_be_left_out_and_broken_json_is_400(stack, keys):
    call = start_call(stack, keys["admin"])
    ended = stack.http.post(stack.url(f"/api/calls/{call['id']}/end"), timeout=5,
                            headers={"Content-Type": None})
    assert ended.status_code == 200, ended.text
    broken = stack.http.post(stack.url("/api/calls/start"), data='{"to": ', timeout=5)
    assert broken.status_code == 400 and broken.json()["code"] == 400


def test_nul_characters_are_refused_before_they_reach_a_database(stack, keys):
    call = start_call(stack, keys["admin"])
    body = stack.put(f"/api/calls/{call['id']}/update", {"notes": "a\u0000b"})
    assert body.status_code == 400 and "NUL" in body.json()["message"]
    nested = stack.put(f"/api/calls/{call['id']}/update", {"metadata": {"k\u0000": "v"}})
    assert nested.status_code == 400
    query = stack.get("/api/calls/history?campaign_id=x%00y")
    assert query.status_code == 400 and query.json()["code"] == 400
    path = stack.delete("/api/sip/gateways/victim%00")
    assert path.status_code == 404 and path.json()["code"] == 404


def test_too_large_bodies_are_a_json_413(stack):
    huge = json.dumps({"to": "1555", "metadata": {"blob": "x" * (2 * 1024 * 1024)}})
    resp = stack.http.post(stack.url("/api/calls/start"), data=huge, timeout=15)
    assert resp.status_code == 413
    assert resp.json()["code"] == 413 and "bytes" in resp.json()["message"]

    def chunks():  # no Content-Length: the limit must hold while reading
        for _ in range(40):
            yield b'{"to": "1555", "notes": "' + b"y" * 65536
    chunked = stack.http.post(stack.url("/api/calls/start"), data=chunks(), timeout=15)
    assert chunked.status_code == 413 and chunked.json()["code"] == 413


# ----- logs -------------------------------------------------------------------
def access_lines(stack):
    lines = []
    for line in stack.log("web").splitlines():
        if line.startswith("{") and '"event":"request"' in line:
            lines.append(json.loads(line))
    return lines


def test_each_request_is_one_json_log_line_without_secrets(stack, keys):
    marker = f"req-{uuid.uuid4().hex[:8]}"
    stack.get("/api/calls/history?token=SHOULD-NOT-BE-LOGGED",
              headers={**bearer(keys["A1"]), "X-Request-ID": marker})
    line = wait_until(lambda: next((entry for entry in access_lines(stack)
                                    if entry["request_id"] == marker), None), 5,
                      message="the access log line")
    assert line["method"] == "GET" and line["path"] == "/api/calls/history"
    # `token` is no parameter of the route: 422 (unknown_query_parameter), logged all the same
    assert line["status"] == 422 and line["duration_ms"] >= 0
    assert line["role"] == "agent" and line["key_name"].startswith("a1-")
    log = stack.log("web")
    assert keys["A1"] not in log and "SHOULD-NOT-BE-LOGGED" not in log


def test_log_lines_that_mention_credentials_are_redacted():
    import logging

    from services.auth import REDACTING_FILTER, redact
    samples = {
        "Authorization: Bearer cck_abcdefghijklmnop": "cck_abcdefghijklmnop",
        "got key cck_Zx9-_abcdefghijk in body": "cck_Zx9-_abcdefghijk",
        'gateway {"username": "u", "password": "hunter2!"}': "hunter2!",
        "connect?password=s3cr3t&user=x": "s3cr3t",
        '<param name="password" value="p@ss w0rd"/>': "p@ss w0rd",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature_1": "eyJhbGciOiJIUzI1NiJ9",
        "/ws?token=abc.def.ghi&x=1": "abc.def.ghi",
    }
    for text, secret in samples.items():
        assert secret not in redact(text), text
        assert "REDACTED" in redact(text)
    assert redact("call 42 answered after 3 s") == "call 42 answered after 3 s"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "login with password=%s", ("pw1",),
                               None)
    REDACTING_FILTER.filter(record)
    assert record.getMessage() == "login with password=[REDACTED]"
    try:
        raise ValueError("bad gateway config: password=tb-secret-9")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    REDACTING_FILTER.filter(failed)
    assert "tb-secret-9" not in logging.Formatter().format(failed)


def test_unexpected_errors_are_a_json_500_with_the_request_id(local_app, caplog):
    with database_connection():
        admin = create_key("admin", "boom-admin")
    client = local_app.test_client()
    assert client.get("/api/explode", headers=bearer(admin.replace("cck_", "cck_x"))
                      ).status_code == 401  # a route nobody listed is still protected
    resp = client.get("/api/explode", headers={**bearer(admin), "X-Request-ID": "boom-1"})
    assert resp.status_code == 500 and resp.is_json
    assert resp.json["code"] == 500 and "boom-1" in resp.json["message"]
    assert resp.headers["X-Request-ID"] == "boom-1"
    assert "kaboom" not in resp.get_data(as_text=True)
    assert any("boom-1" in r.getMessage() and r.exc_info for r in caplog.records)


def test_unknown_paths_and_methods_answer_in_json(stack):
    missing = stack.get("/api/no/such/thing", headers=NO_KEY)
    assert missing.status_code == 404 and missing.json()["code"] == 404
    wrong = stack.http.patch(stack.url("/api/calls/history"), timeout=5)
    assert wrong.status_code == 405 and wrong.json()["code"] == 405 and "GET" in wrong.headers[
        "Allow"]
