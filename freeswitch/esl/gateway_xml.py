"""Sofia gateways: the value rules, the XML file FreeSWITCH reads for each one, and that file.

Three layers, each refusing what the next one could not handle safely:

- the value rules (regexes shared with the OpenAPI spec, and `check_*`):
  names safe as a file name, an XML attribute and a dial string
  (`sofia/gateway/<name>/...`); hostnames per RFC 1123 or IP literals; ports;
  transports; no control characters anywhere, and no `${` in a password
  (FreeSWITCH's preprocessor expands `$${...}` in every file);
- rendering with xml.etree (every value is an attribute, escaped by the
  serializer, non-ASCII as character references), so no input can add a
  parameter or an element;
- the file: <name>.xml inside FREESWITCH_GATEWAY_DIR and nowhere else,
  written to a temporary file (not matching FreeSWITCH's `*.xml` include)
  then os.replace()d, mode 0600 because it holds the password in clear.

The sofia commands that load a gateway live are in sofia_gateways.py.
"""
import ipaddress
import logging
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss")
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 80, "wss": 443}
CODECS = ("PCMU", "PCMA", "G722", "G729", "OPUS", "GSM", "iLBC", "G726-32", "AMR", "AMR-WB",
          "speex", "H264", "VP8")
MAX_HOST_LENGTH = 253
MAX_PASSWORD_LENGTH = 128

# The value rules are regular expressions written for both Python and the
# OpenAPI spec (`pattern`; no lookaround), so that what the spec allows is
# exactly what is accepted. Always applied with fullmatch(): `$` alone also
# matches before a trailing newline.
#
# Gateway names: letters, digits, _ and -: a file name on every OS, an XML
# attribute without escaping, a dial string and an ESL argument without quoting.
GATEWAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
SIP_USER = re.compile(r"^[A-Za-z0-9_.+\-]{1,128}$")
CALLER_ID = re.compile(r"^\+?[0-9]{2,20}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = rf"{_LABEL}(?:\.{_LABEL})*"  # RFC 1123; IPv4 literals are of this form
_H16 = r"[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join([  # RFC 4291 text forms, without embedded IPv4 or zone
    rf"(?:{_H16}:){{7}}{_H16}", rf"(?:{_H16}:){{1,7}}:", rf"(?:{_H16}:){{1,6}}:{_H16}",
    rf"(?:{_H16}:){{1,5}}(?::{_H16}){{1,2}}", rf"(?:{_H16}:){{1,4}}(?::{_H16}){{1,3}}",
    rf"(?:{_H16}:){{1,3}}(?::{_H16}){{1,4}}", rf"(?:{_H16}:){{1,2}}(?::{_H16}){{1,5}}",
    rf"{_H16}:(?::{_H16}){{1,6}}", rf":(?:(?::{_H16}){{1,7}}|:)"])
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
HOST = re.compile(rf"^(?:{_HOSTNAME}|{_IPV6})$")
HOSTPORT = re.compile(rf"^(?:{_HOSTNAME}|\[(?:{_IPV6})\])(?::{_PORT})?$")
# Printable text without `${` (FreeSWITCH's preprocessor expands `$${...}` in
# every file it reads). XML 1.0 cannot carry C0 controls (NUL never) or
# U+FFFE/U+FFFF; no SIP credential needs them. Lone surrogates (not XML
# either) are refused by has_surrogates(): spec validators cannot compile them.
_TEXT = r"\x00-\x1f\x7f\ufffe\uffff"
PASSWORD = re.compile(rf"^(?:[^${_TEXT}]|\$+[^${{{_TEXT}])*\$*$")
_SURROGATE = re.compile("[\ud800-\udfff]")

PING_SECONDS_WITHOUT_REGISTRATION = 30
RETRY_SECONDS = 30
INBOUND_CONTEXT = "public"


class InvalidGatewayValue(ValueError):
    """A value that must not reach the gateway XML or its file name."""

    def __init__(self, field_name, message):
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name
        self.message = message


class OutsideGatewayDir(Exception):
    """A gateway file path resolves outside FREESWITCH_GATEWAY_DIR: refused."""


# ----- value rules --------------------------------------------------------------
def check_name(name):
    if not isinstance(name, str) or not GATEWAY_NAME.fullmatch(name):
        raise InvalidGatewayValue("name", "must be 1-63 letters, digits, _ or -, starting "
                                          "with a letter or digit")
    return name


