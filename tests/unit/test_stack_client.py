"""The tests' HTTP client (tests.conftest.Stack) sends a request again, once, when the
kept-alive connection it went out on was being closed by the server (gunicorn closes one
idle for 2 s): such a request was never read. Without this a test that pauses ~2 s between
requests fails now and then on a slow machine ("Connection reset by peer" in CI)."""
import socket
import tempfile

import gevent
import pytest
import requests

from tests.conftest import Stack, free_port


@pytest.fixture
def closing_server():
    """Answers one request on a kept-alive connection, then closes it as the next request
    arrives, unread (the kernel answers with RST), and answers a new connection normally."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", free_port()))
    listener.listen(4)
    received = []

    def serve():
        first, _ = listener.accept()
        first.recv(65536)
        first.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
        first.recv(1, socket.MSG_PEEK)  # the next request is there: close without reading
        first.close()
        second, _ = listener.accept()
        received.append(second.recv(65536).split(b"\r\n")[0])
        second.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nagain")
        second.close()
    server = gevent.spawn(serve)
    yield listener.getsockname()[1], received
    server.kill()
    listener.close()


def test_a_request_meeting_a_closing_keep_alive_connection_is_sent_once_more(closing_server):
    port, received = closing_server
    stack = Stack({"PORT": str(port)}, tempfile.mkdtemp())
    assert stack.get("/api/health").text == "first"
    resp = stack.post("/api/calls/x/recording/stop", {})
    assert resp.text == "again" and received == [b"POST /api/calls/x/recording/stop HTTP/1.1"]


def test_other_connection_failures_are_not_hidden():
    stack = Stack({"PORT": str(free_port())}, tempfile.mkdtemp())  # nobody listens
    with pytest.raises(requests.ConnectionError):
        stack.get("/api/health")
