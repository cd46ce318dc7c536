"""TranscriptService: transcribe recordings once they are ready; serve, count and recover them.

A recording that becomes ready (services/recordings/transcoding.py runs the
ready hooks inside its transaction) gets a `processing` transcript and, after
the commit, the job `workers.transcripts.transcribe_recording` on the
`transcripts` queue, under one job id per recording. The transcript is a row
that cascades with its call and its recording: deleting either (by hand or by
RECORDING_RETENTION_DAYS) deletes it, and its search index entry with it.
"""
import datetime
import logging

import peewee

from models import Call, utcnow
from models.transcript import PROCESSING, READY, Transcript
from services import jobs
from services.errors import NotFound
from services.outbox import Outbox
from services.transcripts.analysis import load_phrases
from services.transcripts.transcriber import Transcriber

logger = logging.getLogger(__name__)

TRANSCRIBE_QUEUE = "transcripts"
TRANSCRIBE_JOB = "workers.transcripts.transcribe_recording"
RECOVERY_JOB = "workers.transcripts.recover_transcripts"
RECOVERY_LOCK_KEY = "cc:transcripts:recovery"


def transcribe_job_id(recording_id):
    return f"recording-transcribe-{recording_id}"


class TranscriptService:
    """Creates, runs (through the worker), serves and recovers call transcripts."""

    def __init__(self, config, recordings, redis_conn=None):
        self.config = config
        self.recordings = recordings
        self.storage = recordings.storage
        self.notifier = recordings.notifier  # the one publisher on the recordings channel
        self.redis = redis_conn
        self.transcriber = Transcriber(self)
        load_phrases(config.get("TRANSCRIPT_PHRASES"))  # a bad setting fails at start-up

    # ----- reading -------------------------------------------------------
    @staticmethod
    def for_call(call_id):
        transcript = Transcript.get_or_none(Transcript.call == str(call_id))
        if transcript is None:
            if Call.get_or_none(Call.id == str(call_id)) is None:
                raise NotFound(f"call {call_id} not found", error_id="call_not_found")
            raise NotFound(f"call {call_id} has no transcript", error_id="transcript_not_found")
        return transcript

    # ----- the job -------------------------------------------------------
    def on_recording_ready(self, recording, outbox):
        """Ready hook (in the recording's transaction): a new transcript, its job after commit."""
        if not self.config.get("TRANSCRIPTION_ENABLED", True):
            return
        Transcript.delete().where(Transcript.call == recording.call_id).execute()
        Transcript.create(call=recording.call_id, recording=recording.id, status=PROCESSING)
        outbox.add(self.enqueue, recording.id)

    def enqueue(self, recording_id):
        if self.redis is None:
            logger.warning("no Redis to enqueue the transcription of %s", recording_id)
            return None
        return jobs.enqueue(self.redis, TRANSCRIBE_QUEUE, TRANSCRIBE_JOB, recording_id,
                            job_id=transcribe_job_id(recording_id),
                            job_timeout=int(self.config.get("TRANSCRIPTION_JOB_TIMEOUT", 3600)))

    def run(self, recording_id, final_attempt=True):
        return self.transcriber.run(recording_id, final_attempt=final_attempt)

    def recover_stalled(self, job_status, older_than_seconds=None):
        """Transcripts left `processing` past the job timeout: re-enqueue a lost job, fail a
        failed one. job_status(recording_id) -> "missing" | "failed:<reason>" | other."""
        timeout = int(self.config.get("TRANSCRIPTION_JOB_TIMEOUT", 3600))
        older = older_than_seconds if older_than_seconds is not None else timeout + 300
        cutoff = utcnow() - datetime.timedelta(seconds=older)
        counts = {"requeued": 0, "failed": 0}
        stalled = list(Transcript.select().where((Transcript.status == PROCESSING)
                                                 & (Transcript.updated_at < cutoff)))
        for transcript in stalled:
            state = job_status(transcript.recording_id)
            if state == "missing":
                outbox = Outbox()
                with outbox.atomic():
                    Transcript.update(updated_at=utcnow()).where(
                        Transcript.id == transcript.id).execute()
                    outbox.add(self.enqueue, transcript.recording_id)
                counts["requeued"] += 1
            elif state.startswith("failed"):
                reason = state.partition(":")[2] or "transcription failed"
                counts["failed"] += self.transcriber.mark_failed(transcript.id, reason)
        return counts

    # ----- statistics ----------------------------------------------------
    @staticmethod
    def statistics(args):
        """Per agent or campaign: transcribed calls, mean customer sentiment, compliance rate."""
        column = Call.agent_id if args.get("group_by", "agent") == "agent" else Call.campaign_id
        query = (Transcript.select(
            column.alias("key"), peewee.fn.COUNT(Transcript.id).alias("transcripts"),
            peewee.fn.AVG(Transcript.customer_sentiment).alias("sentiment"),
            peewee.fn.SUM(peewee.Case(None, [(Transcript.compliance_found == True, 1)], 0))  # noqa: E712
            .alias("compliant"),
            peewee.fn.COUNT(Transcript.compliance_found).alias("judged"))
            .join(Call).where(Transcript.status == READY).group_by(column))
        if args.get("date_from"):
            query = query.where(Call.created_at >= args["date_from"])
        if args.get("date_to"):
            query = query.where(Call.created_at < args["date_to"])
        groups = [{"key": row["key"], "transcripts": row["transcripts"],
                   "customer_sentiment_avg": None if row["sentiment"] is None
                   else round(float(row["sentiment"]), 3),
                   "compliance_rate": round(int(row["compliant"] or 0) / row["judged"], 4)
                   if row["judged"] else None}
                  for row in query.dicts()]
        groups.sort(key=lambda g: (-g["transcripts"], g["key"] or ""))
        return {"group_by": args.get("group_by", "agent"), "groups": groups}


def register(services):
    """Wire transcripts into the shared services: the ready hook and the recovery task."""
    transcripts = TranscriptService(services.config, services.recordings,
                                    redis_conn=services.redis)
    services.transcripts = transcripts
    services.recordings.ready_hooks.append(transcripts.on_recording_ready)
    interval = float(services.config.get("RECORDING_MAINTENANCE_INTERVAL", 3600))
    services.background_tasks.append(jobs.periodic_enqueue(
        services.redis, RECOVERY_LOCK_KEY, interval, TRANSCRIBE_QUEUE, RECOVERY_JOB,
        first_delay=90.0))
    return transcripts

