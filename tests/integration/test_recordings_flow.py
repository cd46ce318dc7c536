"""Recording a call through the running stack: web, events and an RQ worker, ESL simulator.

The simulator writes a real WAV where `uuid_record` asks and emits
RECORD_START/RECORD_STOP; the worker transcodes it with PyAV; the web process
streams it. Runs on SQLite and on PostgreSQL when reachable.
"""
import datetime
import glob
import hashlib
import io
import os
import re
import signal

import av
import gevent
import psutil
import pytest
from rq import Retry

from tests.conftest import ChannelRecorder, wait_until
from tests.esl_sim.server import write_wav

GW = "gw1"
# Auth and rate limits have their own tests; these requests are the recording feature's.
# The simulator writes mono WAVs: the size limits here are a mono call's (stereo and
# transcripts: tests/integration/test_transcripts.py).
OPEN_API = {"AUTH_ENABLED": "false", "RATELIMIT_ENABLED": "false", "RECORDING_STEREO": "false",
            "TRANSCRIPTION_ENABLED": "false"}


@pytest.fixture(scope="module")
def rec_stack(stack_factory, db_url, sim):
    """web + events + worker, recording where the simulator writes (SIP_RECORDING_PATH).

    Stopped with its database: another database's worker on the same queue would
    take this one's jobs.
    """
    stack = stack_factory(db_url, sim, worker=True, SIP_RECORDING_PATH=sim.recordings_root,
                          RECORDING_RETENTION_DAYS=30, **OPEN_API)
    yield stack
    stack.stop()


@pytest.fixture
def recordings_channel(redis_server):
    recorder = ChannelRecorder(redis_server.url, ("recordings",))
    wait_until(lambda: True, 0.2)
    yield recorder
    recorder.close()


def messages_for(channel, call_id):
    return [m for m in channel.messages if m["data"].get("call_id") == call_id]


def three_message_types(channel, call_id):
    """The types of a recording's first three messages, once they came: each is published
    after the commit the API already shows, so it may trail what the API says."""
    return wait_until(lambda: [m["type"] for m in messages_for(channel, call_id)][:3]
                      if len(messages_for(channel, call_id)) >= 3 else None, 10,
                      message="the recording's three messages")


def live_call(stack, to="15551239000", **extra):
    call = stack.post("/api/calls/start", {"to": to, "gateway": GW, "agent_id": "agent-rec",
                                           **extra}).json()
    wait_until(lambda: stack.get(f"/api/calls/{call['id']}").json()["status"] == "in-progress",
               10, message="the call to be answered")
    return call


def recording_of(stack, call_id):
    rows = stack.get("/api/calls/recordings", params={"call_id": call_id}).json()
    return rows[0] if rows else None


def wait_recording(stack, call_id, status, timeout=20):
    def reached():
        recording = recording_of(stack, call_id)
        return recording if recording and recording["status"] == status else None
    return wait_until(reached, timeout, message=f"recording of {call_id} to be {status}")


def decoded_seconds(data):
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(f.samples for f in container.decode(stream)) / stream.codec_context.sample_rate


def wav_seconds(path):
    return (os.path.getsize(path) - 44) / 16000


