"""Connection probes against real sockets on loopback: a SIP responder, a closed port, silence."""
import socket
import time

import gevent.server
import pytest

from freeswitch.esl import sip_probe
from tests.conftest import free_port
from tests.integration.sip_responder import SipResponder


@pytest.fixture
def responder():
    started = []

    def make(**options):
        started.append(SipResponder(**options).start())
        return started[-1]

    yield make
    for peer in started:
        peer.stop()


def test_udp_options_gets_200_ok_and_round_trip_time(responder):
    peer = responder(code=200)
    step = sip_probe.options_udp("127.0.0.1", socket.AF_INET, peer.port, "127.0.0.1", 2.0)
    assert step.ok is True
    assert step.data["status_code"] == 200
    assert 0 < step.data["rtt_ms"] < 2000
    assert step.data["server"] == "cc-test-responder/1.0"
    request = peer.requests[0].decode()
    assert request.startswith(f"OPTIONS sip:127.0.0.1:{peer.port} SIP/2.0\r\n")
    for header in ("Via: SIP/2.0/UDP 127.0.0.1:", "Max-Forwards: 70", "CSeq: 1 OPTIONS",
                   "Call-ID: ", "From: <sip:probe@127.0.0.1>;tag=", "Content-Length: 0"):
        assert header in request
    assert ";branch=z9hG4bK" in request


def test_udp_options_retransmits_when_the_first_datagram_is_lost(responder):
    peer = responder(drop_first=1)
    step = sip_probe.options_udp("127.0.0.1", socket.AF_INET, peer.port, "127.0.0.1", 3.0)
    assert step.ok is True and step.data["attempts"] == 2
    assert step.data["rtt_ms"] >= 400  # answered the retransmission after T1 = 500 ms


def test_udp_options_reports_an_error_answer_as_a_failed_step(responder):
    peer = responder(code=503, reason="Service Unavailable")
    step = sip_probe.options_udp("127.0.0.1", socket.AF_INET, peer.port, "127.0.0.1", 2.0)
    assert step.ok is False
    assert step.data["status_code"] == 503
    assert "503 Service Unavailable" in step.detail


def test_udp_options_to_nothing_listening_fails_cleanly_and_fast():
    port = free_port()
    started = time.monotonic()
    step = sip_probe.options_udp("127.0.0.1", socket.AF_INET, port, "127.0.0.1", 1.0)
    assert step.ok is False
    assert "nothing listens" in step.detail or "no SIP response" in step.detail
    assert time.monotonic() - started < 1.5
    assert step.time_ms < 1500


def test_udp_options_to_a_silent_peer_fails_within_its_timeout():
    silent = gevent.server.DatagramServer(("127.0.0.1", 0), lambda data, address: None)
    silent.start()
    try:
        started = time.monotonic()
        step = sip_probe.options_udp("127.0.0.1", socket.AF_INET, silent.server_port,
                                     "127.0.0.1", 0.8)
        elapsed = time.monotonic() - started
    finally:
        silent.stop()
    assert step.ok is False
    assert "no SIP response" in step.detail and "within 0.8 s" in step.detail
    assert 0.7 < elapsed < 1.3
    assert step.data["attempts"] >= 2


def test_tcp_connect_then_options_over_the_stream(responder):
    peer = responder(transport="tcp", code=200)
    connect, sock = sip_probe.tcp_connect("127.0.0.1", socket.AF_INET, peer.port, 2.0)
    assert connect.ok is True
    try:
        step = sip_probe.options_stream(sock, "127.0.0.1", peer.port, "tcp", 2.0)
    finally:
        sock.close()
    assert step.ok is True and step.data["status_code"] == 200
    assert "Via: SIP/2.0/TCP" in peer.requests[0].decode()
    assert f"OPTIONS sip:127.0.0.1:{peer.port};transport=tcp SIP/2.0" in peer.requests[0].decode()


def test_tcp_connect_to_a_closed_port_is_refused():
    step, sock = sip_probe.tcp_connect("127.0.0.1", socket.AF_INET, free_port(), 1.0)
    assert sock is None
    assert step.ok is False and "connection refused" in step.detail


def test_tls_handshake_against_a_plain_tcp_peer_fails_cleanly(responder):
    peer = responder(transport="tcp")
    connect, sock = sip_probe.tcp_connect("127.0.0.1", socket.AF_INET, peer.port, 1.0)
    step, tls = sip_probe.tls_handshake(sock, "127.0.0.1", 1.0)
    sock.close()
    assert connect.ok and tls is None
    assert step.ok is False and "TLS" in step.detail


def test_websocket_upgrade_with_sip_subprotocol(responder):
    peer = responder(transport="ws")
    _, sock = sip_probe.tcp_connect("127.0.0.1", socket.AF_INET, peer.port, 1.0)
    try:
        step = sip_probe.websocket_upgrade(sock, "127.0.0.1", peer.port, 1.0, path="/ws")
    finally:
        sock.close()
    assert step.ok is True and step.data["status_code"] == 101
    request = peer.requests[0].decode()
    assert request.startswith("GET /ws HTTP/1.1\r\n")
    assert "Sec-WebSocket-Protocol: sip" in request and "Upgrade: websocket" in request


def test_websocket_upgrade_without_the_sip_subprotocol_fails(responder):
    peer = responder(transport="ws", subprotocol=None)
    _, sock = sip_probe.tcp_connect("127.0.0.1", socket.AF_INET, peer.port, 1.0)
    try:
        step = sip_probe.websocket_upgrade(sock, "127.0.0.1", peer.port, 1.0)
    finally:
        sock.close()
    assert step.ok is False and "subprotocol" in step.detail


def test_dns_of_an_ip_literal_and_of_an_unresolvable_name():
    step, addresses = sip_probe.resolve("127.0.0.1", 5060, "udp", 1.0)
    assert step.ok is True and addresses == [(socket.AF_INET, "127.0.0.1")]
    started = time.monotonic()
    step, addresses = sip_probe.resolve("no-such-host.invalid", 5060, "udp", 1.0)
    assert step.ok is False and addresses == []
    assert time.monotonic() - started < 1.5
