"""Call recording: storage under the one recording root, uuid_record, the status machine, retention.

Statuses: `recording` (FreeSWITCH is writing the WAV) -> `processing` (an RQ
job transcodes and measures it) -> `ready`, or `failed` with a reason. The web
process (API), the events process (RECORD_START/RECORD_STOP, call hooks) and
the worker (workers/recordings.py) all change recordings through RecordingService;
every move is a conditional UPDATE on the current status, so that the API, a
RECORD_STOP and the call-ended hook racing each other move a recording once and
enqueue its job once.

MAX_RECORDING_SIZE is enforced as the time limit of `uuid_record` (FreeSWITCH
stops writing after limit seconds): limit = (MAX_RECORDING_SIZE - 44 bytes of
WAV header) / (sample rate x 2 bytes x 1 channel). The sample rate is the
channel's `read_rate` (asked with `uuid_getvar`); when FreeSWITCH cannot tell,
8000 Hz is assumed (narrow-band telephony: 16,000 bytes per second). The worker
cuts anything longer, so a stored recording never exceeds the size either way.
"""
import datetime
import glob
import logging
import os
import re

import peewee

from freeswitch.esl.commands import check_uuid
from freeswitch.esl.connection import FreeSwitchError, FreeSwitchUnavailable
from models import Call, utcnow
from models.db import db_session, write_transaction
from models.recording import Recording
from services.calls.schemas import forget_recording, recording_of
from services.calls.service import fs_time
from services.errors import BadGateway, Conflict, NotFound, ServiceError, Unavailable
from services.outbox import Outbox
from services.recordings.schemas import dump_recording

logger = logging.getLogger(__name__)

RECORDING, PROCESSING, READY, FAILED = "recording", "processing", "ready", "failed"
FORMATS = Recording.FORMATS
MIME_TYPES = {"mp3": "audio/mpeg", "ogg": "audio/ogg", "wav": "audio/wav"}

WAV_HEADER_BYTES = 44
ASSUMED_SAMPLE_RATE = 8000
BYTES_PER_SAMPLE = 2
TRANSCODE_QUEUE = "recordings"
MAINTENANCE_LOCK_KEY = "cc:recordings:maintenance"


