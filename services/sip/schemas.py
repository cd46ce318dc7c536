"""Wire schemas of the SIP domain: the dumps REST returns and the `sip` channel carries.

No schema ever dumps a password; GatewaySchema says only `password_set`.
"""
from marshmallow import Schema, fields

from models.sip import SipGateway
from services.fields import UTCDateTime

APPLY_STATES = list(SipGateway.APPLY_STATES)


class GatewaySchema(Schema):
    """A gateway as stored, without secrets."""

    id = fields.String(dump_only=True)
    name = fields.String()
    provider = fields.String()
    host = fields.String()
    port = fields.Integer()
    transport = fields.String()
    username = fields.String(allow_none=True)
    auth_username = fields.String(allow_none=True)
    password_set = fields.Boolean(metadata={"description": "whether a password is stored"})
    register = fields.Boolean()
    caller_id = fields.String(allow_none=True)
    codecs = fields.List(fields.String())
    expiry = fields.Integer()
    outbound_proxy = fields.String(allow_none=True)
    enabled = fields.Boolean()
    version = fields.Integer()
    apply_state = fields.String(metadata={
        "enum": APPLY_STATES,
        "description": "applied | pending (FreeSWITCH unreachable; applied when it is back) | "
                       "failed (see apply_detail)"})
    apply_detail = fields.String(allow_none=True)
    applied_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class GatewayStatusSchema(Schema):
    """One gateway's registration, from `sofia xmlstatus gateway` and the gateway_state events."""

    name = fields.String()
    provider = fields.String()
    enabled = fields.Boolean()
    register = fields.Boolean()
    transport = fields.String()
    apply_state = fields.String(metadata={"enum": APPLY_STATES})
    apply_detail = fields.String(allow_none=True)
    loaded = fields.Boolean(allow_none=True, metadata={
        "description": "FreeSWITCH runs it (null: FreeSWITCH not asked or unreachable)"})
    state = fields.String(allow_none=True, metadata={
        "description": "sofia state: REGED, NOREG, TRYING, FAILED, FAIL_WAIT, UNREGED, DOWN..."})
    registered = fields.Boolean()
    status = fields.String(allow_none=True, metadata={"description": "UP or DOWN"})
    ping_status = fields.String(allow_none=True)
    ping_time_ms = fields.Float(allow_none=True)
    retry = fields.String(allow_none=True)
    last_change = UTCDateTime(allow_none=True)
    last_event_at = UTCDateTime(allow_none=True)
    failure_reason = fields.String(allow_none=True)
    failure_status_code = fields.Integer(allow_none=True)
    failure_at = UTCDateTime(allow_none=True)
    source = fields.String(metadata={"description": "freeswitch | events | none"})
    freeswitch_error = fields.String(allow_none=True)
    nodes = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "each FreeSWITCH node -> loaded, state, status, freeswitch_error as "
                       "that node tells (GET /api/sip/status); in `sip` messages: the node "
                       "whose events process reported the change"})
