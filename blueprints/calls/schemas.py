"""Request and query schemas of the calls resource (the response schema is the wire schema)."""
from marshmallow import Schema, fields, validate

from blueprints.analytics.schemas import QualitySampleSchema
from services.calls import state as cs
from services.calls.bridging import MODES
from services.calls.monitor import MODES as MONITOR_MODES
from services.calls.schemas import CallSchema  # noqa: F401  (the response schema)
from services.fields import IDENT, NUMBER, FullMatch, StrictBoolean, UTCDateTime


class CallStartSchema(Schema):
    to = fields.String(required=True, validate=NUMBER, metadata={"example": "15551230000"})
    from_ = fields.String(data_key="from", validate=NUMBER)
    caller_id = fields.String(validate=NUMBER)
    agent_id = fields.String(validate=IDENT)
    campaign_id = fields.String(validate=IDENT)
    gateway = fields.String(validate=FullMatch(r"^[A-Za-z0-9_.\-]{1,64}$"))
    metadata = fields.Dict(keys=fields.String(validate=validate.Length(max=64)))
    record = StrictBoolean(load_default=False)
    record_format = fields.String(validate=validate.OneOf(["mp3", "wav", "ogg"]))
    mode = fields.String(validate=validate.OneOf(MODES), metadata={
        "description": "with an agent_id naming an agent: agent_first (default: the agent's "
                       "phone rings, then the customer is dialled) or customer_first"})


class CallUpdateSchema(Schema):
    status = fields.String(validate=validate.OneOf(cs.ALL))
    notes = fields.String(allow_none=True, validate=validate.Length(max=10000))
    outcome = fields.String(allow_none=True, validate=validate.Length(max=64))
    metadata = fields.Dict(keys=fields.String(validate=validate.Length(max=64)))
    quality = fields.Nested(QualitySampleSchema)


class CallEndSchema(Schema):
    outcome = fields.String(validate=validate.Length(max=64))
    notes = fields.String(validate=validate.Length(max=10000))


class CallQueryArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(cs.ALL))
    direction = fields.String(validate=validate.OneOf(["inbound", "outbound"]))
    agent_id = fields.String(validate=IDENT)
    campaign_id = fields.String(validate=IDENT)
    gateway = fields.String(validate=validate.Length(max=64))
    date_from = UTCDateTime(metadata={"description": "created at or after (ISO-8601)"})
    date_to = UTCDateTime(metadata={"description": "created before (ISO-8601)"})
    number = fields.String(validate=FullMatch(r"^[0-9+*#A-Za-z@._\-]{1,64}$"),
                           metadata={"description": "part of the from/to number or caller id"})
    sort = fields.String(load_default="-created_at",
                         validate=validate.OneOf(["-created_at", "created_at"]))


class CallEventSchema(Schema):
    id = fields.Integer()
    created_at = UTCDateTime()
    source = fields.String()
    event_name = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    data = fields.Dict(allow_none=True)


# ----- live call control ----------------------------------------------------
class CallDtmfSchema(Schema):
    digits = fields.String(required=True, validate=FullMatch(
        r"^[0-9*#A-D]{1,64}$", error="must be 1-64 DTMF digits: 0-9 * # A-D"),
        metadata={"example": "1234#"})


class CallTransferSchema(Schema):
    """Blind transfer: exactly one of `to` (a number) and `agent_id`."""

    to = fields.String(validate=NUMBER, metadata={"example": "15551230001"})
    agent_id = fields.String(validate=IDENT)
    gateway = fields.String(validate=FullMatch(r"^[A-Za-z0-9_.\-]{1,64}$"), metadata={
        "description": "the gateway that reaches `to` (default: the call's, else DEFAULT_GATEWAY)"})
    attended = StrictBoolean(load_default=False, metadata={
        "description": "true: ring the target as a consult leg while the customer is on "
                       "hold; then POST .../transfer/complete or .../transfer/cancel"})


class CallMonitorSchema(Schema):
    """A supervisor monitors a call: `mode`, and the endpoint that rings for them."""

    mode = fields.String(load_default="listen", validate=validate.OneOf(MONITOR_MODES))
    endpoint = fields.String(validate=validate.Length(max=255), metadata={
        "description": "what rings for the supervisor (user/1003, sip:...); default: the "
                       "endpoint of the agent the supervisor's key names",
        "example": "user/1003"})


class CallMonitorModeSchema(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(MONITOR_MODES))
