"""RecordingService: start, stop, track, serve and delete call recordings.

Statuses (models/recording.py): `recording` (FreeSWITCH is writing the WAV) ->
`processing` (a job transcodes and measures it) -> `ready`, or `failed` with a
reason. The web process (API), the events process (RECORD_START/RECORD_STOP,
call hooks) and the worker all change recordings through this service; every
move is a conditional UPDATE on the current status, so that the API, a
RECORD_STOP and the call-ended hook racing each other move a recording once and
enqueue its job once.

MAX_RECORDING_SIZE is enforced as the time limit of `uuid_record` (see
freeswitch/esl/commands.py); the worker cuts anything longer, so a stored
recording never exceeds the size either way.
"""
import logging
import os

import peewee

from freeswitch.esl import commands as fs
from freeswitch.esl.connection import FreeSwitchError, FreeSwitchUnavailable
from models import Call, utcnow
from models.db import db_session, write_transaction
from models.recording import FAILED, PROCESSING, READY, RECORDING, UNFINISHED_STATUSES, Recording
from services import jobs
from services.calls.nodes import CallNodes
from services.calls.schemas import forget_recording, recording_of
from services.errors import BadGateway, Conflict, NotFound, ServiceError, Unavailable
from services.outbox import Outbox
from services.recordings.maintenance import RecordingMaintenance, maintenance_task
from services.recordings.notifier import RecordingNotifier
from services.recordings.schemas import MIME_TYPES
from services.recordings.storage import OutsideRecordingRoot, RecordingStorage, stored_relpaths
from services.recordings.transcoding import RecordingTranscoder

logger = logging.getLogger(__name__)

TRANSCODE_QUEUE = "recordings"
TRANSCODE_JOB = "workers.recordings.transcode_recording"
COMPLETION_CAUSE_LENGTH = 64  # the column's size


def transcode_job_id(recording_id):
    """One job id per recording, so the maintenance sweep can look its job up."""
    return f"recording-transcode-{recording_id}"


