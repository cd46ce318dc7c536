"""The ESL simulator answers exactly as the captured FreeSWITCH transcripts (tests/fixtures/esl).

Static replies are compared byte for byte by replaying the client side of a transcript; events are
compared by framing, Content-Length and header NAMES in wire order against the real event of the
same name (values such as uuids and times differ by nature). Every call scenario is then run end
to end with a raw socket and with greenswitch's InboundESL.
"""
import itertools
import json
import os
import re
import socket
import struct
import time
import uuid as uuidlib
import wave

import gevent
import pytest
from greenswitch.esl import InboundESL

from tests.esl_sim import ESLSimulator, Gateway
from tests.esl_sim import templates as T
from tests.esl_sim import transcripts as tr

FAST = 3.0   # scenario speed factor for the end-to-end tests
EVENT_TYPES = ("text/event-plain", "text/event-json", "text/event-xml")


# ============================================================================ helpers
class RawClient:
    """A bare ESL client: sends bytes, returns parsed messages; events are kept apart."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.pending = []        # messages read but not consumed yet
        self.events = []         # (Message, Event) of every event seen by command()/wait_event()
        self.last_message = None  # raw message of the last event wait_event() returned

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(262144)
        except TimeoutError:
            return False
        if not data:
            raise EOFError
        self.buf += data
        messages, self.buf = tr.split_messages(self.buf)
        self.pending.extend(messages)
        return True

    def next_message(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.pending:
            if time.monotonic() > deadline:
                raise TimeoutError("no message")
            self._fill(deadline)
        return self.pending.pop(0)

    def expect_eof(self, timeout=2.0, skip_messages=False):
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.pending and skip_messages:
                    self.pending.clear()
                if self.pending:
                    raise AssertionError(f"unexpected message before EOF: {self.pending[0].raw[:80]!r}")
                self._fill(deadline)
        except (EOFError, ConnectionResetError):
            return True
        return False

    def is_open(self, wait=0.2):
        try:
            self.sock.settimeout(wait)
            data = self.sock.recv(1, socket.MSG_PEEK)
            return bool(data)
        except TimeoutError:
            return True
        except OSError:
            return False

    def send(self, text):
        data = text.encode() if isinstance(text, str) else text
        if not data.endswith(b"\n\n"):
            data += b"\n\n"
        self.sock.sendall(data)

    def command(self, text, timeout=None):
        """Send a command and return its reply; events that arrive meanwhile go to self.events."""
        self.send(text)
        while True:
            msg = self.next_message(timeout)
            if msg.content_type in EVENT_TYPES:
                self.events.append((msg, tr.decode_event(msg)))
                continue
            return msg

    def api(self, text, timeout=None):
        return self.command("api " + text, timeout).body.decode()

    def auth(self, password="ClueCon"):
        assert self.next_message().raw == T.AUTH_REQUEST
        reply = self.command(f"auth {password}")
        assert reply.get("Reply-Text") == "+OK accepted"
        return self

    def wait_event(self, predicate, timeout=5.0):
        """Next event satisfying predicate(event) (earlier unconsumed events included)."""
        for i, (msg, ev) in enumerate(self.events):
            if predicate(ev):
                return self._consumed(*self.events.pop(i))
        deadline = time.monotonic() + timeout
        while True:
            msg = self.next_message(max(0.01, deadline - time.monotonic()))
            if msg.content_type not in EVENT_TYPES:
                raise AssertionError(f"unexpected reply while waiting for an event: {msg.raw[:120]!r}")
            ev = tr.decode_event(msg)
            if predicate(ev):
                return self._consumed(msg, ev)
            self.events.append((msg, ev))

    def _consumed(self, msg, ev):
        self.last_message = msg
        return ev

    def drain(self, quiet=0.15):
        """Read events until nothing arrives for `quiet` seconds; returns [(Message, Event)]."""
        while True:
            try:
                msg = self.next_message(quiet)
            except TimeoutError:
                break
            self.events.append((msg, tr.decode_event(msg)))
        out, self.events = self.events, []
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def named(name, **values):
    return lambda ev: ev.name == name and all(ev.get(k) == v for k, v in values.items())


def normalize_numbers(text):
    # FreeSWITCH writes "1 second" but "2 seconds": the plural goes with the number.
    text = re.sub(r"\b1 (year|day|hour|minute|second|millisecond|microsecond)s?\b", r"N \1s", text)
    return re.sub(r"\d+(\.\d+)?", "N", text)


def assert_event_shape(actual_msg, expected_msg):
    """Same framing, right Content-Length, same header names in the same order."""
    assert actual_msg.header_names == ["Content-Length", "Content-Type"]
    assert actual_msg.content_type == expected_msg.content_type
    assert int(actual_msg.get("Content-Length")) == len(actual_msg.body)
    actual, expected = tr.decode_event(actual_msg), tr.decode_event(expected_msg)
    assert actual.header_names == expected.header_names, (
        f"{actual.name}: names differ\n+{set(actual.header_names) - set(expected.header_names)}"
        f"\n-{set(expected.header_names) - set(actual.header_names)}")
    if actual_msg.content_type == "text/event-plain" and actual.body is None:
        assert actual_msg.body.endswith(b"\n\n")
    return actual


def transcript_events(name, keep=lambda ev: True):
    out = []
    for raw in tr.server_messages(tr.load_raw(name)):
        msg = tr.parse_message(raw)
        if msg.content_type in EVENT_TYPES:
            ev = tr.decode_event(msg)
            if keep(ev):
                out.append((msg, ev))
    return out


def replay_exact(port, name):
    """Replay the client side of a transcript; every FreeSWITCH message must match byte for byte."""
    records = tr.load_raw(name)
    client = RawClient(port)
    try:
        for rec in records:
            if rec.direction == tr.CLIENT:
                client.send(rec.data)
            elif rec.data is None:
                assert client.expect_eof(), f"{name}: FreeSWITCH closed the socket, the simulator did not"
                return client
            else:
                got = client.next_message()
                assert got.raw == rec.data, f"{name}:\n got {got.raw!r}\nwant {rec.data!r}"
        return client
    except BaseException:
        client.close()
        raise


# ============================================================================ fixtures
@pytest.fixture(scope="module")
def esl(tmp_path_factory):
    root = tmp_path_factory.mktemp("esl_sim")
    sim = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon", recordings_root=str(root / "rec"),
                       speed=FAST)
    sim.gateway_dir = str(root / "gateways")
    os.makedirs(sim.gateway_dir)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def fresh_sim(tmp_path):
    """A private simulator (for tests that shut it down or need captured gateways)."""
    sim = ESLSimulator(port=0, recordings_root=str(tmp_path / "rec"), speed=FAST)
    sim.gateway_dir = str(tmp_path / "gateways")
    os.makedirs(sim.gateway_dir)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def client(esl):
    c = RawClient(esl.port).auth()
    yield c
    c.close()


def gs_connect(port, password="ClueCon"):
    with gevent.Timeout(5):
        esl_client = InboundESL(host="127.0.0.1", port=port, password=password)
        esl_client.connect()
    return esl_client


def gs_api(conn, command, timeout=5):
    with gevent.Timeout(timeout):
        return conn.send("api " + command).data


def gs_close(conn):
    """greenswitch's stop() sends exit and joins its greenlets; a dead socket makes that raise."""
    try:
        with gevent.Timeout(2):
            conn.stop()
    except (OSError, gevent.Timeout) as exc:
        print(f"greenswitch stop: {exc!r}")


