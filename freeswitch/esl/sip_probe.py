"""Network probes of a SIP peer: DNS, SIP OPTIONS (UDP/TCP/TLS), TLS handshake, WebSocket upgrade.

Pure network code: no database, no FreeSWITCH. Every probe takes a timeout,
bounds its socket operations by it and is also cut by a gevent.Timeout (DNS
resolution has no timeout of its own), and returns a `ProbeStep` instead of
raising: a failure is a result (ok=False with a detail), never an exception.
"""
import base64
import hashlib
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field

import gevent

USER_AGENT = "callcenter-sip-probe/1.0"
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_SIP_MESSAGE = 65535
# RFC 3261 timer A: retransmit an unanswered UDP request after T1, doubling.
T1 = 0.5
T2 = 4.0


@dataclass
class ProbeStep:
    """One step of a connection test as the API lists it."""

    step: str
    ok: bool = None  # None: skipped
    detail: str = ""
    time_ms: float = 0.0
    data: dict = field(default_factory=dict)

    @property
    def status(self):
        return "skipped" if self.ok is None else ("ok" if self.ok else "failed")

    def as_dict(self):
        return {"step": self.step, "status": self.status, "ok": self.ok, "detail": self.detail,
                "time_ms": round(self.time_ms, 2), **self.data}


def skipped(step, reason):
    return ProbeStep(step, None, reason)


class _Clock:
    def __init__(self):
        self.started = time.monotonic()

    def ms(self):
        return (time.monotonic() - self.started) * 1000


def _guarded(step, timeout, probe):
    """Run probe() -> ProbeStep, cut at timeout (+ a little slack) by a gevent.Timeout."""
    clock = _Clock()
    guard = gevent.Timeout(timeout + 0.25)
    try:
        with guard:
            result = probe()
    except gevent.Timeout as fired:
        if fired is not guard:  # someone else's deadline: not ours to swallow
            raise
        return ProbeStep(step, False, f"no answer within {timeout:g} s", clock.ms())
    except OSError as exc:  # e.g. no IPv6 on this host: socket() itself fails
        return ProbeStep(step, False, f"network error: {exc}", clock.ms())
    result.time_ms = clock.ms()
    return result


# ----- DNS -------------------------------------------------------------------------
def resolve(host, port, transport, timeout):
    """Addresses of host (IPv4 first); the step and the list of (family, address)."""
    socktype = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    found = []

    def probe():
        try:
            infos = socket.getaddrinfo(host, port, 0, socktype)
        except socket.gaierror as exc:
            return ProbeStep("dns", False, f"cannot resolve {host}: {exc.strerror or exc}")
        except UnicodeError:
            return ProbeStep("dns", False, f"cannot resolve {host}: not a valid name")
        for family, _, _, _, sockaddr in sorted(infos, key=lambda i: i[0] != socket.AF_INET):
            if (family, sockaddr[0]) not in found:
                found.append((family, sockaddr[0]))
        addresses = [address for _, address in found]
        literal = addresses == [host]
        detail = "IP address literal" if literal else f"{host} -> {', '.join(addresses)}"
        return ProbeStep("dns", True, detail, data={"addresses": addresses})

    return _guarded("dns", timeout, probe), found


# ----- SIP messages ------------------------------------------------------------------
def _uri_host(host):
    return f"[{host}]" if ":" in host else host


def build_options(target_host, port, transport, local_ip, local_port, call_id, branch, tag):
    """A SIP OPTIONS request (RFC 3261 section 11) as bytes."""
    via_transport = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}[transport]
    uri_params = "" if transport == "udp" else f";transport={transport}"
    lines = [
        f"OPTIONS sip:{_uri_host(target_host)}:{port}{uri_params} SIP/2.0",
        f"Via: SIP/2.0/{via_transport} {_uri_host(local_ip)}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:probe@{_uri_host(local_ip)}>;tag={tag}",
        f"To: <sip:{_uri_host(target_host)}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:probe@{_uri_host(local_ip)}:{local_port}{uri_params}>",
        "Accept: application/sdp",
        f"User-Agent: {USER_AGENT}",
        "Content-Length: 0",
        "", "",
    ]
    return "\r\n".join(lines).encode("utf-8")


_COMPACT = {"i": "call-id", "v": "via", "l": "content-length", "f": "from", "t": "to"}


def parse_sip_response(data):
    """(status code, reason, {lower-case header: value}) of a SIP response, or None."""
    try:
        text = data.decode("utf-8", "replace")
    except AttributeError:
        text = data
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            headers.setdefault(_COMPACT.get(key, key), value.strip())
    return int(parts[1]), (parts[2] if len(parts) > 2 else ""), headers


