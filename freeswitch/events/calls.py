"""Channel events -> call-state changes, through CallService's one state machine."""
import logging

from freeswitch.esl.commands import ChannelSnapshot
from freeswitch.esl.eventparse import fs_time
from freeswitch.events.batch_calls import BatchCalls
from models import utcnow
from models.call import AGENT_FIRST, LEG_AGENT
from services.calls import state as cs
from services.calls.bridging import LEG_FORMER, leg_of
from services.calls.service import SOURCE_FS, SOURCE_RECONCILE, CallService

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


def call_facts(event):
    """What a channel event says about a call the API did not start, for adopt()."""
    return dict(
        fs_uuid=event["Unique-ID"],
        direction="inbound" if event.get("Call-Direction") == "inbound" else "outbound",
        from_number=event.get("Caller-Caller-ID-Number") or event.get("Caller-ANI"),
        to_number=event.get("Caller-Destination-Number"),
        caller_id=event.get("Caller-Caller-ID-Name") or event.get("Caller-Caller-ID-Number"),
        gateway=event.get("variable_sip_gateway_name"),
        created_at=fs_time(event, "Caller-Channel-Created-Time") or event_time(event))


def hangup_facts(event):
    """FreeSWITCH's figures of a hung-up channel, as Call fields."""
    return dict(hangup_cause=event.get("Hangup-Cause") or event.get("variable_hangup_cause"),
                duration=_int(event.get("variable_duration")),
                billsec=_int(event.get("variable_billsec")),
                rtp_stats=rtp_stats(event))


