"""SIP gateways through the running stack: configure live, credentials, status, tests, delete.

Real web and events processes, real Redis and database, the ESL simulator as
FreeSWITCH (it reads the gateway files the service writes into its
gateway_dir on `sofia profile external rescan`), and a SIP responder on
loopback for connection tests.
"""
import json
import os
import stat

import gevent
import pytest

from tests.conftest import ChannelRecorder, free_port, wait_until
from tests.integration.sip_responder import SipResponder

SECRET = 'Zq9"<x>&Secret-Pass-4711'  # distinctive, and hostile for XML


@pytest.fixture(scope="module")
def sip_stack(stack_factory, db_url, sim):
    """web + events on this module's database; the simulator starts with no gateway loaded
    (it is shared by the SQLite and PostgreSQL runs of the module)."""
    sim.gateways.clear()
    sim.registration_results.clear()
    for name in os.listdir(sim.gateway_dir):
        os.unlink(os.path.join(sim.gateway_dir, name))
    return stack_factory(db_url, sim)


@pytest.fixture
def sip_channel(redis_server):
    recorder = ChannelRecorder(redis_server.url, ("sip",))
    gevent.sleep(0.1)
    yield recorder
    recorder.close()


@pytest.fixture
def responder():
    peer = SipResponder(code=200).start()
    yield peer
    peer.stop()


def gateway_body(name, **overrides):
    body = {"name": name, "provider": "asterisk", "host": "127.0.0.1", "port": 5090,
            "username": "agent1000", "password": SECRET, "caller_id": "+15551230000"}
    body.update(overrides)
    return body


def read(path, mode="r"):
    with open(path, mode) as fh:
        return fh.read()


def status_when(stack, name, predicate):
    """The gateway's status entry once predicate(entry) holds, else None (for wait_until)."""
    entry = status_of(stack, name)
    return entry if entry and predicate(entry) else None


def commands_since(sim, mark):
    return sim.commands[mark:]


def gateway_file(sim, name):
    return os.path.join(sim.gateway_dir, f"{name}.xml")


def settings_of(stack, name):
    return next((g for g in stack.get("/api/sip/settings").json() if g["name"] == name), None)


def status_of(stack, name):
    body = stack.get("/api/sip/status").json()
    return next((g for g in body["gateways"] if g["name"] == name), None)


def test_providers_cover_five_carriers_and_every_transport(sip_stack):
    response = sip_stack.get("/api/sip/providers")
    assert response.status_code == 200
    presets = {p["id"]: p for p in response.json()}
    assert {"twilio", "ringcentral", "vonage", "asterisk", "freepbx"} <= set(presets)
    assert {t for p in presets.values() for t in p["transports"]} == {"udp", "tcp", "tls", "ws",
                                                                     "wss"}
    twilio = presets["twilio"]
    assert twilio["register"] is False and twilio["port"] == 5060
    assert twilio["host_pattern"].endswith(".pstn.twilio.com") and twilio["note"]
    assert presets["ringcentral"]["register"] is True
    assert all(p["codecs"] and p["note"] and p["transport"] in p["transports"]
               for p in presets.values())


def test_new_gateway_is_written_and_loaded_with_rescan(sip_stack, sim, sip_channel):
    mark = len(sim.commands)
    response = sip_stack.post("/api/sip/configure", gateway_body("pbx-new"))
    assert response.status_code == 201, response.text
    gateway = response.json()
    assert gateway["apply_state"] == "applied" and gateway["password_set"] is True
    assert "password" not in gateway
    sent = commands_since(sim, mark)
    assert "api sofia profile external rescan" in sent
    assert not any("killgw" in c for c in sent)  # new: rescan alone
    assert sim.gateways["pbx-new"].realm == "127.0.0.1:5090"
    assert sim.gateways["pbx-new"].username == "agent1000"
    path = gateway_file(sim, "pbx-new")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    wait_until(lambda: any(m["type"] == "sip.gateway_saved" and m["data"]["name"] == "pbx-new"
                           for m in sip_channel.messages), 5, message="sip.gateway_saved")