def parse_ip(value):
    """An ipaddress object for an IP literal, else None."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def check_host(value, field_name="host"):
    """A host name or IP literal (IPv6 without brackets), normalised."""
    if not isinstance(value, str) or len(value) > MAX_HOST_LENGTH or not HOST.fullmatch(value):
        raise InvalidGatewayValue(field_name, "must be a host name (letters, digits, hyphens "
                                              "and dots) or an IP address, without scheme, "
                                              "port or path")
    address = parse_ip(value)
    return str(address) if address is not None else value.lower()


def split_hostport(value, field_name="outbound_proxy"):
    """'host', 'host:port', '[v6]' or '[v6]:port' -> (host, port or None)."""
    if not isinstance(value, str) or len(value) > MAX_HOST_LENGTH or \
            not HOSTPORT.fullmatch(value):
        raise InvalidGatewayValue(field_name, "must be host or host:port (IPv6 in brackets)")
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] or None
    else:
        host, _, port = value.partition(":")
    host = str(ipaddress.ip_address(host)) if value.startswith("[") else host.lower()
    return host, int(port) if port else None


def check_port(value, field_name="port"):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidGatewayValue(field_name, "must be a port number from 1 to 65535")
    return value


def check_transport(value):
    text = str(value or "").lower()
    if text not in TRANSPORTS:
        raise InvalidGatewayValue("transport", f"must be one of {', '.join(TRANSPORTS)}")
    return text


def check_codecs(values):
    """Codec names as FreeSWITCH spells them, in the given order, duplicates dropped."""
    out = []
    for value in values or ():
        if value not in CODECS:
            raise InvalidGatewayValue("codecs", f"unknown codec; use any of {', '.join(CODECS)}")
        if value not in out:
            out.append(value)
    return out


def has_surrogates(value):
    """True for text with lone UTF-16 surrogates (JSON can carry them; UTF-8 and XML cannot)."""
    return _SURROGATE.search(value) is not None


def check_password(value):
    """1-128 printable characters without `${` (see PASSWORD)."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_PASSWORD_LENGTH or \
            not PASSWORD.fullmatch(value) or has_surrogates(value):
        raise InvalidGatewayValue("password", f"must be 1-{MAX_PASSWORD_LENGTH} printable "
                                              "characters, without control characters "
                                              "(newlines, tabs, NUL) or '${'")
    return value


def format_hostport(host, port):
    address = parse_ip(host)
    shown = f"[{address}]" if address is not None and address.version == 6 else host
    return f"{shown}:{port}" if port else shown


# ----- rendering ---------------------------------------------------------------
@dataclass
class GatewaySpec:
    """Everything a gateway file says; the password in clear (never logged, never repr'd)."""

    name: str
    host: str
    port: int
    transport: str = "udp"
    username: str = None
    auth_username: str = None
    password: str = field(default=None, repr=False)
    register: bool = True
    caller_id: str = None
    caller_id_in_from: bool = True
    codecs: list = field(default_factory=list)
    expiry: int = 3600
    outbound_proxy: str = None

    def validated(self):
        """A copy with every value checked and normalised; raises InvalidGatewayValue."""
        proxy = None
        if self.outbound_proxy:
            proxy_host, proxy_port = split_hostport(self.outbound_proxy)
            proxy = format_hostport(proxy_host, proxy_port)
        for name in ("username", "auth_username"):
            value = getattr(self, name)
            if value is not None and not SIP_USER.fullmatch(value):
                raise InvalidGatewayValue(name, "must be 1-128 letters, digits or . _ + -")
        if self.caller_id is not None and not CALLER_ID.fullmatch(self.caller_id):
            raise InvalidGatewayValue("caller_id", "must be a phone number (digits, optional +)")
        if not isinstance(self.expiry, int) or not 60 <= self.expiry <= 86400:
            raise InvalidGatewayValue("expiry", "must be 60 to 86400 seconds")
        return GatewaySpec(
            name=check_name(self.name), host=check_host(self.host), port=check_port(self.port),
            transport=check_transport(self.transport), username=self.username,
            auth_username=self.auth_username,
            password=None if self.password is None else check_password(self.password),
            register=bool(self.register), caller_id=self.caller_id,
            caller_id_in_from=bool(self.caller_id_in_from), codecs=check_codecs(self.codecs),
            expiry=self.expiry, outbound_proxy=proxy)


