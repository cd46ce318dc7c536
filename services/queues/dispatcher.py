"""Dispatcher: the one process (a Redis leader lock) that offers waiting callers to agents.

It wakes on a kick (a Redis list other processes push to on each change) and at least
every DISPATCH_POLL seconds. Each round goes through every waiting caller, oldest
(by priority, then entered_at) first, and offers it to the best available agent of its
queue that no older caller took this round; callers that waited their queue's maximum
leave it (max_wait_action); a queue with nobody logged in runs its no_agents_action.
When a process becomes leader it first rebuilds the queues from the database and the
switch's channels (recovery.py).
"""
import logging
import time
import typing

import redis

from models import Call, utcnow
from models.agent import AVAILABLE, LOGGED_OUT, Agent
from models.db import db_session
from models.queue import WAITING, Queue, QueueEntry, QueueMember
from services.live.leader import LeaderLock
from services.outbox import Outbox
from services.queues import waiting
from services.queues.recovery import recover
from services.queues.selection import Candidate, pick, waited_too_long

logger = logging.getLogger(__name__)

KICK_KEY = "cc:queues:kick"
KICK_KEEP = 100
LEADER_KEY = "cc:queues:leader"
LEADER_TTL = 5.0
DISPATCH_POLL = 0.2
POSITIONS_INTERVAL = 1.0
ENTRIES_PER_COMMIT = 20
OFFERS_RECHECK = 3.0  # seconds after taking the lead before offers are checked (recovery.py)


