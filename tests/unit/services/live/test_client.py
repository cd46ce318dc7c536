"""What a WebSocket client receives: valid frames, its own channels, a clear close if slow."""
import json
import socket
from types import SimpleNamespace

import gevent
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from services.live.client import CLOSE_TOO_SLOW, LiveClient, control_frame, text_frame
from services.live.history import LiveMessage


def browser_side():
    """A wsproto client and server that completed the handshake in memory."""
    browser, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(browser.send(Request(host="localhost", target="/ws")))
    list(server.events())
    browser.receive_data(server.send(AcceptConnection()))
    list(browser.events())
    return browser, server


def read_events(browser, data):
    browser.receive_data(data)
    return list(browser.events())


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_a_text_frame_of_any_size_is_read_whole_by_a_client(size):
    browser, _ = browser_side()
    payload = ("x" * size).encode()

    (event,) = read_events(browser, text_frame(payload))

    assert isinstance(event, TextMessage) and event.message_finished
    assert event.data == payload.decode()


def test_a_protocol_message_has_type_data_and_ref_but_no_channel_or_id():
    browser, _ = browser_side()

    (with_ref,) = read_events(browser, control_frame("pong", {"ts": "now"}, ref="r1"))
    (without,) = read_events(browser, control_frame("welcome"))

    assert json.loads(with_ref.data) == {"type": "pong", "data": {"ts": "now"}, "ref": "r1"}
    assert json.loads(without.data) == {"type": "welcome", "data": {}}


def message(channel, seq, **data):
    raw = json.dumps({"id": seq, "channel": channel, "type": "t", "data": data}).encode()
    return LiveMessage.decode(channel, raw)


@pytest.fixture
def connection():
    """A LiveClient on one end of a socket pair; the browser reads the other end."""
    ours, theirs = socket.socketpair()
    browser, server = browser_side()
    ws = SimpleNamespace(sock=ours, ws=server, pong_received=True)
    yield ws, theirs, browser
    ours.close()
    theirs.close()


def received(theirs, browser, count):
    events = []
    with gevent.Timeout(5):
        while len(events) < count:
            events += read_events(browser, theirs.recv(1 << 20))
    return events


def test_a_client_gets_only_its_channels_and_what_it_may_see(connection):
    ws, theirs, browser = connection
    client = LiveClient(ws, queue_size=10)
    client.channels.add("calls")

    client.deliver([message("sip", 1), message("calls", 2, agent="A1"),
                    message("calls", 3, agent="A2")],
                   allow=lambda principal, envelope: envelope["data"]["agent"] == "A1")

    (event,) = received(theirs, browser, 1)
    assert json.loads(event.data)["id"] == 2


def test_a_client_that_falls_too_far_behind_is_closed_with_a_reason(connection):
    ws, theirs, browser = connection
    ours = ws.sock
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client = LiveClient(ws, queue_size=3)
    client.channels.add("calls")
    big = "x" * 200_000  # more than the socket takes: the rest waits in the queue

    for seq in range(1, 6):
        client.deliver([message("calls", seq, pad=big)], allow=lambda p, e: True)

    assert client.closing and "too slow" in client.close_reason
    texts, parts, close = [], [], None
    with gevent.Timeout(5):
        while close is None:
            for event in read_events(browser, theirs.recv(1 << 20)):
                if isinstance(event, CloseConnection):
                    close = event
                elif isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        texts.append("".join(parts))
                        parts = []
    assert close.code == CLOSE_TOO_SLOW and "more than 3 messages waiting" in close.reason
    # The message already half-written arrives whole; those still waiting are discarded.
    assert [json.loads(text)["id"] for text in texts] == [1]
