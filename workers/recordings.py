"""Recording jobs (queue "recordings"): transcode a stopped recording; retention and recovery.

The jobs take ids and use the process's services (workers.context); the work
itself is services/recordings (transcoding.py, maintenance.py). Queue policy
is in services/jobs.py: 600 s timeout, 3 retries at 10/60/300 s. Both jobs are
safe to run again.
"""
import logging

from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from models.db import db_session
from services.recordings.service import transcode_job_id
from workers.context import current_services

logger = logging.getLogger(__name__)


def _final_attempt():
    """True when RQ will not retry this job after a failure (or it runs outside RQ)."""
    job = get_current_job()
    return job is None or not job.retries_left


def transcode_recording(recording_id):
    """RQ job: the recording's WAV -> its format (+ the WAV kept), measured; status ready."""
    recordings = current_services().recordings
    with db_session():
        return recordings.transcoder.run(recording_id, final_attempt=_final_attempt())


def job_status(redis_conn, recording_id):
    """"missing", "failed:<reason>" or the RQ status of a recording's transcoding job."""
    try:
        job = Job.fetch(transcode_job_id(recording_id), connection=redis_conn)
    except NoSuchJobError:
        return "missing"
    status = job.get_status()
    if status == JobStatus.FAILED:
        result = job.latest_result()
        last_line = (result.exc_string or "").strip().splitlines()[-1:] if result else []
        return "failed:" + (f"transcoding failed: {last_line[0]}" if last_line else
                            "transcoding failed")[:240]
    return str(status)


def maintain_recordings():
    """RQ job (periodic): apply RECORDING_RETENTION_DAYS; recover stalled recordings."""
    services = current_services()
    maintenance = services.recordings.maintenance
    with db_session():
        deleted = maintenance.delete_expired(services.config.get("RECORDING_RETENTION_DAYS"))
        recovered = maintenance.recover_stalled(
            job_status=lambda recording_id: job_status(services.redis, recording_id))
    logger.info("recording maintenance: %d expired deleted; %s", deleted, recovered)
    return {"deleted": deleted, **recovered}
