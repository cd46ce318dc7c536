"""QueueEngine: routes answered inbound calls (route → queue, agent or number), keeps each
caller's stay in a queue (QueueEntry) and ends it when the caller hangs up.

Callers wait in FreeSWITCH (answered, parked, hearing a looping tone stream); their order
and state live in the database (QueueEntry), never only in a process's memory. The
dispatcher (dispatcher.py, one leader at a time) offers them to agents (offers.py);
actions.py does what a queue says when it is closed, has nobody or waited too long.
"""
import datetime
import logging

from models import Call, fastsql, utcnow
from models.agent import LOGGED_OUT, WRAP_UP, Agent
from models.queue import (
    ABANDONED,
    ANSWERED,
    CLOSED,
    ENTRY_LIVE,
    TARGET_AGENT,
    TARGET_NUMBER,
    TARGET_QUEUE,
    WAITING,
    Queue,
    QueueEntry,
    QueueMember,
)
from services.errors import NotFound
from services.outbox import Outbox
from services.queues import hours as queue_hours
from services.queues import routes as queue_routes
from services.queues.actions import QueueActions
from services.queues.commands import QueueCommands
from services.queues.dispatcher import KICK_KEEP, KICK_KEY, Dispatcher, candidate, members_of
from services.queues.notifier import QueueNotifier
from services.queues.offers import QueueOffers
from services.queues.selection import pick, seconds_between

logger = logging.getLogger(__name__)

MAX_HOPS = 4  # overflow from queue to queue at most this many times for one call


