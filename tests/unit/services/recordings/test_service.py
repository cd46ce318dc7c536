"""RecordingService status moves: each happens once, from the right status, after commit."""
import datetime
import json
import os

import pytest
from rq import Queue

from models import utcnow
from models.recording import FAILED, PROCESSING, READY, RECORDING, Recording
from services.errors import Conflict, Unavailable
from services.outbox import Outbox
from services.recordings.service import transcode_job_id
from services.redis_client import stream_key


def published(redis_client, call_id):
    entries = redis_client.xrange(stream_key("recordings"))
    messages = [json.loads(fields[b"m"]) for _, fields in entries]
    return [m["type"] for m in messages if m["data"]["call_id"] == call_id]


def queued(redis_client):
    return Queue("recordings", connection=redis_client).job_ids


def status_of(recording):
    return Recording.get_by_id(recording.id).status


def test_start_records_with_the_size_limit_at_the_channels_rate(service, freeswitch,
                                                                 make_recording, redis_client):
    recording = make_recording()
    Recording.delete().where(Recording.id == recording.id).execute()
    started = service.start(recording.call_id, "ogg")
    # 32044 bytes = 32000 bytes of audio = 1 s at 16 kHz, 16-bit mono.
    path = service.storage.absolute(started.source_path)
    assert freeswitch.sent[-1] == f"uuid_record {recording.fs_uuid} start {path} 1"
    assert os.path.isdir(os.path.dirname(path))
    stored = Recording.get_by_id(started.id)
    assert (stored.status, stored.format, stored.sample_rate) == (RECORDING, "ogg", 16000)
    assert published(redis_client, recording.call_id) == ["recording.started"]


def test_a_start_freeswitch_refuses_leaves_no_recording(service, freeswitch, make_recording):
    recording = make_recording()
    Recording.delete().where(Recording.id == recording.id).execute()
    freeswitch.replies["uuid_record"] = "-ERR Cannot locate session\n"
    with pytest.raises(Conflict):
        service.start(recording.call_id)
    assert Recording.get_or_none(Recording.call == recording.call_id) is None


def test_stop_moves_recording_to_processing_once_with_one_job(service, freeswitch,
                                                              make_recording, redis_client):
    recording = make_recording()
    assert service.stop(recording.call_id).status == PROCESSING
    path = service.storage.absolute(recording.source_path)
    assert freeswitch.sent[-1] == f"uuid_record {recording.fs_uuid} stop {path}"
    with pytest.raises(Conflict):
        service.stop(recording.call_id)
    assert queued(redis_client) == [transcode_job_id(recording.id)]
    assert published(redis_client, recording.call_id) == ["recording.stopped"]


def test_stop_without_freeswitch_is_unavailable_and_changes_nothing(service, make_recording):
    recording = make_recording()
    service.commands = None
    with pytest.raises(Unavailable):
        service.stop(recording.call_id)
    assert status_of(recording) == RECORDING


def test_finish_recording_happens_once(service, make_recording, redis_client):
    recording = make_recording()
    outbox = Outbox()
    with outbox.atomic():
        assert service.finish_recording(recording.id, outbox) is True
        assert service.finish_recording(recording.id, outbox) is False
    assert status_of(recording) == PROCESSING
    assert len(queued(redis_client)) == 1


def test_a_rolled_back_move_announces_nothing(service, make_recording, redis_client):
    recording = make_recording()
    outbox = Outbox()
    with pytest.raises(RuntimeError), outbox.atomic():
        service.finish_recording(recording.id, outbox)
        raise RuntimeError("the transaction fails after the move")
    assert status_of(recording) == RECORDING
    assert published(redis_client, recording.call_id) == []
    assert queued(redis_client) == []


@pytest.mark.parametrize("start,moved", [(RECORDING, True), (PROCESSING, True),
                                         (READY, False), (FAILED, False)])
def test_only_an_unfinished_recording_can_fail(service, make_recording, redis_client, start,
                                              moved):
    recording = make_recording(status=start)
    assert service.mark_failed(recording.id, "transcoding failed: boom") is moved
    assert status_of(recording) == (FAILED if moved else start)
    assert published(redis_client, recording.call_id) == (["recording.failed"] if moved else [])


def test_a_failure_inside_the_callers_transaction_is_announced_after_its_commit(
        service, make_recording, redis_client):
    recording = make_recording()
    outbox = Outbox()  # empty when handed over: it must still carry the news
    with outbox.atomic():
        service.mark_failed(recording.id, "the call ended before recording started", outbox)
        assert published(redis_client, recording.call_id) == []  # not before the commit
    assert published(redis_client, recording.call_id) == ["recording.failed"]


def test_mark_ready_stores_the_result_only_for_a_processing_recording(service, make_recording,
                                                                      redis_client):
    files = {"mp3": {"path": "x.mp3", "size": 10, "sha256": "a" * 64}}
    figures = {"duration": 1.23456, "sample_rate": 16000, "channels": 1, "truncated": False}
    processing, recording = make_recording(status=PROCESSING), make_recording()
    assert service.transcoder.mark_ready(processing.id, files, figures) is True
    assert service.transcoder.mark_ready(recording.id, files, figures) is False
    ready = Recording.get_by_id(processing.id)
    assert (ready.status, ready.duration, ready.size, ready.formats) == (READY, 1.235, 10, ["mp3"])
    assert status_of(recording) == RECORDING
    assert published(redis_client, processing.call_id) == ["recording.ready"]


def test_a_recording_being_written_cannot_be_deleted(service, make_recording):
    recording = make_recording()
    with pytest.raises(Conflict):
        service.delete(recording.call_id)
    assert status_of(recording) == RECORDING


def test_delete_removes_the_row_and_its_files_and_announces_it(service, make_recording,
                                                               redis_client):
    recording = make_recording(status=READY)
    source = service.storage.absolute(recording.source_path)
    os.makedirs(os.path.dirname(source))
    open(source, "wb").close()
    service.delete(recording.call_id)
    assert Recording.get_or_none(Recording.id == recording.id) is None
    assert not os.path.exists(source)
    assert published(redis_client, recording.call_id) == ["recording.deleted"]


def test_retention_deletes_old_recordings_but_not_one_being_written(service, make_recording):
    old_ready, old_recording = make_recording(status=READY), make_recording()
    Recording.update(created_at=utcnow() - datetime.timedelta(days=40)).where(
        Recording.id.in_([old_ready.id, old_recording.id])).execute()
    fresh = make_recording(status=READY)
    assert service.maintenance.delete_expired(30) == 1
    assert {r.id for r in Recording.select()} == {old_recording.id, fresh.id}