def _new_ids(local_ip):
    return (f"{secrets.token_hex(12)}@{local_ip}", "z9hG4bK" + secrets.token_hex(10),
            secrets.token_hex(6))


def _answer_step(code, reason, headers, rtt_ms, attempts, transport):
    server = headers.get("server") or headers.get("user-agent")
    data = {"status_code": code, "reason": reason, "rtt_ms": round(rtt_ms, 2),
            "attempts": attempts, "transport": transport}
    if server:
        data["server"] = server[:120]
    # Any final answer proves a SIP server is there; 5xx/6xx says it will not serve us.
    ok = code < 500
    detail = f"SIP {code} {reason} in {rtt_ms:.1f} ms" + (f" from {server[:60]}" if server else "")
    return ProbeStep("sip_options", ok, detail, data=data)


def options_udp(address, family, port, target_host, timeout):
    """Send OPTIONS over UDP (retransmitting per timer A) and wait for a final response."""

    def probe():
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            return _options_udp(sock, address, port, target_host, timeout)
        finally:
            sock.close()

    return _guarded("sip_options", timeout, probe)


def _options_udp(sock, address, port, target_host, timeout):
    try:
        sock.connect((address, port))  # connected: ICMP port unreachable comes back as an error
    except OSError as exc:
        return ProbeStep("sip_options", False, f"cannot send to {address}:{port}: {exc}")
    local_ip, local_port = sock.getsockname()[:2]
    call_id, branch, tag = _new_ids(local_ip)
    message = build_options(target_host, port, "udp", local_ip, local_port, call_id, branch, tag)
    started = time.monotonic()
    deadline = started + timeout
    next_send, interval, attempts = started, T1, 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            return ProbeStep("sip_options", False,
                             f"no SIP response from {address}:{port} over UDP within "
                             f"{timeout:g} s ({attempts} attempts)",
                             data={"attempts": attempts, "transport": "udp"})
        try:
            if now >= next_send:
                sock.send(message)
                attempts += 1
                next_send, interval = now + interval, min(interval * 2, T2)
            sock.settimeout(max(0.01, min(deadline, next_send) - time.monotonic()))
            data = sock.recv(MAX_SIP_MESSAGE)
        except TimeoutError:
            continue
        except ConnectionRefusedError:
            return ProbeStep("sip_options", False,
                             f"port unreachable: nothing listens on {address}:{port}/udp "
                             "(ICMP port unreachable)", data={"attempts": attempts,
                                                               "transport": "udp"})
        except OSError as exc:
            return ProbeStep("sip_options", False, f"UDP error talking to {address}:{port}: "
                             f"{exc}", data={"attempts": attempts, "transport": "udp"})
        parsed = parse_sip_response(data)
        if parsed is None or parsed[2].get("call-id") != call_id or parsed[0] < 200:
            continue  # a stray datagram, or a provisional answer: wait for the final one
        code, reason, headers = parsed
        return _answer_step(code, reason, headers, (time.monotonic() - started) * 1000,
                            attempts, "udp")


# ----- streams: TCP, TLS, WebSocket ----------------------------------------------------
def tcp_connect(address, family, port, timeout):
    """Open a TCP connection; the step and the socket (None on failure)."""
    opened = []

    def probe():
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except ConnectionRefusedError:
            sock.close()
            return ProbeStep("tcp_connect", False,
                             f"connection refused: nothing listens on {address}:{port}/tcp")
        except TimeoutError:
            sock.close()
            return ProbeStep("tcp_connect", False, f"no answer from {address}:{port} within "
                             f"{timeout:g} s (filtered?)")
        except OSError as exc:
            sock.close()
            return ProbeStep("tcp_connect", False, f"cannot connect to {address}:{port}: {exc}")
        opened.append(sock)
        return ProbeStep("tcp_connect", True, f"connected to {address}:{port}")

    step = _guarded("tcp_connect", timeout, probe)
    sock = opened[0] if opened else None
    if sock is not None and not step.ok:  # cut by the guard after connecting
        sock.close()
        sock = None
    return step, sock


