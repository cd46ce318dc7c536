"""Request and query schemas of the recordings resource."""
from marshmallow import Schema, fields, validate

from services.fields import IDENT, UTCDateTime
from services.recordings.schemas import (
    FORMATS,
    STATUSES,
    RecordingSchema,  # noqa: F401  (the response schema)
)


class RecordingStartSchema(Schema):
    format = fields.String(validate=validate.OneOf(FORMATS), metadata={
        "description": "stored format; default RECORDING_FORMAT (mp3)"})


class RecordingAudioArgsSchema(Schema):
    format = fields.String(validate=validate.OneOf(FORMATS), metadata={
        "description": "one of the recording's stored formats; default its own format"})


class RecordingQueryArgsSchema(Schema):
    call_id = fields.UUID()
    agent_id = fields.String(validate=IDENT)
    status = fields.String(validate=validate.OneOf(STATUSES))
    format = fields.String(validate=validate.OneOf(FORMATS))
    date_from = UTCDateTime(metadata={"description": "created at or after (ISO-8601)"})
    date_to = UTCDateTime(metadata={"description": "created before (ISO-8601)"})


class RecordingUrlSchema(Schema):
    url = fields.String(metadata={
        "description": "a path on this service, /api/recordings/signed/<token>, that streams "
                       "this recording in this format (Range supported) without credentials "
                       "until expires_at: for <audio src>"})
    expires_at = UTCDateTime()
    expires_in = fields.Integer(metadata={"description": "seconds (RECORDING_URL_TTL)"})
    format = fields.String()
