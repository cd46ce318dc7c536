"""Marshmallow schemas of the calls resource (also the payload of `calls` channel events)."""
from marshmallow import Schema, fields, validate

from blueprints.analytics.schemas import QualitySampleSchema
from services.fields import IDENT, NUMBER, FullMatch, StrictBoolean, UTCDateTime
from services.calls import state as cs


class CallSchema(Schema):
    id = fields.String(dump_only=True)
    fs_uuid = fields.String(dump_only=True, allow_none=True)
    direction = fields.String(dump_only=True)
    from_number = fields.String(allow_none=True)
    to_number = fields.String(allow_none=True)
    caller_id = fields.String(allow_none=True)
    agent_id = fields.String(allow_none=True)
    campaign_id = fields.String(allow_none=True)
    gateway = fields.String(allow_none=True)
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    hangup_cause = fields.String(allow_none=True)
    created_at = UTCDateTime()
    ringing_at = UTCDateTime(allow_none=True)
    answered_at = UTCDateTime(allow_none=True)
    ended_at = UTCDateTime(allow_none=True)
    updated_at = UTCDateTime()
    duration = fields.Integer(allow_none=True)
    billsec = fields.Integer(allow_none=True)
    outcome = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    metadata = fields.Dict(allow_none=True)
    record = fields.Boolean()
    quality = fields.Dict(allow_none=True)
    rtp_stats = fields.Dict(allow_none=True, metadata={
        "description": "FreeSWITCH's RTP statistics at hangup (rtp_audio_in_* variables)"})
    recording = fields.Dict(allow_none=True, attribute="recording_summary")


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


_CALL_SCHEMA = CallSchema()


def dump_call(call):
    """The REST representation of a call (one schema instance: building one is costly)."""
    return _CALL_SCHEMA.dump(call)
