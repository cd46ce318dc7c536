"""Live channels over /ws: real WebSocket clients against the running web and events processes.

Real Redis throughout. SQLite only: the database plays no part in the feed (the call lifecycle tests
cover PostgreSQL). Two stacks share the Redis server: `live` (web + events)
and `second` (a second web process), so a message published once must reach
clients of both.
"""
import contextlib
import json
import socket
import struct

import gevent
import pytest
import websocket
from rq import Queue

from models import Call
from services.publisher import Publisher
from services.redis_client import seq_key, stream_key
from tests.conftest import wait_until

HEARTBEAT_MS = 3000
QUEUE_SIZE = 50


@pytest.fixture(scope="module")
def db_url(tmp_path_factory):
    return "sqlite:///" + str(tmp_path_factory.mktemp("live-db") / "calls.db")


@pytest.fixture(scope="module")
def live(stack_factory, db_url, sim):
    return stack_factory(db_url, sim, WEBSOCKET_QUEUE_SIZE=QUEUE_SIZE,
                         WEBSOCKET_HEARTBEAT=HEARTBEAT_MS, METRICS_INTERVAL=0.5,
                         QUEUE_BACKLOG_ALERT=2)


@pytest.fixture(scope="module")
def second(stack_factory, db_url, sim, live, redis_server):
    """Another web process (own gunicorn), same Redis and database, alerting on everything."""
    performance_before = int(redis_server.client().get(seq_key("performance")) or 0)
    stack = stack_factory(db_url, sim, events=False, SLOW_REQUEST_SECONDS=0, MEMORY_ALERT_MB=1,
                          METRICS_INTERVAL=0.5,
                          WEBSOCKET_HEARTBEAT=HEARTBEAT_MS)
    stack.performance_before = performance_before
    return stack


@pytest.fixture
def notifier(redis_server):
    if redis_server.proc is None:
        redis_server.start()
    return Publisher(redis_server.client())


@pytest.fixture
def sockets():
    opened = []
    yield opened
    for live_socket in opened:
        live_socket.close()


class LiveSocket:
    """A WebSocket client of /ws that answers pings while it reads (as browsers do)."""

    def __init__(self, stack, **options):
        url = stack.url(f"/ws?api_key={stack.api_key}").replace("http://", "ws://")
        self.ws = websocket.create_connection(url, timeout=10, skip_utf8_validation=True,
                                              **options)
        self.seen = []

    def send(self, message):
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def recv(self, timeout=10):
        self.ws.settimeout(timeout)
        text = self.ws.recv()
        if text == "":  # websocket-client's answer to a close frame
            raise AssertionError("the server closed the socket (a heartbeat timeout if the "
                                 "test stopped reading for longer than the heartbeat)")
        message = json.loads(text)
        self.seen.append(message)
        return message

    def until(self, predicate, timeout=10):
        """Read until predicate(message) holds; returns the messages read, the matching one last."""
        read = []
        try:
            with gevent.Timeout(timeout):
                while True:
                    read.append(self.recv(timeout))
                    if predicate(read[-1]):
                        return read
        except gevent.Timeout:
            tail = [{k: m.get(k) for k in ("type", "channel", "id")} for m in read[-5:]]
            raise AssertionError(f"timed out after {len(read)} messages; the last: {tail}") \
                from None

    def request(self, message, answer_type, timeout=10):
        self.send(message)
        return self.until(lambda m: m["type"] in (answer_type, "error"), timeout)[-1]

    def subscribe(self, channels, since=None, ref=None):
        message = {"type": "subscribe", "channels": channels}
        if since is not None:
            message["since"] = since
        if ref is not None:
            message["ref"] = ref
        ack = self.request(message, "subscribed")
        assert ack["type"] == "subscribed", ack
        return ack

    @contextlib.contextmanager
    def reading(self):
        """Keep reading (and so answering the server's pings, as a browser does) while the
        test waits on something else; without it a wait longer than the heartbeat (3 s) gets
        the client dropped as dead."""
        done = []

        def read():
            while not done:
                try:
                    self.recv(0.5)
                except websocket.WebSocketTimeoutException:
                    pass
        reader = gevent.spawn(read)
        try:
            yield
        finally:
            done.append(True)
            reader.join(5)
            reader.kill()
        if reader.exception is not None:
            raise reader.exception

    def close(self):
        try:
            self.ws.close(timeout=1)
        except (OSError, websocket.WebSocketException):
            pass


