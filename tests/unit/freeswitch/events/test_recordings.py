"""RECORD_START / RECORD_STOP as the events process applies them, in process.

The subscribed handlers run as the listener runs them (one transaction, a
savepoint per event, news after the commit) against the real database and Redis.
"""
import datetime
import json
import uuid
from types import SimpleNamespace

import pytest
from rq import Queue

from freeswitch.events.recordings import subscriptions
from models import Call, utcnow
from models.recording import PROCESSING, READY, RECORDING, Recording
from services.outbox import Outbox
from services.publisher import Publisher
from services.recordings.service import RecordingService
from services.recordings.storage import RecordingStorage
from services.redis_client import stream_key


@pytest.fixture
def service(bound_db, redis_client, tmp_path):
    Recording.delete().execute()
    return RecordingService({"SIP_RECORDING_PATH": str(tmp_path / "recordings")},
                            Publisher(redis_client), redis_conn=redis_client)


def micros(moment):
    return str(int(moment.replace(tzinfo=datetime.UTC).timestamp() * 1_000_000))


def recording_in_progress(seconds_ago=3.0, limit=6553, status=RECORDING):
    started = utcnow() - datetime.timedelta(seconds=seconds_ago)
    call = Call.create(status="in-progress", fs_uuid=str(uuid.uuid4()), answered_at=started)
    return Recording.create(call=call.id, status=status, format="mp3", fs_uuid=call.fs_uuid,
                            source_path=RecordingStorage.source_relpath(call.id, started),
                            limit_seconds=limit, started_at=started)


def record_event(service, recording, name, **headers):
    event = {"Event-Name": name, "Unique-ID": recording.fs_uuid,
             "Record-File-Path": service.storage.absolute(recording.source_path),
             "Answer-State": "answered", "Channel-State": "CS_EXECUTE",
             "Event-Date-Timestamp": micros(utcnow())}
    event.update(headers)
    return event


def apply(service, *events):
    """One batch, as EventListener.apply_batch applies it."""
    handlers = subscriptions(SimpleNamespace(recordings=service))
    outbox = Outbox()
    with outbox.atomic():
        for event in events:
            with outbox.savepoint():
                handlers[event["Event-Name"]](event, outbox)


def published(redis_client, call_id):
    messages = [json.loads(fields[b"m"]) for _, fields in
                redis_client.xrange(stream_key("recordings"))]
    return [m["type"] for m in messages if m["data"]["call_id"] == call_id]


def stored(recording):
    return Recording.get_by_id(recording.id)


def test_the_recording_events_are_subscribed_in_one_place(service):
    assert set(subscriptions(SimpleNamespace(recordings=service))) == {"RECORD_START",
                                                                       "RECORD_STOP"}


def test_record_stop_moves_the_recording_to_processing_with_freeswitchs_figures(service,
                                                                              redis_client):
    recording = recording_in_progress()
    stopped_at = utcnow().replace(microsecond=0)
    apply(service, record_event(service, recording, "RECORD_STOP",
                                **{"variable_record_ms": "2500",
                                   "Record-Completion-Cause": "success-maxtime",
                                   "Event-Date-Timestamp": micros(stopped_at)}))
    after = stored(recording)
    assert (after.status, after.fs_record_ms, after.fs_completion_cause) == (
        PROCESSING, 2500, "success-maxtime")
    assert after.stopped_at == stopped_at and after.truncated is False
    assert Queue("recordings", connection=redis_client).count == 1
    assert published(redis_client, recording.call_id) == ["recording.stopped"]


def test_a_repeated_record_stop_moves_the_recording_once(service, redis_client):
    recording = recording_in_progress()
    stop = record_event(service, recording, "RECORD_STOP")
    apply(service, stop, stop)
    apply(service, stop)
    assert stored(recording).status == PROCESSING
    assert Queue("recordings", connection=redis_client).count == 1
    assert published(redis_client, recording.call_id) == ["recording.stopped"]


@pytest.mark.parametrize("headers,truncated", [
    ({}, True),                                     # FreeSWITCH stopped at the limit by itself
    ({"Answer-State": "hangup"}, False),            # the hangup stopped it
    ({"Channel-Call-State": "HANGUP"}, False),
    ({"Channel-State": "CS_REPORTING"}, False),
])
def test_a_stop_at_the_limit_is_a_cut_unless_the_call_hung_up(service, headers, truncated):
    recording = recording_in_progress(seconds_ago=10.0, limit=10)
    apply(service, record_event(service, recording, "RECORD_STOP", **headers))
    assert stored(recording).truncated is truncated


def test_a_stop_well_before_the_limit_is_not_a_cut(service):
    recording = recording_in_progress(seconds_ago=3.0, limit=10)
    apply(service, record_event(service, recording, "RECORD_STOP"))
    assert stored(recording).truncated is False


def test_a_late_record_stop_keeps_freeswitchs_figures_without_moving_the_status(service,
                                                                              redis_client):
    recording = recording_in_progress(status=READY)
    apply(service, record_event(service, recording, "RECORD_STOP", variable_record_ms="2980"))
    assert (stored(recording).status, stored(recording).fs_record_ms) == (READY, 2980)
    assert published(redis_client, recording.call_id) == []


@pytest.mark.parametrize("change", [
    {"Record-File-Path": "/etc/passwd"},
    {"Record-File-Path": "/tmp/elsewhere/x.wav"},
    {"Record-File-Path": ""},
    {"Unique-ID": "00000000-0000-4000-8000-000000000000"},
])
def test_a_record_stop_of_a_file_or_channel_not_ours_changes_nothing(service, redis_client,
                                                                     change):
    recording = recording_in_progress()
    apply(service, record_event(service, recording, "RECORD_STOP", **change))
    assert stored(recording).status == RECORDING
    assert Queue("recordings", connection=redis_client).count == 0


def test_record_start_fills_in_the_start_and_the_rate(service):
    recording = recording_in_progress()
    Recording.update(sample_rate=None).where(Recording.id == recording.id).execute()
    started_at = utcnow().replace(microsecond=0)
    apply(service, record_event(service, recording, "RECORD_START",
                                **{"Channel-Read-Codec-Rate": "16000",
                                   "Event-Date-Timestamp": micros(started_at)}))
    assert (stored(recording).sample_rate, stored(recording).started_at) == (16000, started_at)
    assert stored(recording).status == RECORDING


def test_a_malformed_rate_is_ignored(service):
    recording = recording_in_progress()
    Recording.update(sample_rate=8000).where(Recording.id == recording.id).execute()
    apply(service, record_event(service, recording, "RECORD_START",
                                **{"Channel-Read-Codec-Rate": "fast"}))
    assert stored(recording).sample_rate == 8000
