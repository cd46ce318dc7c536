"""QueueOffers: offering a waiting caller to agents, the agent's answer, a missed offer.

An offer is one transaction: the entry WAITING -> OFFERING (conditional UPDATE: exactly
one winner) and each agent AVAILABLE -> RINGING (AgentService.reserve, conditional);
after its commit the agents' legs are originated (tagged cc_call_id, cc_leg=agent,
cc_queue_entry). On an agent's answer the entry becomes ANSWERED (conditional: of two
answering ring-all agents one wins, the other legs are hung up), the call gets the agent
and its leg, and the caller is bridged to it. A leg that fails puts the agent back
(available, or paused no-answer after the queue's max_missed_offers misses in a row) and,
when no other agent is being rung, the entry back to WAITING for the next agent.
"""
import functools
import logging
import uuid

from peewee import Value, fn

from models import Call, utcnow
from models.db import db_session
from models.queue import ANSWERED, OFFERING, WAITING, Queue, QueueEntry, QueueMember
from services.errors import Conflict
from services.outbox import Outbox
from services.queues.selection import seconds_between

logger = logging.getLogger(__name__)

CAUSE_WITHDRAWN = "ORIGINATOR_CANCEL"  # the caller left or another agent answered


class _NobodyReserved(Exception):
    """No agent of the offer could be reserved: the whole offer rolls back."""


