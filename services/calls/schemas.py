"""The call's wire schema: the dump that REST and the `calls` channel share."""
from marshmallow import Schema, fields

from models.recording import Recording
from services.fields import UTCDateTime
from services.recordings.schemas import recording_summary


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
    recording = fields.Function(lambda call: recording_of(call), allow_none=True)
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


_CALL_SCHEMA = CallSchema()


def dump_call(call):
    """The REST representation of a call (one schema instance: building one is costly)."""
    return _CALL_SCHEMA.dump(call)