def connect(stack, sockets, **options):
    client = LiveSocket(stack, **options)
    sockets.append(client)
    welcome = client.recv()
    assert welcome["type"] == "welcome"
    return client


def of_channel(channel, event_type=None):
    return lambda m: m.get("channel") == channel and event_type in (None, m["type"])


def close_code(frame):
    return struct.unpack("!H", frame.data[:2])[0] if len(frame.data) >= 2 else None


# ----- subscribing ------------------------------------------------------------
def test_subscribers_receive_their_channels_until_they_unsubscribe(live, sockets, notifier):
    client = connect(live, sockets)
    ack = client.subscribe(["calls", "sip"], ref="s1")
    assert ack["ref"] == "s1" and ack["data"]["channels"] == ["calls", "sip"]

    notifier.publish("recordings", "recording.ready", {"id": "r-not-subscribed"})
    sip_id = notifier.publish("sip", "gateway.state", {"name": "gw1", "state": "REGED"})
    calls_id = notifier.publish("calls", "call.updated", {"id": "c-1"})
    got = client.until(of_channel("calls"))
    envelopes = [m for m in got if "channel" in m]
    assert [(m["channel"], m["id"]) for m in envelopes] == [("sip", sip_id), ("calls", calls_id)]
    assert set(envelopes[0]) == {"id", "channel", "type", "ts", "data"}
    assert envelopes[0]["data"] == {"name": "gw1", "state": "REGED"}

    ack = client.request({"type": "unsubscribe", "channels": ["sip"]}, "unsubscribed")
    assert ack["data"] == {"channels": ["sip"], "subscribed": ["calls"]}
    notifier.publish("sip", "gateway.state", {"name": "gw1", "state": "FAIL"})
    later = notifier.publish("calls", "call.updated", {"id": "c-2"})
    got = client.until(of_channel("calls"))
    assert [m.get("channel") for m in got] == ["calls"] and got[-1]["id"] == later


def test_ping_gets_pong_and_bad_messages_get_errors_on_an_open_socket(live, sockets):
    client = connect(live, sockets)
    pong = client.request({"type": "ping", "ref": 7}, "pong")
    assert pong["type"] == "pong" and pong["ref"] == 7 and pong["data"]["ts"].endswith("Z")

    cases = [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ({"type": "dance"}, "unknown_type"),
        ({"type": "subscribe", "channels": ["calls", "gossip"]}, "unknown_channel"),
        ({"type": "subscribe", "channels": []}, "invalid_message"),
        ({"type": "subscribe", "channels": ["calls"], "since": {"calls": -1}}, "invalid_message"),
        ({"type": "subscribe", "channels": ["calls"], "since": {"sip": 3}}, "invalid_message"),
        ({"type": "unsubscribe", "channels": "calls"}, "invalid_message"),
    ]
    for message, code in cases:
        client.send(message)
        error = client.recv()
        assert error["type"] == "error" and error["data"]["code"] == code, (message, error)
    assert client.request({"type": "ping"}, "pong")["type"] == "pong"
    client.ws.send_binary(b'{"type": "ping"}')
    assert client.recv()["data"]["code"] == "invalid_message"
    unknown = client.request({"type": "subscribe", "channels": ["gossip"], "ref": "x"}, "error")
    assert unknown["ref"] == "x" and unknown["data"]["channels"] == ["gossip"]
    assert "calls" in unknown["data"]["known_channels"]


def test_an_oversized_message_is_refused_with_close_code_1009(live, sockets):
    client = connect(live, sockets)
    client.send({"type": "ping", "ref": "x" * (65 * 1024)})
    client.ws.settimeout(10)
    frame = client.ws.recv_frame()
    while frame.opcode != websocket.ABNF.OPCODE_CLOSE:
        frame = client.ws.recv_frame()
    assert close_code(frame) == 1009


