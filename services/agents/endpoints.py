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
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_SIP_USER = r"[A-Za-z0-9+][A-Za-z0-9_.+\-]{0,63}"
_SIP_RE = re.compile(rf"sip:(?P<user>{_SIP_USER})@(?P<host>{_HOST})(?::(?P<port>{_PORT}))?")
_NUMBER = r"\+?[0-9*#]{1,32}"
_GATEWAY = r"[A-Za-z0-9_.\-]{1,64}"
_NUMBER_RE = re.compile(_NUMBER)
_GATEWAY_RE = re.compile(_GATEWAY)
_GATEWAY_FORM_RE = re.compile(r"gateway/(?P<gateway>[^/]*)/(?P<number>.*)")
MAX_LENGTH = 255

# The same rules as JSON Schema, for the OpenAPI description of the endpoint field.
STRING_PATTERN = (rf"^(?:user/{_NAME}(?:@{_HOST})?|sip:{_SIP_USER}@{_HOST}(?::{_PORT})?"
                  rf"|gateway/{_GATEWAY}/{_NUMBER})$")
JSON_SCHEMA = {"oneOf": [
    {"type": "string", "pattern": STRING_PATTERN, "maxLength": MAX_LENGTH},
    {"type": "object", "required": ["number", "gateway"], "additionalProperties": False,
     "properties": {"number": {"type": "string", "pattern": f"^{_NUMBER}$"},
                    "gateway": {"type": "string", "pattern": f"^{_GATEWAY}$"}}},
]}

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
    if not isinstance(value, str) or len(value) > MAX_LENGTH:
        raise ValueError(FORMS_HELP)
    match = _USER_RE.fullmatch(value)
    if match:
        return Endpoint(USER, value, user=match["user"], domain=match["domain"])
    match = _SIP_RE.fullmatch(value)
    if match:
        port = int(match["port"]) if match["port"] else None
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