class QueueEngine:
    """What the queues domain does when calls are answered and end (call hooks), and the
    pieces the dispatcher and the event handlers use."""

    def __init__(self, services):
        self.calls = services.calls
        self.agents = services.calls.agents
        self.redis = services.redis
        self.config = services.config or {}
        self.notifier = QueueNotifier(services.publisher)
        self.commands = QueueCommands(services.commands, self.config)
        self.offers = QueueOffers(self)
        self.actions = QueueActions(self)

    # ----- hooks ---------------------------------------------------------
    def on_call_answered(self, call, outbox):
        """An inbound call FreeSWITCH answered and parked: route it by the number dialled."""
        if call.direction != "inbound" or call.agent_id or call.mode or call.agent_leg_uuid:
            return
        if _entries_of(call, first_only=True):
            return  # routed already (a replayed or reconciled answer)
        route = queue_routes.match_route(call.to_number,
                                         self.config.get("INBOUND_DEFAULT_QUEUE") or None)
        if route is None:
            return
        logger.info("call %s to %s: route %s -> %s %s", call.id, call.to_number,
                    route.id or route.match, route.target_type, route.target)
        self.send_to(call, route.target_type, route.target, outbox)

    def on_call_ended(self, call, outbox):
        """The caller hung up: a caller still waiting or being offered abandoned; an answered
        caller's agent gets the queue's wrap-up time."""
        if call.direction != "inbound":
            return
        for entry in _entries_of(call):
            if entry.status in ENTRY_LIVE:
                self.leave(entry, ABANDONED, outbox)
            elif entry.status == ANSWERED:
                self._queue_wrapup(entry, call)
                if call.bridged_at is None:  # hung up before the bridge: the agent's leg goes
                    self.commands.kill_later(outbox, (entry.offer_leg_uuids or {}).get(
                        entry.agent_id), node=call.node)

    # ----- routing -------------------------------------------------------
    def send_to(self, call, target_type, target, outbox, hops=0, priority=0):
        """Send a parked caller to a queue, an agent or a number."""
        if target_type == TARGET_QUEUE:
            queue = Queue.get_or_none(Queue.id == target)
            if queue is not None and hops < MAX_HOPS:
                return self.enqueue(call, queue, outbox, hops=hops, priority=priority)
            logger.warning("call %s: queue %r missing (or overflowing in a loop): hanging up",
                           call.id, target)
            return self.commands.tone_and_hangup(outbox, call.fs_uuid, node=call.node)
        if target_type == TARGET_AGENT:
            return self.actions.to_agent(call, target, outbox)
        if target_type == TARGET_NUMBER:
            return self.commands.to_number(outbox, call.fs_uuid, target, node=call.node)
        return self.commands.tone_and_hangup(outbox, call.fs_uuid, node=call.node)

    def enqueue(self, call, queue, outbox, hops=0, priority=0):
        """The caller joins queue (waiting, hearing music), unless it is closed or has
        nobody logged in and says what to do then. Returns the entry."""
        now = utcnow()
        entry = QueueEntry.create(queue_id=queue.id, call_id=call.id, status=WAITING,
                                  priority=priority, entered_at=now,
                                  node=call.node)
        call.__dict__.pop("queue_entries", None)  # it has one now: ask the database
        self.notifier.caller_joined(entry, outbox)
        if not queue_hours.is_open(queue.hours, now):
            self.leave(entry, CLOSED, outbox)
            self.actions.run(queue.closed_action, call, outbox, hops, default_hangup=True)
            return entry
        if queue.no_agents_action and not self.anyone_logged_in(queue.id):
            self.actions.no_agents(entry, queue, call, outbox, hops)
            return entry
        self.commands.music_later(outbox, call.fs_uuid, node=call.node)
        if not self.offer_on_arrival(entry, queue, outbox):
            self.kick_later(outbox)
        return entry

    def offer_on_arrival(self, entry, queue, outbox):
        """Offer a caller who just joined in the transaction that adds it, when nobody older
        waits in its queue (else the dispatcher's round keeps the order): the phone rings
        one hand-over sooner. The reservation is the dispatcher's (conditional on the agent
        being available), so two processes never offer one agent twice. Returns the agents
        rung ([] when none was free)."""
        older = QueueEntry.select().where(
            (QueueEntry.queue_id == queue.id) & (QueueEntry.status == WAITING)
            & (QueueEntry.id != entry.id)).exists()
        if older:
            return []
        members = members_of([queue.id], available_only=True).get(queue.id, [])
        candidates = [candidate(m) for m in members]
        agent_ids = pick(queue.strategy, candidates, set(), queue.required_skills)
        return self.offers.offer(entry, queue, agent_ids, outbox) if agent_ids else []

    # ----- a call transferred in (services/calls/control.py) ----------------
    @staticmethod
    def check(queue_id):
        """404 for a queue that does not exist (before the caller is moved)."""
        if Queue.get_or_none(Queue.id == queue_id) is None:
            raise NotFound(f"queue {queue_id} not found", error_id="queue_not_found")

    def join(self, call_id, queue_id):
        """A live call transferred into queue_id: it waits (music, offers) like an inbound
        caller; its earlier entries (answered) stay as they were."""
        with Outbox().atomic() as outbox:
            call = Call.get_by_id(call_id)
            queue = Queue.get_or_none(Queue.id == queue_id)
            if queue is None:  # deleted meanwhile: the caller hears the tone and goes
                return self.commands.tone_and_hangup(outbox, call.fs_uuid, node=call.node)
            return self.enqueue(call, queue, outbox)

    @staticmethod
    def anyone_logged_in(queue_id):
        return (QueueMember.select().join(Agent)
                .where((QueueMember.queue == queue_id) & (Agent.state != LOGGED_OUT)
                       & (Agent.enabled == True))  # noqa: E712  (SQL, not Python)
                .exists())

    # ----- leaving -------------------------------------------------------
    def leave(self, entry, status, outbox, call=None):
        """The caller left the queue (abandoned, overflowed, closed, timed-out): ringing
        offers are withdrawn. False when the entry had moved meanwhile."""
        now = utcnow()
        previous = entry.status
        if previous not in ENTRY_LIVE:
            return False
        moved = QueueEntry.update(status=status, left_at=now,
                                  wait_seconds=seconds_between(entry.entered_at, now),
                                  offering_agents=[]).where(
            (QueueEntry.id == entry.id) & (QueueEntry.status == previous)).execute()
        if moved != 1:
            return False
        withdrawn = list(entry.offering_agents or [])
        entry.status, entry.left_at = status, now
        entry.wait_seconds = seconds_between(entry.entered_at, now)
        entry.offering_agents = []
        self.offers.withdraw(entry, withdrawn, outbox)
        self.notifier.caller_left(entry, outbox)
        self.kick_later(outbox)
        return True

    def _queue_wrapup(self, entry, call):
        """The agent who answered a queue's caller wraps up for the queue's wrap-up time."""
        queue = Queue.get_or_none(Queue.id == entry.queue_id)
        if queue is None or queue.wrapup_seconds is None or not entry.agent_id:
            return
        agent = Agent.get_or_none(Agent.id == entry.agent_id)
        if agent is None or agent.call_id != call.id or agent.state != WRAP_UP:
            return
        until = agent.state_since + datetime.timedelta(seconds=int(queue.wrapup_seconds))
        Agent.update(wrapup_until=until).where(
            (Agent.id == agent.id) & (Agent.state == WRAP_UP) & (Agent.call_id == call.id)
        ).execute()

    # ----- the dispatcher's wake-up ---------------------------------------
    def kick(self):
        """Wake the dispatcher (whichever process leads): something changed."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.lpush(KICK_KEY, "1")
            pipe.ltrim(KICK_KEY, 0, KICK_KEEP - 1)
            pipe.execute()
        except Exception as exc:  # Redis down: the dispatcher still polls
            logger.debug("could not kick the queue dispatcher: %s", exc)

    def kick_later(self, outbox):
        outbox.add(self.kick)

    # ----- reading -------------------------------------------------------
    @staticmethod
    def live_entry_of(call_id):
        return QueueEntry.get_or_none((QueueEntry.call_id == call_id)
                                      & QueueEntry.status.in_(ENTRY_LIVE))

    @staticmethod
    def call_of(entry):
        return Call.get_or_none(Call.id == entry.call_id)


def register(services):
    """Build the engine; hook it on answered and ended calls; the events process runs the
    dispatcher (one leader at a time across processes)."""
    engine = QueueEngine(services)
    services.queue_engine = engine
    services.calls.add_hook("answered", engine.on_call_answered)
    services.calls.add_hook("ended", engine.on_call_ended)
    if getattr(services, "call_control", None) is not None:
        services.call_control.queues = engine  # blind transfer of a call into a queue
    services.queue_dispatcher = Dispatcher(engine)
    services.background_tasks.append(services.queue_dispatcher.run)


def _entries_of(call, first_only=False):
    """The call's queue entries (id order); none without a query for a call adopted in
    this transaction and not routed since (CallService.adopt says so on the object)."""
    if "queue_entries" in call.__dict__:
        return list(call.__dict__["queue_entries"])
    if first_only:
        entry = fastsql.select_one(QueueEntry, "call_id", call.id)
        return [entry] if entry is not None else []
    return fastsql.select_where(QueueEntry, "call_id", call.id)