def test_a_bad_handshake_is_a_400_not_a_500(live):
    resp = live.get("/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert resp.status_code == 400 and "handshake" in resp.json()["message"]


# ----- fan-out across processes and a call's life ----------------------------
def test_two_web_processes_both_deliver_a_message_published_once(live, second, sockets, notifier):
    first_client, second_client = connect(live, sockets), connect(second, sockets)
    assert first_client.seen[0]["data"]["server"] != second_client.seen[0]["data"]["server"]
    for client in (first_client, second_client):
        client.subscribe(["recordings"])
    seq = notifier.publish("recordings", "recording.ready", {"id": "r-1"})
    for client in (first_client, second_client):
        message = client.until(of_channel("recordings"))[-1]
        assert message["id"] == seq and message["data"] == {"id": "r-1"}


def test_a_calls_whole_life_arrives_in_order(live, sockets):
    client = connect(live, sockets)
    client.subscribe(["calls"])
    call = live.post("/api/calls/start", {"to": "1000", "gateway": "gw1"}).json()

    def mine(message):
        return message.get("channel") == "calls" and message["data"].get("id") == call["id"]
    answered = client.until(lambda m: mine(m) and m["type"] == "call.answered")
    assert live.post(f"/api/calls/{call['id']}/end", {}).status_code == 200
    ended = client.until(lambda m: mine(m) and m["type"] == "call.ended")
    messages = [m for m in answered + ended if mine(m)]
    lifecycle = [m["type"] for m in messages if m["type"] != "call.updated"]
    assert lifecycle == ["call.initiated", "call.ringing", "call.answered", "call.ended"]
    ids = [m["id"] for m in messages]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert messages[-1]["data"]["status"] == "completed"
    assert messages[-1]["data"]["to_number"] == "1000"


# ----- resume -----------------------------------------------------------------
def test_resume_with_since_replays_what_was_missed_then_goes_live(live, sockets, notifier):
    """A publisher runs throughout; the reconnected client sees every id exactly once."""
    publishing = gevent.spawn(_publish_steadily, notifier, "sip", 0.002)
    try:
        client = connect(live, sockets)
        ack = client.subscribe(["sip"])
        first = client.until(lambda m: len([x for x in client.seen if "channel" in x]) >= 20)
        before = [m["id"] for m in first if m.get("channel") == "sip"]
        assert before[0] > ack["data"]["last_id"]["sip"]
        client.close()
        gevent.sleep(0.3)  # messages go by while the client is away

        again = connect(live, sockets)
        again.subscribe(["sip"], since={"sip": before[-1]})
        after = [m["id"] for m in again.until(lambda m: len(again.seen) >= 250)
                 if m.get("channel") == "sip"]
    finally:
        publishing.kill()
    assert before + after == list(range(before[0], before[0] + len(before) + len(after)))


def _publish_steadily(notifier, channel, pause):
    n = 0
    while True:
        n += 1
        notifier.publish(channel, "gateway.state", {"n": n})
        gevent.sleep(pause)


def test_resume_from_an_id_no_longer_kept_is_told_to_resync(live, sockets, notifier,
                                                             redis_server):
    first = notifier.publish("recordings", "recording.ready", {"id": "old"})
    for n in range(5):
        last = notifier.publish("recordings", "recording.ready", {"n": n})
    redis_server.client().xtrim(stream_key("recordings"), maxlen=2, approximate=False)

    client = connect(live, sockets)
    client.subscribe(["recordings"], since={"recordings": first})
    resync = client.until(lambda m: m["type"] == "resync_required")[-1]
    assert resync["data"] == {"channel": "recordings", "since": first, "reason": "history_trimmed",
                              "oldest_id": last - 1, "last_id": last}
    future = client.request({"type": "subscribe", "channels": ["recordings"],
                             "since": {"recordings": last + 1000}}, "subscribed")
    assert future["data"]["last_id"] == {"recordings": last}
    assert client.recv()["data"]["reason"] == "unknown_id"
    live_id = notifier.publish("recordings", "recording.ready", {"n": "live"})
    assert client.until(of_channel("recordings"))[-1]["id"] == live_id


# ----- slow and silent clients -------------------------------------------------
def test_a_slow_client_does_not_delay_a_fast_one_and_is_dropped_with_a_reason(
        live, sockets, notifier):
    slow = connect(live, sockets, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)])
    fast = connect(live, sockets)
    for client in (slow, fast):
        client.subscribe(["sip"])
    payload = "x" * 64 * 1024
    ids = []

    def flood():
        for n in range(200):
            ids.append(notifier.publish("sip", "gateway.state", {"n": n, "pad": payload}))
            gevent.sleep(0.003)  # the fast client reads meanwhile; the slow one never does
    flooding = gevent.spawn(flood)
    # The last message can arrive before publish() has returned its id: wait on its n.
    received = fast.until(lambda m: (m.get("data") or {}).get("n") == 199, timeout=30)
    flooding.get()
    assert [m["id"] for m in received if m.get("channel") == "sip"] == ids

    # The slow client finally reads: some backlog, then the close frame saying why.
    slow.ws.settimeout(10)
    texts = 0
    frame = slow.ws.recv_frame()
    while frame.opcode != websocket.ABNF.OPCODE_CLOSE:
        texts += frame.opcode == websocket.ABNF.OPCODE_TEXT
        frame = slow.ws.recv_frame()
    assert close_code(frame) == 4008 and b"too slow" in frame.data
    assert texts < len(ids)


