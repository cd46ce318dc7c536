"""RECORD_START/RECORD_STOP as the events process applies them: idempotent, and only for our files.

The handlers run as the listener runs them (inside a transaction, side effects
in an outbox flushed after commit) against the real database and Redis; the
jobs they enqueue land in a Redis database no worker reads, to be counted.
"""
import datetime
import json
import uuid
from types import SimpleNamespace

import pytest
import redis
from rq import Queue

from freeswitch.events.recordings import subscriptions
from models import Call, db, utcnow
from models.recording import Recording
from services.outbox import Outbox
from services.publisher import Publisher
from services.recordings.service import RecordingService
from services.recordings.storage import RecordingStorage
from services.redis_client import stream_key


@pytest.fixture
def quiet_redis(redis_server):
    """Redis database 1: the notifier and the queue, with no worker listening."""
    client = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/1")
    client.flushdb()
    return client


@pytest.fixture
def service(bound_db, quiet_redis, tmp_path):
    config = {"SIP_RECORDING_PATH": str(tmp_path / "recordings")}
    return RecordingService(config, Publisher(quiet_redis), redis_conn=quiet_redis)


def fs_timestamp(moment):
    return str(int(moment.replace(tzinfo=datetime.UTC).timestamp() * 1_000_000))


def recording_in_progress(service, seconds_ago=3.0, limit=6553):
    started = utcnow() - datetime.timedelta(seconds=seconds_ago)
    call = Call.create(status="in-progress", fs_uuid=str(uuid.uuid4()), answered_at=started)
    return Recording.create(call=call.id, status="recording", format="mp3", fs_uuid=call.fs_uuid,
                            source_path=RecordingStorage.source_relpath(call.id, started),
                            limit_seconds=limit, started_at=started)


def record_event(service, recording, name, **headers):
    event = {"Event-Name": name, "Unique-ID": recording.fs_uuid,
             "Record-File-Path": service.storage.absolute(recording.source_path),
             "Answer-State": "answered", "Event-Date-Timestamp": fs_timestamp(utcnow()),
             "Channel-Read-Codec-Rate": "8000"}
    event.update(headers)
    return event


def apply(service, event):
    """As the listener does: the subscribed handler in one transaction, then the outbox."""
    handler = subscriptions(SimpleNamespace(recordings=service))
    outbox = Outbox()
    with db.atomic():
        handler[event["Event-Name"]](event, outbox)
    outbox.flush()


def published(quiet_redis, call_id):
    entries = quiet_redis.xrange(stream_key("recordings"))
    return [json.loads(fields[b"m"])["type"] for _, fields in entries
            if json.loads(fields[b"m"])["data"]["call_id"] == call_id]


def test_a_repeated_record_stop_moves_the_recording_and_enqueues_its_job_once(service,
                                                                           quiet_redis):
    recording = recording_in_progress(service)
    stop = record_event(service, recording, "RECORD_STOP", variable_record_ms="2500",
                        **{"Record-Completion-Cause": "success-maxtime"})
    for _ in range(3):
        apply(service, stop)
    stored = Recording.get_by_id(recording.id)
    assert stored.status == "processing" and stored.fs_record_ms == 2500
    assert stored.fs_completion_cause == "success-maxtime" and stored.truncated is False
    assert stored.stopped_at is not None
    assert Queue("recordings", connection=quiet_redis).count == 1
    assert published(quiet_redis, recording.call_id) == ["recording.stopped"]


def test_record_start_fills_in_what_freeswitch_knows(service):
    recording = recording_in_progress(service)
    Recording.update(sample_rate=None).where(Recording.id == recording.id).execute()
    apply(service, record_event(service, recording, "RECORD_START",
                                **{"Channel-Read-Codec-Rate": "16000"}))
    assert Recording.get_by_id(recording.id).sample_rate == 16000


def test_freeswitch_stopping_by_itself_at_the_limit_marks_the_recording_truncated(service):
    at_limit = recording_in_progress(service, seconds_ago=10.0, limit=10)
    apply(service, record_event(service, at_limit, "RECORD_STOP"))
    assert Recording.get_by_id(at_limit.id).truncated is True
    # The same length ended by the hangup is complete, not cut.
    hung_up = recording_in_progress(service, seconds_ago=10.0, limit=10)
    apply(service, record_event(service, hung_up, "RECORD_STOP", **{"Answer-State": "hangup"}))
    assert Recording.get_by_id(hung_up.id).truncated is False
    # Well before the limit: a stop for another reason.
    early = recording_in_progress(service, seconds_ago=3.0, limit=10)
    apply(service, record_event(service, early, "RECORD_STOP"))
    assert Recording.get_by_id(early.id).truncated is False


@pytest.mark.parametrize("change", [
    {"Record-File-Path": "/etc/passwd"},
    {"Record-File-Path": "/tmp/elsewhere/x.wav"},
    {"Unique-ID": "00000000-0000-4000-8000-000000000000"},
])
def test_record_stop_of_a_file_or_channel_that_is_not_ours_changes_nothing(service, quiet_redis,
                                                                        change):
    recording = recording_in_progress(service)
    apply(service, record_event(service, recording, "RECORD_STOP", **change))
    assert Recording.get_by_id(recording.id).status == "recording"
    assert Queue("recordings", connection=quiet_redis).count == 0


def test_the_call_ending_without_record_stop_still_processes_the_recording(service, quiet_redis):
    recording = recording_in_progress(service)
    call = Call.get_by_id(recording.call_id)
    call.status, call.ended_at = "completed", utcnow()
    outbox = Outbox()
    with db.atomic():
        service.on_call_ended(call, outbox)
        service.on_call_ended(call, outbox)  # the hook may run twice (API end, then hangup)
    outbox.flush()
    assert Recording.get_by_id(recording.id).status == "processing"
    assert Queue("recordings", connection=quiet_redis).count == 1
    # A late RECORD_STOP then only adds FreeSWITCH's figures.
    apply(service, record_event(service, recording, "RECORD_STOP", variable_record_ms="2980",
                                **{"Answer-State": "hangup"}))
    assert Recording.get_by_id(recording.id).fs_record_ms == 2980
    assert Queue("recordings", connection=quiet_redis).count == 1
    assert published(quiet_redis, recording.call_id) == ["recording.stopped"]
