"""Transcripts through the running stack: a recording becomes ready in the worker, the
worker transcribes it, the web process serves it (JSON, WebVTT), searches it and
keeps agents to their own calls. Test speech is espeak-ng's; SQLite and PostgreSQL.
"""
import contextlib
import io
import json
import os
import uuid

import av
import gevent
import numpy as np
import pytest
import requests

from models import Call, db, make_database, utcnow
from models.recording import PROCESSING, READY, Recording
from models.transcript import Transcript
from services import jobs
from services.auth import create_key
from tests.conftest import ChannelRecorder, wait_until
from tests.unit.services.transcripts.speech import (
    AGENT_VOICE,
    CUSTOMER_VOICE,
    conversation,
    needs_espeak,
    write_wav,
)

pytestmark = needs_espeak

PHRASES = {"compliance": ["sorry to hear that"], "risk": ["cancel my account"]}
SCRIPT = [  # (channel, start, voice, text): the customer left, the agent right
    (1, 0.5, AGENT_VOICE, "i am sorry to hear that"),
    (0, 3.0, CUSTOMER_VOICE, "please cancel my account"),
    (1, 4.0, AGENT_VOICE, "i can do that for you now"),  # starts before she is done
    (0, 8.0, CUSTOMER_VOICE, "thank you so much that was wonderful"),
]


@pytest.fixture(scope="module")
def tx_stack(stack_factory, db_url):
    stack = stack_factory(db_url, None, events=False, worker=True,
                          TRANSCRIPT_PHRASES=json.dumps(PHRASES), RATELIMIT_ENABLED="false")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def channel(redis_server, tx_stack):
    recorder = ChannelRecorder(redis_server.url, ("recordings",))
    yield recorder
    recorder.close()


@contextlib.contextmanager
def stack_db(stack):
    """The test process bound to the stack's database for the block."""
    previous = db.obj
    database = make_database(stack.env["DATABASE_URL"])
    db.initialize(database)
    try:
        with database.connection_context():
            yield
    finally:
        db.initialize(previous)


