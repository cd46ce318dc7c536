"""Call recordings: one row per call that was recorded, with its stored files."""
import peewee

from models.call import Call
from models.db import BaseModel, JSONTextField, new_id, utcnow

# The status words, defined here once: recording (FreeSWITCH writes the WAV) ->
# processing (a job transcodes and measures it) -> ready, or failed with a reason.
RECORDING = "recording"
PROCESSING = "processing"
READY = "ready"
FAILED = "failed"
STATUSES = (RECORDING, PROCESSING, READY, FAILED)
UNFINISHED_STATUSES = (RECORDING, PROCESSING)
FORMATS = ("mp3", "wav", "ogg")


class Recording(BaseModel):
    """A call's recording, from `uuid_record start` to transcoded, measured files.

    Paths are stored relative to SIP_RECORDING_PATH, never absolute, so that
    nothing in the database can point a download outside the recording root.
    """

    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    # One recording per call: FreeSWITCH records to <root>/YYYY/MM/DD/<call id>.wav.
    call = peewee.ForeignKeyField(Call, backref="recordings", on_delete="CASCADE", unique=True)
    status = peewee.CharField(max_length=16, default=RECORDING, index=True)
    format = peewee.CharField(max_length=8)
    fs_uuid = peewee.CharField(max_length=64, null=True)
    source_path = peewee.CharField(max_length=255, index=True)  # RECORD_* events find it by path
    # {"mp3": {"path": "2024/05/01/<id>.mp3", "size": 123, "sha256": "..."}, "wav": {...}}
    files = JSONTextField(null=True)
    duration = peewee.FloatField(null=True)
    sample_rate = peewee.IntegerField(null=True)
    channels = peewee.IntegerField(null=True)
    size = peewee.BigIntegerField(null=True)
    sha256 = peewee.CharField(max_length=64, null=True)
    limit_seconds = peewee.IntegerField(null=True)
    truncated = peewee.BooleanField(default=False)
    error = peewee.CharField(max_length=255, null=True)
    # What FreeSWITCH said in RECORD_STOP (variable_record_ms, Record-Completion-Cause).
    fs_record_ms = peewee.BigIntegerField(null=True)
    fs_completion_cause = peewee.CharField(max_length=64, null=True)
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    started_at = peewee.DateTimeField(null=True)
    stopped_at = peewee.DateTimeField(null=True)
    ready_at = peewee.DateTimeField(null=True)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("status", "created_at"), False),
            (("format", "created_at"), False),
        )

    STATUSES = STATUSES
    FORMATS = FORMATS

    @property
    def formats(self):
        return sorted((self.files or {}).keys())


MODELS = [Recording]
