"""Request and query schemas of the calls resource (the response schema is the wire schema)."""
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from blueprints.analytics.schemas import QualitySampleSchema
from blueprints.pagination import CursorField
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
    gateway = fields.String(validate=FullMatch(r"^[A-Za-z0-9_.\-]{1,64}$"), metadata={
        "description": "the gateway to dial through; required unless the service has a "
                       "DEFAULT_GATEWAY or `to` is a SIP address with @ (else 422 "
                       "gateway_required, filed under `gateway`)"})
    metadata = fields.Dict(keys=fields.String(validate=validate.Length(max=64)))
    record = StrictBoolean(load_default=False)
    record_format = fields.String(validate=validate.OneOf(["mp3", "wav", "ogg"]))
    mode = fields.String(validate=validate.OneOf(MODES), metadata={
        "description": "with an agent_id naming an agent: agent_first (default: the agent's "
                       "phone rings, then the customer is dialled) or customer_first"})
    status_callback = fields.String(
        validate=[validate.URL(schemes={"http", "https"}, require_tld=False),
                  validate.Length(max=2048)],
        metadata={"description": "a URL that receives this call's `calls` channel events "
                                 "as signed webhooks (kept in metadata.status_callback)"})

    @post_load
    def _keep_status_callback(self, data, **kwargs):
        """The call keeps its status_callback in its metadata (the fan-out reads it there)."""
        if "status_callback" in data:
            data["metadata"] = {**(data.get("metadata") or {}),
                                "status_callback": data.pop("status_callback")}
        return data


class CallUpdateSchema(Schema):
    status = fields.String(validate=validate.OneOf(cs.ALL))
    notes = fields.String(allow_none=True, validate=validate.Length(max=10000))
    outcome = fields.String(allow_none=True, validate=validate.Length(max=64))
    metadata = fields.Dict(keys=fields.String(validate=validate.Length(max=64)))
    quality = fields.Nested(QualitySampleSchema)


class CallEndSchema(Schema):
    outcome = fields.String(validate=validate.Length(max=64))
    notes = fields.String(validate=validate.Length(max=10000))


def _any_of(field, what):
    """A filter that may repeat (`status=ringing&status=in-progress`): any of the values."""
    return fields.List(field, validate=validate.Length(min=1, max=50),
                       metadata={"description": f"{what}; repeat the parameter for any of "
                                                "several"})


class CallQueryArgsSchema(Schema):
    status = _any_of(fields.String(validate=validate.OneOf(cs.ALL)), "the call's status")
    direction = _any_of(fields.String(validate=validate.OneOf(["inbound", "outbound"])),
                        "inbound or outbound")
    agent_id = _any_of(fields.String(validate=IDENT), "the agent's id")
    campaign_id = _any_of(fields.String(validate=IDENT), "the campaign's id")
    gateway = _any_of(fields.String(validate=validate.Length(max=64)), "the gateway's name")
    live = fields.Boolean(truthy={"true"}, falsy={"false"}, metadata={
        "description": "true: only calls not yet ended; false: only ended calls"})
    date_from = UTCDateTime(metadata={"description": "created at or after (ISO-8601)"})
    date_to = UTCDateTime(metadata={"description": "created before (ISO-8601)"})
    number = fields.String(validate=FullMatch(r"^[0-9+*#A-Za-z@._\-]{1,64}$"),
                           metadata={"description": "part of the from/to number or caller id"})
    sort = fields.String(load_default="-created_at",
                         validate=validate.OneOf(["-created_at", "created_at"]))
    cursor = CursorField(metadata={"description": "continue after this position (keyset "
                                                  "paging); take it from the `Link: rel=next` "
                                                  "header, and leave `page` out"})
    text = fields.String(validate=FullMatch(r"^(?=.*[A-Za-z0-9])[^\x00-\x1f]{1,200}$"),
                         metadata={"description": "words said in the call (all of them), "
                                                  "searched in its transcript"})


class CallEventSchema(Schema):
    id = fields.Integer()
    created_at = UTCDateTime()
    source = fields.String()
    event_name = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    data = fields.Dict(allow_none=True, metadata={
        "additionalProperties": True,
        "description": "what the event carried, by event_name: FreeSWITCH's hangup cause, "
                       "DTMF digits, a transfer's target, an update's changed fields, ..."})


# ----- live call control ----------------------------------------------------
class CallDtmfSchema(Schema):
    digits = fields.String(required=True, validate=FullMatch(
        r"^[0-9*#A-D]{1,64}$", error="must be 1-64 DTMF digits: 0-9 * # A-D"),
        metadata={"example": "1234#"})


class CallTransferSchema(Schema):
    """Blind transfer: exactly one of `to` (a number), `agent_id` or `queue` (the customer
    waits in that queue, hearing its music, and is offered on; blind only)."""

    to = fields.String(validate=NUMBER, metadata={"example": "15551230001"})
    agent_id = fields.String(validate=IDENT)
    queue = fields.String(validate=IDENT, metadata={
        "description": "a queue id: the customer leaves the agent and waits in that queue"})
    gateway = fields.String(validate=FullMatch(r"^[A-Za-z0-9_.\-]{1,64}$"), metadata={
        "description": "the gateway that reaches `to` (default: the call's, else DEFAULT_GATEWAY)"})
    attended = StrictBoolean(load_default=False, metadata={
        "description": "true: ring the target as a consult leg while the customer is on "
                       "hold; then POST .../transfer/complete or .../transfer/cancel"})

    @validates_schema
    def _queue_is_blind(self, data, **kwargs):
        if data.get("queue") and data.get("attended"):
            raise ValidationError("a transfer into a queue is blind: leave out `attended`",
                                  field_name="queue")


class CallMonitorSchema(Schema):
    """A supervisor monitors a call: `mode`, and the endpoint that rings for them."""

    # title: client generators name the enum after it (not CallMonitorMode, a schema's name)
    mode = fields.String(load_default="listen", validate=validate.OneOf(MONITOR_MODES),
                         metadata={"title": "MonitorMode"})
    endpoint = fields.String(validate=validate.Length(max=255), metadata={
        "description": "what rings for the supervisor (user/1003, sip:...); default: the "
                       "endpoint of the agent the supervisor's key names",
        "example": "user/1003"})


class CallMonitorModeSchema(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(MONITOR_MODES))