# ============================================================================ byte-exact replies
STATIC_TRANSCRIPTS = [
    "01_auth_ok_and_exit", "01_auth_wrong_password", "01_command_before_auth",
    "02_api_global_getvar_switch_serial", "02_api_hostname", "02_api_reloadxml",
    "02_api_show_calls_as_json_idle", "02_api_show_channels_as_json_idle", "02_api_show_channels_idle_plain",
    "02_api_sofia_profile_external_rescan", "02_api_sofia_profile_unknown_rescan",
    "02_api_sofia_status_gateway_unknown", "02_api_sofia_status_profile_external",
    "02_api_sofia_xmlstatus_gateway_unknown", "02_api_unknown_command", "02_api_uuid_dump_nonexistent",
    "02_api_uuid_kill_nonexistent", "02_api_version", "02_event_subscription_replies",
    "02_unknown_esl_command",
]
CAPTURED_GATEWAY_TRANSCRIPTS = [
    "02_api_sofia_status", "02_api_sofia_status_gateway_reg_fail_gw", "02_api_sofia_status_gateway_uas_gw",
    "02_api_sofia_xmlstatus", "02_api_sofia_xmlstatus_gateway_reg_fail_gw",
    "02_api_sofia_xmlstatus_gateway_uas_gw",
]


@pytest.mark.parametrize("name", STATIC_TRANSCRIPTS)
def test_static_transcript_replays_byte_exact(esl, name):
    assert not esl.channels
    client = replay_exact(esl.port, name)
    if name == "01_command_before_auth":
        assert client.is_open(), "FreeSWITCH keeps the socket open after a command before auth"
    client.close()


def test_sofia_status_with_captured_gateways_byte_exact(fresh_sim):
    fresh_sim.load_transcript_gateways()
    for name in CAPTURED_GATEWAY_TRANSCRIPTS:
        replay_exact(fresh_sim.port, name).close()


def test_sofia_status_gateway_table_and_status_match_except_numbers(fresh_sim):
    fresh_sim.load_transcript_gateways()
    for name, command in [("02_api_sofia_status_gateway_all", "sofia status gateway"), ("02_api_status", "status")]:
        want = T.api_body(name, "api " + command)
        c = RawClient(fresh_sim.port).auth()
        got = c.api(command)
        c.close()
        assert normalize_numbers(got) == normalize_numbers(want)