def test_a_client_that_stops_answering_pings_is_dropped(live, sockets):
    silent, polite = connect(live, sockets), connect(live, sockets)
    # websocket-client answers pings as it reads: the polite client keeps reading.
    reading = gevent.spawn(polite.until, lambda m: False, HEARTBEAT_MS * 4 / 1000)
    silent.ws.settimeout(10)
    pings = 0
    frame = silent.ws.recv_frame()  # recv_frame never answers pings
    while frame.opcode != websocket.ABNF.OPCODE_CLOSE:
        pings += frame.opcode == websocket.ABNF.OPCODE_PING
        frame = silent.ws.recv_frame()
    assert pings >= 1 and close_code(frame) == 4001 and b"heartbeat" in frame.data
    reading.kill()
    # The polite client, which answered (websocket-client pongs as it reads), is still served.
    assert polite.request({"type": "ping"}, "pong")["type"] == "pong"


# ----- metrics and performance ------------------------------------------------
def test_metrics_channel_and_the_realtime_endpoint_show_the_same_figures(live, sockets,
                                                                          bound_db):
    client = connect(live, sockets)
    client.subscribe(["metrics"])
    call = live.post("/api/calls/start", {"to": "1000", "gateway": "gw1"}).json()
    try:
        with client.reading():
            wait_until(lambda: live.get(f"/api/calls/{call['id']}").json()["status"]
                       == "in-progress", 10, message="the call to be answered")
        # What the quality work stores on a live call (its last sample); metrics average it.
        live_quality = {"live": {"samples": 1, "last": {"mos": 4.1}, "alert": None}}
        Call.update(quality=live_quality).where(Call.id == call["id"]).execute()
        message = client.until(lambda m: m.get("type") == "metrics.snapshot"
                               and m["data"]["active_calls"] >= 1
                               and m["data"]["mos_samples"] >= 1
                               and m["data"]["freeswitch"]["state"] == "connected"
                               and m["data"]["websocket_clients"] >= 1)[-1]
        figures = message["data"]
        assert figures["average_mos"] == 4.1
        assert figures["calls_started_5m"] >= 1
        assert set(figures["queues"]) == {"default", "recordings", "quality", "transcripts"}
        assert figures["publisher"]["rss_mb"] > 10 and figures["web_processes"] >= 1

        def rest_matches_a_message():
            rest = live.get("/api/calls/metrics/realtime")
            assert rest.status_code == 200, rest.text
            recent = [m["data"] for m in client.seen if m.get("type") == "metrics.snapshot"]
            client.recv()
            return rest.json() in recent
        wait_until(rest_matches_a_message, 10, message="REST figures equal to a channel message")
    finally:
        live.post(f"/api/calls/{call['id']}/end", {})