def recorded_call(stack, write, agent_id="A1", status=PROCESSING, files=None):
    """A finished call whose recording's WAV `write(path)` makes; its transcode job enqueued."""
    call_id = str(uuid.uuid4())
    now = utcnow()
    relpath = f"{now:%Y/%m/%d}/{call_id}.wav"
    path = os.path.join(stack.env["SIP_RECORDING_PATH"], relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write(path)
    with stack_db(stack):
        Call.create(id=call_id, status="completed", agent_id=agent_id, campaign_id="spring",
                    to_number="15551230000", created_at=now, ended_at=now)
        recording = Recording.create(call=call_id, format="mp3", status=status,
                                     source_path=relpath, created_at=now, started_at=now,
                                     stopped_at=now, files=files)
    return call_id, recording.id


def transcode(stack, recording_id, redis_conn):
    jobs.enqueue(redis_conn, "recordings", "workers.recordings.transcode_recording",
                 recording_id)


def transcript_of(stack, call_id, status):
    def ready():
        resp = stack.get(f"/api/calls/{call_id}/transcript")
        return resp.json() if resp.status_code == 200 and resp.json()["status"] == status \
            else None
    return wait_until(ready, 180, 0.3, f"the transcript to be {status}")


def as_role(stack, role, agent_id=None):
    key = create_key(role, f"tx-{role}-{uuid.uuid4().hex[:6]}", agent_id=agent_id,
                     database_url=stack.env["DATABASE_URL"])
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def stereo_call(tx_stack, redis_server, channel):
    spans = {}
    call_id, recording_id = recorded_call(
        tx_stack, lambda path: spans.setdefault("spans", conversation(path, SCRIPT)))
    transcode(tx_stack, recording_id, redis_server.client())
    transcript = transcript_of(tx_stack, call_id, "ready")
    return call_id, recording_id, transcript, spans["spans"]


def test_a_ready_recording_is_transcribed_with_speakers_times_and_phrases(stereo_call, channel):
    call_id, recording_id, transcript, spans = stereo_call
    assert transcript["call_id"] == call_id and transcript["recording_id"] == recording_id
    assert transcript["channels"] == 2 and transcript["engine"] == "pocketsphinx"
    utterances = transcript["utterances"]
    assert [u["speaker"] for u in utterances] == ["agent", "customer", "agent", "customer"]
    for utterance, (_, start, end) in zip(utterances, spans, strict=True):
        assert abs(utterance["start"] - start) <= 0.5 and abs(utterance["end"] - end) <= 0.5
    found = {(p["list"], p["phrase"], p["speaker"]) for p in transcript["analysis"]["phrases"]}
    assert found == {("compliance", "sorry to hear that", "agent"),
                     ("risk", "cancel my account", "customer")}
    assert transcript["compliance_found"] is True
    assert utterances[3]["sentiment"] > 0.05 and transcript["customer_sentiment"] > 0
    assert transcript["analysis"]["overlaps"]["count"] == 1
    assert transcript["analysis"]["channel_map"] == {"0": "customer", "1": "agent"}
    # The transcript is in the API as soon as it is committed; its news follows.
    types = wait_until(lambda: (lambda seen: seen if "call.transcribed" in seen else None)(
        [m["type"] for m in channel.messages if m["data"].get("call_id") == call_id]), 10,
        message="call.transcribed on the live channel")
    assert types[-2:] == ["recording.ready", "call.transcribed"]
    announced = [m for m in channel.messages if m["type"] == "call.transcribed"][-1]["data"]
    assert announced["agent_id"] == "A1" and announced["phrases"] == ["compliance", "risk"]
    assert "text" not in announced  # what was said stays behind the API


def test_the_transcript_as_webvtt(tx_stack, stereo_call):
    call_id = stereo_call[0]
    resp = tx_stack.get(f"/api/calls/{call_id}/transcript", headers={"Accept": "text/vtt"})
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/vtt")
    body = resp.text
    assert body.startswith("WEBVTT\n")
    assert body.count(" --> ") == 4 and "<v customer>" in body and "<v agent>" in body
    assert "cancel my account" in body


def test_history_finds_the_call_by_a_spoken_word(tx_stack, stereo_call):
    call_id = stereo_call[0]
    found = tx_stack.get("/api/calls/history", params={"text": "cancel account"})
    assert found.status_code == 200, found.text
    found = found.json()
    assert [c["id"] for c in found] == [call_id]
    assert tx_stack.get("/api/calls/history", params={"text": "zebra"}).json() == []
    assert tx_stack.get("/api/calls/history", params={"text": "!!"}).status_code == 422


def test_agents_read_only_their_own_calls_transcripts(tx_stack, stereo_call):
    url = tx_stack.url(f"/api/calls/{stereo_call[0]}/transcript")
    assert requests.get(url, headers=as_role(tx_stack, "agent", "A1"), timeout=10) \
        .status_code == 200
    other = requests.get(url, headers=as_role(tx_stack, "agent", "A2"), timeout=10)
    assert other.status_code == 404 and other.json()["error_id"] == "call_not_found"
    history = requests.get(tx_stack.url("/api/calls/history"), params={"text": "cancel"},
                           headers=as_role(tx_stack, "agent", "A2"), timeout=10)
    assert history.json() == []


def test_statistics_per_agent(tx_stack, stereo_call):
    stats = tx_stack.get("/api/calls/transcripts/statistics", params={"group_by": "agent"})
    assert stats.status_code == 200
    row = next(g for g in stats.json()["groups"] if g["key"] == "A1")
    assert row["transcripts"] >= 1 and row["compliance_rate"] == 1.0
    assert row["customer_sentiment_avg"] > 0


def test_a_silent_recording_fails_with_its_reason(tx_stack, redis_server, channel):
    call_id, recording_id = recorded_call(
        tx_stack, lambda path: write_wav(path, np.zeros((16000 * 2, 2), dtype=np.int16)))
    transcode(tx_stack, recording_id, redis_server.client())
    failed = transcript_of(tx_stack, call_id, "failed")
    assert "silent" in failed["error"] and failed["utterances"] is None
    wait_until(lambda: [m for m in channel.messages if m["type"] == "call.transcription_failed"
                        and m["data"]["call_id"] == call_id], 10)
    vtt = tx_stack.get(f"/api/calls/{call_id}/transcript", headers={"Accept": "text/vtt"})
    assert vtt.status_code == 409 and vtt.json()["error_id"] == "transcript_not_ready"


def test_a_corrupt_recording_fails_once_with_its_reason(tx_stack, redis_server):
    def corrupt(path):
        with open(path, "wb") as fh:
            fh.write(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(4000))
    call_id, recording_id = recorded_call(tx_stack, corrupt, status=READY)
    with stack_db(tx_stack):
        recording = Recording.get_by_id(recording_id)
        relpath = recording.source_path
        recording.files = {"wav": {"path": relpath, "size": 4012, "sha256": "0" * 64}}
        recording.save()
        Transcript.create(call=call_id, recording=recording_id)
    jobs.enqueue(redis_server.client(), "transcripts", "workers.transcripts.transcribe_recording",
                 recording_id)
    failed = transcript_of(tx_stack, call_id, "failed")
    assert failed["error"].startswith(("cannot open", "the recording cannot be decoded",
                                       "the recording holds no audio"))


def test_deleting_the_recording_deletes_its_transcript(tx_stack, stereo_call):
    call_id = stereo_call[0]
    assert tx_stack.delete(f"/api/calls/{call_id}/recording").status_code == 204
    gone = tx_stack.get(f"/api/calls/{call_id}/transcript")
    assert gone.status_code == 404 and gone.json()["error_id"] == "transcript_not_found"
    assert tx_stack.get("/api/calls/history", params={"text": "cancel"}).json() == []
    with stack_db(tx_stack):
        assert Transcript.select().where(Transcript.call == call_id).count() == 0


# ----- the real switch: which channel of a stereo recording is whose -------------
def channel_levels(wav_bytes):
    """RMS of each channel of a WAV."""
    with av.open(io.BytesIO(wav_bytes)) as container:
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    samples = np.concatenate(frames, axis=1).astype(np.float64)  # packed s16: (1, n*ch)
    pairs = samples.reshape(-1, 2)
    return [float(np.sqrt(np.mean(pairs[:, c] ** 2))) for c in (0, 1)]


def test_the_real_switch_records_the_customer_left_and_the_agent_right(stack_factory, db_url,
                                                                       real_freeswitch,
                                                                       redis_server):
    """The far end (the customer on the call's leg) plays a tone; nothing is sent to it:
    the stereo WAV has the tone on the left channel only."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the switch's channel layout does not depend on the database")
    # Its own Redis database: the module's simulator stack has a worker on the same
    # database and queues, which would take this recording's job and not find its file.
    stack = stack_factory(db_url, None, worker=True, **real_freeswitch.env,
                          DEFAULT_GATEWAY="farend", AUTH_ENABLED="false",
                          TRANSCRIPTION_ENABLED="false",
                          REDIS_URL=redis_server.url.rsplit("/", 1)[0] + "/7")
    call = stack.post("/api/calls/start", {"to": "answer-stereo1"}).json()
    wait_until(lambda: stack.get(f"/api/calls/{call['id']}").json()["status"] == "in-progress",
               15, message="the far end to answer")
    started = stack.post(f"/api/calls/{call['id']}/recording/start", {"format": "wav"})
    assert started.status_code == 201, started.text
    gevent.sleep(2.0)  # two seconds of the far end's tone
    assert stack.post(f"/api/calls/{call['id']}/recording/stop").status_code == 200
    stack.post(f"/api/calls/{call['id']}/end")
    ready = wait_until(lambda: (lambda r: r if r.get("status") == "ready" else None)(
        stack.get("/api/calls/recordings", params={"call_id": call["id"]}).json()[0]), 30,
        message="the recording to be ready")
    assert ready["channels"] == 2
    left, right = channel_levels(stack.get(f"/api/calls/{call['id']}/recording").content)
    assert left > 500 and right < left / 20, (left, right)
    stack.stop()