def test_disconnect_notice_and_eof_after_exit_and_wrong_password(esl):
    c = RawClient(esl.port).auth()
    assert c.command("exit").raw == b"Content-Type: command/reply\nReply-Text: +OK bye\n\n"
    notice = c.next_message()
    assert notice.raw == (b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\n"
                          b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n")
    assert c.expect_eof()
    c = RawClient(esl.port)
    c.next_message()
    assert c.command("auth nope").get("Reply-Text") == "-ERR invalid"
    assert c.next_message().content_type == "text/disconnect-notice"
    assert c.expect_eof()


def captured_reply(name, command):
    """Raw bytes of the first non-event message FreeSWITCH sent after the client sent `command`."""
    waiting = False
    for rec in tr.load_raw(name):
        if rec.direction == tr.CLIENT:
            waiting = rec.data.decode().startswith(command)
        elif waiting and rec.data is not None and not rec.data.startswith(b"Content-Length"):
            return rec.data
    raise LookupError(command)


def test_bgapi_replies_and_background_job_events_match_transcript(client):
    name = "02_bgapi_status_with_background_job"
    expected = {e.get("Job-Command"): m for m, e in transcript_events(name)}
    assert client.command("event plain BACKGROUND_JOB").get("Reply-Text") == "+OK event listener enabled plain"
    mine = "564c3b32-cb63-45fb-971b-462dbb3b12af"
    for command in ("bgapi status", f"bgapi version\nJob-UUID: {mine}", "bgapi no_such_command"):
        reply = client.command(command)
        job = reply.get("Job-UUID")
        assert reply.raw == f"Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job}\nJob-UUID: {job}\n\n".encode()
        if "Job-UUID" in command:
            assert job == mine and reply.raw == captured_reply(name, "bgapi version")
        client.wait_event(named("BACKGROUND_JOB", **{"Job-UUID": job}))
        got_msg = client.last_message
        want_msg = expected[command.split()[1]]
        got = assert_event_shape(got_msg, want_msg)
        want = tr.decode_event(want_msg)
        if got.get("Job-Command") == "status":
            assert normalize_numbers(got.body) == normalize_numbers(want.body)
        else:
            assert got.body == want.body     # version string / "-ERR no_such_command Command not found!"


# ============================================================================ call transcripts
def _replay_call(sim, name, rewrite=lambda text: text, record_pause=0.2):
    """Replay a call transcript's commands; returns (client, [(command, reply)], channel uuid, events)."""
    records = tr.load_raw(name)
    commands = [d.decode().rstrip("\n") for d in tr.client_messages(records)]
    captured = T.call_templates(name.replace(".raw", ""))[1]
    client = RawClient(sim.port)
    client.next_message()
    replies, uuid, finished = [], None, set()
    for text in commands:
        if uuid and captured is not None:
            text = text.replace(captured.uuid, uuid)
        text = rewrite(text)
        reply = client.command(text)
        replies.append((text, reply))
        if text.startswith("bgapi originate"):
            job = reply.get("Job-UUID")
            ev = client.wait_event(named("BACKGROUND_JOB", **{"Job-UUID": job}))
            client.events.append((client.last_message, ev))   # keep it in the stream for the comparison
            if ev.body.startswith("+OK "):
                uuid = ev.body[4:].strip()
        if " start " in text and "uuid_record" in text:
            gevent.sleep(record_pause)
        if (text.startswith("sendmsg") and "execute" in text) or text.startswith("api uuid_broadcast"):
            # the capture client waited for the application to finish
            ev = client.wait_event(lambda e: e.name == "CHANNEL_EXECUTE_COMPLETE"
                                   and e.get("Application-UUID") not in finished)
            finished.add(ev.get("Application-UUID"))
            client.events.append((client.last_message, ev))
    events = client.drain()
    return client, replies, uuid, events


def _compare_call_events(name, events):
    """Channel events: same names in the same order, each with the captured header names."""
    captured = T.call_templates(name)[1]
    expected = [(m, e) for m, e in transcript_events(name) if e.get("Unique-ID") == captured.uuid]
    actual = [(m, e) for m, e in events if m is not None and e.get("Unique-ID")]
    assert [e.name for _, e in actual] == [e.name for _, e in expected]
    for (am, _), (em, _) in zip(actual, expected):
        assert_event_shape(am, em)
    jobs = [e for m, e in events if e.name == "BACKGROUND_JOB"]
    want_jobs = [e for m, e in transcript_events(name) if e.name == "BACKGROUND_JOB"]
    assert [j.header_names for j in jobs] == [j.header_names for j in want_jobs]
    return actual


def test_answered_call_plain_matches_03_event_for_event(esl):
    name = "03_call_events_plain"
    client, replies, uuid, events = _replay_call(esl, name)
    try:
        actual = _compare_call_events(name, events)
        assert len(actual) == 29
        by_cmd = {text.split(" ")[1] + (" json" if text.endswith(" json") else ""): r
                  for text, r in replies if text.startswith("api ")}
        show = json.loads(next(r for t, r in replies if t == "api show channels as json").body)
        want = json.loads(T.api_body(name, "api show channels as json"))
        assert show["row_count"] == 1 and list(show["rows"][0]) == list(want["rows"][0])
        assert show["rows"][0]["uuid"] == uuid and show["rows"][0]["cid_num"] == "1000"
        calls = json.loads(next(r for t, r in replies if t == "api show calls as json").body)
        assert list(calls["rows"][0]) == list(json.loads(T.api_body(name, "api show calls as json"))["rows"][0])
        record_replies = [r.raw for t, r in replies if "uuid_record" in t]
        assert record_replies == [b"Content-Type: api/response\nContent-Length: 12\n\n+OK Success\n"] * 2
        dump = tr.Event("text/event-plain", tuple(
            (k, v) for k, v in T.decode_plain_lines(by_cmd["uuid_dump"].body.decode())), None)
        assert dump.header_names == T.CHANNEL_DATA.header_names
        dump_json = json.loads(by_cmd["uuid_dump json"].body, object_pairs_hook=lambda p: p)
        assert [k for k, _ in dump_json] == T.CHANNEL_DATA.header_names
        kills = [r.raw for t, r in replies if "uuid_kill" in t]
        assert kills == [b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n",
                         b"Content-Type: api/response\nContent-Length: 22\n\n-ERR No such channel!\n"]
        api_events = sorted(e.get("API-Command") for m, e in events if e.name == "API")
        assert api_events == sorted(e.get("API-Command") for m, e in transcript_events(name) if e.name == "API")
        done = next(e for m, e in events if e.name == "CHANNEL_HANGUP_COMPLETE")
        assert done.header_names == next(e for m, e in transcript_events(name)
                                         if e.name == "CHANNEL_HANGUP_COMPLETE").header_names
        assert sorted(set(done.header_names)) == sorted(set(T.HANGUP_COMPLETE_NAMES_07))
        assert done.get("variable_call_id_test") == "1" and done.get("Unique-ID") == uuid
        assert int(done.get("variable_record_samples")) > 0
    finally:
        client.close()


def test_answered_call_json_matches_03(esl):
    client, _, uuid, events = _replay_call(esl, "03_call_events_json")
    client.close()
    _compare_call_events("03_call_events_json", events)
    job = next(e for m, e in events if e.name == "BACKGROUND_JOB")
    assert job.body == f"+OK {uuid}\n"
    raw = next(m for m, e in events if m is not None and e.name == "BACKGROUND_JOB").body
    assert raw.endswith(b'"Content-Length":"41","_body":"+OK ' + uuid.encode() + b'\\n"}')


@pytest.mark.parametrize("name,number", [
    ("04_originate_fail_busy486_plain", "4861234"),
    ("04_originate_fail_busy486_json", "4861234"),
    ("04_originate_fail_no_answer_timeout_plain", "4081234"),
    ("04_originate_fail_no_listener_plain", "5031234"),
    ("04_originate_fail_bad_profile_plain", "1234"),
])
def test_failed_originates_match_04(esl, name, number):
    client, _, _, events = _replay_call(esl, name, lambda t: t.replace("/1234@", f"/{number}@"))
    client.close()
    _compare_call_events(name, events)
    want = next(e for m, e in transcript_events(name) if e.name == "BACKGROUND_JOB").body
    got = next(e for m, e in events if e.name == "BACKGROUND_JOB").body
    assert got == want
    if "bad_profile" in name:
        assert not any(e.name == "CHANNEL_CREATE" for m, e in events)
    assert not esl.channels


def test_blocking_api_originate_busy_byte_exact(esl):
    records = tr.load_raw("04_api_originate_blocking_busy")
    c = RawClient(esl.port)
    c.next_message()
    for rec in records:
        if rec.direction == tr.CLIENT:
            c.send(rec.data.replace(b"/1234@", b"/4861234@"))
        elif rec.data is not None and rec.data != T.AUTH_REQUEST:
            assert c.next_message().raw == rec.data
    c.close()


def test_call_control_09_replies_and_events(esl):
    name = "09_call_control_sendmsg_getvar"
    client, replies, uuid, events = _replay_call(esl, name)
    client.close()
    want_replies = [tr.parse_message(r) for r in tr.server_messages(tr.load_raw(name))
                    if not r.startswith(b"Content-Length")][1:]
    assert len(want_replies) == len(replies)
    for (text, got), want in zip(replies, want_replies):
        if "sip_call_id" in text:
            assert len(got.body) == 36
        elif "Job-UUID" in want.raw.decode():
            assert got.get("Reply-Text").startswith("+OK Job-UUID: ")
        else:
            assert got.raw == want.raw, text
    assert uuid == "a2a406c0-baa9-4e01-b77f-f428c7db7eb1"      # origination_uuid is honoured
    actual = [(m, e) for m, e in events if m is not None]
    expected = transcript_events(name)
    assert [(e.name, e.get("Application")) for m, e in actual] == \
        [(e.name, e.get("Application")) for m, e in expected]
    for (am, _), (em, _) in zip(actual, expected):
        assert_event_shape(am, em)
    execs = [(m, e) for m, e in actual if e.name == "CHANNEL_EXECUTE" and e.get("Application") == "playback"]
    assert execs[0][1].get("variable_my_test_var") == "hello world"
    done = next(e for m, e in actual if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert done.get("Hangup-Cause") == "CALL_REJECTED" and done.get("variable_hangup_cause_q850") == "21"


def test_gateway_killgw_and_rescan_match_06_plain(fresh_sim):
    fresh_sim.load_transcript_gateways()
    with open(os.path.join(fresh_sim.gateway_dir, "uas_gw.xml"), "w") as fh:
        fh.write('<include><gateway name="uas_gw"><param name="username" value="uas_gw_user"/>'
                 '<param name="password" value="x"/><param name="realm" value="127.0.0.1:5090"/>'
                 '<param name="proxy" value="127.0.0.1:5090"/><param name="register" value="false"/>'
                 '<param name="ping" value="10"/></gateway></include>')
    name = "06_gateway_state_events_plain"
    c = RawClient(fresh_sim.port).auth()
    assert c.command("event plain CUSTOM sofia::gateway_state sofia::gateway_add sofia::gateway_delete"
                     ).get("Reply-Text") == "+OK event listener enabled plain"
    assert c.api("sofia profile external killgw uas_gw") == "+OK gateway marked for deletion.\n"
    deleted = c.wait_event(named("CUSTOM", **{"Event-Subclass": "sofia::gateway_delete"}))
    assert "uas_gw" not in fresh_sim.gateways
    assert c.api("sofia status gateway uas_gw") == "Invalid Gateway!\n"
    assert c.api("sofia profile external rescan") == "Reload XML [Success]\n+OK scan complete\n"
    added = c.wait_event(named("CUSTOM", **{"Event-Subclass": "sofia::gateway_add"}))
    expected = {e.subclass: m for m, e in transcript_events(name)}
    for ev, sub in [(deleted, "sofia::gateway_delete"), (added, "sofia::gateway_add")]:
        assert ev.header_names == tr.decode_event(expected[sub]).header_names
        assert ev.get("Gateway") == "uas_gw"
    want = T.api_body(name, "api sofia status gateway uas_gw")
    assert normalize_numbers(c.api("sofia status gateway uas_gw")) == normalize_numbers(want)
    c.close()


def test_gateway_registration_failure_matches_06_json(fresh_sim):
    fresh_sim.load_transcript_gateways()
    fresh_sim.registration_results["reg_fail_gw"] = ("FAILED", 503, "Service Unavailable")
    with open(os.path.join(fresh_sim.gateway_dir, "gws.xml"), "w") as fh:
        fh.write('<include><gateway name="reg_fail_gw"><param name="username" value="reg_fail_user"/>'
                 '<param name="password" value="x"/><param name="realm" value="127.0.0.1:5099"/>'
                 '<param name="proxy" value="127.0.0.1:5099"/><param name="register" value="true"/>'
                 '<param name="expire-seconds" value="60"/></gateway></include>')
    name = "06_gateway_state_events_json"
    c = RawClient(fresh_sim.port).auth()
    c.command("event json CUSTOM sofia::gateway_state sofia::gateway_add sofia::gateway_delete")
    c.api("sofia profile external killgw reg_fail_gw")
    c.wait_event(named("CUSTOM", **{"Event-Subclass": "sofia::gateway_delete"}))
    got = c.events + [(c.last_message, tr.decode_event(c.last_message))]
    c.events = []
    c.api("sofia profile external rescan")
    c.wait_event(named("CUSTOM", State="FAIL_WAIT"))
    got += c.events + [(c.last_message, tr.decode_event(c.last_message))]
    expected = transcript_events(name)
    for msg, ev in got:
        twin = next(m for m, e in expected if e.subclass == ev.subclass and e.get("State") == ev.get("State"))
        assert_event_shape(msg, twin)
    states = [e.get("State") for m, e in got if e.subclass == "sofia::gateway_state"]
    assert states == ["DOWN", "TRYING", "FAILED", "FAIL_WAIT"]
    failed = next(e for m, e in got if e.get("State") == "FAILED")
    assert (failed.get("Phrase"), failed.get("Status")) == ("Service Unavailable", "503")
    want = T.api_body(name, "api sofia status gateway reg_fail_gw")
    assert normalize_numbers(c.api("sofia status gateway reg_fail_gw")) == normalize_numbers(want)
    c.close()


def test_emit_gateway_state_has_captured_headers(client, esl):
    client.command("event json CUSTOM sofia::gateway_state")
    esl.emit_gateway_state("prov1", state="REGED", ping_status="UP")
    esl.emit_gateway_state("prov1", state="FAILED", ping_status="DOWN", status=503, phrase="Service Unavailable")
    plain = transcript_events("06_gateway_state_events_json")
    simple = next(m for m, e in plain if e.get("State") == "FAIL_WAIT")
    with_status = next(m for m, e in plain if e.get("State") == "FAILED")
    msgs = [client.next_message(), client.next_message()]
    reged = assert_event_shape(msgs[0], simple)
    failed = assert_event_shape(msgs[1], with_status)
    assert (reged.get("Gateway"), reged.get("State"), reged.get("Ping-Status")) == ("prov1", "REGED", "UP")
    assert failed.header_names[-2:] == ["Phrase", "Status"]


def test_shutdown_fsctl_and_observers(fresh_sim):
    quiet = RawClient(fresh_sim.port).auth()
    linger = RawClient(fresh_sim.port).auth()
    assert linger.command("linger").get("Reply-Text") == "-ERR not controlling a session"
    linger.command("event plain SHUTDOWN")
    boss = RawClient(fresh_sim.port).auth()
    boss.command("event plain ALL")
    assert boss.command("api fsctl shutdown").raw == b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n"
    notice = (b"Content-Type: text/disconnect-notice\nContent-Length: 31\n\nThe system is being shut down.\n")
    want = transcript_events("05_shutdown_fsctl")
    got = []
    while True:
        msg = boss.next_message()
        if msg.content_type == "text/disconnect-notice":
            assert msg.raw == notice
            break
        got.append(msg)
    assert boss.expect_eof()
    assert [tr.decode_event(m).name for m in got] == [e.name for m, e in want]
    for g, (w, _) in zip(got, want):
        assert_event_shape(g, w)
    shutdown_ev = linger.next_message()
    assert tr.decode_event(shutdown_ev).name == "SHUTDOWN"
    assert linger.next_message().raw == notice and linger.expect_eof()
    assert quiet.next_message().raw == notice and quiet.expect_eof()
    fresh_sim.wait_for(lambda: not fresh_sim.running, timeout=3)


# ============================================================================ call scenarios (raw socket)
ORIG = "bgapi originate {{origination_uuid={uuid},cc_call_id={cc},origination_caller_id_number=15550001000}}" \
       "sofia/gateway/prov1/{number} &park()"
CALL_EVENTS = ("event plain CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER "
               "CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB RECORD_START RECORD_STOP")


def _originate(client, number):
    uuid, cc = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    reply = client.command(ORIG.format(uuid=uuid, cc=cc, number=number))
    assert reply.get("Reply-Text").startswith("+OK Job-UUID: ")
    return uuid, cc, reply.get("Job-UUID")


def test_answered_call_until_uuid_kill(client, esl):
    client.command(CALL_EVENTS)
    uuid, cc, job = _originate(client, "15551230000")
    create = client.wait_event(named("CHANNEL_CREATE"))
    assert create.get("Unique-ID") == uuid and create.get("variable_cc_call_id") == cc
    assert create.get("variable_origination_uuid") == uuid
    assert create.get("Caller-Caller-ID-Number") == "15550001000"
    assert create.get("Caller-Destination-Number") == "15551230000"
    assert client.wait_event(named("CHANNEL_PROGRESS")).get("Unique-ID") == uuid
    answer = client.wait_event(named("CHANNEL_ANSWER"))
    assert answer.get("Answer-State") == "answered" and answer.get("variable_cc_call_id") == cc
    assert client.wait_event(named("BACKGROUND_JOB", **{"Job-UUID": job})).body == f"+OK {uuid}\n"
    assert esl.channels[uuid].answered and esl.channels[uuid].variables["cc_call_id"] == cc
    rows = json.loads(client.api("show channels as json"))["rows"]
    assert [r["uuid"] for r in rows] == [uuid] and rows[0]["callstate"] == "ACTIVE"
    assert client.api(f"uuid_getvar {uuid} cc_call_id") == cc
    assert client.api(f"uuid_setvar {uuid} agent_id 42") == "+OK\n"
    gevent.sleep(0.2)
    assert client.api(f"uuid_kill {uuid} NORMAL_CLEARING") == "+OK\n"
    hangup = client.wait_event(named("CHANNEL_HANGUP"))
    done = client.wait_event(named("CHANNEL_HANGUP_COMPLETE"))
    assert hangup.get("Hangup-Cause") == done.get("variable_hangup_cause") == "NORMAL_CLEARING"
    assert done.get("variable_sip_hangup_disposition") == "send_bye"
    assert done.get("variable_agent_id") == "42" and done.get("variable_cc_call_id") == cc
    assert int(done.get("variable_billmsec")) >= 150 and int(done.get("variable_duration")) >= 0
    for key in ("rtp_audio_in_mos", "rtp_audio_in_quality_percentage", "rtp_audio_in_jitter_min_variance",
                "rtp_audio_in_jitter_max_variance", "rtp_audio_in_skip_packet_count", "rtp_audio_in_flaw_total",
                "rtp_audio_in_packet_count"):
        assert re.fullmatch(r"\d+(\.\d\d)?", done.get("variable_" + key)), key
    assert 1.0 <= float(done.get("variable_rtp_audio_in_mos")) <= 4.5
    assert uuid not in esl.channels
    assert client.api("show channels as json") == '{"row_count": 0}\n'
    assert sum(1 for c in esl.commands if c.startswith("bgapi originate") and uuid in c) == 1


@pytest.mark.parametrize("number,cause,progress", [
    ("4865550000", "USER_BUSY", False), ("4085550000", "NO_ANSWER", True),
    ("5035550000", "NORMAL_TEMPORARY_FAILURE", False)])
def test_failed_call_scenarios(client, esl, number, cause, progress):
    client.command(CALL_EVENTS)
    started = time.monotonic()
    uuid, cc, job = _originate(client, number)
    assert client.wait_event(named("BACKGROUND_JOB", **{"Job-UUID": job})).body == f"-ERR {cause}\n"
    elapsed = time.monotonic() - started
    done = client.wait_event(named("CHANNEL_HANGUP_COMPLETE"))
    assert done.get("Hangup-Cause") == cause and done.get("variable_cc_call_id") == cc
    assert done.get("variable_billsec") == "0"
    seen = [e.name for m, e in client.drain()] + ["CHANNEL_HANGUP_COMPLETE"]
    assert ("CHANNEL_PROGRESS" in seen) == progress
    assert "CHANNEL_ANSWER" not in seen
    if cause == "NO_ANSWER":
        assert elapsed >= 0.3 / FAST
    assert uuid not in esl.channels


def test_drop_scenario_cuts_connections_and_call_ends_unseen(esl):
    c = RawClient(esl.port).auth()
    c.command(CALL_EVENTS)
    other = RawClient(esl.port).auth()
    uuid, _, _ = _originate(c, "9995550000")
    c.wait_event(named("CHANNEL_ANSWER"))
    assert c.expect_eof(timeout=3, skip_messages=True) and other.expect_eof(timeout=1)
    after = RawClient(esl.port).auth()
    assert after.api("show channels as json") == '{"row_count": 0}\n'
    assert after.api(f"uuid_exists {uuid}") == "false"
    after.close()


def test_remote_hangup_scenario(client, esl):
    client.command(CALL_EVENTS)
    _originate(client, "7775550000")
    answered = client.wait_event(named("CHANNEL_ANSWER"))
    done = client.wait_event(named("CHANNEL_HANGUP_COMPLETE"), timeout=3)
    assert done.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert done.get("variable_sip_hangup_disposition") == "recv_bye"
    gap = (int(done.get("Event-Date-Timestamp")) - int(answered.get("Event-Date-Timestamp"))) / 1e6
    assert gap >= 0.5 / FAST - 0.05


def test_bad_profile_and_unknown_endpoint(client, esl):
    assert client.api("originate sofia/no_such_profile/1234@127.0.0.1 &park()") == "-ERR INVALID_PROFILE\n"
    assert client.api("originate nosuchtech/1234 &park()") == "-ERR CHAN_NOT_IMPLEMENTED\n"


def test_inbound_call_and_remote_hangup(client, esl):
    client.command(CALL_EVENTS)
    uuid = esl.inbound_call(from_number="15550001111", to_number="1000", answer_after=0.05)
    create = client.wait_event(named("CHANNEL_CREATE"))
    assert create.get("Call-Direction") == "inbound" and create.get("Unique-ID") == uuid
    assert create.get("Caller-Caller-ID-Number") == "15550001111"
    assert create.get("Caller-Destination-Number") == "1000"
    answer = client.wait_event(named("CHANNEL_ANSWER"))
    assert answer.get("Caller-Caller-ID-Number") == "15550001111" and answer.get("variable_direction") == "inbound"
    esl.hangup(uuid, cause="NORMAL_CLEARING")
    done = client.wait_event(named("CHANNEL_HANGUP_COMPLETE"))
    assert done.get("Call-Direction") == "inbound" and done.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert uuid not in esl.channels


def test_hangup_while_disconnected_delivers_nothing(client, esl):
    client.command(CALL_EVENTS)
    uuid = esl.inbound_call(answer_after=0.01)
    client.wait_event(named("CHANNEL_ANSWER"))
    client.drain(0.05)
    esl.hangup_while_disconnected(uuid, "NORMAL_CLEARING")
    assert client.drain(0.2) == []
    assert client.api(f"uuid_exists {uuid}") == "false"


# ============================================================================ recording
def test_uuid_record_writes_real_wav(client, esl):
    client.command(CALL_EVENTS)
    uuid = esl.inbound_call(answer_after=0.01)
    client.wait_event(named("CHANNEL_ANSWER"))
    path = "/recordings/2026/call.wav"
    assert client.api(f"uuid_record {uuid} start {path}") == "+OK Success\n"
    start = client.wait_event(named("RECORD_START"))
    assert start.get("Record-File-Path") == path
    t0 = time.monotonic()
    gevent.sleep(0.5)
    assert client.api(f"uuid_record {uuid} stop {path}") == "+OK Success\n"
    elapsed = time.monotonic() - t0
    stop = client.wait_event(named("RECORD_STOP"))
    assert stop.get("Record-File-Path") == path and stop.get("Record-Completion-Cause") == "success-maxtime"
    local = os.path.join(esl.recordings_root, "recordings/2026/call.wav")
    with wave.open(local) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        seconds = w.getnframes() / 8000
        frames = w.readframes(8000)
    assert abs(seconds - elapsed) < 0.1
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    crossings = sum(1 for a, b in itertools.pairwise(samples) if a < 0 <= b)
    assert 400 <= crossings / (len(samples) / 8000) <= 480    # a 440 Hz tone
    assert int(stop.get("variable_record_samples")) == round(seconds * 8000)
    assert client.api(f"uuid_record {uuid} stop {path}") == "-ERR Cannot stop record session!\n"
    assert client.api("uuid_record 3dc64f23-35c5-45fe-9ff2-fc69ce3bb6f0 start /x.wav") == \
        "-ERR Cannot locate session!\n"
    esl.hangup(uuid)


def test_uuid_record_limit_and_hangup_finish_the_file(client, esl):
    client.command(CALL_EVENTS)
    uuid = esl.inbound_call(answer_after=0.01)
    client.wait_event(named("CHANNEL_ANSWER"))
    client.api(f"uuid_record {uuid} start limited.wav 1")
    client.api(f"uuid_record {uuid} start open.wav")
    assert client.wait_event(named("RECORD_STOP", **{"Record-File-Path": "limited.wav"}), timeout=3)
    esl.hangup(uuid)
    stop = client.wait_event(named("RECORD_STOP", **{"Record-File-Path": "open.wav"}))
    assert stop.get("Answer-State") == "hangup"
    with wave.open(os.path.join(esl.recordings_root, "limited.wav")) as w:
        assert w.getnframes() == 8000
    assert os.path.getsize(os.path.join(esl.recordings_root, "open.wav")) > 44


# ============================================================================ connections
def test_subscriptions_are_per_connection_and_filters_apply(esl):
    plain = RawClient(esl.port).auth()
    js = RawClient(esl.port).auth()
    none = RawClient(esl.port).auth()
    plain.command("event plain CHANNEL_ANSWER")
    js.command("event json CHANNEL_CREATE")
    js.command("filter Caller-Caller-ID-Number 15550002222")
    esl.inbound_call(from_number="15550003333", answer_after=0.01)
    uuid = esl.inbound_call(from_number="15550002222", answer_after=0.01)
    assert plain.wait_event(named("CHANNEL_ANSWER")).get("Event-Name") == "CHANNEL_ANSWER"
    created = js.wait_event(named("CHANNEL_CREATE"))
    assert created.get("Unique-ID") == uuid      # the other caller's CHANNEL_CREATE was filtered out
    assert js.drain(0.1) == []
    assert none.drain(0.1) == []
    for ch in list(esl.channels):
        esl.hangup(ch)
    for c in (plain, js, none):
        c.close()


def test_slow_client_does_not_block_others_and_flood(esl):
    slow = RawClient(esl.port).auth()
    slow.command("event plain ALL")          # and never read again
    fast = RawClient(esl.port).auth()
    fast.command("event json CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE")
    received = []

    def reader():
        buf = b""
        fast.sock.settimeout(10)
        while len(received) < 8000:
            data = fast.sock.recv(1 << 20)
            if not data:
                break
            buf += data
            msgs, buf = tr.split_messages(buf)
            received.extend(msgs)
    g = gevent.spawn(reader)
    t0 = time.monotonic()
    esl.flood(2000, timeout=1)       # the slow client never drains; flood gives up after 1 s
    g.join(10)
    elapsed = time.monotonic() - t0
    assert len(received) == 8000
    assert elapsed < 5
    names = [json.loads(m.body)["Event-Name"] for m in received[:4]]
    assert names == ["CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"]
    first = json.loads(received[0].body)
    assert [k for k in first] == [k for k in json.loads(received[4].body)]
    assert all(int(m.get("Content-Length")) == len(m.body) for m in received[:50])
    slow.close()
    fast.close()


def test_listener_losing_too_many_events_is_disconnected(tmp_path):
    sim = ESLSimulator(port=0, recordings_root=str(tmp_path), max_queue=20, max_missed=10).start()
    try:
        stuck = RawClient(sim.port).auth()
        stuck.command("event plain ALL")
        healthy = RawClient(sim.port).auth()
        healthy.command("event plain CHANNEL_CREATE")
        sim.flood(400, timeout=0.5)
        sim.wait_for(lambda: len(sim.connections) == 1, timeout=3)
        assert sim.connections[0].format == "plain" and "CHANNEL_CREATE" in sim.connections[0].subscriptions
        healthy.close()
        stuck.close()
    finally:
        sim.stop()


def test_drop_connections_keeps_calls_and_stop_start_reuses_port(esl):
    c = RawClient(esl.port).auth()
    uuid = esl.inbound_call(answer_after=0.01)
    gevent.sleep(0.05)
    assert esl.drop_connections() >= 1
    assert c.expect_eof()
    c = RawClient(esl.port).auth()
    assert uuid in c.api("show channels as json")
    port = esl.port
    esl.stop(hangup_calls=False)
    assert c.expect_eof()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    esl.start()
    assert esl.port == port
    c = RawClient(esl.port).auth()
    assert uuid in c.api("show channels as json")
    esl.stop(hangup_calls=True)
    esl.start()
    c = RawClient(esl.port).auth()
    assert c.api("show channels as json") == '{"row_count": 0}\n'
    c.close()


# ============================================================================ greenswitch
def test_greenswitch_auth_and_api(esl):
    conn = gs_connect(esl.port)
    try:
        assert gs_api(conn, "version") == T.VERSION_BODY
        assert gs_api(conn, "show channels as json") == '{"row_count": 0}\n'
        assert gs_api(conn, "uuid_kill 3dc64f23-35c5-45fe-9ff2-fc69ce3bb6f0") == "-ERR No such channel!\n"
        assert gs_api(conn, "status").startswith("UP ")
        assert gs_api(conn, "originate sofia/no_such_profile/1234@127.0.0.1 &park()") == "-ERR INVALID_PROFILE\n"
    finally:
        gs_close(conn)
    bad = InboundESL(host="127.0.0.1", port=esl.port, password="wrong")
    with pytest.raises(ValueError), gevent.Timeout(5):
        bad.connect()


@pytest.mark.parametrize("number,expect", [
    ("15551230000", "+OK"), ("4865550000", "-ERR USER_BUSY\n"), ("4085550000", "-ERR NO_ANSWER\n"),
    ("5035550000", "-ERR NORMAL_TEMPORARY_FAILURE\n"), ("7775550000", "+OK"), ("9995550000", "+OK")])
def test_greenswitch_call_scenarios(esl, number, expect):
    conn = gs_connect(esl.port)
    hangups = []
    conn.register_handle("CHANNEL_HANGUP_COMPLETE", lambda ev: hangups.append(ev.headers.get("Hangup-Cause")))
    with gevent.Timeout(5):
        assert conn.send("event plain CHANNEL_HANGUP_COMPLETE").data == "+OK event listener enabled plain"
    try:
        dialstring = f"{{origination_caller_id_number=1000}}sofia/external/{number}@10.0.0.9"
        result = gs_api(conn, f"originate {dialstring} &park()")
        assert result.startswith(expect)
        if expect != "+OK":
            gevent.sleep(0.1)
            assert hangups == [expect[5:-1]]
            return
        uuid = result[4:].strip()
        if number.startswith("999"):
            with gevent.Timeout(3):
                while conn.connected:
                    gevent.sleep(0.02)
            conn2 = gs_connect(esl.port)
            assert gs_api(conn2, f"uuid_exists {uuid}") == "false"
            gs_close(conn2)
            return
        if number.startswith("777"):
            with gevent.Timeout(3):
                while not hangups:
                    gevent.sleep(0.02)
            assert hangups == ["NORMAL_CLEARING"]
            return
        assert gs_api(conn, f"uuid_exists {uuid}") == "true"
        assert gs_api(conn, f"uuid_kill {uuid} USER_BUSY") == "+OK\n"
        with gevent.Timeout(3):
            while not hangups:
                gevent.sleep(0.02)
        assert hangups == ["USER_BUSY"]
    finally:
        gs_close(conn)


def test_fixture_gateway_files_and_transcript_gateways_roundtrip(esl):
    gw = Gateway.from_params("prov1", {"username": "u", "password": "p", "realm": "sip.example.com",
                                       "register": "true", "ping": "25"})
    assert gw.to == "sip:u@sip.example.com" and gw.proxy == "sip:sip.example.com" and gw.pingfreq == 25
    with open(os.path.join(esl.gateway_dir, "prov1.xml"), "w") as fh:
        fh.write('<include><gateway name="prov2"><param name="username" value="u2"/>'
                 '<param name="realm" value="sip.example.org"/></gateway></include>')
    c = RawClient(esl.port).auth()
    c.command("event plain CUSTOM sofia::gateway_state sofia::gateway_add")
    assert c.api("sofia profile external rescan") == "Reload XML [Success]\n+OK scan complete\n"
    assert c.wait_event(named("CUSTOM", **{"Event-Subclass": "sofia::gateway_add"})).get("Gateway") == "prov2"
    assert c.wait_event(named("CUSTOM", State="REGED")).get("Ping-Status") == "UP"
    assert "\tREGED\t" in c.api("sofia status gateway")
    assert "Status  \tUP\n" in c.api("sofia status gateway prov2")
    assert "<state>REGED</state>" in c.api("sofia xmlstatus gateway prov2")
    assert c.api("sofia profile external killgw prov2") == "+OK gateway marked for deletion.\n"
    assert c.api("sofia profile external killgw prov2") == "-ERR no such gateway.\n"
    os.remove(os.path.join(esl.gateway_dir, "prov1.xml"))
    c.close()


# ============================================================================ show channels lag (issue 11)
LAG_CAPTURE = "20_show_channels_lag.capture"
LAG_UUID = "8ef6d2c2-cdc8-4522-9356-a171dd7f431f"


def _captured_lag_states(path, fs_uuid):
    """Distinct (uuid_exists, listed by show channels) states of fs_uuid, in capture order.

    The capture (esl_capture.py proxy format: '## <s> <conn> C>S|S>C <n>' + n bytes) holds
    a client polling `api uuid_exists` and `api show channels as json` back to back.
    """
    data, pos, asked, replies = path.read_bytes(), 0, [], b""
    while pos < len(data):
        if data[pos:pos + 1] == b"\n":
            pos += 1
            continue
        eol = data.index(b"\n", pos)
        _, _, _, direction, size = data[pos:eol].decode().split()
        chunk = data[eol + 1:eol + 1 + int(size)]
        pos = eol + 1 + int(size)
        if direction == "C>S":
            asked.append(chunk.decode().split("\n")[0])
        else:
            replies += chunk
    answers = [m.body.decode() for m in tr.split_messages(replies)[0]
               if m.content_type == "api/response"]
    polls = [q for q in asked if q.startswith("api ")]
    return _distinct_states(list(zip(polls, answers)), fs_uuid)


def _distinct_states(pairs, fs_uuid):
    states, exists = [], None
    for question, answer in pairs:
        if question.startswith("api uuid_exists"):
            exists = answer.strip() == "true"
        elif question.startswith("api show channels") and exists is not None:
            state = (exists, fs_uuid in answer)
            if not states or states[-1] != state:
                states.append(state)
    return states


def _poll_lag_states(client, fs_uuid, kill_when_listed=True, limit=4.0):
    pairs, deadline, killed = [], time.monotonic() + limit, False
    while time.monotonic() < deadline:
        for question in (f"api uuid_exists {fs_uuid}", "api show channels as json"):
            pairs.append((question, client.api(question[4:])))
        listed = fs_uuid in pairs[-1][1]
        if listed and kill_when_listed and not killed:
            client.api(f"uuid_kill {fs_uuid}")
            killed = True
        elif killed and not listed:
            break
        gevent.sleep(0.02)
    return _distinct_states(pairs, fs_uuid)


def test_the_real_switchs_show_channels_lags_the_channel_and_the_simulator_can_too(fresh_sim):
    """Captured on FreeSWITCH 1.11: a new channel exists (uuid_exists) before `show
    channels` lists it, and a killed one stays listed after uuid_exists says it is gone.
    Reconciliation must not take a missing row as gone, nor a listed row as alive;
    the simulator's show_channels_lag reproduces this for the tests."""
    lag = [(True, False), (True, True), (False, True), (False, False)]
    assert _captured_lag_states(tr.FIXTURE_DIR / LAG_CAPTURE, LAG_UUID) == lag
    client = RawClient(fresh_sim.port).auth()
    fresh_sim.show_channels_lag = 0.15
    fs_uuid, _, _ = _originate(client, "15551230000")
    assert _poll_lag_states(client, fs_uuid) == lag
    fresh_sim.show_channels_lag = 0.0  # the default: no lag
    fs_uuid, _, _ = _originate(client, "15551230001")
    assert _poll_lag_states(client, fs_uuid) == [(True, True), (False, False)]
    client.close()