def tls_handshake(sock, server_hostname, timeout, verify=True):
    """TLS over a connected socket; the step and the TLS socket (None on failure)."""
    wrapped = []

    def probe():
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        sock.settimeout(timeout)
        try:
            # An IP address here is checked against the certificate's IP entries
            # (Python sends no SNI for it).
            tls = context.wrap_socket(sock, server_hostname=server_hostname)
        except ssl.SSLCertVerificationError as exc:
            return ProbeStep("tls_handshake", False,
                             f"certificate not accepted: {exc.verify_message or exc}")
        except (ssl.SSLError, OSError, ValueError) as exc:
            return ProbeStep("tls_handshake", False, f"TLS handshake failed: {exc}")
        wrapped.append(tls)
        data = {"tls_version": tls.version(), "cipher": (tls.cipher() or [None])[0]}
        cert = tls.getpeercert() if verify else None
        if cert:
            subject = dict(item[0] for item in cert.get("subject", ()))
            data["certificate"] = {"subject": subject.get("commonName"),
                                   "expires": cert.get("notAfter")}
        verified = "verified" if verify else "NOT verified"
        return ProbeStep("tls_handshake", True,
                         f"{data['tls_version']} with {data['cipher']}, certificate {verified}",
                         data=data)

    step = _guarded("tls_handshake", timeout, probe)
    tls = wrapped[0] if wrapped and step.ok else None
    return step, tls


def _read_message(sock, deadline):
    """One SIP/HTTP message from a stream: the head, and a body per Content-Length."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > MAX_SIP_MESSAGE:
            raise ValueError("message too large")
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    parsed = parse_sip_response(head + b"\r\n\r\n")
    length = int((parsed[2] if parsed else {}).get("content-length", "0") or 0)
    while len(rest) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return head, rest[length:]


def options_stream(sock, target_host, port, transport, timeout):
    """OPTIONS over an open TCP or TLS connection, and its final response."""

    def probe():
        local_ip, local_port = sock.getsockname()[:2]
        call_id, branch, tag = _new_ids(local_ip)
        message = build_options(target_host, port, transport, local_ip, local_port, call_id,
                                branch, tag)
        started = time.monotonic()
        deadline = started + timeout
        try:
            sock.settimeout(timeout)
            sock.sendall(message)
            while True:
                head, _ = _read_message(sock, deadline)
                parsed = parse_sip_response(head + b"\r\n\r\n")
                if parsed is None:
                    return ProbeStep("sip_options", False, "the peer answered, but not in SIP")
                if parsed[0] >= 200 and parsed[2].get("call-id") == call_id:
                    code, reason, headers = parsed
                    return _answer_step(code, reason, headers,
                                        (time.monotonic() - started) * 1000, 1, transport)
        except TimeoutError:
            return ProbeStep("sip_options", False, f"no SIP response over {transport.upper()} "
                             f"within {timeout:g} s", data={"transport": transport})
        except (OSError, ValueError) as exc:
            return ProbeStep("sip_options", False, f"SIP over {transport.upper()} failed: {exc}",
                             data={"transport": transport})

    return _guarded("sip_options", timeout, probe)


def websocket_upgrade(sock, host, port, timeout, path="/", secure=False):
    """HTTP/1.1 upgrade to WebSocket with the `sip` subprotocol (RFC 7118)."""

    def probe():
        key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        default_port = 443 if secure else 80
        host_header = _uri_host(host) + ("" if port == default_port else f":{port}")
        request = (f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n"
                   f"User-Agent: {USER_AGENT}\r\n\r\n").encode("ascii")
        deadline = time.monotonic() + timeout
        try:
            sock.settimeout(timeout)
            sock.sendall(request)
            head, _ = _read_message(sock, deadline)
        except TimeoutError:
            return ProbeStep("websocket_upgrade", False, f"no HTTP answer within {timeout:g} s")
        except (OSError, ValueError) as exc:
            return ProbeStep("websocket_upgrade", False, f"upgrade failed: {exc}")
        return _upgrade_result(head.decode("latin-1"), key)

    return _guarded("websocket_upgrade", timeout, probe)


def _upgrade_result(head, key):
    lines = head.split("\r\n")
    status = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    code = int(status[1]) if len(status) > 1 and status[1].isdigit() else 0
    data = {"status_code": code, "subprotocol": headers.get("sec-websocket-protocol")}
    if code != 101:
        return ProbeStep("websocket_upgrade", False,
                         f"HTTP {lines[0][9:].strip() or 'answer'} instead of 101 Switching "
                         "Protocols", data=data)
    expected = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
    if headers.get("sec-websocket-accept") != expected:
        return ProbeStep("websocket_upgrade", False, "101 with a wrong Sec-WebSocket-Accept",
                         data=data)
    if (headers.get("sec-websocket-protocol") or "").lower() != "sip":
        return ProbeStep("websocket_upgrade", False,
                         "upgraded, but the server did not accept the `sip` subprotocol",
                         data=data)
    return ProbeStep("websocket_upgrade", True, "101 Switching Protocols (subprotocol sip)",
                     data=data)