def test_two_events_processes_publish_metrics_once(live, second, sockets):
    client = connect(live, sockets)
    client.subscribe(["metrics"])
    try:
        with client.reading():
            second.start_events()
            wait_until(lambda: "events process started" in second.log("events"), 20,
                       message="the second events process to start")

        def snapshots():
            return [m for m in client.seen if m.get("type") == "metrics.snapshot"]
        seen_before = len(snapshots())
        client.until(lambda m: len(snapshots()) >= seen_before + 6)
        publishers = {m["data"]["publisher"]["process"] for m in snapshots()[seen_before:]}
        assert len(publishers) == 1
        # The leader goes away: the other process takes over.
        leader = publishers.pop()
        leader_stack = live if leader.endswith(f":{live.procs['events'][0].pid}") else second
        with client.reading():
            leader_stack.stop("events")
        takeover = client.until(lambda m: m.get("type") == "metrics.snapshot"
                                and m["data"]["publisher"]["process"] != leader, timeout=15)
        assert isinstance(takeover[-1]["data"]["freeswitch"]["state"], str)
    finally:
        if "events" not in live.procs:
            live.start_events()
        second.stop("events")


def test_slow_requests_and_high_memory_are_reported_on_performance(second, sockets):
    client = connect(second, sockets)
    # Alerts are throttled per process, and this one checked its memory at its
    # first request (start-up): resume from before it started to see that alert.
    client.subscribe(["performance"], since={"performance": second.performance_before})
    memory = client.until(lambda m: m.get("type") == "performance.memory_high"
                          and m["data"]["role"] == "web")[-1]["data"]
    assert memory["rss_mb"] > memory["threshold_mb"] == 1

    assert second.get("/api/calls/history").status_code == 200
    slow = client.until(lambda m: m.get("type") == "performance.slow_request"
                        and m["data"]["route"] == "/api/calls/history")[-1]["data"]
    assert slow["method"] == "GET" and slow["status"] == 200 and slow["duration_ms"] >= 0
    assert slow["threshold_ms"] == 0 and "?" not in slow["route"]


def test_a_job_backlog_is_reported_on_performance(live, sockets, redis_server):
    client = connect(live, sockets)
    client.subscribe(["performance", "metrics"])
    queue = Queue("default", connection=redis_server.client())
    for _ in range(3):
        queue.enqueue("os.getcwd")
    try:
        alert = client.until(lambda m: m.get("type") == "performance.queue_backlog")[-1]["data"]
        # >= 3: the events process's periodic jobs (queue KPI rollups) may wait there too,
        # as no worker runs in this stack.
        assert alert["queue"] == "default" and alert["depth"] >= 3 and alert["threshold"] == 2
    finally:
        queue.empty()


# ----- Redis goes away and comes back ----------------------------------------
def test_redis_restart_degrades_the_feed_then_it_resumes(live, sockets, redis_server):
    client = connect(live, sockets)
    client.subscribe(["calls"])
    before = Publisher(redis_server.client()).publish("calls", "call.updated", {"id": "before"})
    client.until(lambda m: m.get("id") == before)
    redis_server.stop()
    try:
        degraded = client.until(lambda m: m["type"] == "degraded")[-1]
        assert degraded["data"]["reason"] == "redis_unavailable"
        assert live.get("/api/calls/history").status_code == 200  # HTTP keeps serving
        late = connect(live, sockets)
        assert late.seen[0]["data"]["degraded"] is True
        assert late.subscribe(["calls"])["data"]["degraded"] is True
    finally:
        redis_server.start()
    recovered = client.until(lambda m: m["type"] == "recovered", timeout=20)[-1]
    # A restarted Redis without persistence lost the ids: the client is told to resync.
    assert recovered["data"]["resync"] == ["calls"]
    seq = Publisher(redis_server.client()).publish("calls", "call.updated", {"id": "after"})
    for each in (client, late):
        assert each.until(of_channel("calls"), timeout=10)[-1]["id"] == seq
