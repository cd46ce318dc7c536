"""Marshmallow schemas of the recordings resource (also the `recordings` channel's payload)."""
from marshmallow import Schema, fields, validate

from services.fields import IDENT, UTCDateTime
from models.recording import Recording


class RecordingSchema(Schema):
    id = fields.String(dump_only=True)
    call_id = fields.String(dump_only=True)
    status = fields.String(dump_only=True, metadata={
        "description": "recording -> processing -> ready, or failed (see error)"})
    format = fields.String(dump_only=True)
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
    url = fields.String(dump_only=True, metadata={"description": "where the audio streams from"})


class RecordingStartSchema(Schema):
    format = fields.String(validate=validate.OneOf(Recording.FORMATS), metadata={
        "description": "stored format; default RECORDING_FORMAT (mp3)"})


class RecordingAudioArgsSchema(Schema):
    format = fields.String(validate=validate.OneOf(Recording.FORMATS), metadata={
        "description": "one of the recording's stored formats; default its own format"})


class RecordingQueryArgsSchema(Schema):
    call_id = fields.UUID()
    agent_id = fields.String(validate=IDENT)
    status = fields.String(validate=validate.OneOf(Recording.STATUSES))
    format = fields.String(validate=validate.OneOf(Recording.FORMATS))
    date_from = UTCDateTime(metadata={"description": "created at or after (ISO-8601)"})
    date_to = UTCDateTime(metadata={"description": "created before (ISO-8601)"})
