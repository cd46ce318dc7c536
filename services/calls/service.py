"""CallService: the one place that changes calls (API, events process, reconciliation)."""
import logging
import uuid

import peewee

from freeswitch.esl.connection import FreeSwitchError, FreeSwitchUnavailable
from models import Call, CallEvent, fastsql, utcnow
from models.db import new_id
from services.agents.service import AgentService
from services.calls import history, lookup, nodes
from services.calls import state as cs
from services.calls.bridging import CallBridging, fill_handling_times
from services.calls.guard import CallChangedMeanwhile, retried
from services.calls.notifier import CallNotifier
from services.errors import BadGateway, Conflict, NotFound, Unavailable, Unprocessable
from services.outbox import Outbox, insert_row

logger = logging.getLogger(__name__)

SOURCE_API = "api"
SOURCE_FS = "freeswitch"
SOURCE_RECONCILE = "reconcile"

GONE_REASON = cs.GONE_REASON
NO_GATEWAY = ("no gateway given and no DEFAULT_GATEWAY configured: name one in `gateway` "
              "(see GET /api/sip/status) or set DEFAULT_GATEWAY")


class CallService:
    """Creates calls, moves them through the state machine and records why.

    Every state change goes through `transition()`, which asks the one state
    machine (state.py) to apply it, writes the call and its event trail, and
    has the CallNotifier queue the news in an outbox sent only after commit.
    """

    def __init__(self, publisher, commands=None, config=None, hooks=None):
        self.notifier = CallNotifier(publisher)
        self.commands = nodes.CallNodes.of(commands)  # commands_for(call): the call's node
        self.config = config or {}
        # Other domains react to call changes through hooks, lists of fn(call, outbox) under
        # "answered", "ended", "updated" (no status change) and "deleting"; they run inside
        # the transaction, and their side effects go in the outbox.
        self.hooks = hooks if hooks is not None else {}
        # Calls with an agent on the line offer the agent and follow its leg.
        self.agents = AgentService(publisher, commands, self.config)
        self.bridging = CallBridging(self, self.agents)
        self.add_hook("ended", self.bridging.call_ended)

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
            raise NotFound(f"call {call_id} not found", error_id="call_not_found") from None

    @staticmethod
    def history_query(filters):
        return history.history_query(filters)

    @staticmethod
    def attach_recordings(calls):
        return history.attach_recordings(calls)

    def events_of(self, call_id):
        return history.trail(self.get(call_id))

    # The lookups of the events process and of reconciliation.
    find_for_channel = staticmethod(lookup.find_for_channel)
    calls_for_channels = staticmethod(lookup.calls_for_channels)
    find_by_job = staticmethod(lookup.find_by_job)
    live_calls = staticmethod(lookup.live_calls)
    live_channels = staticmethod(lookup.live_channels)
    closed_by_reconcile = staticmethod(lookup.closed_by_reconcile)
    known_channels = staticmethod(lookup.known_channels)

    # ----- the state machine ---------------------------------------------
    def transition(self, call, status, source, event_name, outbox, strict=False, at=None,
                   data=None, **fields):
        """Move call to status if the state machine allows; return True if it changed.
        strict (API requests) raises Conflict on an impossible move; FreeSWITCH and
        reconciliation treat repeats and stale moves as no-ops (replayed events change nothing).
        """
        at = at or utcnow()
        try:
            previous = cs.apply(call, status, strict, at)
        except cs.InvalidTransition as exc:
            raise Conflict(str(exc), error_id="invalid_transition") from None
        if previous is None:
            return False
        for key, value in fields.items():
            if value is not None:
                setattr(call, key, value)
        if call.status in cs.TERMINAL:
            fill_handling_times(call)
        self._changed(call, previous, source, event_name, outbox, at, data)
        return True

    def _changed(self, call, previous, source, event_name, outbox, at, data=None, quiet=False):
        """Store a status change with its trail entry; announce it unless quiet. The row is
        written only if it still has the status the change started from: the API and the
        events process may move one call at once, and only one may record the move."""
        call.updated_at = utcnow()
        if fastsql.update(call, guard=("status", previous)) == 0:
            raise CallChangedMeanwhile(f"call {call.id} changed while it was being updated; "
                                       "try again")
        insert_row(CallEvent, call=call.id, source=source, event_name=event_name,
                   from_status=previous, to_status=call.status, created_at=at, data=data)
        if quiet:
            return
        self.notifier.call_changed(call, outbox)
        if call.status == cs.IN_PROGRESS:
            self.run_hooks("answered", call, outbox)
        elif call.status in cs.TERMINAL:
            self.run_hooks("ended", call, outbox)

    def reopen(self, call, status, event_name, outbox, at=None, quiet=False):
        """A call reconciliation closed showed up live: back to status (trail: reconcile).
        quiet: record the move only (a hangup that follows at once announces the end)."""
        previous = cs.reopen(call, status, at)
        if previous is None:
            return False
        logger.warning("call %s was closed by reconciliation but its channel %s is live: "
                       "reopened as %s (%s)", call.id, call.fs_uuid, status, event_name)
        self._changed(call, previous, SOURCE_RECONCILE, "reopen:" + event_name, outbox,
                      at or utcnow(), quiet=quiet)
        return True

    def note(self, call, source, event_name, data=None, at=None):
        """Record a noteworthy event that is not a state change."""
        insert_row(CallEvent, call=call.id, source=source, event_name=event_name,
                   from_status=call.status, to_status=call.status, created_at=at or utcnow(),
                   data=data)

    # ----- what FreeSWITCH tells -----------------------------------------
    def adopt(self, facts, outbox, source=SOURCE_FS, event_name="?"):
        """Log a call FreeSWITCH has that the API did not start (inbound, or placed elsewhere).

        facts: fs_uuid, direction, from_number, to_number, caller_id, gateway, created_at.
        """
        call = Call(updated_at=utcnow(), **facts)
        call.recording_summary, call.queue_entries = None, ()  # none yet (until routed)
        fastsql.insert(call)
        self.note(call, source, "adopted:" + event_name, at=call.created_at)
        self.notifier.call_initiated(call, outbox)
        logger.info("adopted %s call %s (channel %s)", call.direction, call.id, call.fs_uuid)
        return call

    @staticmethod
    def set_channel(call, fs_uuid):
        """The call's channel is fs_uuid (FreeSWITCH may name it differently than asked)."""
        if fs_uuid and call.fs_uuid != fs_uuid:
            call.fs_uuid = fs_uuid
            call.save()

    def hang_up(self, call, facts, outbox, at=None, answered_at=None):
        """A channel hung up: end its call with the status its cause means, or, if it had
        already ended, record FreeSWITCH's figures (hangup_cause, duration, billsec, rtp_stats)."""
        if answered_at and not call.answered_at:
            call.answered_at = answered_at
        status = cs.status_for_hangup(facts.get("hangup_cause"), answered=bool(call.answered_at))
        if cs.reopenable(call) and status != call.status:
            # Reconciliation guessed its end wrong (its hangup came after the verdict):
            # the hangup's cause decides the status, not the guess.
            self.reopen(call, _live_status_of(call), "CHANNEL_HANGUP_COMPLETE", outbox,
                        at=at, quiet=True)
        if self.transition(call, status, SOURCE_FS, "CHANNEL_HANGUP_COMPLETE", outbox,
                           at=at, **facts):
            return True
        if cs.answered_after_all(call, status):
            # The API ended it as the far end answered: completed, as FreeSWITCH says.
            previous = cs.correct_to_completed(call)
            for key, value in facts.items():
                if value is not None:
                    setattr(call, key, value)
            fill_handling_times(call)
            self._changed(call, previous, SOURCE_FS, "CHANNEL_HANGUP_COMPLETE", outbox, at)
            return True
        self.apply_hangup_facts(call, facts, outbox, at=at)
        return False

    def apply_hangup_facts(self, call, facts, outbox, at=None):
        """An ended call (by the API, a failed originate) gets FreeSWITCH's figures once."""
        changed = {k: v for k, v in facts.items() if v is not None and getattr(call, k) != v}
        if not changed or call.status not in cs.TERMINAL:
            return False
        for key, value in changed.items():
            setattr(call, key, value)
        call.updated_at = utcnow()
        call.save()
        self.note(call, SOURCE_FS, "CHANNEL_HANGUP_COMPLETE", at=at)
        self.notifier.call_updated(call, outbox)
        self.run_hooks("ended", call, outbox)
        return True

    def originate_failed(self, call, result, outbox, at=None):
        """The originate's BACKGROUND_JOB said -ERR <cause>: the call ends, never answered."""
        cause = cs.originate_failure_cause(result)
        return self.transition(call, cs.status_for_originate_failure(cause), SOURCE_FS,
                               "BACKGROUND_JOB", outbox, at=at, hangup_cause=cause[:64],
                               status_reason=f"originate: {result}"[:255])

    def close_gone(self, call, outbox):
        """Reconciliation found the call's channel gone and its hangup missed."""
        return self.transition(call, cs.reconcile_verdict(bool(call.answered_at)),
                               SOURCE_RECONCILE, "reconcile", outbox, status_reason=GONE_REASON)

    def catch_up(self, call, status, outbox, at=None):
        """Reconciliation saw the channel answered (or ringing) while its event was missed."""
        return self.transition(call, status, SOURCE_RECONCILE, "reconcile", outbox, at=at)

    # ----- API actions ---------------------------------------------------
    def start(self, args, idempotency_key=None):
        """Store a call and originate it; returns (call, created)."""
        if idempotency_key:
            existing = Call.get_or_none(Call.idempotency_key == idempotency_key)
            if existing is not None:
                return self._replayed(existing, args), False
        gateway = args.get("gateway") or self.config.get("DEFAULT_GATEWAY") or None
        if not gateway and "@" not in args["to"]:
            raise Unprocessable(NO_GATEWAY, errors={"json": {"gateway": [NO_GATEWAY]}},
                                error_id="gateway_required")
        try:
            self.commands.dialstring(args["to"], gateway)
        except ValueError as exc:
            raise Unprocessable(str(exc), errors={"json": {"to": [str(exc)]}}) from None
        agent, mode = self.bridging.agent_and_mode(args)
        call_id = new_id()
        if agent is not None:  # 409 agent_not_available: of racing starts one wins
            self.agents.reserve(agent.id, call_id)
        try:
            with Outbox().atomic() as outbox:
                call = fastsql.insert(Call(
                    id=call_id, mode=mode, agent_leg_uuid=str(uuid.uuid4()) if mode else None,
                    fs_uuid=str(uuid.uuid4()), fs_job_uuid=str(uuid.uuid4()),
                    direction="outbound", to_number=args["to"],
                    from_number=args.get("from"),
                    caller_id=args.get("caller_id") or args.get("from"),
                    agent_id=args.get("agent_id"), campaign_id=args.get("campaign_id"),
                    gateway=gateway, metadata=args.get("metadata"),
                    record=bool(args.get("record")), record_format=args.get("record_format"),
                    idempotency_key=idempotency_key, node=self.bridging.node_for(agent)))
                fastsql.insert_values(CallEvent, call=call, source=SOURCE_API,
                                      event_name="api.start", to_status=call.status)
                self.notifier.call_initiated(call, outbox)
        except peewee.IntegrityError:
            # Another request with the same Idempotency-Key won the race.
            if agent is not None:
                self.agents.released(agent.id, call_id)
            existing = Call.get_or_none(Call.idempotency_key == idempotency_key)
            if existing is None:
                raise
            return self._replayed(existing, args), False
        self._originate(call, agent)
        return call, True

    @staticmethod
    def _replayed(existing, args):
        """The call an Idempotency-Key made, if made for the same agent (no reading another's)."""
        if existing.agent_id != args.get("agent_id"):
            raise Conflict("this Idempotency-Key was already used for another agent's call",
                           error_id="idempotency_key_reused")
        return existing

    def _originate(self, call, agent=None):
        timeout = self.config.get("FREESWITCH_ORIGINATE_TIMEOUT", 45)
        try:
            if agent is not None:
                self.bridging.place(call, agent, timeout)
            else:
                self.commands.commands_for(call).originate(
                    call.fs_uuid, call.id, call.to_number, gateway=call.gateway,
                    caller_id=call.caller_id, timeout=timeout, job_uuid=call.fs_job_uuid)
        except FreeSwitchUnavailable as exc:
            self._fail(call, f"FreeSWITCH unreachable: {exc}", "api.originate_failed")
            raise Unavailable(f"FreeSWITCH is unreachable; the call was not placed ({exc})",
                              headers={"Retry-After": "5"},
                              error_id="freeswitch_unavailable") from None
        except (FreeSwitchError, ValueError) as exc:
            self._fail(call, f"originate refused: {exc}", "api.originate_failed")
            raise BadGateway(f"FreeSWITCH refused the call: {exc}",
                             error_id="originate_refused") from None

    def _fail(self, call, reason, event_name):
        with Outbox().atomic() as outbox:
            call = Call.get_by_id(call.id)
            self.transition(call, cs.FAILED, SOURCE_API, event_name, outbox,
                            status_reason=reason[:255])

    def update(self, call_id, changes):
        """Apply an API update: status through the state machine, notes, outcome, metadata."""
        return retried(lambda: self._update(call_id, changes))

    def _update(self, call_id, changes):
        with Outbox().atomic() as outbox:
            call = self.get(call_id)
            if "notes" in changes:
                call.notes = changes["notes"]
            if "outcome" in changes:
                call.outcome = changes["outcome"]
            if changes.get("metadata") is not None:
                call.metadata = _merged(call.metadata, changes["metadata"])
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
                self.notifier.call_updated(call, outbox)
                self.run_hooks("updated", call, outbox)
        return call

    def end(self, call_id, outcome=None, notes=None):
        """Hang up a live call (uuid_kill). Ending an ended call is an idempotent 200."""
        call = self.get(call_id)
        if not call.is_live and call.fs_uuid:
            self._kill_leftover(call)
        elif call.is_live and call.fs_uuid:
            try:  # every leg: the customer's, the agent's, a consult
                for leg in self.bridging.legs_of(call):
                    self.commands.commands_for(call).uuid_kill(leg)
            except FreeSwitchUnavailable as exc:
                raise Unavailable(f"FreeSWITCH is unreachable; the call is still up ({exc})",
                                  headers={"Retry-After": "5"},
                                  error_id="freeswitch_unavailable") from None
            except FreeSwitchError as exc:
                raise BadGateway(f"FreeSWITCH refused to hang up: {exc}",
                                 error_id="hangup_refused") from None
        return retried(lambda: self._record_end(call_id, outcome, notes))

    def _record_end(self, call_id, outcome, notes):
        with Outbox().atomic() as outbox:
            call = self.get(call_id)
            if outcome is not None:
                call.outcome = outcome
            if notes is not None:
                call.notes = notes
            if call.is_live:
                status, cause = cs.api_end(call.status)
                self.transition(call, status, SOURCE_API, "api.end", outbox, hangup_cause=cause)
            else:
                call.save()
                self.notifier.call_updated(call, outbox)
                self.run_hooks("updated", call, outbox)
        return call

    def _kill_leftover(self, call):
        """An ended call whose channel FreeSWITCH still has is hung up too (idempotent answer)."""
        try:
            if self.commands.commands_for(call).uuid_exists(call.fs_uuid):
                logger.warning("call %s is %s but its channel %s is up: hanging it up",
                               call.id, call.status, call.fs_uuid)
                self.commands.commands_for(call).uuid_kill(call.fs_uuid)
        except (FreeSwitchUnavailable, FreeSwitchError) as exc:
            logger.warning("could not check the channel of ended call %s: %s", call.id, exc)

    def delete(self, call_id):
        """Delete an ended call, its event trail and (through hooks) its recordings."""
        with Outbox().atomic() as outbox:
            call = self.get(call_id)
            if call.is_live:
                raise Conflict(f"call {call_id} is {call.status}; end it before deleting it",
                               error_id="call_live")
            self.run_hooks("deleting", call, outbox)
            CallEvent.delete().where(CallEvent.call == call).execute()
            call.delete_instance()
            self.notifier.call_deleted(call.id, outbox)


def _live_status_of(call):
    """The live status a reopened call had reached, by its timestamps."""
    if call.answered_at:
        return cs.IN_PROGRESS
    return cs.RINGING if call.ringing_at else cs.INITIATED


def _merged(metadata, changes):
    """metadata with changes applied: a None value removes its key."""
    merged = dict(metadata or {})
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
