"""A small SIP peer on loopback for tests: answers OPTIONS over UDP or TCP, and WebSocket upgrades.

SipResponder(transport="udp", code=200).start() listens on 127.0.0.1:<free
port>; every request it receives is kept in .requests (bytes). It answers
with `code`/`reason` after `delay` seconds, ignores the first `drop_first`
UDP datagrams (to exercise retransmission), and with transport="ws" performs
the RFC 6455 handshake with the `sip` subprotocol.
"""
import base64
import hashlib

import gevent
import gevent.server

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _headers(text):
    lines = text.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return headers


def sip_response(request, code=200, reason="OK"):
    """The response to a SIP request: Via, From, To (+tag), Call-ID, CSeq copied per RFC 3261."""
    headers = _headers(request.decode("utf-8", "replace").split("\r\n\r\n", 1)[0])
    to = headers.get("to", "")
    if ";tag=" not in to:
        to += ";tag=responder1"
    lines = [f"SIP/2.0 {code} {reason}",
             f"Via: {headers.get('via', '')};received=127.0.0.1",
             f"From: {headers.get('from', '')}", f"To: {to}",
             f"Call-ID: {headers.get('call-id', '')}", f"CSeq: {headers.get('cseq', '')}",
             "Server: cc-test-responder/1.0", "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
             "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode("utf-8")


class SipResponder:
    def __init__(self, transport="udp", code=200, reason="OK", delay=0.0, drop_first=0,
                 subprotocol="sip"):
        self.transport = transport
        self.code, self.reason = code, reason
        self.delay = delay
        self.drop_first = drop_first
        self.subprotocol = subprotocol
        self.requests = []
        self._server = None

    @property
    def port(self):
        return self._server.server_port

    def start(self):
        if self.transport == "udp":
            self._server = gevent.server.DatagramServer(("127.0.0.1", 0), self._datagram)
        else:
            self._server = gevent.server.StreamServer(("127.0.0.1", 0), self._stream)
        self._server.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.stop()
            self._server = None

    # ----- UDP -----
    def _datagram(self, data, address):
        self.requests.append(data)
        if len(self.requests) <= self.drop_first:
            return
        if self.delay:
            gevent.sleep(self.delay)
        if self._server is not None:
            self._server.sendto(sip_response(data, self.code, self.reason), address)

    # ----- TCP and WebSocket -----
    def _stream(self, sock, address):
        buffer = b""
        try:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                buffer += chunk
            self.requests.append(buffer)
            if self.delay:
                gevent.sleep(self.delay)
            if self.transport == "ws":
                sock.sendall(self._upgrade(buffer))
            else:
                sock.sendall(sip_response(buffer, self.code, self.reason))
            gevent.sleep(0.2)  # let the client read before the close
        finally:
            sock.close()

    def _upgrade(self, request):
        headers = _headers(request.decode("latin-1"))
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Accept: {accept}"]
        if self.subprotocol:
            lines.append(f"Sec-WebSocket-Protocol: {self.subprotocol}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
