"""What the recording jobs (transcoding, transcription) ask RQ about themselves and each other."""
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus


def final_attempt():
    """True when RQ will not retry this job after a failure (or it runs outside RQ)."""
    job = get_current_job()
    return job is None or not job.retries_left


def job_status(redis_conn, job_id, work):
    """"missing", "failed:<reason>" or the RQ status of job_id (work: "transcoding", ...)."""
    try:
        job = Job.fetch(job_id, connection=redis_conn)
    except NoSuchJobError:
        return "missing"
    status = job.get_status()
    if status == JobStatus.FAILED:
        result = job.latest_result()
        last_line = (result.exc_string or "").strip().splitlines()[-1:] if result else []
        return "failed:" + (f"{work} failed: {last_line[0]}" if last_line else
                            f"{work} failed")[:240]
    return str(status)