class RecordingService:
    """Starts, stops, tracks, serves and deletes call recordings."""

    def __init__(self, config, publisher, commands=None, redis_conn=None):
        self.config = config
        self.notifier = RecordingNotifier(publisher)
        self.commands = CallNodes.of(commands)
        self.redis = redis_conn
        self.storage = RecordingStorage(config.get("SIP_RECORDING_PATH", "./recordings"))
        self.maintenance = RecordingMaintenance(self)
        self.transcoder = RecordingTranscoder(self)
        # hook(recording, outbox), run inside the transaction that makes a recording ready
        self.ready_hooks = []

    # ----- reading -------------------------------------------------------
    def for_call(self, call_id):
        recording = Recording.get_or_none(Recording.call == str(call_id))
        if recording is None:
            if Call.get_or_none(Call.id == str(call_id)) is None:
                raise NotFound(f"call {call_id} not found", error_id="call_not_found")
            raise NotFound(f"call {call_id} has no recording", error_id="recording_not_found")
        return recording

    @staticmethod
    def list_query(filters):
        query = Recording.select(Recording).join(Call)
        if filters.get("call_id"):
            query = query.where(Recording.call == str(filters["call_id"]))
        if filters.get("agent_id"):
            query = query.where(Call.agent_id == filters["agent_id"])
        if filters.get("status"):
            query = query.where(Recording.status == filters["status"])
        if filters.get("format"):
            query = query.where(Recording.format == filters["format"])
        if filters.get("date_from"):
            query = query.where(Recording.created_at >= filters["date_from"])
        if filters.get("date_to"):
            query = query.where(Recording.created_at < filters["date_to"])
        return query.order_by(Recording.created_at.desc(), Recording.id.desc())

    def audio_file(self, call_id, fmt=None):
        """(real path, mime type, sha256, download name) of one stored format of the recording."""
        recording = self.for_call(call_id)
        if recording.status != READY:
            raise Conflict(f"the recording is {recording.status}; audio is served once it is ready",
                           headers={"Retry-After": "5"} if recording.status != FAILED else None,
                           error_id="recording_not_ready")
        fmt = fmt or recording.format
        entry = (recording.files or {}).get(fmt)
        if entry is None:
            raise NotFound(f"the recording is not stored as {fmt}; stored formats: "
                           f"{', '.join(recording.formats)}",
                           error_id="recording_format_not_stored")
        try:
            path = self.storage.resolve(entry["path"])
        except OutsideRecordingRoot:
            logger.error("recording %s points outside the recording root: %r", recording.id,
                         entry["path"])
            raise NotFound("the recording file is not available",
                           error_id="recording_file_missing") from None
        if not os.path.isfile(path):
            raise NotFound("the recording file is missing from storage",
                           error_id="recording_file_missing")
        return path, MIME_TYPES[fmt], entry["sha256"], f"{recording.call_id}.{fmt}"

    # ----- start ---------------------------------------------------------
    def start(self, call_id, fmt=None):
        """Start recording a live call (API); returns the recording."""
        outbox = Outbox()
        with outbox.atomic():
            call = Call.get_or_none(Call.id == str(call_id))
            if call is None:
                raise NotFound(f"call {call_id} not found", error_id="call_not_found")
            recording = self._create_for(call, fmt or call.record_format)
        try:
            self._send_start(recording, outbox)
        except Exception:
            Recording.delete().where(Recording.id == recording.id).execute()
            raise
        return recording

    def _create_for(self, call, fmt):
        if not call.is_live:
            raise Conflict(f"call {call.id} is {call.status}; only a live call can be recorded",
                           error_id="call_not_live")
        if not call.fs_uuid:
            raise Conflict(f"call {call.id} has no FreeSWITCH channel yet",
                           error_id="call_has_no_channel")
        existing = Recording.get_or_none(Recording.call == call.id)
        if existing is not None:
            if existing.status == RECORDING:
                raise Conflict(f"call {call.id} is already being recorded",
                               error_id="recording_in_progress")
            raise Conflict(f"call {call.id} already has a recording ({existing.status}); "
                           "delete it to record again", error_id="recording_exists")
        fmt = fmt or self.config.get("RECORDING_FORMAT", "mp3")
        now = utcnow()
        try:
            with write_transaction():  # a savepoint: a lost race leaves the caller's work intact
                return Recording.create(
                    call=call.id, format=fmt, fs_uuid=call.fs_uuid, status=RECORDING,
                    source_path=self.storage.source_relpath(call.id, now), created_at=now,
                    updated_at=now)
        except peewee.IntegrityError:  # one recording per call: a concurrent start won
            raise Conflict(f"call {call.id} is already being recorded",
                           error_id="recording_in_progress") from None

    def _send_start(self, recording, outbox):
        """mkdir, ask the channel's rate, `uuid_record start` with the size limit, or raise."""
        try:
            self.storage.ensure_directory(recording.source_path)
        except OSError as exc:
            raise Unavailable(f"cannot create the recording directory: {exc.strerror}") from None
        rate = self._channel_rate(recording)
        channels = self._ask_stereo(recording)
        limit = fs.recording_limit_seconds(self.config.get("MAX_RECORDING_SIZE", 100 * 1024 ** 2),
                                           rate, channels)
        path = self.storage.absolute(recording.source_path)
        reply = self._api(fs.record_start_command(recording.fs_uuid, path, limit), recording)
        if not reply.startswith("+OK"):
            if "Cannot locate session" in reply:
                raise Conflict(f"FreeSWITCH no longer has the call's channel ({reply.strip()})",
                               error_id="channel_gone")
            raise BadGateway(f"FreeSWITCH refused to record: {reply.strip()}")
        now = utcnow()
        with outbox.atomic():
            Recording.update(limit_seconds=limit, sample_rate=rate, started_at=now,
                             updated_at=now).where(Recording.id == recording.id).execute()
            recording.limit_seconds, recording.sample_rate, recording.started_at = limit, rate, now
            self.notifier.recording_changed(recording, "recording.started", outbox)
        logger.info("recording call %s to %s (limit %ss at %s Hz)", recording.call_id, path, limit,
                    rate or fs.ASSUMED_SAMPLE_RATE)

    def _ask_stereo(self, recording):
        """RECORD_STEREO on the channel (agent and customer apart): the channels to expect."""
        if not self.config.get("RECORDING_STEREO", True):
            return 1
        try:
            reply = self._api(fs.record_stereo_command(recording.fs_uuid), recording)
        except (BadGateway, Unavailable):
            return 1
        return 2 if reply.startswith("+OK") else 1

    def _channel_rate(self, recording):
        """The channel's read rate in Hz, or None when FreeSWITCH cannot tell."""
        try:
            return fs.parse_read_rate(self._api(fs.read_rate_command(recording.fs_uuid),
                                                recording))
        except (BadGateway, Unavailable):
            return None

    def _api(self, command, recording):
        if self.commands is None:
            raise Unavailable("no FreeSWITCH connection in this process")
        try:  # to the FreeSWITCH node of the recording's call
            node = Call.select(Call.node).where(Call.id == recording.call_id).scalar()
            return self.commands.on(node).api(command)
        except FreeSwitchUnavailable as exc:
            raise Unavailable(f"FreeSWITCH is unreachable ({exc})",
                              headers={"Retry-After": "5"}) from None
        except FreeSwitchError as exc:
            raise BadGateway(f"FreeSWITCH refused {command.split()[0]}: {exc}") from None

    # ----- stop ----------------------------------------------------------
    def stop(self, call_id):
        """Stop recording (API). Any -ERR means FreeSWITCH is no longer recording: move on."""
        recording = self.for_call(call_id)
        if recording.status != RECORDING:
            raise Conflict(f"the call is not being recorded (recording is {recording.status})",
                           error_id="recording_not_in_progress")
        path = self.storage.absolute(recording.source_path)
        reply = self._api(fs.record_stop_command(recording.fs_uuid, path), recording)
        if not reply.startswith("+OK"):
            logger.info("uuid_record stop for %s: %s (already stopped)", recording.id,
                        reply.strip())
        outbox = Outbox()
        with outbox.atomic():
            self.finish_recording(recording.id, outbox, stopped_at=utcnow())
        return Recording.get_by_id(recording.id)

    # ----- status moves (inside the caller's transaction) -----------------
    def finish_recording(self, recording_id, outbox, **facts):
        """recording -> processing, once; queue the transcoding and the announcement."""
        facts["updated_at"] = utcnow()
        changed = Recording.update(status=PROCESSING, **facts).where(
            (Recording.id == recording_id) & (Recording.status == RECORDING)).execute()
        if not changed:
            return False
        self.notifier.recording_changed(Recording.get_by_id(recording_id), "recording.stopped",
                                        outbox)
        outbox.add(self.enqueue_transcode, recording_id)
        return True

    def mark_failed(self, recording_id, reason, outbox=None):
        """Any unfinished recording -> failed with the reason; announced after commit."""
        outbox = Outbox() if outbox is None else outbox
        with outbox.atomic():
            changed = (Recording.update(status=FAILED, error=reason[:255], updated_at=utcnow())
                       .where((Recording.id == recording_id)
                              & Recording.status.in_(UNFINISHED_STATUSES))
                       .execute())
            if changed:
                self.notifier.recording_changed(Recording.get_by_id(recording_id),
                                                "recording.failed", outbox)
        return bool(changed)

    def enqueue_transcode(self, recording_id):
        """After commit: the transcoding job, under the recording's own job id."""
        if self.redis is None:
            logger.warning("no Redis to enqueue the transcoding of %s; the sweep will",
                           recording_id)
            return None
        return jobs.enqueue(self.redis, TRANSCODE_QUEUE, TRANSCODE_JOB, recording_id,
                            job_id=transcode_job_id(recording_id))

    # ----- call hooks ----------------------------------------------------
    def on_call_answered(self, call, outbox):
        """`record: true` calls start recording when answered; the command goes after commit."""
        if not call.record or Recording.get_or_none(Recording.call == call.id) is not None:
            return
        try:
            recording = self._create_for(call, call.record_format)
        except Conflict as exc:
            logger.warning("could not start recording call %s: %s", call.id, exc.message)
            return
        forget_recording(call)
        outbox.add(self._start_after_commit, recording.id)

    def _start_after_commit(self, recording_id):
        outbox = Outbox()
        with db_session():
            recording = Recording.get_or_none(Recording.id == recording_id)
            if recording is None or recording.status != RECORDING:
                return
            try:
                self._send_start(recording, outbox)
            except (ServiceError, OSError, ValueError) as exc:  # nobody to answer: say why
                reason = getattr(exc, "message", None) or str(exc)
                logger.warning("recording of call %s could not start: %s", recording.call_id,
                               reason)
                self.mark_failed(recording_id, f"could not start: {reason}", outbox)

    def on_call_ended(self, call, outbox):
        """A call that ended without a RECORD_STOP still gets its recording processed."""
        if self.finish_recording_of_call(call, outbox):
            forget_recording(call)

    def finish_recording_of_call(self, call, outbox):
        # The call's dump, made just before the hooks run, already looked its
        # recording up: most calls have none, and they cost no further query.
        summary = recording_of(call)
        if summary is None or summary.get("status") != RECORDING:
            return False
        recording = Recording.find_by("id", summary["id"])
        if recording is None or recording.status != RECORDING:
            return False
        if recording.started_at is None:  # uuid_record never confirmed: no file to wait for
            return self.mark_failed(recording.id, "the call ended before recording started", outbox)
        return self.finish_recording(recording.id, outbox, stopped_at=call.ended_at or utcnow())

    def on_call_deleting(self, call, outbox):
        """Deleting a call deletes its recording: the row now, the files after commit."""
        for recording in Recording.select().where(Recording.call == call.id):
            self.delete_recording(recording, outbox)

    # ----- what FreeSWITCH reported (RECORD_START / RECORD_STOP) ----------
    def recording_at(self, file_path, fs_uuid=None):
        """Our recording written to file_path (by fs_uuid's channel), or None when not ours."""
        relpath = self.storage.relative(file_path or "")
        if relpath is None:
            return None
        recording = Recording.get_or_none(Recording.source_path == relpath)
        if recording is None or (fs_uuid and recording.fs_uuid and fs_uuid != recording.fs_uuid):
            return None
        return recording

    def record_started(self, recording, started_at=None, sample_rate=None):
        """FreeSWITCH began writing: keep its start time and the channel's rate."""
        Recording.update(started_at=started_at or recording.started_at,
                         sample_rate=recording.sample_rate or sample_rate, updated_at=utcnow()) \
            .where(Recording.id == recording.id).execute()

    def record_stopped(self, recording, outbox, stopped_at=None, during_hangup=False,
                       record_ms=None, completion_cause=None):
        """FreeSWITCH stopped writing: recording -> processing (once), with its figures.

        Returns the recording's status afterwards.
        """
        stopped_at = stopped_at or utcnow()
        facts = {"fs_record_ms": record_ms,
                 "fs_completion_cause": (completion_cause or "")[:COMPLETION_CAUSE_LENGTH] or None}
        if recording.status == RECORDING and not during_hangup \
                and self.hit_limit(recording, stopped_at):
            facts["truncated"] = True
        if not self.finish_recording(recording.id, outbox, stopped_at=stopped_at, **facts):
            # Already stopped by the API or the hangup: keep FreeSWITCH's figures anyway.
            Recording.update(**facts).where(Recording.id == recording.id).execute()
        return Recording.get_by_id(recording.id).status

    @staticmethod
    def hit_limit(recording, stopped_at):
        """Whether FreeSWITCH stopped at the time limit (nobody asked it to stop).

        FreeSWITCH reports `success-maxtime` for any stop, so the cause cannot
        tell; its limit is counted in whole epoch seconds, so a stop within the
        last second of the limit is the limit's.
        """
        if not (recording.limit_seconds and recording.started_at):
            return False
        return (stopped_at - recording.started_at).total_seconds() >= recording.limit_seconds - 1

    # ----- delete --------------------------------------------------------
    def delete(self, call_id):
        """Delete the call's recording: every stored file and the record."""
        outbox = Outbox()
        with outbox.atomic():
            recording = self.for_call(call_id)
            if recording.status == RECORDING:
                raise Conflict("the call is being recorded; stop the recording before deleting it",
                               error_id="recording_in_progress")
            self.delete_recording(recording, outbox)

    def delete_recording(self, recording, outbox):
        """The row now (announced), its files once the deletion is committed."""
        self.notifier.recording_deleted(recording, outbox)
        recording.delete_instance()
        outbox.add(self.storage.remove, stored_relpaths(recording))


def register(services):
    """Wire recordings into the shared services: the service, call hooks, periodic maintenance."""
    recordings = RecordingService(services.config, services.publisher, commands=services.commands,
                                  redis_conn=services.redis)
    services.recordings = recordings
    services.calls.add_hook("answered", recordings.on_call_answered)
    services.calls.add_hook("ended", recordings.on_call_ended)
    services.calls.add_hook("deleting", recordings.on_call_deleting)
    services.background_tasks.append(maintenance_task(services))
    return recordings