class CallEventHandlers:
    """Handlers of the channel events; each takes the parsed event and the batch's outbox."""

    # Events that change calls only through the batch's call objects; any other event may
    # change a call behind them (recordings, bridges), so it drops them.
    CACHEABLE = ("CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
                 "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB")

    def __init__(self, calls: CallService, grace_seconds=5.0, node=None, calls_of_node=None):
        self.calls = calls
        self.grace_seconds = grace_seconds
        # The FreeSWITCH node this process listens to (adopted calls record it), and the
        # clause of the calls its reconciliation judges (lookup.of_node; None: every call).
        self.node, self.nodes = node, calls_of_node
        self._batch = BatchCalls(calls.find_for_channel, calls.calls_for_channels,
                                 self.CACHEABLE)
        # fn(channel event, outbox) for each listed channel reconciliation found to be a
        # leg of a known call that is not that call's channel (an offer leg rung late).
        self.leg_watchers = []

    def subscriptions(self):
        """Every channel event this service handles, and its handler, in one block."""
        return {
            "CHANNEL_CREATE": self.on_channel_create,
            "CHANNEL_PROGRESS": self.on_channel_progress,
            "CHANNEL_PROGRESS_MEDIA": self.on_channel_progress,
            "CHANNEL_ANSWER": self.on_channel_answer,
            "CHANNEL_HANGUP_COMPLETE": self.on_channel_hangup_complete,
            "BACKGROUND_JOB": self.on_background_job,
            "CHANNEL_HOLD": self.on_leg_note,
            "CHANNEL_UNHOLD": self.on_leg_note,
            "DTMF": self.on_leg_note,
            "CHANNEL_BRIDGE": self.on_channel_bridge,
            "CHANNEL_UNBRIDGE": self.on_channel_unbridge,
        }

    # ----- batch boundaries (called by the listener) ----------------------
    def begin_batch(self, events=None):
        """A batch transaction begins (events: its (name, event) pairs; None: the same
        batch goes on with the calls read anew): see BatchCalls."""
        self._batch.begin(events)

    def before_event(self, name):
        self._batch.before_event(name)

    def end_batch(self):
        self._batch.end()

    def _call_for(self, event, outbox):
        """The event's call (the batch's object), adopting an unknown a-leg."""
        key = event.get("Unique-ID")
        hit, call = self._batch.cached(key)
        if hit:
            return call
        call = self._batch.find(event.get("variable_cc_call_id"), key)
        if call is None and key and is_a_leg(event):
            call = self.calls.adopt(dict(call_facts(event), node=self.node), outbox, SOURCE_FS,
                                    event.get("Event-Name", "?"))
        return self._batch.keep(key, call)

    def _on_agent_leg(self, call, event, outbox):
        """True when event came from call's agent leg (handled here: the call's status
        is the customer's experience, the agent's leg only moves the agent)."""
        if call is None:
            return False
        leg = leg_of(call, event)
        name = event.get("Event-Name", "?")
        if leg == LEG_FORMER:
            self.calls.note(call, SOURCE_FS, name, at=event_time(event),
                            data={"leg": LEG_FORMER, "uuid": event.get("Unique-ID")})
            return True
        if not call.agent_id or leg != LEG_AGENT:
            return False
        if name == "CHANNEL_HANGUP_COMPLETE":
            self.calls.bridging.agent_hung_up(
                call, hangup_facts(event)["hangup_cause"],
                bool(fs_time(event, "Caller-Channel-Answered-Time")), outbox,
                at=fs_time(event, "Caller-Channel-Hangup-Time") or event_time(event))
        else:
            self.calls.bridging.agent_leg_event(call, name, outbox, at=event_time(event),
                                                data={"uuid": event.get("Unique-ID")})
        return True

    # ----- handlers ------------------------------------------------------
    def on_channel_create(self, event, outbox):
        call = self._call_for(event, outbox)
        if self._on_agent_leg(call, event, outbox):
            return
        if call is None:
            logger.debug("CHANNEL_CREATE of a b-leg ignored: %s", event.get("Unique-ID"))
            return
        self.calls.set_channel(call, event.get("Unique-ID"))
        if cs.reopenable(call):
            self.calls.reopen(call, cs.INITIATED, "CHANNEL_CREATE", outbox, at=event_time(event))

    def on_channel_progress(self, event, outbox):
        call = self._call_for(event, outbox)
        if call is not None and not self._on_agent_leg(call, event, outbox):
            at = fs_time(event, "Caller-Channel-Progress-Time") or event_time(event)
            self._advance(call, cs.RINGING, event["Event-Name"], outbox, at)

    def on_channel_answer(self, event, outbox):
        call = self._call_for(event, outbox)
        if call is not None and not self._on_agent_leg(call, event, outbox):
            at = fs_time(event, "Caller-Channel-Answered-Time") or event_time(event)
            self._advance(call, cs.IN_PROGRESS, "CHANNEL_ANSWER", outbox, at)
            self.calls.bridging.customer_answered(call, outbox)

    def _advance(self, call, status, event_name, outbox, at):
        """A live channel event moves its call on; one reconciliation closed too early
        (its channel is evidently alive) is reopened instead of left leaked."""
        if cs.reopenable(call):
            return self.calls.reopen(call, status, event_name, outbox, at=at)
        return self.calls.transition(call, status, SOURCE_FS, event_name, outbox, at=at)

    def on_channel_hangup_complete(self, event, outbox):
        call = self._call_for(event, outbox)
        if call is not None and not self._on_agent_leg(call, event, outbox):
            self.calls.hang_up(
                call, hangup_facts(event), outbox,
                at=fs_time(event, "Caller-Channel-Hangup-Time") or event_time(event),
                answered_at=fs_time(event, "Caller-Channel-Answered-Time"))

    def on_leg_note(self, event, outbox):
        """Hold, unhold and DTMF on one of a call's legs go in its trail, with the leg.

        Only a trail note: the API's hold/unhold keeps held_at (the event may arrive
        before the request that caused it is stored). Channels of no call (the far
        end of a call, when FreeSWITCH plays it too) are ignored, never adopted.
        """
        fs_uuid = event.get("Unique-ID")
        call = self.calls.find_for_channel(event.get("variable_cc_call_id"), fs_uuid)
        if call is None:
            logger.debug("%s of a channel of no call ignored: %s", event.get("Event-Name"), fs_uuid)
            return
        data = {"leg": leg_of(call, event), "uuid": fs_uuid}
        if event.get("DTMF-Digit"):
            data["digit"] = event["DTMF-Digit"]
        self.calls.note(call, SOURCE_FS, event.get("Event-Name", "?"), data=data,
                        at=event_time(event))

    def on_background_job(self, event, outbox):
        result = (event.get("_body") or "").strip()
        if event.get("Job-Command") != "originate" or result.startswith("+OK"):
            return  # an originate that worked: its channel's events tell the rest
        call = self._batch.same(self.calls.find_by_job(event.get("Job-UUID")))
        if call is None:
            logger.debug("BACKGROUND_JOB for an unknown job %s", event.get("Job-UUID"))
            return
        if call.mode == AGENT_FIRST:  # the job is the agent's leg: the customer was never dialled
            self.calls.bridging.agent_failed(call, cs.originate_failure_cause(result), outbox,
                                             at=event_time(event))
        else:
            self.calls.originate_failed(call, result, outbox, at=event_time(event))

    def on_channel_bridge(self, event, outbox):
        """Two legs of a call talk (Bridge-A/B-Unique-ID); the agent goes on-call."""
        call = self._call_for(event, outbox)
        if call is not None:
            self.calls.bridging.bridged(call, event.get("Bridge-A-Unique-ID"),
                                        event.get("Bridge-B-Unique-ID"), outbox,
                                        at=event_time(event))

    def on_channel_unbridge(self, event, outbox):
        call = self._call_for(event, outbox)
        if call is not None:
            self.calls.bridging.unbridged(call, event.get("Bridge-A-Unique-ID"),
                                          event.get("Bridge-B-Unique-ID"), outbox,
                                          at=event_time(event))

    # ----- reconciliation ------------------------------------------------
    def channels_to_check(self, channel_uuids):
        """The channels of live calls that a snapshot does not list (ask uuid_exists)."""
        return [u for u in self.calls.live_channels(self.nodes) if u not in channel_uuids]

    def reconcile(self, snapshot: ChannelSnapshot, outbox):
        """Bring the database in line with the channels FreeSWITCH had at the snapshot.

        Known live calls catch up on what was missed (answered while we were
        away); unknown a-leg channels are adopted; a live call is closed only
        when `uuid_exists` confirmed its channel gone. A call with any change
        newer than the snapshot is not judged by it (its events know better), nor
        is an `initiated` call younger than the grace period (its originate may
        still be in flight). Returns (closed, adopted).
        """
        by_uuid = {row.get("uuid"): row for row in snapshot.rows if row.get("uuid")}
        now = utcnow()
        closed = 0
        # A list, not a cursor: catching up updates rows, and SQLite would meet a
        # row again further along the status index.
        for call in self.calls.live_calls(self.nodes):
            row = by_uuid.pop(call.fs_uuid, None)
            # The agent's leg is no call of its own; while it rings, the customer's
            # leg does not exist yet and the call is alive.
            agent_up = by_uuid.pop(call.agent_leg_uuid, None) if call.agent_leg_uuid else None
            if call.updated_at and call.updated_at > snapshot.taken_at:
                continue
            if row is not None:
                self._catch_up(call, row.get("_dump"), outbox)
            elif call.fs_uuid in snapshot.gone and agent_up is None and \
                    not self._in_grace(call, now):
                closed += self.calls.close_gone(call, outbox)
        self._reopen_listed(by_uuid, snapshot, outbox)
        return closed, self._adopt_unknown(by_uuid, outbox)

    def _reopen_listed(self, by_uuid, snapshot, outbox):
        """Calls an earlier reconciliation closed whose channel this snapshot shows alive.

        Only a channel `uuid_dump` could read counts: `show channels` goes on
        listing a channel for a moment after it is gone.
        """
        if not by_uuid:
            return
        for call in self.calls.closed_by_reconcile(list(by_uuid)):
            row = by_uuid.pop(call.fs_uuid)
            dump = row.get("_dump")
            if dump is None or (call.updated_at and call.updated_at > snapshot.taken_at):
                continue
            self.calls.reopen(call, _status_in_dump(dump), "reconcile", outbox)

    def _in_grace(self, call, now):
        return call.status == cs.INITIATED and \
            (now - call.created_at).total_seconds() < self.grace_seconds

    def _adopt_unknown(self, by_uuid, outbox):
        if not by_uuid:
            return 0
        known = self.calls.known_channels(list(by_uuid))
        adopted = 0
        for uuid, row in by_uuid.items():
            if uuid in known or (row.get("call_uuid") or uuid) != uuid:
                continue  # already logged (ended meanwhile), or a bridged b-leg
            event = row.get("_dump") or _row_as_event(row)
            if self._leg_of_known_call(event):
                for watch in self.leg_watchers:
                    watch(event, outbox)
                continue  # one of our legs of a call (an agent's, unbridged): no call
            call = self.calls.adopt(dict(call_facts(event), node=self.node), outbox,
                                    SOURCE_RECONCILE,
                                    event.get("Event-Name", "?"))
            self._catch_up(call, row.get("_dump"), outbox)
            adopted += 1
        return adopted

    def _leg_of_known_call(self, event):
        """Whether a channel is a leg we tagged (cc_leg) for a call we know, other than the
        call's own channel: an agent's leg parked unbridged (an offer rung late) is no call."""
        return bool(event.get("variable_cc_leg")) and \
            self.calls.find_for_channel(event.get("variable_cc_call_id"), None) is not None

    def _catch_up(self, call, dump, outbox):
        """Apply what a channel's uuid_dump says happened (answer, progress)."""
        if not dump:
            return
        if dump.get("Answer-State") == "answered":
            self.calls.catch_up(call, cs.IN_PROGRESS, outbox,
                                at=fs_time(dump, "Caller-Channel-Answered-Time"))
        elif dump.get("Answer-State") == "early" or \
                fs_time(dump, "Caller-Channel-Progress-Time"):
            self.calls.catch_up(call, cs.RINGING, outbox,
                                at=fs_time(dump, "Caller-Channel-Progress-Time"))


def _status_in_dump(dump):
    """The live status a channel's uuid_dump shows."""
    if dump.get("Answer-State") == "answered":
        return cs.IN_PROGRESS
    if dump.get("Answer-State") == "early" or fs_time(dump, "Caller-Channel-Progress-Time"):
        return cs.RINGING
    return cs.INITIATED


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
