"""Recording jobs (queue "recordings"): transcode a stopped recording; retention and recovery.

The jobs take ids and use the process's services (workers.context); the work
itself is services/recordings (transcoding.py, maintenance.py). Queue policy
is in services/jobs.py: 600 s timeout, 3 retries at 10/60/300 s. Both jobs are
safe to run again.
"""
import logging

from models.db import db_session
from services.recordings.service import transcode_job_id
from workers.context import current_services
from workers.jobstate import final_attempt as _final_attempt
from workers.jobstate import job_status as rq_job_status

logger = logging.getLogger(__name__)


def transcode_recording(recording_id):
    """RQ job: the recording's WAV -> its format (+ the WAV kept), measured; status ready."""
    recordings = current_services().recordings
    with db_session():
        return recordings.transcoder.run(recording_id, final_attempt=_final_attempt())


def job_status(redis_conn, recording_id):
    """"missing", "failed:<reason>" or the RQ status of a recording's transcoding job."""
    return rq_job_status(redis_conn, transcode_job_id(recording_id), "transcoding")


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
