"""Agent endpoints: what may ring for an agent, validated so nothing can inject into a dial string.

Three forms, stored as one canonical string:
- `user/<user>` or `user/<user>@<domain>`: a FreeSWITCH directory user (a desk phone or
  softphone registered to FreeSWITCH);
- `sip:<user>@<host>[:<port>]`: a SIP URI FreeSWITCH calls directly;
- `gateway/<gateway>/<number>`, or `{"number": "...", "gateway": "..."}`: an outside
  number reached through a SIP gateway.
Only letters, digits and `. _ + -` (and `@ :` where the form needs them) are accepted:
no spaces, braces, brackets, commas, pipes, quotes, slashes or semicolons.
"""
import re
from dataclasses import dataclass

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}))*"
_USER_RE = re.compile(rf"user/(?P<user>{_NAME})(?:@(?P<domain>{_HOST}))?")
_SIP_RE = re.compile(rf"sip:(?P<user>[A-Za-z0-9+][A-Za-z0-9_.+\-]{{0,63}})@(?P<host>{_HOST})"
                     r"(?::(?P<port>[0-9]{1,5}))?")
_NUMBER_RE = re.compile(r"\+?[0-9*#]{1,32}")
_GATEWAY_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_GATEWAY_FORM_RE = re.compile(r"gateway/(?P<gateway>[^/]*)/(?P<number>.*)")

USER, SIP, GATEWAY = "user", "sip", "gateway"
FORMS_HELP = ("an endpoint is user/<user>[@<domain>], sip:<user>@<host>[:<port>], "
              "gateway/<gateway>/<number> or {\"number\": ..., \"gateway\": ...}")


@dataclass(frozen=True)
class Endpoint:
    kind: str  # user | sip | gateway
    text: str  # the canonical string stored and shown
    user: str = None
    domain: str = None
    host: str = None
    port: int = None
    gateway: str = None
    number: str = None


def parse_endpoint(value):
    """A request's endpoint (string or {number, gateway}) -> Endpoint; ValueError if unsafe."""
    if isinstance(value, dict):
        return _outside(value.get("gateway"), value.get("number"), set(value) - {"gateway",
                                                                                  "number"})
    if not isinstance(value, str) or len(value) > 255:
        raise ValueError(FORMS_HELP)
    match = _USER_RE.fullmatch(value)
    if match:
        return Endpoint(USER, value, user=match["user"], domain=match["domain"])
    match = _SIP_RE.fullmatch(value)
    if match:
        port = int(match["port"]) if match["port"] else None
        if port is not None and not 1 <= port <= 65535:
            raise ValueError("the SIP port must be 1-65535")
        return Endpoint(SIP, value, user=match["user"], host=match["host"], port=port)
    match = _GATEWAY_FORM_RE.fullmatch(value)
    if match:
        return _outside(match["gateway"], match["number"], ())
    raise ValueError(FORMS_HELP)


def _outside(gateway, number, extra):
    if extra:
        raise ValueError(f"unknown endpoint fields: {sorted(extra)}")
    if not isinstance(gateway, str) or not _GATEWAY_RE.fullmatch(gateway):
        raise ValueError("the gateway must be 1-64 letters, digits and _ . -")
    if not isinstance(number, str) or not _NUMBER_RE.fullmatch(number):
        raise ValueError("the number must be 1-32 digits, * or #, with an optional leading +")
    return Endpoint(GATEWAY, f"gateway/{gateway}/{number}", gateway=gateway, number=number)


def dial_string(endpoint, profile="internal"):
    """The FreeSWITCH dial string that rings the endpoint (a stored, already valid string)."""
    parsed = parse_endpoint(endpoint)
    if parsed.kind == USER:
        return parsed.text
    if parsed.kind == SIP:
        return f"sofia/{profile}/{parsed.text}"
    return f"sofia/gateway/{parsed.gateway}/{parsed.number}"