def test_changed_gateway_is_killed_then_rescanned(sip_stack, sim):
    assert sip_stack.post("/api/sip/configure", gateway_body("pbx-change")).status_code == 201
    mark = len(sim.commands)
    response = sip_stack.post("/api/sip/configure", {"name": "pbx-change", "port": 5091,
                                                     "codecs": ["PCMA", "G722", "PCMA"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["port"], body["codecs"], body["version"]) == (5091, ["PCMA", "G722"], 2)
    assert body["username"] == "agent1000" and body["password_set"]  # kept
    sent = commands_since(sim, mark)
    kill = sent.index("api sofia profile external killgw pbx-change")
    assert "api sofia profile external rescan" in sent[kill:]
    assert sim.gateways["pbx-change"].realm == "127.0.0.1:5091"


def registrations(channel, name):
    """The sip.trying / sip.registered types published for one gateway, in order."""
    return [m["type"] for m in channel.messages if m["data"].get("name") == name
            and m["type"] in ("sip.trying", "sip.registered")]


def trying_then_registered(types):
    return "sip.trying" in types and "sip.registered" in types[types.index("sip.trying"):]


def test_credentials_change_reregisters_without_restart(sip_stack, sim, sip_channel):
    assert sip_stack.post("/api/sip/configure", gateway_body("pbx-cred")).status_code == 201
    wait_until(lambda: "sip.registered" in registrations(sip_channel, "pbx-cred"), 10,
               message="first registration on the sip channel")
    gevent.sleep(0.3)  # every message of the first registration is in
    mark, before = len(sim.commands), len(registrations(sip_channel, "pbx-cred"))
    response = sip_stack.put("/api/sip/credentials", {"name": "pbx-cred", "username": "agent2000",
                                                      "password": "N3w-Secret-99"})
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "agent2000"
    sent = commands_since(sim, mark)
    assert sent.index("api sofia profile external killgw pbx-cred") < \
        sent.index("api sofia profile external rescan")
    assert sim.gateways["pbx-cred"].username == "agent2000"
    assert "N3w-Secret-99" in read(gateway_file(sim, "pbx-cred"))
    wait_until(lambda: trying_then_registered(registrations(sip_channel, "pbx-cred")[before:]),
               10, message="trying, then registered again")

    mark = len(sim.commands)  # nothing to change: register again now
    assert sip_stack.put("/api/sip/credentials", {"name": "pbx-cred"}).status_code == 200
    assert "api sofia profile external killgw pbx-cred" in commands_since(sim, mark)


def test_registration_failure_and_recovery_reach_status_and_sip_channel(sip_stack, sim,
                                                                         sip_channel):
    sim.registration_results["pbx-fail"] = ("FAILED", 403, "Forbidden")
    assert sip_stack.post("/api/sip/configure", gateway_body("pbx-fail")).status_code == 201
    failed = wait_until(lambda: next((m for m in sip_channel.messages
                                      if m["type"] == "sip.failed"
                                      and m["data"]["name"] == "pbx-fail"), None), 10,
                        message="sip.failed")
    assert failed["data"]["failure_reason"] == "403 Forbidden"
    assert failed["data"]["failure_status_code"] == 403
    status = wait_until(lambda: status_when(sip_stack, "pbx-fail",
                                            lambda s: s["state"] == "FAIL_WAIT"),
                        10, message="FAIL_WAIT in status")
    assert status["registered"] is False and status["loaded"] is True
    assert status["failure_reason"] == "403 Forbidden" and status["last_change"].endswith("Z")
    assert status["status"] == "DOWN"

    sim.emit_gateway_state("pbx-fail", state="REGED", ping_status="UP")
    registered = wait_until(lambda: next((m for m in sip_channel.messages
                                          if m["type"] == "sip.registered"
                                          and m["data"]["name"] == "pbx-fail"), None), 10,
                            message="sip.registered")
    assert registered["data"]["registered"] is True
    status = wait_until(lambda: status_when(sip_stack, "pbx-fail", lambda s: s["registered"]),
                        10, message="registered in status")
    assert status["failure_reason"] is None and status["status"] == "UP"
    body = sip_stack.get("/api/sip/status").json()
    assert body["esl"]["command_connection"] == "connected"
    assert body["esl"]["freeswitch_reachable"] is True


@pytest.mark.parametrize("body, field", [
    ({"name": "../../etc/passwd"}, "name"),
    ({"name": "gw\n"}, "name"),
    ({"name": 'gw"/><x'}, "name"),
    ({"name": "gw.xml"}, "name"),
    ({"host": 'evil.example.com"/><param name="register" value="false'}, "host"),
    ({"host": "sip:host.example.com"}, "host"),
    ({"host": "host.example.com\n"}, "host"),
    ({"port": 0}, "port"),
    ({"port": 65536}, "port"),
    ({"transport": "sctp"}, "transport"),
    ({"password": "line\nbreak"}, "password"),
    ({"password": "nul\u0000byte"}, "password"),
    ({"password": "$${switch_serial}"}, "password"),
    ({"username": "<script>"}, "username"),
    ({"codecs": ["PCMU", "NOPE"]}, "codecs"),
    ({"codecs": ["pcmu"]}, "codecs"),
    ({"password": "\ud800"}, "password"),
    ({"host": "[::1]"}, "host"),
    ({"expiry": 10}, "expiry"),
    ({"outbound_proxy": "proxy.example.com:5060;lr"}, "outbound_proxy"),
    ({"provider": "skype"}, "provider"),
    ({"provider": "twilio", "transport": "ws"}, "transport"),
    ({"register": True, "username": None}, "username"),
    ({"unexpected": "field"}, "unexpected"),
    ({"enabled": 1}, "enabled"),
    ({"register": "yes"}, "register"),
    ({"codecs": ["PCMU"] * 14}, "codecs"),
])
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(sip_stack, sim, body, field):
    before = sorted(os.listdir(sim.gateway_dir))
    response = sip_stack.post("/api/sip/configure", {**gateway_body("bad-input"), **body})
    if "\\u0000" in json.dumps(body):
        # The API refuses NUL in any body before the schema sees it.
        assert response.status_code == 400, response.text
    else:
        assert response.status_code == 422, response.text
        assert field in response.json()["errors"]["json"]
    assert sorted(os.listdir(sim.gateway_dir)) == before
    assert not os.path.exists(os.path.join(os.path.dirname(sim.gateway_dir), "etc"))
    assert settings_of(sip_stack, "bad-input") is None


def test_hostile_password_is_stored_and_sent_exactly(sip_stack, sim):
    password = '"/><param name="register" value="false"/><!--'
    response = sip_stack.post("/api/sip/configure", gateway_body("pbx-hostile", password=password))
    assert response.status_code == 201, response.text
    from freeswitch.esl.gateway_xml import parse_gateway_xml
    name, params, _ = parse_gateway_xml(read(gateway_file(sim, "pbx-hostile")))
    assert (name, params["password"], params["register"]) == ("pbx-hostile", password, "true")
    assert sim.gateways["pbx-hostile"].register is True


def test_connection_test_sends_a_real_options_and_asks_freeswitch(sip_stack, responder):
    body = {"host": "127.0.0.1", "port": responder.port, "transport": "udp", "timeout": 2}
    response = sip_stack.post("/api/sip/test", body)
    assert response.status_code == 200, response.text
    result = response.json()
    steps = {s["step"]: s for s in result["steps"]}
    assert result["ok"] is True
    assert steps["dns"]["status"] == "ok"
    assert steps["sip_options"]["status_code"] == 200 and steps["sip_options"]["rtt_ms"] > 0
    assert steps["freeswitch"]["status"] == "skipped"  # not a saved gateway
    assert responder.requests and responder.requests[0].startswith(b"OPTIONS sip:127.0.0.1:")

    saved = gateway_body("pbx-tested", port=responder.port)
    assert sip_stack.post("/api/sip/configure", saved).status_code == 201
    wait_until(lambda: (status_of(sip_stack, "pbx-tested") or {}).get("state") == "REGED", 10,
               message="pbx-tested registered")
    result = sip_stack.post("/api/sip/test", {"name": "pbx-tested"}).json()
    steps = {s["step"]: s for s in result["steps"]}
    assert steps["sip_options"]["ok"] is True
    assert steps["freeswitch"]["ok"] is True and steps["freeswitch"]["state"] == "REGED"
    assert result["gateway"] == "pbx-tested" and result["ok"] is True


def test_connection_test_against_nothing_listening_fails_cleanly_in_time(sip_stack):
    body = {"host": "127.0.0.1", "port": free_port(), "transport": "udp", "timeout": 1}
    response = sip_stack.post("/api/sip/test", body)
    assert response.status_code == 200
    result = response.json()
    options = next(s for s in result["steps"] if s["step"] == "sip_options")
    assert result["ok"] is False and options["status"] == "failed" and options["detail"]
    assert options["time_ms"] < 1500 and result["time_ms"] < 3000

    tcp = sip_stack.post("/api/sip/test", {**body, "transport": "tcp"}).json()
    steps = {s["step"]: s for s in tcp["steps"]}
    assert steps["tcp_connect"]["status"] == "failed"
    assert steps["sip_options"]["status"] == "skipped"
    unknown = sip_stack.post("/api/sip/test", {"name": "no-such-gateway"})
    assert unknown.status_code == 404


def test_delete_removes_the_gateway_from_freeswitch(sip_stack, sim, sip_channel):
    assert sip_stack.post("/api/sip/configure", gateway_body("pbx-gone")).status_code == 201
    assert "pbx-gone" in sim.gateways
    mark = len(sim.commands)
    response = sip_stack.delete("/api/sip/gateways/pbx-gone")
    assert response.status_code == 204
    assert "api sofia profile external killgw pbx-gone" in commands_since(sim, mark)
    assert "pbx-gone" not in sim.gateways
    assert not os.path.exists(gateway_file(sim, "pbx-gone"))
    assert settings_of(sip_stack, "pbx-gone") is None
    assert sip_stack.get("/api/sip/gateways/pbx-gone").status_code == 404
    assert sip_stack.delete("/api/sip/gateways/pbx-gone").status_code == 404
    wait_until(lambda: any(m["type"] == "sip.gateway_deleted" for m in sip_channel.messages), 15,
               message="sip.gateway_deleted")


def test_freeswitch_down_keeps_the_gateway_and_applies_it_when_back(sip_stack, sim):
    sim.stop()
    try:
        response = sip_stack.post("/api/sip/configure", gateway_body("pbx-later"))
        assert response.status_code == 202, response.text
        assert response.json()["apply_state"] == "pending"
        assert "when FreeSWITCH answers again" in response.json()["apply_detail"]
        assert os.path.exists(gateway_file(sim, "pbx-later"))  # FreeSWITCH loads it at start
        status = sip_stack.get("/api/sip/status")
        assert status.status_code == 200
        assert status.json()["esl"]["freeswitch_reachable"] is False
        deleted = sip_stack.delete("/api/sip/gateways/pbx-change")
        assert deleted.status_code == 202
    finally:
        sim.start()
    wait_until(lambda: (settings_of(sip_stack, "pbx-later") or {}).get("apply_state") == "applied",
               20, message="the pending gateway applied by the events process")
    assert "pbx-later" in sim.gateways
    wait_until(lambda: "pbx-change" not in sim.gateways, 20,
               message="the pending deletion applied by the events process")


def test_password_never_leaves_in_clear(sip_stack, sim, sip_channel, db_url):
    response = sip_stack.post("/api/sip/configure", gateway_body("pbx-secret"))
    assert response.status_code in (200, 201)
    replies = [response.text, sip_stack.get("/api/sip/settings").text,
               sip_stack.get("/api/sip/gateways/pbx-secret").text,
               sip_stack.get("/api/sip/status").text,
               sip_stack.post("/api/sip/test", {"name": "pbx-secret", "timeout": 0.5}).text,
               sip_stack.put("/api/sip/credentials", {"name": "pbx-secret",
                                                      "password": SECRET}).text,
               sip_stack.post("/api/sip/configure", {"name": "pbx-secret",
                                                     "port": 99999,
                                                     "password": SECRET}).text]
    for text in replies:
        assert SECRET not in text and "Secret-Pass-4711" not in text
    wait_until(lambda: any(m["data"].get("name") == "pbx-secret" for m in sip_channel.messages),
               5, message="sip messages of pbx-secret")
    assert "Secret-Pass-4711" not in json.dumps(sip_channel.messages)
    for log in ("web", "events"):
        assert "Secret-Pass-4711" not in sip_stack.log(log)
    assert "Secret-Pass-4711" in read(gateway_file(sim, "pbx-secret"))  # FreeSWITCH's copy
    assert_not_in_database(db_url, "Secret-Pass-4711")


def assert_not_in_database(db_url, needle):
    """Read the stored rows raw: the SQLite files' bytes, or every text column in PostgreSQL."""
    if db_url.startswith("sqlite"):
        path = db_url.split("///", 1)[1]
        blobs = [read(p, "rb") for p in (path, path + "-wal") if os.path.exists(p)]
        assert blobs and not any(needle.encode() in blob for blob in blobs)
        import sqlite3
        with sqlite3.connect(path) as conn:
            stored = conn.execute("SELECT password_encrypted FROM sip_gateway WHERE name = ?",
                                  ("pbx-secret",)).fetchone()[0]
    else:
        import psycopg2
        with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT row_to_json(g)::text FROM sip_gateway g")
            assert not any(needle in row[0] for row in cur.fetchall())
            cur.execute("SELECT password_encrypted FROM sip_gateway WHERE name = %s",
                        ("pbx-secret",))
            stored = cur.fetchone()[0]
    assert stored.startswith("gAAAA")  # a Fernet token, not the password


def test_unknown_profile_is_reported_as_freeswitch_refusal(stack_factory, db_url, sim):
    other = stack_factory(db_url, sim, events=False, FREESWITCH_PROFILE="no_such_profile")
    response = other.post("/api/sip/configure", gateway_body("pbx-noprofile"))
    assert response.status_code == 502, response.text
    assert "Invalid Profile [no_such_profile]" in response.json()["message"]
    saved = settings_of(other, "pbx-noprofile")
    assert saved["apply_state"] == "failed"
    assert "Invalid Profile [no_such_profile]" in saved["apply_detail"]


def test_hostile_names_in_the_url_touch_no_file(sip_stack, sim):
    victim = os.path.join(os.path.dirname(sim.gateway_dir), "victim.xml")
    with open(victim, "w") as fh:
        fh.write("<include/>")
    for name in ("..%2Fvictim", "..", "%2e%2e%2fvictim", "victim%00", "victim.xml", "%0a"):
        assert sip_stack.delete(f"/api/sip/gateways/{name}").status_code == 404
        assert sip_stack.get(f"/api/sip/gateways/{name}").status_code == 404
    assert os.path.exists(victim)