def gateway_params(spec):
    """The <param name= value=> pairs of a gateway, in file order (spec already validated)."""
    hostport = format_hostport(spec.host, spec.port)
    proxy = spec.outbound_proxy or hostport
    params = [("realm", hostport), ("proxy", proxy)]
    if spec.outbound_proxy:
        params.append(("outbound-proxy", spec.outbound_proxy))
    if spec.username:
        params += [("username", spec.username), ("from-user", spec.username),
                   ("extension", spec.username)]
    if spec.auth_username:
        params.append(("auth-username", spec.auth_username))
    if spec.password:
        params.append(("password", spec.password))
    params += [
        ("register", "true" if spec.register else "false"),
        # mod_sofia appends ;transport=<t> to the registrar and proxy URIs itself.
        ("register-transport", spec.transport),
        ("expire-seconds", str(spec.expiry)),
        ("retry-seconds", str(RETRY_SECONDS)),
        ("caller-id-in-from", "true" if spec.caller_id_in_from else "false"),
        ("context", INBOUND_CONTEXT),
    ]
    if not spec.register:
        # Without REGISTER, OPTIONS pings are what tells FreeSWITCH the trunk is up.
        params.append(("ping", str(PING_SECONDS_WITHOUT_REGISTRATION)))
    return params


def gateway_variables(spec):
    """<variable name= value= direction=> entries: codecs and caller id of outbound calls."""
    variables = [("cc_gateway", spec.name, "inbound")]
    if spec.codecs:
        variables.append(("absolute_codec_string", ",".join(spec.codecs), "outbound"))
    if spec.caller_id:
        # A default: a call's own origination caller id, set later, wins.
        variables.append(("effective_caller_id_number", spec.caller_id, "outbound"))
    return variables


def render_gateway_xml(spec):
    """The text of <name>.xml: <include><gateway name=...> with params and variables."""
    spec = spec.validated()
    root = ET.Element("include")
    gateway = ET.SubElement(root, "gateway", {"name": spec.name})
    for name, value in gateway_params(spec):
        ET.SubElement(gateway, "param", {"name": name, "value": value})
    variables = ET.SubElement(gateway, "variables")
    for name, value, direction in gateway_variables(spec):
        ET.SubElement(variables, "variable", {"name": name, "value": value,
                                              "direction": direction})
    ET.indent(root, space="  ")
    # No XML declaration: FreeSWITCH splices included files into its one document.
    body = ET.tostring(root, encoding="us-ascii", xml_declaration=False).decode("ascii")
    return ("<!-- Written by the call-center service (POST /api/sip/configure); edits here are "
            "overwritten. -->\n" + body + "\n")


def parse_gateway_xml(text):
    """(name, {param: value}, [(variable, value, direction)]) of a rendered file."""
    root = ET.fromstring(text)
    gateways = root.findall("gateway")
    if len(gateways) != 1:
        raise ValueError(f"expected one <gateway>, found {len(gateways)}")
    gateway = gateways[0]
    params = {}
    for param in gateway.findall("param"):
        params[param.get("name")] = param.get("value")
    variables = [(v.get("name"), v.get("value"), v.get("direction"))
                 for v in gateway.findall("variables/variable")]
    return gateway.get("name"), params, variables


# ----- the file ------------------------------------------------------------------
def gateway_file_path(directory, name):
    """<directory>/<name>.xml, refusing any name or link that would lead outside directory."""
    check_name(name)
    root = os.path.realpath(directory)
    path = os.path.join(root, name + ".xml")
    resolved = os.path.realpath(path)
    if os.path.dirname(resolved) != root:
        raise OutsideGatewayDir(f"gateway file for {name!r} resolves outside {root}")
    return path


def write_gateway_file(directory, name, text):
    """Atomically replace <name>.xml with text (mode 0600); returns its path."""
    os.makedirs(directory, mode=0o750, exist_ok=True)
    path = gateway_file_path(directory, name)
    # ".tmp", not ".xml": a rescan in the middle of the write must not see it.
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp",
                                     dir=os.path.dirname(path))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(os.path.dirname(path))
    return path


def remove_gateway_file(directory, name):
    """Delete <name>.xml; True when there was one."""
    path = gateway_file_path(directory, name)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    _fsync_directory(os.path.dirname(path))
    return True


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories; the data is safe anyway
        pass
    finally:
        os.close(fd)
