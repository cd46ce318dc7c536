"""What the browser pages need from the API, over real HTTP against a running web process:
token renewal, signed recording URLs an <audio> element can play and seek, the /ws Origin
check, the offline API docs, and statistics for agents.
"""
import datetime
import hashlib
import json
import os
import re
import time
import urllib.parse

import pytest
import requests
import websocket

from services.auth import ApiKeyService, TokenService, create_key
from services.calls.notifier import CallNotifier
from services.publisher import Publisher
from services.quality.service import QualityService
from services.recordings.audio import transcode
from services.recordings.signing import RecordingUrlSigner
from services.recordings.storage import RecordingStorage
from tests.esl_sim.server import write_wav

FRONTEND = "http://console.example:8080"
NO_KEY = {"Authorization": None}


def bearer(credential):
    return {"Authorization": f"Bearer {credential}"}


def forget_rate_limits(redis_server):
    """The anonymous budget of 127.0.0.1 lives in the shared Redis: start and leave clean."""
    client = redis_server.client()
    for key in client.scan_iter("*ratelimit*"):
        client.delete(key)


@pytest.fixture(scope="module")
def web(stack_factory, db_url, tmp_path_factory, redis_server):
    root = str(tmp_path_factory.mktemp("recordings"))
    stack = stack_factory(db_url, None, events=False, SIP_RECORDING_PATH=root,
                          FRONTEND_URL=FRONTEND, TOKEN_TTL=120, RATELIMIT_ENABLED="true",
                          RATELIMIT_ANONYMOUS="30 per 15 minutes")
    forget_rate_limits(redis_server)
    yield stack
    stack.stop()
    forget_rate_limits(redis_server)


@pytest.fixture(scope="module")
def keys(web):
    url = web.env["DATABASE_URL"]
    return {agent: create_key("agent", f"console-{agent}-{os.getpid()}", agent, database_url=url)
            for agent in ("A1", "A2")}


