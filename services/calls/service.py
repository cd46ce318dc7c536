"""CallService: the one place that changes calls (API, events process, reconciliation)."""
import datetime
import logging
import uuid

import peewee

from freeswitch.esl.connection import FreeSwitchError, FreeSwitchUnavailable
from models import Call, CallEvent, db, fastsql, utcnow
from models.recording import Recording
from services.calls import state as cs
from services.errors import BadGateway, Conflict, NotFound, Unavailable, Unprocessable
from services.calls.schemas import dump_call
from services.outbox import Outbox
from services.recordings.schemas import recording_summary

logger = logging.getLogger(__name__)

SOURCE_API = "api"
SOURCE_FS = "freeswitch"
SOURCE_RECONCILE = "reconcile"


def fs_time(event, header):
    """A FreeSWITCH microsecond timestamp header -> naive UTC datetime (None if 0/absent)."""
    try:
        micros = int(event.get(header) or 0)
    except ValueError:
        return None
    if micros <= 0:
        return None
    return datetime.datetime.fromtimestamp(micros / 1e6, datetime.timezone.utc).replace(tzinfo=None)


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class CallService:
    """Creates calls, moves them through the state machine and records why.

    Every state change goes through `transition()`, which consults the one
    state machine in call_state.py, writes the call and its event trail, and
    queues the announcement in an Outbox that is flushed only after commit.
    """

    def __init__(self, notifier, commands=None, config=None, hooks=None):
        self.notifier = notifier
        self.commands = commands
        self.config = config or {}
        # Other domains (recordings, quality) react to call changes through hooks,
        # lists of fn(call, outbox) under "answered", "ended", "updated" (no status
        # change) and "deleting";
        # they run inside the transaction, and their side effects go in the outbox.
        self.hooks = hooks if hooks is not None else {}

    def add_hook(self, name, fn):
        self.hooks.setdefault(name, []).append(fn)

    def run_hooks(self, name, call, outbox):
        for fn in self.hooks.get(name, ()):
            fn(call, outbox)

    # ----- reading -------------------------------------------------------
    def get(self, call_id):
        try:
            return Call.get_by_id(str(call_id))
        except (Call.DoesNotExist, ValueError):
            raise NotFound(f"call {call_id} not found") from None

    def history_query(self, filters):
        query = Call.select()
        for field in ("status", "direction", "agent_id", "campaign_id", "gateway"):
            value = filters.get(field)
            if value:
                query = query.where(getattr(Call, field) == value)
        if filters.get("date_from"):
            query = query.where(Call.created_at >= filters["date_from"])
        if filters.get("date_to"):
            query = query.where(Call.created_at < filters["date_to"])
        if filters.get("number"):
            needle = f"%{filters['number']}%"
            query = query.where(Call.to_number ** needle | Call.from_number ** needle
                                | Call.caller_id ** needle)
        if filters.get("sort", "-created_at") == "created_at":
            return query.order_by(Call.created_at.asc(), Call.id.asc())
        return query.order_by(Call.created_at.desc(), Call.id.desc())

    @staticmethod
    def attach_recordings(calls):
        """Load the recordings of a page of calls with one query (not one per call)."""
        ids = [call.id for call in calls]
        recordings = {r.call_id: r for r in Recording.select().where(Recording.call.in_(ids))}
        for call in calls:
            call.recording_summary = recording_summary(recordings.get(call.id))
        return calls

    def events_of(self, call_id):
        call = self.get(call_id)
        return list(CallEvent.select().where(CallEvent.call == call).order_by(CallEvent.id))

    # ----- the state machine ---------------------------------------------
    def transition(self, call, status, source, event_name, outbox, strict=False, at=None,
                   data=None, **fields):
        """Move call to status if the state machine allows; return True if it changed.

        strict (API requests) raises Conflict on an impossible move; FreeSWITCH
        and reconciliation treat repeats and stale moves as no-ops, so replayed
        or reordered events change nothing.
        """
        try:
            if not cs.decide(call.status, status, strict):
                return False
        except cs.InvalidTransition as exc:
            raise Conflict(str(exc)) from None
        at = at or utcnow()
        previous = call.status
        call.status = status
        if status == cs.RINGING:
            call.ringing_at = call.ringing_at or at
        elif status == cs.IN_PROGRESS:
            call.answered_at = call.answered_at or at
        elif status in cs.TERMINAL:
            call.ended_at = call.ended_at or at
            self._fill_durations(call)
        for key, value in fields.items():
            if value is not None:
                setattr(call, key, value)
        call.updated_at = utcnow()
        fastsql.update(call)
        fastsql.insert(CallEvent(call=call, source=source, event_name=event_name,
                                 from_status=previous, to_status=status, created_at=at,
                                 data=data))
        self._announce(call, cs.event_type(status), outbox)
        if status == cs.IN_PROGRESS:
            self.run_hooks("answered", call, outbox)
        elif status in cs.TERMINAL:
            self.run_hooks("ended", call, outbox)
        return True

    @staticmethod
    def _fill_durations(call):
        if call.ended_at and call.duration is None:
            call.duration = max(0, int((call.ended_at - call.created_at).total_seconds()))
        if call.billsec is None:
            if call.answered_at and call.ended_at:
                call.billsec = max(0, int((call.ended_at - call.answered_at).total_seconds()))
            else:
                call.billsec = 0

    def _announce(self, call, event_type, outbox):
        data = dump_call(call)  # snapshot now: later changes in the batch must not leak in
        outbox.publish(self.notifier, "calls", event_type, data)

    def note(self, call, source, event_name, data=None, at=None):
        """Record a noteworthy event that is not a state change."""
        fastsql.insert(CallEvent(call=call, source=source, event_name=event_name,
                                 from_status=call.status, to_status=call.status,
                                 created_at=at or utcnow(), data=data))

    # ----- API actions ---------------------------------------------------
    def start(self, args, idempotency_key=None):
        """Store a call and originate it; returns (call, created)."""
        if idempotency_key:
            existing = Call.get_or_none(Call.idempotency_key == idempotency_key)
            if existing is not None:
                return self._replayed(existing, args), False
        gateway = args.get("gateway") or self.config.get("DEFAULT_GATEWAY") or None
        try:
            self.commands.dialstring(args["to"], gateway)
        except ValueError as exc:
            raise Unprocessable(str(exc), errors={"json": {"to": [str(exc)]}}) from None
        outbox = Outbox()
        try:
            with db.atomic():
                call = Call.create(
                    fs_uuid=str(uuid.uuid4()), fs_job_uuid=str(uuid.uuid4()),
                    direction="outbound", to_number=args["to"],
                    from_number=args.get("from"),
                    caller_id=args.get("caller_id") or args.get("from"),
                    agent_id=args.get("agent_id"), campaign_id=args.get("campaign_id"),
                    gateway=gateway, metadata=args.get("metadata"),
                    record=bool(args.get("record")), record_format=args.get("record_format"),
                    idempotency_key=idempotency_key)
                CallEvent.create(call=call, source=SOURCE_API, event_name="api.start",
                                 to_status=cs.INITIATED)
                self._announce(call, "call.initiated", outbox)
        except peewee.IntegrityError:
            # Another request with the same Idempotency-Key won the race.
            existing = Call.get_or_none(Call.idempotency_key == idempotency_key)
            if existing is None:
                raise
            return self._replayed(existing, args), False
        outbox.flush()
        self._originate(call)
        return call, True

    @staticmethod
    def _replayed(existing, args):
        """The call an Idempotency-Key already made, if it was made for the same agent:
        one agent must not read another's call by guessing or reusing its key."""
        if existing.agent_id != args.get("agent_id"):
            raise Conflict("this Idempotency-Key was already used for another agent's call")
        return existing

    def _originate(self, call):
        try:
            self.commands.originate(
                call.fs_uuid, call.id, call.to_number, gateway=call.gateway,
                caller_id=call.caller_id,
                timeout=self.config.get("FREESWITCH_ORIGINATE_TIMEOUT", 45),
                job_uuid=call.fs_job_uuid)
        except FreeSwitchUnavailable as exc:
            self._fail(call, f"FreeSWITCH unreachable: {exc}", "api.originate_failed")
            raise Unavailable(f"FreeSWITCH is unreachable; the call was not placed ({exc})",
                              headers={"Retry-After": "5"}) from None
        except (FreeSwitchError, ValueError) as exc:
            self._fail(call, f"originate refused: {exc}", "api.originate_failed")
            raise BadGateway(f"FreeSWITCH refused the call: {exc}") from None

    def _fail(self, call, reason, event_name):
        outbox = Outbox()
        with db.atomic():
            call = Call.get_by_id(call.id)
            self.transition(call, cs.FAILED, SOURCE_API, event_name, outbox,
                            status_reason=reason[:255])
        outbox.flush()

    def update(self, call_id, changes):
        """Apply an API update: status through the state machine, notes, outcome, metadata."""
        outbox = Outbox()
        with db.atomic():
            call = self.get(call_id)
            if "notes" in changes:
                call.notes = changes["notes"]
            if "outcome" in changes:
                call.outcome = changes["outcome"]
            if changes.get("metadata") is not None:
                merged = dict(call.metadata or {})
                for key, value in changes["metadata"].items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                call.metadata = merged
            if changes.get("quality"):
                for fn in self.hooks.get("quality_sample", ()):
                    fn(call, changes["quality"], outbox)
            changed = False
            if changes.get("status"):
                changed = self.transition(call, changes["status"], SOURCE_API, "api.update",
                                          outbox, strict=True)
            if not changed:
                call.updated_at = utcnow()
                call.save()
                self._announce(call, "call.updated", outbox)
                self.run_hooks("updated", call, outbox)
        outbox.flush()
        return call

    def end(self, call_id, outcome=None, notes=None):
        """Hang up a live call (uuid_kill). Ending an ended call is an idempotent 200."""
        call = self.get(call_id)
        if call.is_live and call.fs_uuid:
            try:
                self.commands.uuid_kill(call.fs_uuid)
            except FreeSwitchUnavailable as exc:
                raise Unavailable(f"FreeSWITCH is unreachable; the call is still up ({exc})",
                                  headers={"Retry-After": "5"}) from None
            except FreeSwitchError as exc:
                raise BadGateway(f"FreeSWITCH refused to hang up: {exc}") from None
        outbox = Outbox()
        with db.atomic():
            call = self.get(call_id)
            if outcome is not None:
                call.outcome = outcome
            if notes is not None:
                call.notes = notes
            if call.is_live:
                answered = call.status == cs.IN_PROGRESS
                self.transition(call, cs.COMPLETED if answered else cs.CANCELED, SOURCE_API,
                                "api.end", outbox,
                                hangup_cause="NORMAL_CLEARING" if answered else "ORIGINATOR_CANCEL")
            else:
                call.save()
                self._announce(call, "call.updated", outbox)
                self.run_hooks("updated", call, outbox)
        outbox.flush()
        return call

    def delete(self, call_id):
        """Delete an ended call, its event trail and (through hooks) its recordings."""
        outbox = Outbox()
        with db.atomic():
            call = self.get(call_id)
            if call.is_live:
                raise Conflict(f"call {call_id} is {call.status}; end it before deleting it")
            self.run_hooks("deleting", call, outbox)
            CallEvent.delete().where(CallEvent.call == call).execute()
            call.delete_instance()
            outbox.add(self.notifier.publish, "calls", "call.deleted", {"id": call.id})
        outbox.flush()