class Dispatcher:
    """The dispatch loop of the events process (engine: the QueueEngine)."""

    def __init__(self, engine, poll=DISPATCH_POLL):
        self.engine = engine
        self.poll = poll
        self.lock = LeaderLock(engine.redis, LEADER_KEY, LEADER_TTL)
        self.leading = False
        self.decisions = 0      # callers considered (bench: decisions per second)
        self.offers_made = 0
        self._positions = {}    # entry id -> (position, estimated wait) last announced
        self._recheck_at = None
        self._positions_at = 0.0

    def run(self):
        """Lead when no one else does; while leading, dispatch on each kick or poll."""
        while True:
            try:
                if not self.lock.hold():
                    self.leading = False
                    time.sleep(self.poll * 5)
                    continue
                if not self.leading:
                    self.leading = True
                    logger.info("queue dispatcher: this process leads; rebuilding the queues")
                    self._positions = {}
                    self._recheck_at = time.monotonic() + OFFERS_RECHECK
                    with db_session():
                        recover(self.engine, offers_too=False)
                elif self._recheck_at and time.monotonic() >= self._recheck_at:
                    self._recheck_at = None
                    with db_session():
                        recover(self.engine)
                with db_session():
                    self.round()
                self.wait_for_kick(self.poll)
            except Exception:  # the database, Redis or FreeSWITCH is down: try again
                logger.exception("queue dispatch round failed")
                time.sleep(1.0)

    def wait_for_kick(self, timeout):
        try:
            if self.engine.redis.blpop([KICK_KEY], timeout=timeout):
                self.engine.redis.delete(KICK_KEY)
        except redis.RedisError:
            time.sleep(timeout)

    # ----- one round -----------------------------------------------------
    def round(self, now=None):
        """Offer waiting callers to available agents; returns how many offers were made."""
        now = now or utcnow()
        entries = list(QueueEntry.select().where(QueueEntry.status == WAITING).order_by(
            QueueEntry.priority.desc(), QueueEntry.entered_at, QueueEntry.id))
        if not entries:
            self._announce_positions(set())
            return 0
        queue_ids = {e.queue_id for e in entries}
        queues = {q.id: q for q in Queue.select().where(Queue.id.in_(list(queue_ids)))}
        members = members_of(queue_ids)
        taken, plan = set(), []
        reachable = self.engine.commands.reachable(self.engine.redis)
        for entry in entries:
            if not reachable(entry.node):
                continue  # its node's events process is away: it keeps its place, agents stay free
            step = self._consider(entry, queues, members, taken, now)
            if step is not None:
                plan.append(step)
        # Decided without a transaction (on SQLite each one takes the write lock); then
        # a transaction per ENTRIES_PER_COMMIT steps (each offer in a savepoint): one
        # commit and one hand-over of the news for many offers, then their phones ring.
        offers = 0
        for start in range(0, len(plan), ENTRIES_PER_COMMIT):
            with Outbox().atomic() as outbox:
                for entry, queue, agent_ids in plan[start:start + ENTRIES_PER_COMMIT]:
                    if agent_ids is None:
                        self._leave(entry, queue, now, outbox)
                    else:
                        offers += bool(self.engine.offers.offer(entry, queue, agent_ids,
                                                                outbox))
        self.offers_made += offers
        self._announce_positions(queue_ids)
        return offers

    def _consider(self, entry, queues, members, taken, now):
        """What to do with one waiting caller: (entry, queue, None) it leaves (max wait,
        nobody logged in); (entry, queue, agent ids) offer it to the best agents of its
        queue no older caller took (taken grows); None: it waits."""
        self.decisions += 1
        queue = queues.get(entry.queue_id)
        if queue is None:
            return None
        if self._leaves(entry, queue, members.get(queue.id, []), now):
            return entry, queue, None
        candidates = [candidate(m) for m in members.get(queue.id, [])
                      if m.available and m.agent_id not in taken]
        agent_ids = pick(queue.strategy, candidates, taken, queue.required_skills)
        if not agent_ids:
            return None
        taken.update(agent_ids)
        return entry, queue, agent_ids

    @staticmethod
    def _leaves(entry, queue, members, now):
        """Whether the caller leaves the queue now (max wait, nobody logged in)."""
        return waited_too_long(entry, queue.max_wait_seconds, now) or (
            queue.no_agents_action is not None
            and not any(m.logged_in for m in members))

    def _leave(self, entry, queue, now, outbox):
        call = Call.get_or_none(Call.id == entry.call_id)
        if call is None:
            return
        if waited_too_long(entry, queue.max_wait_seconds, now):
            self.engine.actions.max_wait(entry, queue, call, outbox)
        else:
            self.engine.actions.no_agents(entry, queue, call, outbox)

    # ----- positions on the live channel -----------------------------------
    def _announce_positions(self, queue_ids):
        """queue.caller_position for every live caller whose position or estimate changed
        (looked at once per POSITIONS_INTERVAL at most: offers come first)."""
        if time.monotonic() < self._positions_at + POSITIONS_INTERVAL:
            return
        self._positions_at = time.monotonic()
        queue_ids = set(queue_ids) | {q for q, _ in self._positions.values()}
        seen, changed = {}, []
        for queue_id in queue_ids:
            for data in waiting.callers(queue_id):
                key = (data["position"], data["estimated_wait_seconds"])
                seen[data["id"]] = (queue_id, key)
                if self._positions.get(data["id"]) != (queue_id, key):
                    changed.append(data)
        self._positions = seen
        if changed:
            with Outbox().atomic() as outbox:
                for data in changed:
                    self.engine.notifier.caller_position(data, outbox)


class Member(typing.NamedTuple):
    """What the routing needs of one queue member and its agent (read as plain tuples:
    building a model object per member costs more than the query)."""

    queue_id: str
    tier: int
    last_offered_at: object
    agent_id: str
    state: str
    enabled: bool
    state_since: object
    skills: dict

    @property
    def available(self):
        return self.state == AVAILABLE and self.enabled

    @property
    def logged_in(self):
        return self.state != LOGGED_OUT and self.enabled


def members_of(queue_ids, available_only=False):
    """queue id -> [Member] of those queues (one query)."""
    query = (QueueMember.select(QueueMember.queue, QueueMember.tier,
                                QueueMember.last_offered_at, Agent.id, Agent.state,
                                Agent.enabled, Agent.state_since, Agent.skills)
             .join(Agent).where(QueueMember.queue.in_(list(queue_ids))))
    if available_only:
        query = query.where((Agent.state == AVAILABLE) & (Agent.enabled == True))  # noqa: E712
    found = {}
    for row in query.tuples():
        member = Member(*row)
        found.setdefault(member.queue_id, []).append(member)
    return found


def candidate(member):
    return Candidate(agent_id=member.agent_id, tier=member.tier or 1,
                     state_since=member.state_since, last_offered_at=member.last_offered_at,
                     skills=member.skills or {})
