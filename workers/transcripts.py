"""Transcript jobs (queue "transcripts"): transcribe a ready recording; recover stalled ones.

The work is services/transcripts (transcriber.py). Queue policy is in
services/jobs.py (3 retries at 10/60/300 s); the job's timeout is
TRANSCRIPTION_JOB_TIMEOUT. A corrupt, silent or too large recording ends the
job normally with the transcript `failed` and its reason: nothing to retry.
"""
import logging

from models.db import db_session
from services.transcripts.service import transcribe_job_id
from workers.context import current_services
from workers.jobstate import final_attempt as _final_attempt
from workers.jobstate import job_status as rq_job_status

logger = logging.getLogger(__name__)


def transcribe_recording(recording_id):
    """RQ job: the recording's audio -> utterances, sentiment, figures, phrases; status ready."""
    transcripts = current_services().transcripts
    with db_session():
        return transcripts.run(recording_id, final_attempt=_final_attempt())


def job_status(redis_conn, recording_id):
    """"missing", "failed:<reason>" or the RQ status of a recording's transcription job."""
    return rq_job_status(redis_conn, transcribe_job_id(recording_id), "transcription")


def recover_transcripts():
    """RQ job (periodic): re-enqueue lost transcription jobs, fail the ones that failed."""
    services = current_services()
    with db_session():
        counts = services.transcripts.recover_stalled(
            lambda recording_id: job_status(services.redis, recording_id))
    logger.info("transcript recovery: %s", counts)
    return counts