def test_a_recorded_call_goes_recording_processing_ready_and_streams(rec_stack, sim,
                                                                   recordings_channel):
    call = live_call(rec_stack)
    started = rec_stack.post(f"/api/calls/{call['id']}/recording/start", {"format": "mp3"})
    assert started.status_code == 201, started.text
    assert started.json()["status"] == "recording" and started.json()["format"] == "mp3"

    # FreeSWITCH is asked to record to <root>/YYYY/MM/DD/<call id>.wav with the size limit.
    command = [c for c in sim.commands if "uuid_record" in c and "start" in c][-1]
    day = datetime.datetime.now(datetime.UTC).strftime("%Y/%m/%d")
    wav_path = os.path.join(sim.recordings_root, day, f"{call['id']}.wav")
    assert command == f"api uuid_record {call['fs_uuid']} start {wav_path} 6553"
    assert os.path.isdir(os.path.dirname(wav_path))
    again = rec_stack.post(f"/api/calls/{call['id']}/recording/start", {})
    assert again.status_code == 409 and "already being recorded" in again.json()["message"]

    gevent.sleep(1.2)
    stopped = rec_stack.post(f"/api/calls/{call['id']}/recording/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] in ("processing", "ready")
    assert f"api uuid_record {call['fs_uuid']} stop {wav_path}" in sim.commands

    ready = wait_recording(rec_stack, call["id"], "ready")
    recorded = wav_seconds(wav_path)
    assert abs(ready["duration"] - recorded) <= 0.05 and recorded >= 1.0
    assert ready["formats"] == ["mp3", "wav"] and ready["truncated"] is False
    assert ready["sample_rate"] == 16000 and ready["channels"] == 1
    assert ready["url"] == f"/api/calls/{call['id']}/recording"

    audio = rec_stack.get(ready["url"])
    assert audio.status_code == 200 and audio.headers["Content-Type"] == "audio/mpeg"
    assert audio.headers["Accept-Ranges"] == "bytes"
    assert hashlib.sha256(audio.content).hexdigest() == ready["sha256"]
    assert len(audio.content) == ready["size"]
    assert abs(decoded_seconds(audio.content) - recorded) <= 0.05
    wav = rec_stack.get(ready["url"], params={"format": "wav"})
    assert wav.status_code == 200 and wav.headers["Content-Type"] == "audio/wav"
    assert abs(decoded_seconds(wav.content) - recorded) <= 0.05
    missing = rec_stack.get(ready["url"], params={"format": "ogg"})
    assert missing.status_code == 404 and "stored formats: mp3, wav" in missing.json()["message"]

    summary = rec_stack.get(f"/api/calls/{call['id']}").json()["recording"]
    assert summary == {"id": ready["id"], "status": "ready", "format": "mp3",
                       "duration": ready["duration"], "url": ready["url"]}

    types = three_message_types(recordings_channel, call["id"])
    assert types == ["recording.started", "recording.stopped", "recording.ready"]
    ready_message = messages_for(recordings_channel, call["id"])[2]["data"]
    assert ready_message["sha256"] == ready["sha256"] and ready_message["url"] == ready["url"]

    rec_stack.post(f"/api/calls/{call['id']}/end")
    deleted = rec_stack.delete(f"/api/calls/{call['id']}/recording")
    assert deleted.status_code == 204
    assert rec_stack.get(ready["url"]).status_code == 404
    assert recording_of(rec_stack, call["id"]) is None
    assert not glob.glob(os.path.join(os.path.dirname(wav_path), f"*{call['id']}*"))
    wait_until(lambda: [m for m in messages_for(recordings_channel, call["id"])
                        if m["type"] == "recording.deleted"], 5, message="recording.deleted")


def test_record_true_records_from_the_answer_until_the_hangup(rec_stack, sim, recordings_channel):
    call = live_call(rec_stack, record=True, record_format="ogg")
    wait_recording(rec_stack, call["id"], "recording", timeout=5)
    gevent.sleep(1.0)
    sim.hangup(call["fs_uuid"])  # RECORD_STOP comes with the hangup: nobody calls stop

    ready = wait_recording(rec_stack, call["id"], "ready")
    assert ready["format"] == "ogg" and ready["formats"] == ["ogg", "wav"]
    audio = rec_stack.get(ready["url"])
    assert audio.headers["Content-Type"] == "audio/ogg"
    with av.open(io.BytesIO(audio.content)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
    assert abs(decoded_seconds(audio.content) - ready["duration"]) <= 0.05
    assert ready["duration"] >= 0.9 and ready["truncated"] is False
    types = three_message_types(recordings_channel, call["id"])
    assert types[:3] == ["recording.started", "recording.stopped", "recording.ready"]


def test_only_live_calls_can_be_recorded_and_only_recordings_stopped(rec_stack):
    call = live_call(rec_stack)
    assert rec_stack.post(f"/api/calls/{call['id']}/recording/stop").status_code == 404
    rec_stack.post(f"/api/calls/{call['id']}/end")
    refused = rec_stack.post(f"/api/calls/{call['id']}/recording/start", {"format": "wav"})
    assert refused.status_code == 409 and "live" in refused.json()["message"]
    unknown = rec_stack.post("/api/calls/00000000-0000-4000-8000-000000000000/recording/start", {})
    assert unknown.status_code == 404 and unknown.json()["code"] == 404
    bad = rec_stack.post(f"/api/calls/{call['id']}/recording/start", {"format": "flac"})
    assert bad.status_code == 422 and "format" in bad.json()["errors"]["json"]


def test_stopping_twice_is_refused_and_deleting_while_recording_is_refused(rec_stack):
    call = live_call(rec_stack)
    assert rec_stack.post(f"/api/calls/{call['id']}/recording/start").status_code == 201
    busy = rec_stack.delete(f"/api/calls/{call['id']}/recording")
    assert busy.status_code == 409 and "stop the recording" in busy.json()["message"]
    assert rec_stack.post(f"/api/calls/{call['id']}/recording/stop").status_code == 200
    twice = rec_stack.post(f"/api/calls/{call['id']}/recording/stop")
    assert twice.status_code == 409 and "not being recorded" in twice.json()["message"]
    ready = wait_recording(rec_stack, call["id"], "ready")
    assert ready["format"] == "mp3"  # RECORDING_FORMAT's default
    rec_stack.post(f"/api/calls/{call['id']}/end")


def test_deleting_a_call_deletes_its_recording_and_files(rec_stack, recordings_channel):
    call = live_call(rec_stack)
    rec_stack.post(f"/api/calls/{call['id']}/recording/start", {"format": "wav"})
    rec_stack.post(f"/api/calls/{call['id']}/end")  # the hangup stops the recording
    ready = wait_recording(rec_stack, call["id"], "ready")
    assert ready["formats"] == ["wav"]
    files = glob.glob(os.path.join(rec_stack.env["SIP_RECORDING_PATH"], "*", "*", "*",
                                   f"{call['id']}*"))
    assert files
    assert rec_stack.delete(f"/api/calls/{call['id']}").status_code == 204
    assert recording_of(rec_stack, call["id"]) is None
    wait_until(lambda: not any(os.path.exists(f) for f in files), 15, message="files removed")
    wait_until(lambda: [m for m in messages_for(recordings_channel, call["id"])
                        if m["type"] == "recording.deleted"], 5, message="recording.deleted")


def test_the_list_filters_and_pages(rec_stack):
    calls = [live_call(rec_stack, agent_id=agent) for agent in ("agent-a", "agent-a", "agent-b")]
    for call, fmt in zip(calls, ("mp3", "ogg", "mp3"), strict=True):
        rec_stack.post(f"/api/calls/{call['id']}/recording/start", {"format": fmt})
        rec_stack.post(f"/api/calls/{call['id']}/end")
    for call in calls:
        wait_recording(rec_stack, call["id"], "ready")

    def ids(**params):
        response = rec_stack.get("/api/calls/recordings", params=params)
        assert response.status_code == 200, response.text
        return [r["call_id"] for r in response.json()]

    assert ids(agent_id="agent-a") == [calls[1]["id"], calls[0]["id"]]  # newest first
    assert ids(agent_id="agent-a", format="ogg") == [calls[1]["id"]]
    assert calls[2]["id"] in ids(status="ready", format="mp3")
    assert ids(status="failed", agent_id="agent-b") == []
    tomorrow = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).isoformat()
    assert ids(date_from=tomorrow) == []
    assert len(ids(agent_id="agent-a", date_to=tomorrow)) == 2
    page = rec_stack.get("/api/calls/recordings", params={"page_size": 1, "page": 2,
                                                           "agent_id": "agent-a"})
    assert [r["call_id"] for r in page.json()] == [calls[0]["id"]]
    assert '"total": 2' in page.headers["X-Pagination"]
    for bad in ({"status": "lost"}, {"format": "flac"}, {"call_id": "nope"},
                {"date_from": "yesterday"}):
        response = rec_stack.get("/api/calls/recordings", params=bad)
        assert response.status_code == 422 and response.json()["code"] == 422, bad


def test_a_recording_is_cut_at_max_recording_size(stack_factory, db_url, sim):
    # 32,044 bytes of WAV = 2 s at 8 kHz: uuid_record gets a 2 s limit and FreeSWITCH stops there.
    small = stack_factory(db_url, sim, worker=True, SIP_RECORDING_PATH=sim.recordings_root,
                          MAX_RECORDING_SIZE=32044, **OPEN_API)
    try:
        call = live_call(small)
        assert small.post(f"/api/calls/{call['id']}/recording/start", {"format": "mp3"}).ok
        assert re.search(r" 2$", [c for c in sim.commands if "uuid_record" in c][-1])
        ready = wait_recording(small, call["id"], "ready", timeout=15)
        assert ready["truncated"] is True and abs(ready["duration"] - 2.0) <= 0.05
        wav = small.get(ready["url"], params={"format": "wav"})
        assert len(wav.content) <= 32044
        small.post(f"/api/calls/{call['id']}/end")
    finally:
        small.stop()


# ----- the worker: killed mid-job, retention, recovery -----------------------
def _recording_row(bound_db, root, seconds, status="processing", fmt="mp3", created_days_ago=0):
    """A call and its recording made directly in the database, with a real WAV on disk."""
    from models import Call
    from models.recording import Recording
    from services.recordings.storage import RecordingStorage
    created = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        days=created_days_ago)
    call = Call.create(status="completed", agent_id="agent-batch", created_at=created)
    relpath = RecordingStorage.source_relpath(call.id, created)
    write_wav(os.path.join(root, relpath), seconds)
    updated = created if created_days_ago else datetime.datetime.now(datetime.UTC).replace(
        tzinfo=None) - datetime.timedelta(hours=1)
    return Recording.create(call=call.id, status=status, format=fmt, source_path=relpath,
                            fs_uuid=call.id, created_at=created, updated_at=updated)


