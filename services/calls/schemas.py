"""The call's wire schema: the dump that REST and the `calls` channel share."""
from marshmallow import Schema, fields

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
        recording = Recording.find_by("call", call.id) if call.id is not None else None
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


_CALL_SCHEMA = CallSchema()


def dump_call(call):
    """The REST representation of a call (one schema instance: building one is costly)."""
    return _CALL_SCHEMA.dump(call)
