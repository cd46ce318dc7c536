"""The recording's wire schemas: the dump that REST and the `recordings` channel share."""
from marshmallow import Schema, fields

from models.recording import FORMATS, STATUSES
from services.fields import UTCDateTime

__all__ = ["FORMATS", "MIME_TYPES", "STATUSES", "SUMMARY_DOC", "RecordingSchema",
           "dump_recording", "recording_summary", "recording_url"]

# How each stored format is served (and documented in the OpenAPI audio responses).
MIME_TYPES = {"mp3": "audio/mpeg", "ogg": "audio/ogg", "wav": "audio/wav"}


class RecordingSchema(Schema):
    id = fields.String(dump_only=True)
    call_id = fields.String(dump_only=True)
    status = fields.String(dump_only=True, metadata={
        "enum": list(STATUSES),
        "description": "recording -> processing -> ready, or failed (see error)"})
    format = fields.String(dump_only=True, metadata={"enum": list(FORMATS)})
    duration = fields.Float(dump_only=True, allow_none=True,
                            metadata={"description": "seconds, millisecond precision"})
    size = fields.Integer(dump_only=True, allow_none=True,
                          metadata={"description": "bytes of the file in `format`"})
    sha256 = fields.String(dump_only=True, allow_none=True,
                           metadata={"description": "SHA-256 of the file in `format`"})
    sample_rate = fields.Integer(dump_only=True, allow_none=True)
    channels = fields.Integer(dump_only=True, allow_none=True)
    truncated = fields.Boolean(dump_only=True, metadata={
        "description": "cut at MAX_RECORDING_SIZE (the uuid_record time limit)"})
    error = fields.String(dump_only=True, allow_none=True)
    formats = fields.List(fields.String(), dump_only=True,
                          metadata={"description": "stored formats, for ?format= on the audio URL"})
    created_at = UTCDateTime(dump_only=True)
    started_at = UTCDateTime(dump_only=True, allow_none=True)
    stopped_at = UTCDateTime(dump_only=True, allow_none=True)
    ready_at = UTCDateTime(dump_only=True, allow_none=True)
    url = fields.Function(lambda recording: recording_url(recording.call_id), dump_only=True,
                          metadata={"description": "where the audio streams from"})


def recording_url(call_id):
    """Where a call's recording streams from (the REST route of the recordings resource)."""
    return f"/api/calls/{call_id}/recording"


# The summary's schema in the OpenAPI document (a Function field documents nothing itself).
SUMMARY_DOC = {"type": "object", "description": "the call's recording, or null", "properties": {
    "id": {"type": "string"}, "status": {"type": "string", "enum": list(STATUSES)},
    "format": {"type": "string", "enum": list(FORMATS)},
    "duration": {"type": "number", "nullable": True}, "url": {"type": "string"}}}


class RecordingSummarySchema(Schema):
    """The short form embedded in a call's dump."""

    id = fields.String()
    status = fields.String()
    format = fields.String()
    duration = fields.Float(allow_none=True)
    url = fields.Function(lambda recording: recording_url(recording.call_id))


RECORDING_SCHEMA = RecordingSchema()
SUMMARY_SCHEMA = RecordingSummarySchema()


def dump_recording(recording):
    return RECORDING_SCHEMA.dump(recording)


def recording_summary(recording):
    """A recording's summary for a call's dump (None when the call has none)."""
    return None if recording is None else SUMMARY_SCHEMA.dump(recording)