class QueueOffers:
    """Offers of queue callers to agents (engine: the QueueEngine)."""

    def __init__(self, engine):
        self.engine = engine

    # ----- the dispatcher's offer ----------------------------------------
    def offer(self, entry, queue, agent_ids, outbox=None):
        """Offer a waiting caller to agent_ids (one, or several for ring-all); returns the
        ids of the agents whose phones are being rung ([] when the caller or every agent
        was taken meanwhile). Inside outbox's transaction (a savepoint: a round's offers
        commit together) or in a transaction of its own."""
        if outbox is None:
            with Outbox().atomic() as own:
                return self.offer(entry, queue, agent_ids, own)
        now = utcnow()
        try:
            with outbox.savepoint():
                moved = QueueEntry.update(
                    status=OFFERING, offers=QueueEntry.offers + 1,
                    offered_at=fn.COALESCE(QueueEntry.offered_at, now)).where(
                    (QueueEntry.id == entry.id) & (QueueEntry.status == WAITING)).execute()
                if moved != 1:
                    return []
                reserved = self._reserve(entry, agent_ids)
                legs = {agent.id: str(uuid.uuid4()) for agent in reserved}
                entry.status, entry.offering_agents = OFFERING, list(legs)
                entry.offer_leg_uuids = {**(entry.offer_leg_uuids or {}), **legs}
                entry.offers = (entry.offers or 0) + 1
                entry.offered_at = entry.offered_at or now
                QueueEntry.update(offering_agents=entry.offering_agents,
                                  offer_leg_uuids=entry.offer_leg_uuids).where(
                    QueueEntry.id == entry.id).execute()
                QueueMember.update(last_offered_at=now).where(
                    (QueueMember.queue == queue.id) & QueueMember.agent.in_(list(legs))).execute()
                self.engine.notifier.caller_offered(entry, outbox)
                for agent in reserved:
                    self.engine.commands.originate_later(
                        outbox, legs[agent.id], entry.call_id, entry.id, agent.endpoint,
                        queue.ring_timeout, functools.partial(self._originate_failed,
                                                              entry.id, agent.id),
                        node=entry.node, queue_id=queue.id, still_wanted=functools.partial(
                            self._still_offered, entry.id, agent.id, legs[agent.id]))
        except _NobodyReserved:
            return []
        return list(legs)

    def _reserve(self, entry, agent_ids):
        reserved = []
        for agent_id in agent_ids:
            try:
                reserved.append(self.engine.agents.reserve(agent_id, entry.call_id))
            except Conflict:  # taken meanwhile (another offer, a logout): skip
                continue
        if not reserved:
            raise _NobodyReserved()
        return reserved

    @staticmethod
    def _still_offered(entry_id, agent_id, leg_uuid):
        """Whether the offer's leg is still wanted (a dispatcher that lost the lead while
        stalled must not ring a phone the new one gave another caller)."""
        with db_session():
            entry = QueueEntry.get_or_none(QueueEntry.id == entry_id)
        return entry is not None and _agent_of_leg(entry, leg_uuid)[1] == agent_id

    def _originate_failed(self, entry_id, agent_id, reason):
        """The agent's leg could not even be sent: the agent and the caller go back."""
        with db_session(), Outbox().atomic() as outbox:
            entry = QueueEntry.get_or_none(QueueEntry.id == entry_id)
            if entry is not None:
                logger.warning("queue entry %s: offer to %s not sent (%s)", entry_id, agent_id,
                               reason)
                self.failed(entry, agent_id, outbox, count_miss=False)

    # ----- what the agent's leg did ----------------------------------------
    def answered(self, entry, agent_id, leg_uuid, outbox):
        """The agent answered: the entry is answered (the first answer wins), the call gets
        the agent and its leg, the caller is bridged; others rung for it stop ringing."""
        offering = list(entry.offering_agents or [])
        if entry.status != OFFERING or agent_id not in offering:
            return False
        now = utcnow()
        moved = QueueEntry.update(
            status=ANSWERED, answered_at=now, agent_id=agent_id, offering_agents=[],
            wait_seconds=seconds_between(entry.entered_at, now)).where(
            (QueueEntry.id == entry.id) & (QueueEntry.status == OFFERING)).execute()
        if moved != 1:
            return False
        entry.status, entry.answered_at, entry.agent_id = ANSWERED, now, agent_id
        entry.wait_seconds, entry.offering_agents = seconds_between(entry.entered_at, now), []
        Call.update(agent_id=agent_id, agent_leg_uuid=leg_uuid, updated_at=now).where(
            Call.id == entry.call_id).execute()
        self.engine.agents.offer_answered(agent_id)
        self.withdraw(entry, [a for a in offering if a != agent_id], outbox)
        call = Call.get_or_none(Call.id == entry.call_id)
        if call is not None and call.fs_uuid:
            self.engine.commands.bridge_later(outbox, call.fs_uuid, leg_uuid, node=call.node)
        self.engine.notifier.caller_answered(entry, outbox)
        return True

    def failed(self, entry, agent_id, outbox, count_miss=True):
        """The agent's leg did not come up (rang out, busy, rejected, unregistered): the
        agent is back (a miss counted), and with nobody else ringing the caller waits again."""
        offering = list(entry.offering_agents or [])
        if entry.status != OFFERING or agent_id not in offering:
            return False
        remaining = [a for a in offering if a != agent_id]
        values = {"offering_agents": remaining}
        if not remaining:
            values["status"] = WAITING
        moved = QueueEntry.update(**values).where(
            (QueueEntry.id == entry.id) & (QueueEntry.status == OFFERING)
            & (QueueEntry.offering_agents == _as_stored(offering))).execute()
        if moved != 1:
            return False
        entry.offering_agents, entry.status = remaining, values.get("status", OFFERING)
        if count_miss:
            queue = Queue.get_or_none(Queue.id == entry.queue_id)
            self.engine.agents.offer_missed(agent_id, entry.call_id,
                                            queue.max_missed_offers if queue else None)
        else:
            self.engine.agents.released(agent_id, entry.call_id)
        self.engine.kick_later(outbox)
        return True

    def withdraw(self, entry, agent_ids, outbox, cause=CAUSE_WITHDRAWN):
        """Stop ringing agent_ids for entry (the caller left, another agent answered): their
        legs are hung up and they are available again (no miss)."""
        legs = entry.offer_leg_uuids or {}
        for agent_id in agent_ids:
            self.engine.agents.released(agent_id, entry.call_id)
            self.engine.commands.kill_later(outbox, legs.get(agent_id), cause, node=entry.node)

    # ----- which offer an event is about ----------------------------------
    @staticmethod
    def of_leg(call_id, leg_uuid):
        """(the entry being offered, the agent) an agent leg belongs to, or (None, None)."""
        if not call_id or not leg_uuid:
            return None, None
        entry = QueueEntry.get_or_none((QueueEntry.call_id == call_id)
                                       & (QueueEntry.status == OFFERING))
        return _agent_of_leg(entry, leg_uuid)

    @staticmethod
    def stale_leg(call_id, leg_uuid, entry_id=None):
        """Whether leg_uuid is an offer leg of call_id that no offer wants any more (sent
        late, or its offer was taken back): it is to be hung up. entry_id: the leg's own
        cc_queue_entry, which names it an offer leg of that entry even when a later offer
        to the same agent replaced it in offer_leg_uuids (an originate that timed out on
        our side but reached the switch)."""
        if not call_id or not leg_uuid:
            return False
        for entry in QueueEntry.select().where(QueueEntry.call_id == call_id):
            legs = entry.offer_leg_uuids or {}
            if leg_uuid not in legs.values() and entry.id != entry_id:
                continue
            if _agent_of_leg(entry, leg_uuid)[1] is not None or \
                    (entry.agent_id and legs.get(entry.agent_id) == leg_uuid):
                return False
            return True
        return False

    @staticmethod
    def of_job(job_uuid):
        """The same for a failed originate's Job-UUID (the offer's leg uuid)."""
        for entry in QueueEntry.select().where(QueueEntry.status == OFFERING):
            found = _agent_of_leg(entry, job_uuid)
            if found[1] is not None:
                return found
        return None, None


def _as_stored(value):
    """A JSON column's value as stored, for a comparison (a list would become an SQL row)."""
    return Value(value, unpack=False)


def _agent_of_leg(entry, leg_uuid):
    if entry is None:
        return None, None
    offering = entry.offering_agents or []
    for agent_id, uuid_ in (entry.offer_leg_uuids or {}).items():
        if uuid_ == leg_uuid and agent_id in offering:
            return entry, agent_id
    return None, None
