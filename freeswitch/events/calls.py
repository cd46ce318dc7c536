"""Channel events -> call-state changes, through CallService's one state machine."""
import logging

from models import Call, fastsql, utcnow
from services.calls import state as cs
from services.calls.service import SOURCE_FS, SOURCE_RECONCILE, CallService, fs_time

logger = logging.getLogger(__name__)

RTP_PREFIX = "variable_rtp_audio_in_"


def event_time(event):
    return fs_time(event, "Event-Date-Timestamp") or utcnow()


def is_a_leg(event):
    """Bridged b-legs share the a-leg's Channel-Call-UUID; only a-legs are calls."""
    call_uuid = event.get("Channel-Call-UUID")
    return not call_uuid or call_uuid == event.get("Unique-ID")


def rtp_stats(event):
    """FreeSWITCH's end-of-call RTP statistics, as numbers where they are numbers."""
    stats = {}
    for key, value in event.items():
        if key.startswith(RTP_PREFIX):
            name = key[len("variable_rtp_audio_"):]
            try:
                stats[name] = float(value) if "." in value else int(value)
            except ValueError:
                stats[name] = value
    return stats or None


class CallEventHandlers:
    """Handlers of the channel events; each takes the parsed event and the batch's outbox."""

    # Channel events that may reuse the batch's call objects; any other event may
    # change a call behind them (BACKGROUND_JOB, recordings), so it clears them.
    CACHEABLE = ("CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
                 "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")

    def __init__(self, calls: CallService):
        self.calls = calls
        self._batch = None

    # ----- batch boundaries (called by the listener) ----------------------
    def begin_batch(self):
        """Inside one batch transaction a call's events reuse one loaded object.

        A call's CREATE, PROGRESS, ANSWER and HANGUP_COMPLETE often arrive in
        the same batch; loading the row once instead of four times is most of
        the events process's throughput. No other writer can change the row
        meanwhile on SQLite (the batch holds the write lock).
        """
        self._batch = {}

    def before_event(self, name):
        if name not in self.CACHEABLE and self._batch:
            self._batch = {}

    def end_batch(self):
        self._batch = None

    def subscriptions(self):
        """Every channel event this service handles, and its handler, in one block."""
        return {
            "CHANNEL_CREATE": self.on_channel_create,
            "CHANNEL_PROGRESS": self.on_channel_progress,
            "CHANNEL_PROGRESS_MEDIA": self.on_channel_progress,
            "CHANNEL_ANSWER": self.on_channel_answer,
            "CHANNEL_HANGUP_COMPLETE": self.on_channel_hangup_complete,
            "BACKGROUND_JOB": self.on_background_job,
        }

    # ----- lookup and adoption -------------------------------------------
    @staticmethod
    def find_call(event):
        call_id = event.get("variable_cc_call_id")
        if call_id:
            call = Call.find_by("id", call_id)
            if call is not None:
                return call
        fs_uuid = event.get("Unique-ID")
        if fs_uuid:
            return Call.find_by("fs_uuid", fs_uuid)
        return None

    def adopt(self, event, outbox, source=SOURCE_FS):
        """Log a call FreeSWITCH has that the API did not start (inbound, or placed elsewhere)."""
        direction = "inbound" if event.get("Call-Direction") == "inbound" else "outbound"
        created = fs_time(event, "Caller-Channel-Created-Time") or event_time(event)
        call = Call(
            fs_uuid=event["Unique-ID"], direction=direction,
            from_number=event.get("Caller-Caller-ID-Number") or event.get("Caller-ANI"),
            to_number=event.get("Caller-Destination-Number"),
            caller_id=event.get("Caller-Caller-ID-Name") or event.get("Caller-Caller-ID-Number"),
            gateway=event.get("variable_sip_gateway_name"),
            status=cs.INITIATED, created_at=created, updated_at=utcnow())
        call.recording_summary = None  # a call just seen has no recording yet
        fastsql.insert(call)
        self.calls.note(call, source, "adopted:" + event.get("Event-Name", "?"), at=created)
        self.calls._announce(call, "call.initiated", outbox)
        logger.info("adopted %s call %s (channel %s)", direction, call.id, call.fs_uuid)
        return call

    def _call_for(self, event, outbox):
        key = event.get("Unique-ID")
        cache = self._batch
        if cache is not None and key in cache:
            return cache[key]
        call = self.find_call(event)
        if call is None and key and is_a_leg(event):
            call = self.adopt(event, outbox)
        if cache is not None and call is not None and key:
            cache[key] = call
        return call

    # ----- handlers ------------------------------------------------------
    def on_channel_create(self, event, outbox):
        call = self._call_for(event, outbox)
        if call is None:
            logger.debug("CHANNEL_CREATE of a b-leg ignored: %s", event.get("Unique-ID"))
            return
        if call.fs_uuid != event.get("Unique-ID") and event.get("Unique-ID"):
            call.fs_uuid = event["Unique-ID"]
            call.save()

    def on_channel_progress(self, event, outbox):
        call = self._call_for(event, outbox)
        if call is None:
            return
        at = fs_time(event, "Caller-Channel-Progress-Time") or event_time(event)
        self.calls.transition(call, cs.RINGING, SOURCE_FS, event["Event-Name"], outbox, at=at)

    def on_channel_answer(self, event, outbox):
        call = self._call_for(event, outbox)
        if call is None:
            return
        at = fs_time(event, "Caller-Channel-Answered-Time") or event_time(event)
        self.calls.transition(call, cs.IN_PROGRESS, SOURCE_FS, "CHANNEL_ANSWER", outbox, at=at)

    def on_channel_hangup_complete(self, event, outbox):
        call = self._call_for(event, outbox)
        if call is None:
            return
        cause = event.get("Hangup-Cause") or event.get("variable_hangup_cause")
        answered_at = fs_time(event, "Caller-Channel-Answered-Time")
        ended_at = fs_time(event, "Caller-Channel-Hangup-Time") or event_time(event)
        facts = dict(hangup_cause=cause,
                     duration=_int(event.get("variable_duration")),
                     billsec=_int(event.get("variable_billsec")),
                     rtp_stats=rtp_stats(event))
        if answered_at and not call.answered_at:
            call.answered_at = answered_at
        status = cs.status_for_hangup(cause, answered=bool(call.answered_at))
        if self.calls.transition(call, status, SOURCE_FS, "CHANNEL_HANGUP_COMPLETE", outbox,
                                 at=ended_at, **facts):
            return
        # Already ended (by the API, or a failed originate): FreeSWITCH's figures are
        # the authoritative ones, so fill them in, once.
        changed = {k: v for k, v in facts.items() if v is not None and getattr(call, k) != v}
        if changed and call.status in cs.TERMINAL:
            for key, value in changed.items():
                setattr(call, key, value)
            call.updated_at = utcnow()
            call.save()
            self.calls.note(call, SOURCE_FS, "CHANNEL_HANGUP_COMPLETE", at=ended_at)
            self.calls._announce(call, "call.updated", outbox)
            self.calls.run_hooks("ended", call, outbox)

    def on_background_job(self, event, outbox):
        if event.get("Job-Command") != "originate":
            return
        call = Call.get_or_none(Call.fs_job_uuid == event.get("Job-UUID"))
        if call is None:
            logger.debug("BACKGROUND_JOB for an unknown job %s", event.get("Job-UUID"))
            return
        result = (event.get("_body") or "").strip()
        if result.startswith("+OK"):
            return
        cause = result[len("-ERR"):].strip() if result.startswith("-ERR") else result
        cause = cause.split()[0] if cause else "UNKNOWN"
        self.calls.transition(call, cs.status_for_hangup(cause, answered=False), SOURCE_FS,
                              "BACKGROUND_JOB", outbox, at=event_time(event),
                              hangup_cause=cause[:64], status_reason=f"originate: {result}"[:255])

    # ----- reconciliation ------------------------------------------------
    def reconcile(self, channels, outbox, grace_seconds=5.0):
        """Bring the database in line with the channels FreeSWITCH has now.

        channels are `show channels as json` rows, each with its `uuid_dump`
        under "_dump" when it could be read. Calls the database thinks are live
        but FreeSWITCH no longer has are closed; known live calls catch up on
        what was missed (answered while we were away); unknown a-leg channels
        are adopted. An `initiated` call younger than grace_seconds may not have
        its channel yet, so it is left for the next pass (the listener runs one
        again shortly after each reconnect).
        """
        by_uuid = {row.get("uuid"): row for row in channels if row.get("uuid")}
        now = utcnow()
        closed = adopted = 0
        for call in Call.select().where(Call.status.in_(cs.LIVE)):
            row = by_uuid.pop(call.fs_uuid, None)
            if row is not None:
                self._catch_up(call, row.get("_dump"), outbox)
                continue
            # A call still `initiated` may be an originate in flight whose channel
            # does not exist yet; one that rang or answered had a channel for sure.
            if call.status == cs.INITIATED and \
                    (now - call.created_at).total_seconds() < grace_seconds:
                continue
            status = cs.COMPLETED if call.answered_at else cs.FAILED
            self.calls.transition(call, status, SOURCE_RECONCILE, "reconcile", outbox,
                                  status_reason="channel gone from FreeSWITCH while its "
                                                "events were not received")
            closed += 1
        if by_uuid:
            known = {c.fs_uuid for c in
                     Call.select(Call.fs_uuid).where(Call.fs_uuid.in_(list(by_uuid)))}
            for uuid, row in by_uuid.items():
                if uuid in known or (row.get("call_uuid") or uuid) != uuid:
                    continue  # already logged (ended meanwhile), or a bridged b-leg
                event = row.get("_dump") or _row_as_event(row)
                call = self.adopt(event, outbox, source=SOURCE_RECONCILE)
                self._catch_up(call, row.get("_dump"), outbox)
                adopted += 1
        return closed, adopted

    def _catch_up(self, call, dump, outbox):
        """Apply what a channel's uuid_dump says happened (answer, progress)."""
        if not dump:
            return
        if dump.get("Answer-State") == "answered":
            at = fs_time(dump, "Caller-Channel-Answered-Time")
            self.calls.transition(call, cs.IN_PROGRESS, SOURCE_RECONCILE, "reconcile", outbox,
                                  at=at)
        elif dump.get("Answer-State") == "early" or \
                fs_time(dump, "Caller-Channel-Progress-Time"):
            at = fs_time(dump, "Caller-Channel-Progress-Time")
            self.calls.transition(call, cs.RINGING, SOURCE_RECONCILE, "reconcile", outbox, at=at)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _row_as_event(row):
    """A `show channels` row in the shape of a channel event, for adopt()."""
    epoch = _int(row.get("created_epoch")) or 0
    return {
        "Unique-ID": row["uuid"], "Event-Name": "show_channels",
        "Call-Direction": row.get("direction"),
        "Caller-Caller-ID-Number": row.get("cid_num"),
        "Caller-Caller-ID-Name": row.get("cid_name") or row.get("cid_num"),
        "Caller-Destination-Number": row.get("dest"),
        "Caller-Channel-Created-Time": str(epoch * 1_000_000),
    }