def horse_of(stack):
    """The worker's work-horse: the child that RQ forked into its own process group."""
    worker = psutil.Process(stack.procs["worker"][0].pid)
    for child in worker.children():
        if os.getpgid(child.pid) == child.pid:
            return child
    return None


def test_a_worker_killed_mid_transcode_leaves_no_partial_file_and_the_retry_succeeds(
        rec_stack, bound_db, redis_server, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("file handling does not depend on the database; once is enough")
    from services.jobs import enqueue
    from workers.recordings import transcode_recording
    root = rec_stack.env["SIP_RECORDING_PATH"]
    recording = _recording_row(bound_db, root, 600.0)  # a 10-minute call: seconds of work
    target = os.path.join(root, recording.source_path[:-4] + ".mp3")
    partials = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.*.part")
    enqueue(redis_server.client(), "recordings", transcode_recording, recording.id,
            retry=Retry(max=2))  # retried at once, not after 10 s, to keep the test short

    wait_until(lambda: glob.glob(partials), 20, 0.01, "the transcode to start writing")
    horse = wait_until(lambda: horse_of(rec_stack), 15, 0.01, "the work-horse")
    os.kill(horse.pid, signal.SIGKILL)
    assert not os.path.exists(target)  # nothing half-written under the real name
    url = f"/api/calls/{recording.call_id}/recording"
    assert rec_stack.get(url).status_code == 409  # still processing: not served

    ready = wait_recording(rec_stack, recording.call_id, "ready", timeout=40)
    audio = rec_stack.get(url)
    assert hashlib.sha256(audio.content).hexdigest() == ready["sha256"]
    assert abs(decoded_seconds(audio.content) - 600.0) <= 0.05
    assert not glob.glob(partials)  # the retry cleared the killed attempt's temporary file
    assert "Work-horse terminated unexpectedly" in rec_stack.log("worker")


def test_retention_deletes_old_recordings_and_recovers_stalled_ones(
        rec_stack, bound_db, redis_server, recordings_channel):
    from services.recordings.maintenance import MAINTENANCE_LOCK_KEY, maintenance_task
    root = rec_stack.env["SIP_RECORDING_PATH"]
    old = _recording_row(bound_db, root, 1.0, status="ready", created_days_ago=40)
    kept = _recording_row(bound_db, root, 1.0, status="ready", created_days_ago=10)
    stalled = _recording_row(bound_db, root, 1.5)  # processing, its job lost an hour ago
    old_file = os.path.join(root, old.source_path)

    # The events process's periodic task, run here once: it enqueues the maintenance job.
    services = type("Services", (), {"redis": redis_server.client(),
                                     "config": {"RECORDING_MAINTENANCE_INTERVAL": 3600}})()
    services.redis.delete(MAINTENANCE_LOCK_KEY)  # another module's run may hold it
    task = gevent.spawn(maintenance_task(services, first_delay=0))
    try:
        wait_until(lambda: not os.path.exists(old_file), 15, message="the old recording deleted")
    finally:
        task.kill()
    assert recording_of(rec_stack, old.call_id) is None
    assert recording_of(rec_stack, kept.call_id)["status"] == "ready"
    ready = wait_recording(rec_stack, stalled.call_id, "ready")
    assert abs(ready["duration"] - 1.5) <= 0.05
    wait_until(lambda: [m for m in messages_for(recordings_channel, old.call_id)
                        if m["type"] == "recording.deleted"], 5, message="recording.deleted")


# ----- only the recording root is ever served --------------------------------
@pytest.mark.parametrize("stored", ["../../../../../etc/passwd", "/etc/passwd", "LINK"])
def test_a_stored_path_outside_the_root_is_never_served(rec_stack, bound_db, stored):
    from models.recording import Recording
    root = rec_stack.env["SIP_RECORDING_PATH"]
    recording = _recording_row(bound_db, root, 0.5, status="ready")
    if stored == "LINK":
        stored = os.path.join(os.path.dirname(recording.source_path), f"{recording.id}.mp3")
        os.symlink("/etc/passwd", os.path.join(root, stored))
    Recording.update(files={"mp3": {"path": stored, "size": 1, "sha256": "0" * 64}}).where(
        Recording.id == recording.id).execute()
    response = rec_stack.get(f"/api/calls/{recording.call_id}/recording")
    assert response.status_code == 404 and b"root:" not in response.content
    assert response.json()["code"] == 404


@pytest.mark.parametrize("path", [
    "/api/calls/..%2F..%2F..%2Fetc%2Fpasswd/recording",
    "/api/calls/../../etc/passwd/recording",
    "/api/calls/%2e%2e/recording",
    "/api/calls/00000000-0000-4000-8000-000000000000/recording?format=../../etc/passwd",
    "/api/calls/00000000-0000-4000-8000-000000000000/recording?format=%2Fetc%2Fpasswd",
])
def test_traversal_in_the_url_is_refused(rec_stack, path):
    response = rec_stack.http.get(rec_stack.base_url + path, timeout=10)
    assert response.status_code in (404, 422)
    assert b"root:" not in response.content and response.json()["code"] in (404, 422)
