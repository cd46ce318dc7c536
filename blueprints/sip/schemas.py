"""Request schemas of the sip resource; the dumps (GatewaySchema ...) live in services/sip.

Input rules are the ones of services/sip/rules.py (one definition): what
passes here can be written into a gateway file and a sofia command safely.
"""
from marshmallow import Schema, ValidationError, fields, validate

from services.fields import FullMatch
from services.sip.rules import (
    CALLER_ID,
    CODECS,
    GATEWAY_NAME,
    HOST,
    HOSTPORT,
    MAX_HOST_LENGTH,
    MAX_PASSWORD_LENGTH,
    PASSWORD,
    PROVIDER_IDS,
    SIP_USER,
    TRANSPORTS,
    InvalidGatewayValue,
    check_codecs,
    check_host,
    has_surrogates,
    split_hostport,
)
from services.sip.schemas import GatewayStatusSchema

NAME = FullMatch(GATEWAY_NAME, error="must be 1-63 letters, digits, _ or -, starting with "
                                     "a letter or digit")
USER = FullMatch(SIP_USER, error="must be 1-128 letters, digits or . _ + -")
PROVIDERS = validate.OneOf(list(PROVIDER_IDS))


class Host(fields.String):
    """A host name or IP address (no brackets, port or scheme), normalised."""

    def __init__(self, **kwargs):
        super().__init__(validate=[validate.Length(max=MAX_HOST_LENGTH), FullMatch(
            HOST, error="must be a host name (letters, digits, hyphens and dots) or an IP "
                        "address, without scheme, port or path")], **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return check_host(text)
        except InvalidGatewayValue:
            return text  # the validators (the same rules) report it


class HostPort(fields.String):
    """host, host:port or [IPv6]:port, normalised."""

    def __init__(self, **kwargs):
        super().__init__(validate=[validate.Length(max=MAX_HOST_LENGTH), FullMatch(
            HOSTPORT, error="must be host or host:port (IPv6 in brackets)")], **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            host, port = split_hostport(text)
        except InvalidGatewayValue:
            return text  # the validators (the same rules) report it
        shown = f"[{host}]" if ":" in host else host
        return shown if port is None else f"{shown}:{port}"


def _no_surrogates(value):
    if has_surrogates(value):
        raise ValidationError("must be valid Unicode text (no lone surrogates)")


class Password(fields.String):
    """Any printable characters (quotes and brackets too: they are escaped); no controls, no ${."""

    def __init__(self, **kwargs):
        super().__init__(validate=[validate.Length(1, MAX_PASSWORD_LENGTH), FullMatch(
            # {{ : marshmallow formats the message with str.format
            PASSWORD, error="must be printable characters without control characters "
                            "(newlines, tabs, NUL) or '${{'"), _no_surrogates], **kwargs)


class StrictBoolean(fields.Boolean):
    """true or false only: marshmallow's Boolean also takes 0, 1, "yes", "on"..."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class StrictFloat(fields.Float):
    """A JSON number only: marshmallow's Float also parses strings such as "1.5"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, (str, bool)):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class Codecs(fields.List):
    """Codec names as FreeSWITCH spells them; duplicates dropped."""

    LENGTH = validate.Length(min=1, max=len(CODECS))

    def __init__(self, **kwargs):
        super().__init__(fields.String(validate=validate.OneOf(CODECS)), validate=self.LENGTH,
                         **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        items = super()._deserialize(value, attr, data, **kwargs)
        self.LENGTH(items)  # maxItems counts what was sent, duplicates included
        return check_codecs(items)


class GatewayConfigSchema(Schema):
    """POST /api/sip/configure: create or update (fields left out keep their stored value)."""

    name = fields.String(required=True, validate=NAME, metadata={"example": "twilio-main"})
    provider = fields.String(validate=PROVIDERS, metadata={
        "description": "a preset of GET /api/sip/providers (defaults: custom)"})
    host = Host(metadata={"description": "registrar / realm host name or IP (no port)",
                          "example": "example.pstn.twilio.com"})
    port = fields.Integer(strict=True, validate=validate.Range(1, 65535),
                          metadata={"description": "default: the preset's port for the transport"})
    transport = fields.String(validate=validate.OneOf(TRANSPORTS))
    username = fields.String(allow_none=True, validate=USER)
    auth_username = fields.String(allow_none=True, validate=USER, metadata={
        "description": "authorization user when it differs from username (RingCentral)"})
    password = Password(allow_none=True, load_only=True, metadata={
        "description": "stored encrypted, never returned; leave out to keep the stored one"})
    register = StrictBoolean(metadata={
        "description": "register with the provider (the preset's default, usually true); "
                       "registering needs a username and password, stored or given (else "
                       "422 with field errors)"})
    caller_id = fields.String(allow_none=True, validate=FullMatch(
        CALLER_ID, error="must be a phone number: 2-20 digits, optional leading +"))
    codecs = Codecs()
    expiry = fields.Integer(strict=True, validate=validate.Range(60, 86400), metadata={
        "description": "registration expiry in seconds"})
    outbound_proxy = HostPort(allow_none=True, metadata={"example": "sip20.ringcentral.com:5090"})
    enabled = StrictBoolean()


class CredentialsSchema(Schema):
    """PUT /api/sip/credentials: a new username and/or password (neither: register again now)."""

    name = fields.String(required=True, validate=NAME)
    username = fields.String(allow_none=True, validate=USER)
    auth_username = fields.String(allow_none=True, validate=USER)
    password = Password(load_only=True)


class ProviderSchema(Schema):
    id = fields.String()
    name = fields.String()
    host_pattern = fields.String()
    example_host = fields.String()
    outbound_proxy_pattern = fields.String()
    example_outbound_proxy = fields.String()
    port = fields.Integer()
    ports = fields.Dict(keys=fields.String(), values=fields.Integer())
    transport = fields.String()
    transports = fields.List(fields.String())
    ws_path = fields.String()
    register = fields.Boolean()
    codecs = fields.List(fields.String())
    expiry = fields.Integer()
    caller_id_in_from = fields.Boolean()
    requires = fields.List(fields.String())
    note = fields.String()


class EslStateSchema(Schema):
    command_connection = fields.String()
    freeswitch_reachable = fields.Boolean()
    events_process = fields.Dict()


class SipStatusSchema(Schema):
    esl = fields.Nested(EslStateSchema)
    nodes = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "each FreeSWITCH node (FREESWITCH_NODES name) -> command_connection, "
                       "freeswitch_reachable, events_process"})
    gateways = fields.List(fields.Nested(GatewayStatusSchema))


class GatewayTestSchema(Schema):
    """POST /api/sip/test: {"name"} for a saved gateway, or the connection fields to try
    (`host` at least): with neither, 422."""

    name = fields.String(validate=NAME)
    provider = fields.String(validate=PROVIDERS)
    host = Host()
    port = fields.Integer(strict=True, validate=validate.Range(1, 65535))
    transport = fields.String(validate=validate.OneOf(TRANSPORTS))
    outbound_proxy = HostPort(allow_none=True)
    timeout = StrictFloat(validate=validate.Range(0.2, 10), metadata={
        "description": "seconds per step (default 3)"})
    verify_tls = StrictBoolean(metadata={"description": "check the TLS certificate "
                                                         "(default true)"})


class TestStepSchema(Schema):
    step = fields.String(metadata={"description": "dns, sip_options, tcp_connect, "
                                                  "tls_handshake, websocket_upgrade, freeswitch"})
    status = fields.String(metadata={"description": "ok | failed | skipped"})
    ok = fields.Boolean(allow_none=True)
    detail = fields.String()
    time_ms = fields.Float()
    addresses = fields.List(fields.String())
    status_code = fields.Integer()
    reason = fields.String()
    rtt_ms = fields.Float()
    attempts = fields.Integer()
    transport = fields.String()
    server = fields.String()
    tls_version = fields.String()
    cipher = fields.String()
    certificate = fields.Dict()
    subprotocol = fields.String(allow_none=True)
    loaded = fields.Boolean()
    state = fields.String()
    gateway_status = fields.String()


class TestTargetSchema(Schema):
    host = fields.String()
    port = fields.Integer()
    transport = fields.String()


class GatewayTestResultSchema(Schema):
    gateway = fields.String(allow_none=True)
    target = fields.Nested(TestTargetSchema)
    ok = fields.Boolean()
    steps = fields.List(fields.Nested(TestStepSchema))
    time_ms = fields.Float()
