"""Transcripts in the database (SQLite FTS5 and PostgreSQL full-text): search, the ready
hook, the job's outcome and its message, cascade with the recording, retention."""
import datetime
import json
import uuid

import pytest
from rq import Queue

from models import Call, utcnow
from models.recording import PROCESSING, READY, Recording
from models.transcript import Transcript
from services.calls.history import history_query
from services.publisher import Publisher
from services.recordings.service import RecordingService
from services.redis_client import stream_key
from services.transcripts.service import TranscriptService, transcribe_job_id
from tests.unit.services.transcripts.speech import CUSTOMER_VOICE, conversation, needs_espeak


@pytest.fixture
def services(bound_db, redis_client, tmp_path):
    Transcript.delete().execute()
    Recording.delete().execute()
    config = {"SIP_RECORDING_PATH": str(tmp_path / "recordings"),
              "TRANSCRIPT_PHRASES": json.dumps({"risk": ["cancel my account"]})}
    recordings = RecordingService(config, Publisher(redis_client), redis_conn=redis_client)
    transcripts = TranscriptService(config, recordings, redis_conn=redis_client)
    recordings.ready_hooks.append(transcripts.on_recording_ready)
    return recordings, transcripts


def call_with_transcript(text, agent_id="A1", created_at=None, status=READY):
    when = created_at or utcnow()
    call = Call.create(id=str(uuid.uuid4()), status="completed", agent_id=agent_id,
                       created_at=when)
    recording = Recording.create(call=call.id, format="wav", status=READY, created_at=when,
                                 source_path=f"{when:%Y/%m/%d}/{call.id}.wav")
    Transcript.create(call=call.id, recording=recording.id, status=status, text=text)
    return call


def found(words):
    return [c.id for c in history_query({"text": words})]


def test_history_finds_calls_by_the_words_said(services):
    refund = call_with_transcript("hello i would like a refund for my order please")
    cancel = call_with_transcript("please cancel my account today")
    assert found("refund") == [refund.id]
    assert found("Cancel ACCOUNT!") == [cancel.id]
    assert set(found("please")) == {refund.id, cancel.id}
    assert found("refund account") == []           # every word must be there
    assert found("zebra") == [] and found("\"") == []
    Transcript.update(text="nothing like that").where(Transcript.call == refund.id).execute()
    assert found("refund") == []                    # the index follows the text


def test_deleting_the_recording_or_the_call_deletes_the_transcript(services):
    recordings, _ = services
    kept = call_with_transcript("please cancel my account")
    by_recording = call_with_transcript("please cancel my account")
    by_call = call_with_transcript("please cancel my account")
    recordings.delete(by_recording.id)
    Call.delete().where(Call.id == by_call.id).execute()
    assert [t.call_id for t in Transcript.select()] == [kept.id]
    assert found("cancel") == [kept.id]


def test_retention_deletes_old_transcripts_with_their_recordings(services):
    recordings, _ = services
    old = call_with_transcript("an old call", created_at=utcnow() - datetime.timedelta(days=40))
    new = call_with_transcript("a new call")
    assert recordings.maintenance.delete_expired(30) == 1
    assert [t.call_id for t in Transcript.select()] == [new.id]
    assert Call.get_or_none(Call.id == old.id) is not None  # the call itself stays


def test_statistics_average_the_customer_sentiment_and_count_compliance(services):
    _, transcripts = services
    for agent, sentiment, said in (("A1", 0.5, True), ("A1", -0.1, False), ("A2", 0.2, None)):
        call = call_with_transcript("x", agent_id=agent)
        Transcript.update(customer_sentiment=sentiment, compliance_found=said).where(
            Transcript.call == call.id).execute()
    call_with_transcript("x", agent_id="A1", status=PROCESSING)  # not counted yet
    groups = {g["key"]: g for g in transcripts.statistics({"group_by": "agent"})["groups"]}
    assert groups["A1"] == {"key": "A1", "transcripts": 2, "customer_sentiment_avg": 0.2,
                            "compliance_rate": 0.5}
    assert groups["A2"]["compliance_rate"] is None


@needs_espeak
def test_a_ready_recording_is_transcribed_and_announced(services, redis_client, tmp_path):
    recordings, transcripts = services
    call = Call.create(id=str(uuid.uuid4()), status="completed", agent_id="A1")
    relpath = f"2026/01/01/{call.id}.wav"
    path = tmp_path / "recordings" / relpath
    path.parent.mkdir(parents=True)
    conversation(path, [(0, 0.3, CUSTOMER_VOICE, "please cancel my account")], channels=1)
    recording = Recording.create(call=call.id, format="wav", status=PROCESSING,
                                 source_path=relpath)
    recordings.transcoder.mark_ready(recording.id, {"wav": {"path": relpath, "size": 1,
                                                            "sha256": "0"}},
                                     {"duration": 2.0, "sample_rate": 16000, "channels": 1,
                                      "truncated": False})
    assert Transcript.get(Transcript.call == call.id).status == PROCESSING
    # its job waits on its own queue, behind any transcode (queue "recordings")
    job = transcribe_job_id(recording.id)
    assert job in Queue("transcripts", connection=redis_client).job_ids
    assert job not in Queue("recordings", connection=redis_client).job_ids
    assert transcripts.run(recording.id) == "ready"
    assert transcripts.run(recording.id) == "skipped"  # a second run changes nothing
    transcript = Transcript.get(Transcript.call == call.id)
    assert [u["speaker"] for u in transcript.utterances] == ["unknown"]
    assert transcript.analysis["phrases"][0]["phrase"] == "cancel my account"
    assert found("cancel") == [call.id]
    messages = [json.loads(fields[b"m"]) for _, fields in
                redis_client.xrange(stream_key("recordings"))]
    assert [m["type"] for m in messages][-2:] == ["recording.ready", "call.transcribed"]
    assert messages[-1]["data"]["call_id"] == call.id