def make_recording(root, agent_id):
    """A ready mp3 + wav recording of a completed call of agent_id, on disk and in the db."""
    from models import Call
    from models.recording import Recording
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    call = Call.create(status="completed", agent_id=agent_id, to_number="15550001111",
                       answered_at=now - datetime.timedelta(seconds=5), ended_at=now)
    source = RecordingStorage.source_relpath(call.id, datetime.datetime(2024, 5, 1))
    write_wav(os.path.join(root, source), 2.0)
    files = {}
    for fmt in ("mp3", "wav"):
        relpath = source[:-4] + "." + fmt
        if fmt != "wav":
            transcode(os.path.join(root, source), os.path.join(root, relpath), fmt)
        with open(os.path.join(root, relpath), "rb") as fh:
            data = fh.read()
        files[fmt] = {"path": relpath, "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest(), "bytes": data}
    recording = Recording.create(
        call=call.id, status="ready", format="mp3", source_path=source,
        files={f: {k: v for k, v in e.items() if k != "bytes"} for f, e in files.items()},
        size=files["mp3"]["size"], sha256=files["mp3"]["sha256"], duration=2.0)
    return {"call_id": str(call.id), "recording_id": str(recording.id),
            "mp3": files["mp3"]["bytes"], "wav": files["wav"]["bytes"]}


@pytest.fixture(scope="module")
def recordings(web, bound_db, redis_server):
    root = web.env["SIP_RECORDING_PATH"]
    made = {agent: make_recording(root, agent) for agent in ("A1", "A2")}
    quality = QualityService(CallNotifier(Publisher(redis_server.client())), {})
    for rec in made.values():
        quality.summarize(rec["call_id"])  # what the worker does after a call: statistics
    return made


def signed_url(web, call_id, fmt=None, headers=None):
    query = f"?format={fmt}" if fmt else ""
    resp = web.get(f"/api/calls/{call_id}/recording/url{query}", headers=headers or {})
    assert resp.status_code == 200, resp.text
    return resp.json()


def anonymous(web, path, **headers):
    return requests.get(web.url(path), headers=headers, timeout=10)


def assert_error(resp, status, error_id):
    assert resp.status_code == status, resp.text
    assert resp.json()["error_id"] == error_id


# ----- token refresh -------------------------------------------------------------
def token_for(web, key):
    resp = web.post("/api/auth/token", headers=bearer(key))
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_a_token_renews_into_a_new_usable_token(web, keys):
    first = token_for(web, keys["A1"])
    assert first["expires_in"] == 120  # TOKEN_TTL
    resp = web.post("/api/auth/token/refresh", headers=bearer(first["token"]))
    assert resp.status_code == 201, resp.text
    renewed = resp.json()
    assert set(renewed) == set(first) and renewed["token"] != first["token"]
    assert (renewed["role"], renewed["agent_id"], renewed["expires_in"]) == ("agent", "A1", 120)
    assert renewed["expires_at"] >= first["expires_at"]
    me = web.get("/api/auth/me", headers=bearer(renewed["token"]))
    assert me.status_code == 200 and me.json()["via"] == "token"
    assert me.json()["agent_id"] == "A1"
    # the renewed token renews again, and a key works as well (like POST /api/auth/token)
    again = web.post("/api/auth/token/refresh", headers=bearer(renewed["token"]))
    assert again.status_code == 201
    assert web.post("/api/auth/token/refresh", headers=bearer(keys["A1"])).status_code == 201


def test_revoking_the_key_stops_renewal_at_once(web, bound_db):
    key = create_key("supervisor", f"console-revoked-{os.getpid()}",
                     database_url=web.env["DATABASE_URL"])
    token = token_for(web, key)["token"]
    renewed = web.post("/api/auth/token/refresh", headers=bearer(token)).json()["token"]
    ApiKeyService().revoke(f"console-revoked-{os.getpid()}")
    for credential in (token, renewed):
        resp = web.post("/api/auth/token/refresh", headers=bearer(credential))
        assert_error(resp, 401, "invalid_credentials")
        assert web.get("/api/auth/me", headers=bearer(credential)).status_code == 401


def test_an_expired_token_cannot_be_renewed(web, keys, bound_db):
    principal = ApiKeyService().authenticate(keys["A1"])
    expired = TokenService(web.env["SECRET_KEY"], ttl=-5).issue(principal)["token"]
    assert_error(web.post("/api/auth/token/refresh", headers=bearer(expired)), 401,
                 "invalid_credentials")
    forged = TokenService("another-secret", ttl=60).issue(principal)["token"]
    assert_error(web.post("/api/auth/token/refresh", headers=bearer(forged)), 401,
                 "invalid_credentials")


# ----- signed recording URLs -----------------------------------------------------
def test_a_signed_url_plays_and_seeks_without_credentials(web, recordings):
    rec = recordings["A1"]
    issued = signed_url(web, rec["call_id"], "mp3")
    assert issued["url"].startswith("/api/recordings/signed/") and issued["format"] == "mp3"
    expires = datetime.datetime.fromisoformat(issued["expires_at"].replace("Z", "+00:00"))
    left = (expires - datetime.datetime.now(datetime.UTC)).total_seconds()
    assert 240 < left <= 301 and issued["expires_in"] == 300
    whole = anonymous(web, issued["url"])
    assert whole.status_code == 200 and whole.content == rec["mp3"]
    assert whole.headers["Content-Type"] == "audio/mpeg"
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = anonymous(web, issued["url"], Range="bytes=100-299")
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-299/{len(rec['mp3'])}"
    assert part.content == rec["mp3"][100:300]
    tail = anonymous(web, issued["url"], Range="bytes=-50")
    assert tail.status_code == 206 and tail.content == rec["mp3"][-50:]
    # the token is a credential: the access log shows the path without it
    token = issued["url"].rpartition("/")[2]
    log = web.log("web")
    assert "/api/recordings/signed/[REDACTED]" in log and token not in log


def test_a_signed_url_is_for_its_own_format_only(web, recordings):
    rec = recordings["A1"]
    wav = signed_url(web, rec["call_id"], "wav")
    resp = anonymous(web, wav["url"])
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "audio/wav"
    assert resp.content == rec["wav"]
    mp3 = signed_url(web, rec["call_id"])  # the recording's own format by default
    assert mp3["format"] == "mp3"
    assert_error(anonymous(web, mp3["url"] + "?format=wav"), 403, "recording_url_invalid")
    assert anonymous(web, mp3["url"] + "?format=mp3").status_code == 200
    # a format the recording is not stored in: no URL at all
    resp = web.get(f"/api/calls/{rec['call_id']}/recording/url?format=ogg")
    assert_error(resp, 404, "recording_format_not_stored")


def test_an_altered_signed_url_is_refused(web, recordings):
    mine = signed_url(web, recordings["A1"]["call_id"], "mp3")["url"]
    theirs = signed_url(web, recordings["A2"]["call_id"], "mp3")["url"]
    payload, _, signature = mine.rpartition(".")
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    assert_error(anonymous(web, f"{payload}.{flipped}"), 403, "recording_url_invalid")
    # another recording's claims under this URL's signature
    other_payload = theirs.rpartition("/")[2].rpartition(".")[0]
    swapped = "/api/recordings/signed/" + other_payload + "." + signature
    assert_error(anonymous(web, swapped), 403, "recording_url_invalid")
    assert_error(anonymous(web, "/api/recordings/signed/not-a-token"), 403,
                 "recording_url_invalid")
    # the same claims signed with another secret
    rec = recordings["A1"]
    token, _ = RecordingUrlSigner("another-secret").sign(rec["call_id"], rec["recording_id"],
                                                         "mp3")
    assert_error(anonymous(web, "/api/recordings/signed/" + token), 403, "recording_url_invalid")


def test_an_expired_signed_url_answers_403(web, recordings):
    rec = recordings["A1"]
    past = RecordingUrlSigner(web.env["SECRET_KEY"], ttl=300, clock=lambda: time.time() - 301)
    token, expires_at = past.sign(rec["call_id"], rec["recording_id"], "mp3")
    assert expires_at < datetime.datetime.now(datetime.UTC)
    resp = anonymous(web, "/api/recordings/signed/" + token, Range="bytes=0-9")
    assert_error(resp, 403, "recording_url_expired")
    assert "new one" in resp.json()["message"]


def test_a_signed_url_dies_with_its_recording(web, bound_db):
    rec = make_recording(web.env["SIP_RECORDING_PATH"], "A3")
    url = signed_url(web, rec["call_id"], "mp3")["url"]
    assert anonymous(web, url).status_code == 200
    assert web.delete(f"/api/calls/{rec['call_id']}/recording").status_code == 204
    assert_error(anonymous(web, url), 404, "recording_not_found")


def test_agents_get_urls_for_their_own_calls_only(web, keys, recordings):
    own = signed_url(web, recordings["A1"]["call_id"], headers=bearer(keys["A1"]))
    assert anonymous(web, own["url"]).content == recordings["A1"]["mp3"]
    foreign = recordings["A2"]["call_id"]
    resp = web.get(f"/api/calls/{foreign}/recording/url", headers=bearer(keys["A1"]))
    assert_error(resp, 404, "call_not_found")
    assert web.get(f"/api/calls/{foreign}/recording/url", headers=NO_KEY).status_code == 401


# ----- /ws Origin ------------------------------------------------------------------
def ws_url(web, query=""):
    return f"ws://127.0.0.1:{web.port}/ws" + (f"?{query}" if query else "")


def welcomed(web, key, **options):
    ws = websocket.create_connection(ws_url(web, f"api_key={key}"), timeout=5, **options)
    try:
        return json.loads(ws.recv())["type"] == "welcome"
    finally:
        ws.close()


def test_ws_refuses_a_page_of_another_origin_even_with_a_valid_key(web, keys):
    for origin in ("http://evil.example", "http://127.0.0.1:1", "null",
                   FRONTEND.replace("8080", "8081"), "https://console.example:8080"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(ws_url(web, f"api_key={keys['A1']}"), timeout=5,
                                        origin=origin)
        assert refused.value.status_code == 403, origin
        assert b"origin_not_allowed" in (refused.value.resp_body or b"")


def test_ws_accepts_its_own_origin_the_frontend_and_non_browsers(web, keys):
    assert welcomed(web, keys["A1"])  # websocket-client sends its own origin by default
    assert welcomed(web, keys["A1"], origin=f"http://127.0.0.1:{web.port}")
    assert welcomed(web, keys["A1"], origin=FRONTEND)
    assert welcomed(web, keys["A1"], origin=FRONTEND + "/")
    assert welcomed(web, keys["A1"], suppress_origin=True)


# ----- statistics for agents -------------------------------------------------------
def test_agents_get_statistics_of_their_own_calls(web, keys, recordings):
    today = datetime.date.today().isoformat()
    query = f"/api/calls/statistics?date_from={today}&date_to={today}&group_by=agent"
    everyone = web.get(query)
    assert everyone.status_code == 200
    assert {g["agent_id"] for g in everyone.json()["groups"]} >= {"A1", "A2"}
    for url in (query, query + "&agent_id=A2"):
        mine = web.get(url, headers=bearer(keys["A1"]))
        assert mine.status_code == 200, mine.text
        assert [g["agent_id"] for g in mine.json()["groups"]] == ["A1"]
    assert web.get("/api/calls/quality", headers=bearer(keys["A1"])).status_code == 403


# ----- offline API docs (last: it uses up the anonymous rate limit) -------------------
def test_the_docs_page_loads_only_same_origin_files_under_a_strict_csp(web):
    page = anonymous(web, "/api/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "http" not in csp and "*" not in csp
    html = page.text
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, "inline script"
    urls = re.findall(r'(?:src|href|data-spec-url)="([^"]+)"', html)
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert scripts and len(urls) >= 4
    for url in urls:
        parsed = urllib.parse.urlsplit(url)
        assert not parsed.scheme and not parsed.netloc and url.startswith("/"), url
        resp = anonymous(web, url)
        assert resp.status_code == 200, url
        if url in scripts:
            assert "javascript" in resp.headers["Content-Type"], url
    assert "/api/openapi.json" in urls
    initializer = anonymous(web, next(u for u in scripts if "initializer" in u)).text
    assert "validatorUrl: null" in initializer and "http" not in initializer
    assert anonymous(web, "/api/docs/index.html").status_code == 404  # only listed files


def test_docs_and_the_spec_are_not_rate_limited_but_the_api_is(web):
    """RATELIMIT_ANONYMOUS is 30 per 15 minutes here: the docs take far more, unhindered."""
    for _ in range(35):
        for path in ("/api/docs", "/api/openapi.json", "/api/docs/swagger-ui-bundle.js"):
            resp = requests.head(web.url(path), timeout=10)
            assert resp.status_code == 200, (path, resp.status_code)
    statuses = [anonymous(web, "/api/calls/history").status_code for _ in range(35)]
    assert 429 in statuses and set(statuses) <= {401, 429}
    assert anonymous(web, "/api/docs").status_code == 200