def recording_limit_seconds(max_bytes, sample_rate=None, channels=1):
    """Seconds of 16-bit PCM WAV that fit in max_bytes (at least 1)."""
    rate = sample_rate or ASSUMED_SAMPLE_RATE
    per_second = rate * BYTES_PER_SAMPLE * max(1, channels)
    return max(1, (max_bytes - WAV_HEADER_BYTES) // per_second)


def transcode_job_id(recording_id):
    """One job id per recording, so the maintenance sweep can look its job up."""
    return f"recording-transcode-{recording_id}"






class OutsideRecordingRoot(Exception):
    """A stored path resolves outside SIP_RECORDING_PATH (traversal, symlink): never served."""


class RecordingStorage:
    """Where recordings live: relative paths under one root, and nothing outside it."""

    def __init__(self, root):
        if re.search(r"\s", root):
            # uuid_record splits its arguments on spaces: FreeSWITCH could not record there.
            raise ValueError(f"SIP_RECORDING_PATH must not contain whitespace: {root!r}")
        self.root = os.path.realpath(root)

    @staticmethod
    def source_relpath(call_id, when):
        """The WAV FreeSWITCH writes: YYYY/MM/DD/<call id>.wav (UTC date of the start)."""
        return f"{when:%Y/%m/%d}/{check_uuid(str(call_id))}.wav"

    @staticmethod
    def output_relpath(source_relpath, fmt):
        return os.path.splitext(source_relpath)[0] + "." + fmt

    def absolute(self, relpath):
        """The path as FreeSWITCH and the file system see it (not resolved)."""
        return os.path.join(self.root, relpath)

    def relative(self, path):
        """An absolute path under the root -> its relative path; None when outside."""
        try:
            full = self.resolve_loose(path)
        except OutsideRecordingRoot:
            return None
        return os.path.relpath(full, self.root)

    def resolve_loose(self, path):
        """Resolve path (relative to the root, or absolute); refuse anything outside the root."""
        full = os.path.realpath(os.path.join(self.root, path))
        if full == self.root or os.path.commonpath([self.root, full]) != self.root:
            raise OutsideRecordingRoot(path)
        return full

    def resolve(self, relpath):
        """The real path of a stored file; refuses absolute paths, `..` and symlinks out."""
        if not relpath or os.path.isabs(relpath):
            raise OutsideRecordingRoot(relpath)
        return self.resolve_loose(relpath)

    def ensure_directory(self, relpath):
        os.makedirs(os.path.dirname(self.absolute(relpath)), exist_ok=True)

    def partials_of(self, relpath):
        """Temporary files of an interrupted write of relpath (`.<name>.<random>.part`)."""
        directory, name = os.path.split(relpath)
        pattern = os.path.join(glob.escape(self.absolute(directory)),
                               f".{glob.escape(name)}.*.part")
        return [os.path.relpath(path, self.root) for path in glob.glob(pattern)]

    def remove(self, relpaths):
        """Delete stored files and their partial writes (missing ones are fine); returns a count."""
        removed = 0
        everything = [path for relpath in relpaths
                      for path in [relpath, *self.partials_of(relpath)]]
        for path in everything:
            try:
                os.unlink(self.resolve(path))
                removed += 1
            except FileNotFoundError:
                continue
            except OutsideRecordingRoot:
                logger.warning("refused to delete %r: outside the recording root", path)
            except OSError as exc:
                logger.warning("could not delete recording file %s: %s", path, exc)
        return removed


def stored_relpaths(recording):
    """Every file a recording may have on disk, including the source WAV and temp leftovers."""
    paths = {recording.source_path}
    for fmt in FORMATS:
        paths.add(RecordingStorage.output_relpath(recording.source_path, fmt))
    for entry in (recording.files or {}).values():
        paths.add(entry["path"])
    return sorted(paths)


class RecordingService:
    """Starts, stops, tracks, serves and deletes call recordings."""

    def __init__(self, config, notifier, commands=None, redis_conn=None):
        self.config = config
        self.notifier = notifier
        self.commands = commands
        self.redis = redis_conn
        self.storage = RecordingStorage(config.get("SIP_RECORDING_PATH", "./recordings"))

    # ----- reading -------------------------------------------------------
    def for_call(self, call_id):
        recording = Recording.get_or_none(Recording.call == str(call_id))
        if recording is None:
            if Call.get_or_none(Call.id == str(call_id)) is None:
                raise NotFound(f"call {call_id} not found")
            raise NotFound(f"call {call_id} has no recording")
        return recording

    def list_query(self, filters):
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
                           headers={"Retry-After": "5"} if recording.status != FAILED else None)
        fmt = fmt or recording.format
        entry = (recording.files or {}).get(fmt)
        if entry is None:
            raise NotFound(f"the recording is not stored as {fmt}; stored formats: "
                           f"{', '.join(recording.formats)}")
        try:
            path = self.storage.resolve(entry["path"])
        except OutsideRecordingRoot:
            logger.error("recording %s points outside the recording root: %r", recording.id,
                         entry["path"])
            raise NotFound("the recording file is not available") from None
        if not os.path.isfile(path):
            raise NotFound("the recording file is missing from storage")
        return path, MIME_TYPES[fmt], entry["sha256"], f"{recording.call_id}.{fmt}"

    # ----- announcing ----------------------------------------------------
    def announce(self, recording, event_type, outbox):
        data = dump_recording(recording)  # snapshot now, publish after commit
        outbox.add(self.notifier.publish, "recordings", event_type, data)

    def enqueue_transcode(self, recording_id):
        from services.jobs import enqueue
        from workers.recordings import transcode_recording
        if self.redis is None:
            logger.warning("no Redis to enqueue the transcoding of %s; the sweep will",
                           recording_id)
            return None
        return enqueue(self.redis, TRANSCODE_QUEUE, transcode_recording, recording_id,
                       job_id=transcode_job_id(recording_id))

    # ----- start ---------------------------------------------------------
    def start(self, call_id, fmt=None):
        """Start recording a live call (API); returns the recording."""
        with write_transaction():
            call = Call.get_or_none(Call.id == str(call_id))
            if call is None:
                raise NotFound(f"call {call_id} not found")
            recording = self._create_for(call, fmt or call.record_format)
        outbox = Outbox()
        try:
            self._send_start(recording, outbox)
        except Exception:
            Recording.delete().where(Recording.id == recording.id).execute()
            raise
        outbox.flush()
        return recording

    def _create_for(self, call, fmt):
        if not call.is_live:
            raise Conflict(f"call {call.id} is {call.status}; only a live call can be recorded")
        if not call.fs_uuid:
            raise Conflict(f"call {call.id} has no FreeSWITCH channel yet")
        existing = Recording.get_or_none(Recording.call == call.id)
        if existing is not None:
            if existing.status == RECORDING:
                raise Conflict(f"call {call.id} is already being recorded")
            raise Conflict(f"call {call.id} already has a recording ({existing.status}); "
                           "delete it to record again")
        fmt = fmt or self.config.get("RECORDING_FORMAT", "mp3")
        now = utcnow()
        try:
            with write_transaction():
                return Recording.create(
                    call=call.id, format=fmt, fs_uuid=call.fs_uuid, status=RECORDING,
                    source_path=self.storage.source_relpath(call.id, now), created_at=now,
                    updated_at=now)
        except peewee.IntegrityError:  # one recording per call: a concurrent start won
            raise Conflict(f"call {call.id} is already being recorded") from None

    def _send_start(self, recording, outbox):
        """mkdir, ask the channel's rate, `uuid_record start` with the size limit, or raise."""
        try:
            self.storage.ensure_directory(recording.source_path)
        except OSError as exc:
            raise Unavailable(f"cannot create the recording directory: {exc.strerror}") from None
        rate = self._channel_rate(recording.fs_uuid)
        max_bytes = self.config.get("MAX_RECORDING_SIZE", 100 * 1024 ** 2)
        limit = recording_limit_seconds(max_bytes, rate)
        path = self.storage.absolute(recording.source_path)
        reply = self._api(f"uuid_record {check_uuid(recording.fs_uuid)} start {path} {limit}")
        if not reply.startswith("+OK"):
            if "Cannot locate session" in reply:
                raise Conflict(f"FreeSWITCH no longer has the call's channel ({reply.strip()})")
            raise BadGateway(f"FreeSWITCH refused to record: {reply.strip()}")
        now = utcnow()
        Recording.update(limit_seconds=limit, sample_rate=rate, started_at=now, updated_at=now) \
            .where(Recording.id == recording.id).execute()
        recording.limit_seconds, recording.sample_rate, recording.started_at = limit, rate, now
        logger.info("recording call %s to %s (limit %ss at %s Hz)", recording.call_id, path, limit,
                    rate or ASSUMED_SAMPLE_RATE)
        self.announce(recording, "recording.started", outbox)

    def _channel_rate(self, fs_uuid):
        """The channel's read rate in Hz, or None when FreeSWITCH cannot tell."""
        try:
            reply = self._api(f"uuid_getvar {check_uuid(fs_uuid)} read_rate").strip()
        except (BadGateway, Unavailable):
            return None
        return int(reply) if reply.isdigit() and 4000 <= int(reply) <= 192000 else None

    def _api(self, command):
        if self.commands is None:
            raise Unavailable("no FreeSWITCH connection in this process")
        try:
            return self.commands.api(command)
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
            raise Conflict(f"the call is not being recorded (recording is {recording.status})")
        path = self.storage.absolute(recording.source_path)
        reply = self._api(f"uuid_record {check_uuid(recording.fs_uuid)} stop {path}")
        if not reply.startswith("+OK"):
            logger.info("uuid_record stop for %s: %s (already stopped)", recording.id,
                        reply.strip())
        outbox = Outbox()
        with write_transaction():
            self.finish_recording(recording.id, outbox, stopped_at=utcnow())
        outbox.flush()
        return Recording.get_by_id(recording.id)

    def finish_recording(self, recording_id, outbox, **facts):
        """recording -> processing, once; queue the transcoding and the announcement."""
        facts["updated_at"] = utcnow()
        changed = Recording.update(status=PROCESSING, **facts).where(
            (Recording.id == recording_id) & (Recording.status == RECORDING)).execute()
        if not changed:
            return False
        recording = Recording.get_by_id(recording_id)
        self.announce(recording, "recording.stopped", outbox)
        outbox.add(self.enqueue_transcode, recording_id)
        return True

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
            except (ServiceError, OSError) as exc:  # nobody to answer: the recording says why
                reason = getattr(exc, "message", None) or str(exc)
                logger.warning("recording of call %s could not start: %s", recording.call_id,
                               reason)
                self.mark_failed(recording_id, f"could not start: {reason}", outbox)
        outbox.flush()

    def on_call_ended(self, call, outbox):
        """A call that ended without a RECORD_STOP still gets its recording processed."""
        changed = self.finish_recording_of_call(call, outbox)
        if changed:
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
            self._delete(recording, outbox)

    # ----- FreeSWITCH events ---------------------------------------------
    def _recording_for_event(self, event):
        relpath = self.storage.relative(event.get("Record-File-Path") or "")
        if relpath is None:
            return None
        recording = Recording.get_or_none(Recording.source_path == relpath)
        if recording is None or (event.get("Unique-ID") and recording.fs_uuid
                                 and event["Unique-ID"] != recording.fs_uuid):
            return None
        return recording

    def on_record_start(self, event, outbox):
        recording = self._recording_for_event(event)
        if recording is None:
            logger.debug("RECORD_START of a file not ours: %s", event.get("Record-File-Path"))
            return
        rate = _int(event.get("Channel-Read-Codec-Rate"))
        Recording.update(started_at=fs_time(event, "Event-Date-Timestamp") or recording.started_at,
                         sample_rate=recording.sample_rate or rate, updated_at=utcnow()) \
            .where(Recording.id == recording.id).execute()

    def on_record_stop(self, event, outbox):
        recording = self._recording_for_event(event)
        if recording is None:
            logger.debug("RECORD_STOP of a file not ours: %s", event.get("Record-File-Path"))
            return
        stopped_at = fs_time(event, "Event-Date-Timestamp") or utcnow()
        facts = {"fs_record_ms": _int(event.get("variable_record_ms")),
                 "fs_completion_cause": (event.get("Record-Completion-Cause") or "")[:64] or None}
        if recording.status == RECORDING and not _during_hangup(event) \
                and self._hit_limit(recording, stopped_at):
            facts["truncated"] = True
        if not self.finish_recording(recording.id, outbox, stopped_at=stopped_at, **facts):
            # Already stopped by the API or the hangup: keep FreeSWITCH's figures anyway.
            Recording.update(**facts).where(Recording.id == recording.id).execute()

    @staticmethod
    def _hit_limit(recording, stopped_at):
        """Whether FreeSWITCH stopped at the time limit (nobody asked it to stop).

        FreeSWITCH reports `success-maxtime` for any stop, so the cause cannot
        tell; its limit is counted in whole epoch seconds, so a stop within the
        last second of the limit is the limit's.
        """
        if not (recording.limit_seconds and recording.started_at):
            return False
        return (stopped_at - recording.started_at).total_seconds() >= recording.limit_seconds - 1

    # ----- worker side ---------------------------------------------------
    def claim_for_transcode(self, recording_id):
        """The recording a transcoding job should work on, or None if there is nothing to do."""
        recording = Recording.get_or_none(Recording.id == recording_id)
        if recording is None or recording.status != PROCESSING:
            return None
        return recording

    @staticmethod
    def note_truncated(recording_id):
        """Remember the cut before the cut file replaces the source (a retry cannot see it)."""
        Recording.update(truncated=True).where(Recording.id == recording_id).execute()

    def mark_ready(self, recording_id, files, measured):
        """Store the transcoding's result; False (and nothing stored) if the recording went away."""
        outbox = Outbox()
        with write_transaction():
            recording = Recording.get_or_none(Recording.id == recording_id)
            if recording is None or recording.status != PROCESSING:
                return False
            main = files[recording.format]
            now = utcnow()
            recording.files = files
            recording.size, recording.sha256 = main["size"], main["sha256"]
            recording.duration = round(measured["duration"], 3)
            recording.sample_rate = measured["sample_rate"]
            recording.channels = measured["channels"]
            recording.truncated = recording.truncated or measured["truncated"]
            recording.status, recording.error = READY, None
            recording.ready_at = recording.updated_at = now
            recording.save()
            self.announce(recording, "recording.ready", outbox)
        outbox.flush()
        return True

    def mark_failed(self, recording_id, reason, outbox=None):
        """Any unfinished recording -> failed with the reason; announced after commit."""
        own = outbox is None
        outbox = outbox or Outbox()
        with write_transaction():
            changed = (Recording.update(status=FAILED, error=reason[:255], updated_at=utcnow())
                       .where((Recording.id == recording_id)
                              & Recording.status.in_((RECORDING, PROCESSING)))
                       .execute())
            if changed:
                self.announce(Recording.get_by_id(recording_id), "recording.failed", outbox)
        if own:
            outbox.flush()
        return bool(changed)

    # ----- delete and retention ------------------------------------------
    def delete(self, call_id):
        """Delete the call's recording: every stored file and the record."""
        outbox = Outbox()
        with write_transaction():
            recording = self.for_call(call_id)
            if recording.status == RECORDING:
                raise Conflict("the call is being recorded; stop the recording before deleting it")
            self._delete(recording, outbox)
        outbox.flush()

    def _delete(self, recording, outbox):
        data = dump_recording(recording)
        recording.delete_instance()
        outbox.add(self.storage.remove, stored_relpaths(recording))
        outbox.add(self.notifier.publish, "recordings", "recording.deleted", data)

    def delete_expired(self, days, now=None, batch=200):
        """Delete recordings created more than days ago (not ones still recording)."""
        if days is None:
            return 0
        cutoff = (now or utcnow()) - datetime.timedelta(days=days)
        deleted = 0
        while True:
            outbox = Outbox()
            with write_transaction():
                expired = list(Recording.select().where(
                    (Recording.created_at < cutoff) & (Recording.status != RECORDING))
                    .order_by(Recording.created_at).limit(batch))
                for recording in expired:
                    self._delete(recording, outbox)
            outbox.flush()
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
        with write_transaction():
            orphans = (Recording.select(Recording).join(Call)
                       .where((Recording.status == RECORDING)
                              & Call.status.not_in(Call.LIVE_STATUSES)
                              & (Recording.updated_at < cutoff)))
            for recording in orphans:
                counts["finished"] += self.finish_recording_of_call(recording.call, outbox)
            stalled = Recording.select().where((Recording.status == PROCESSING)
                                               & (Recording.updated_at < cutoff))
            for recording in stalled:
                state = job_status(recording.id) if job_status else "missing"
                if state == "missing":
                    Recording.update(updated_at=utcnow()) \
                        .where(Recording.id == recording.id).execute()
                    outbox.add(self.enqueue_transcode, recording.id)
                    counts["requeued"] += 1
                elif state.startswith("failed"):
                    reason = state.partition(":")[2] or "transcoding failed"
                    counts["failed"] += self.mark_failed(recording.id, reason, outbox)
        outbox.flush()
        return counts


def _during_hangup(event):
    """RECORD_STOP sent because the channel hung up (not because recording hit its limit)."""
    return (event.get("Answer-State") == "hangup"
            or event.get("Channel-Call-State") == "HANGUP"
            or event.get("Channel-State") in ("CS_HANGUP", "CS_REPORTING", "CS_DESTROY"))


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def maintenance_task(services, interval=None, first_delay=60.0):
    """Background task (events process): enqueue the retention and recovery job periodically."""
    from services.jobs import periodic_enqueue
    from workers.recordings import maintain_recordings
    interval = float(interval or services.config.get("RECORDING_MAINTENANCE_INTERVAL", 3600))
    return periodic_enqueue(services.redis, MAINTENANCE_LOCK_KEY, interval, TRANSCODE_QUEUE,
                            maintain_recordings, first_delay=first_delay)


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
