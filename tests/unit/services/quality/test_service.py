"""QualityService in process: samples, alerts and summaries against a real database and Redis;
what the `calls` channel carried is read back from its stream, the jobs from their queue."""
import json

import pytest
from rq import Queue

from models import Call, utcnow
from models.quality import CallFact, QualitySample
from services.calls.notifier import CallNotifier
from services.errors import Conflict
from services.outbox import Outbox
from services.publisher import Publisher
from services.quality.service import QUALITY_QUEUE, QualityService
from services.redis_client import stream_key

CONFIG = {"QUALITY_JITTER_MS": 30, "QUALITY_LOSS_PCT": 1, "QUALITY_RTT_MS": 400,
          "QUALITY_MOS_MIN": 3.5}
GOOD = {"latency_ms": 60, "jitter_ms": 4, "packet_loss_pct": 0}
BAD = {"latency_ms": 120, "jitter_ms": 55, "packet_loss_pct": 0.2}


@pytest.fixture
def quality(bound_db, redis_client):
    QualitySample.delete().execute()
    CallFact.delete().execute()
    Call.delete().execute()
    return QualityService(CallNotifier(Publisher(redis_client)), CONFIG, redis_client)


def news(redis_client):
    out = []
    for _, fields in redis_client.xrange(stream_key("calls")):
        message = json.loads(fields[b"m"])
        out.append((message["type"], message["data"]))
    return out


def push(quality, call_id, sample):
    outbox = Outbox()
    with outbox.atomic():
        call = Call.get_by_id(call_id)
        quality.record_sample(call, sample, outbox)
        call.save()


def test_three_bad_samples_of_five_degrade_the_call_once_then_it_recovers(quality,
                                                                          redis_client):
    call = Call.create(status="in-progress", answered_at=utcnow())
    for sample in (GOOD, BAD, BAD, BAD, BAD):
        push(quality, call.id, sample)
    assert [t for t, _ in news(redis_client)] == ["call.quality_degraded"]
    (_, data), = news(redis_client)
    assert data["id"] == call.id and data["alert"]["active"] is True
    assert set(data["alert"]["thresholds"]) == {"jitter_ms"}
    for sample in (GOOD, GOOD, GOOD, GOOD):
        push(quality, call.id, sample)
    assert [t for t, _ in news(redis_client)] == ["call.quality_degraded",
                                                  "call.quality_recovered"]
    assert Call.get_by_id(call.id).quality["live"]["samples"] == 9


def test_an_alert_in_a_transaction_that_rolls_back_is_never_announced(quality, redis_client):
    call = Call.create(status="in-progress", answered_at=utcnow())
    for sample in (BAD, BAD):
        push(quality, call.id, sample)
    outbox = Outbox()
    with pytest.raises(RuntimeError), outbox.atomic():
        quality.record_sample(Call.get_by_id(call.id), BAD, outbox)
        raise RuntimeError("the update failed after the sample")
    assert news(redis_client) == []
    assert QualitySample.select().where(QualitySample.call == call.id).count() == 2


def test_an_ended_call_refuses_samples(quality):
    call = Call.create(status="completed", ended_at=utcnow())
    with pytest.raises(Conflict) as refused:
        push(quality, call.id, GOOD)
    assert refused.value.error_id == "call_not_live"


def test_an_ended_call_gets_its_summary_job_by_name(quality, redis_client):
    call = Call.create(status="completed", ended_at=utcnow())
    outbox = Outbox()
    with outbox.atomic():
        quality.on_call_ended(call, outbox)
    jobs = Queue(QUALITY_QUEUE, connection=redis_client).get_jobs()
    assert [(job.func_name, job.args) for job in jobs] == [
        ("workers.quality.summarize_call", (call.id,))]


def test_the_summary_is_written_counted_and_announced_once(quality, redis_client):
    call = Call.create(status="in-progress", answered_at=utcnow(), agent_id="a1")
    for sample in (GOOD, GOOD):
        push(quality, call.id, sample)
    Call.update(status="completed", ended_at=utcnow(), billsec=30, duration=35).where(
        Call.id == call.id).execute()
    summary = quality.summarize(call.id)
    assert summary["samples"] == 2 and summary["sources"]["mos"] == "samples"
    assert Call.get_by_id(call.id).quality == summary
    assert CallFact.get(CallFact.call_id == call.id).billsec == 30
    quality.summarize(call.id)  # a retry: nothing new to announce
    assert [t for t, _ in news(redis_client)] == ["call.quality_summary"]
