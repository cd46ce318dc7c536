"""Recording upkeep: retention (RECORDING_RETENTION_DAYS) and recovery of stalled recordings.

The events process enqueues the maintenance job periodically (one per
deployment, under a Redis lock); the worker runs it through RecordingMaintenance.
"""
import datetime
import logging

from models import Call, utcnow
from models.call import LIVE_STATUSES
from models.recording import PROCESSING, RECORDING, Recording
from services import jobs
from services.outbox import Outbox

logger = logging.getLogger(__name__)

MAINTENANCE_QUEUE = "recordings"
MAINTENANCE_JOB = "workers.recordings.maintain_recordings"
MAINTENANCE_LOCK_KEY = "cc:recordings:maintenance"


class RecordingMaintenance:
    """Deletes expired recordings and finishes, re-enqueues or fails stalled ones."""

    def __init__(self, service):
        self.service = service

    def delete_expired(self, days, now=None, batch=200):
        """Delete recordings created more than days ago (not ones still recording)."""
        if days is None:
            return 0
        cutoff = (now or utcnow()) - datetime.timedelta(days=days)
        deleted = 0
        while True:
            outbox = Outbox()
            with outbox.atomic():
                expired = list(Recording.select().where(
                    (Recording.created_at < cutoff) & (Recording.status != RECORDING))
                    .order_by(Recording.created_at).limit(batch))
                for recording in expired:
                    self.service.delete_recording(recording, outbox)
            deleted += len(expired)
            if len(expired) < batch:
                return deleted

    def recover_stalled(self, older_than_seconds=900, job_status=None):
        """Finish recordings whose call ended without a stop; re-enqueue or fail lost jobs.

        job_status(recording_id) -> "missing" | "failed:<reason>" | anything else
        (the job is queued, scheduled or running: leave it alone).
        """
        cutoff = utcnow() - datetime.timedelta(seconds=older_than_seconds)
        outbox = Outbox()
        counts = {"finished": 0, "requeued": 0, "failed": 0}
        with outbox.atomic():
            orphans = (Recording.select(Recording).join(Call)
                       .where((Recording.status == RECORDING)
                              & Call.status.not_in(LIVE_STATUSES)
                              & (Recording.updated_at < cutoff)))
            for recording in orphans:
                counts["finished"] += self.service.finish_recording_of_call(recording.call, outbox)
            stalled = Recording.select().where((Recording.status == PROCESSING)
                                               & (Recording.updated_at < cutoff))
            for recording in stalled:
                self._recover_job(recording, job_status, outbox, counts)
        return counts

    def _recover_job(self, recording, job_status, outbox, counts):
        state = job_status(recording.id) if job_status else "missing"
        if state == "missing":
            Recording.update(updated_at=utcnow()).where(Recording.id == recording.id).execute()
            outbox.add(self.service.enqueue_transcode, recording.id)
            counts["requeued"] += 1
        elif state.startswith("failed"):
            reason = state.partition(":")[2] or "transcoding failed"
            counts["failed"] += self.service.mark_failed(recording.id, reason, outbox)


def maintenance_task(services, interval=None, first_delay=60.0):
    """Background task (events process): enqueue the retention and recovery job periodically."""
    interval = float(interval or services.config.get("RECORDING_MAINTENANCE_INTERVAL", 3600))
    return jobs.periodic_enqueue(services.redis, MAINTENANCE_LOCK_KEY, interval,
                                 MAINTENANCE_QUEUE, MAINTENANCE_JOB, first_delay=first_delay)
