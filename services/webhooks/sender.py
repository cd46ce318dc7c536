"""Sending one signed delivery: Standard Webhooks headers, an address check, no redirects.

The URL's host is resolved on every attempt and each address checked: unless
WEBHOOK_ALLOW_PRIVATE, loopback, private, link-local, shared, multicast,
reserved and unspecified addresses are refused. The connection then goes to the
address that was checked (never a second lookup a DNS rebinding could answer
differently), with the Host header and TLS SNI/certificate name of the URL.
Redirects are not followed (a 3xx is a failed attempt). Nothing here logs the
secret, the signature or the body.
"""
import datetime
import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook as StandardWebhook

MAX_RESPONSE_BYTES = 64 * 1024  # read (and then drop) at most this much of an answer
USER_AGENT = "callcenter-webhooks/1"


class Refused(Exception):
    """The URL may not be delivered to (scheme, address): a failed attempt with this reason;
    final unless it may pass later (a name that does not resolve now)."""

    def __init__(self, reason, final=True):
        super().__init__(reason)
        self.final = final


class Outcome:
    """How one attempt went: ok (2xx), the status code if any, the reason if not ok."""

    __slots__ = ("ok", "code", "error", "final")

    def __init__(self, ok, code=None, error=None, final=False):
        self.ok, self.code, self.error, self.final = ok, code, error, final


def address_refused(ip):
    """Why an address is not deliverable to by default, or None when it is public."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    for check in ("is_loopback", "is_link_local", "is_multicast", "is_unspecified",
                  "is_reserved", "is_private"):
        if getattr(address, check):
            return f"{address} is a {check[3:].replace('_', '-')} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def checked_address(host, port, allow_private):
    """Resolve host now and check every address; the one to connect to, or raise Refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"cannot resolve {host}: {exc}", final=False) from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise Refused(f"{host} has no address", final=False)
    if not allow_private:
        for ip in addresses:
            reason = address_refused(ip)
            if reason:
                raise Refused(f"refused: {host} resolves to {reason} (WEBHOOK_ALLOW_PRIVATE "
                              "is off)")
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to an address already checked; the Host header stays the URL's."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address already checked; SNI and the certificate name stay the URL's."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def signed_headers(secret, message_id, body):
    """The Standard Webhooks headers for body, signed now with the whsec_ secret."""
    now = datetime.datetime.now(datetime.timezone.utc)
    signature = StandardWebhook(secret).sign(message_id, now, body)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature, "Content-Type": "application/json",
            "User-Agent": USER_AGENT}


def split_url(url):
    """(scheme, host, port, path) of a deliverable URL, or raise Refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("the URL must be http(s)://host/...")
    if parts.username or parts.password:
        raise Refused("credentials in the URL are not allowed")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def post(url, body, headers, timeout, allow_private):
    """One attempt: POST body to url; an Outcome (never raises for the receiver's faults)."""
    try:
        scheme, host, port, path = split_url(url)
        address = checked_address(host, port, allow_private)
    except Refused as exc:
        return Outcome(False, None, str(exc), final=exc.final)
    connection_class = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    connection = connection_class(host, port, address, timeout)
    try:
        connection.request("POST", path, body=body.encode("utf-8"), headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:300])
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return Outcome(True, response.status)
    if 300 <= response.status < 400:
        return Outcome(False, response.status, "redirect not followed")
    return Outcome(False, response.status, f"the receiver answered {response.status}")
