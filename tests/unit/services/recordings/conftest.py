"""Fixtures of the recordings unit tests: a RecordingService on the real database and Redis."""
import datetime
import uuid

import pytest

from models import Call, utcnow
from models.recording import Recording
from services.publisher import Publisher
from services.recordings.service import RecordingService
from services.recordings.storage import RecordingStorage


class FakeFreeSwitch:
    """The command link's one method the service uses; FreeSWITCH itself is not started."""

    def __init__(self, replies=None):
        self.sent = []
        self.replies = replies or {}

    def api(self, command, timeout=None):
        self.sent.append(command)
        return next((reply for prefix, reply in self.replies.items()
                     if command.startswith(prefix)), "+OK\n")


@pytest.fixture
def freeswitch():
    return FakeFreeSwitch({"uuid_getvar": "16000\n"})


@pytest.fixture
def service(bound_db, redis_client, tmp_path, freeswitch):
    Recording.delete().execute()
    config = {"SIP_RECORDING_PATH": str(tmp_path / "recordings"),
              "MAX_RECORDING_SIZE": 32044}
    return RecordingService(config, Publisher(redis_client), commands=freeswitch,
                            redis_conn=redis_client)


@pytest.fixture
def make_recording():
    def make(status="recording", seconds_ago=3.0, limit=6553, call_status="in-progress"):
        started = utcnow() - datetime.timedelta(seconds=seconds_ago)
        call = Call.create(status=call_status, fs_uuid=str(uuid.uuid4()), answered_at=started)
        return Recording.create(call=call.id, status=status, format="mp3", fs_uuid=call.fs_uuid,
                                source_path=RecordingStorage.source_relpath(call.id, started),
                                limit_seconds=limit, started_at=started)
    return make
