"""The call's wire schema: the dump that REST and the `calls` channel share."""
from marshmallow import Schema, fields, missing, utils

from models import fastsql
from models.call import ALL_STATUSES
from models.recording import Recording
from services.fields import UTCDateTime
from services.recordings.schemas import SUMMARY_DOC, recording_summary

DIRECTIONS = ("inbound", "outbound")
_NUMBER = {"type": "number"}
# The call's quality view: the last live sample a client pushed (PUT .../update).
QUALITY_DOC = {"type": "object", "properties": {"live": {
    "type": "object", "properties": {
        "samples": {"type": "integer", "description": "samples pushed so far"},
        "last": {"type": "object", "properties": {
            "latency_ms": _NUMBER, "jitter_ms": _NUMBER, "packet_loss_pct": _NUMBER,
            "mos": {"type": "number", "nullable": True},
            "at": {"type": "string", "format": "date-time"}}},
        "alert": {"type": "object", "nullable": True, "additionalProperties": True,
                  "description": "the active quality alert's details, else null"}}}}}
# FreeSWITCH's rtp_audio_in_* variables at hangup, named without the prefix.
RTP_STATS_DOC = {"type": "object", "additionalProperties": {
    "oneOf": [{"type": "number"}, {"type": "string"}]}, "example": {
    "in_mos": 4.5, "in_quality_percentage": 100.0, "in_packet_count": 1500,
    "in_skip_packet_count": 0, "in_jitter_max_variance": 0.0, "in_flaw_total": 0}}


def recording_of(call):
    """The call's recording summary: attached by the service for a page of calls,
    else looked up once and kept on the instance (most calls have none)."""
    if "recording_summary" not in call.__dict__:
        recording = fastsql.select_one(Recording, "call", call.id) \
            if call.id is not None else None
        call.__dict__["recording_summary"] = recording_summary(recording)
    return call.__dict__["recording_summary"]


def forget_recording(call):
    """Drop the kept summary: the call's recording changed."""
    call.__dict__.pop("recording_summary", None)


class CallSchema(Schema):
    id = fields.String(dump_only=True)
    fs_uuid = fields.String(dump_only=True, allow_none=True)
    direction = fields.String(dump_only=True, metadata={"enum": list(DIRECTIONS)})
    from_number = fields.String(allow_none=True)
    to_number = fields.String(allow_none=True)
    caller_id = fields.String(allow_none=True)
    agent_id = fields.String(allow_none=True)
    campaign_id = fields.String(allow_none=True)
    gateway = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": list(ALL_STATUSES)})
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
    quality = fields.Dict(allow_none=True, metadata=QUALITY_DOC)
    rtp_stats = fields.Dict(allow_none=True, metadata={
        **RTP_STATS_DOC,
        "description": "FreeSWITCH's RTP statistics at hangup (rtp_audio_in_* variables)"})
    recording = fields.Function(lambda call: recording_of(call), allow_none=True,
                                metadata=SUMMARY_DOC)
    # Legs and handling times (issue 12).
    mode = fields.String(dump_only=True, allow_none=True, metadata={
        "description": "agent_first | customer_first when an agent is on the call, else null"})
    agent_leg_uuid = fields.String(dump_only=True, allow_none=True)
    consult_leg_uuid = fields.String(dump_only=True, allow_none=True)
    bridged_at = UTCDateTime(dump_only=True, allow_none=True)
    held_at = UTCDateTime(dump_only=True, allow_none=True)
    on_hold = fields.Function(lambda call: call.held_at is not None, dump_only=True)
    hold_seconds = fields.Integer(dump_only=True)
    talk_seconds = fields.Integer(dump_only=True, allow_none=True)
    ring_seconds = fields.Integer(dump_only=True, allow_none=True)
    node = fields.String(dump_only=True, allow_none=True, metadata={
        "description": "the FreeSWITCH node (FREESWITCH_NODES) the call is on"})

    def dump(self, obj, *, many=None):
        """The fast dump (dump_call) when this is the plain schema; marshmallow's otherwise."""
        many = self.many if many is None else bool(many)
        if _PLAN is None or type(self) is not CallSchema or self.only or self.exclude:
            return super().dump(obj, many=many)
        return [dump_call(call) for call in obj] if many else dump_call(obj)


_CALL_SCHEMA = CallSchema()


def _plain(convert):
    return lambda field, value, call: None if value is None else convert(value)


# What the schema's fields do with a value, without marshmallow's per-field machinery
# (the events process dumps a call for every message; the schema costs ~100 us a dump).
# Any other field (or one with options these do not cover) goes through marshmallow.
_FAST = {
    fields.String: _plain(utils.ensure_text_type),
    fields.Integer: _plain(int),
    fields.Dict: _plain(dict),
    fields.Boolean: lambda field, value, call: value,
    UTCDateTime: lambda field, value, call: field._serialize(value, None, call),
    fields.Function: lambda field, value, call: field.serialize_func(call),
}


def _fast_for(field):
    if field.dump_default is not missing or getattr(field, "as_string", False) or \
            getattr(field, "key_field", None) or getattr(field, "value_field", None):
        return None
    return _FAST.get(type(field))


def _dump_plan(schema):
    """[(name, key, attribute, field, serializer)] in the schema's order; None with hooks."""
    if any(schema._hooks.values()):
        return None
    return [(name, field.data_key or name, field.attribute or name, field,
             None if "." in (field.attribute or name) else _fast_for(field))
            for name, field in schema.dump_fields.items()]


_PLAN = _dump_plan(_CALL_SCHEMA)


def dump_call(call):
    """The REST representation of a call: exactly CallSchema's dump, field by field."""
    if _PLAN is None:
        return Schema.dump(_CALL_SCHEMA, call)
    out = {}
    for name, key, attr, field, fast in _PLAN:
        if fast is None:
            value = field.serialize(name, call, accessor=_CALL_SCHEMA.get_attribute)
        elif field._CHECK_ATTRIBUTE:
            value = getattr(call, attr, missing)
            if value is not missing:
                value = fast(field, value, call)
        else:
            value = fast(field, None, call)
        if value is not missing:
            out[key] = value
    return out
