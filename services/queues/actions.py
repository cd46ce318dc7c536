"""QueueActions: what a queue does with a caller when it is closed, has nobody logged in or
the caller waited too long, and the direct offer of a caller to one agent.

An action is `{"action": "queue"|"agent"|"number"|"hangup", "target": ...}`:
queue  the caller joins that queue (it leaves this one: overflowed);
agent  the agent's phone rings and the caller is bridged to it when it answers
       (the agent must be available, else the caller hears a tone and is hung up);
number the caller is sent on to that number through the DEFAULT_GATEWAY;
hangup the caller hears a short tone, then is hung up.
"""
import logging
import uuid

from freeswitch.esl.commands import bridge_in_command
from models import Call, utcnow
from models.queue import (
    ACTION_AGENT,
    ACTION_HANGUP,
    ACTION_NUMBER,
    ACTION_QUEUE,
    OVERFLOWED,
    TIMED_OUT,
)
from services.agents.endpoints import dial_string
from services.errors import Conflict, NotFound

logger = logging.getLogger(__name__)


def _kind(action):
    return (action or {}).get("action") or ACTION_HANGUP


class QueueActions:
    """Runs action dicts for the engine (engine: the QueueEngine)."""

    def __init__(self, engine):
        self.engine = engine

    def run(self, action, call, outbox, hops=0, default_hangup=True):
        """Do what action says with the caller (None: hang up after a tone, when
        default_hangup; otherwise nothing)."""
        if action is None and not default_hangup:
            return
        kind, target = _kind(action), (action or {}).get("target")
        if kind == ACTION_QUEUE:
            self.engine.send_to(call, ACTION_QUEUE, target, outbox, hops=hops + 1)
        elif kind == ACTION_AGENT:
            self.to_agent(call, target, outbox)
        elif kind == ACTION_NUMBER:
            self.engine.commands.to_number(outbox, call.fs_uuid, target, node=call.node)
        else:
            self.engine.commands.tone_and_hangup(outbox, call.fs_uuid, node=call.node)

    def max_wait(self, entry, queue, call, outbox, hops=0):
        """The caller waited the queue's maximum: it leaves (overflowed, or timed-out when
        it is hung up) and the queue's max_wait_action runs."""
        status = TIMED_OUT if _kind(queue.max_wait_action) == ACTION_HANGUP else OVERFLOWED
        if self.engine.leave(entry, status, outbox):
            logger.info("queue %s: call %s waited %ss: %s", queue.id, entry.call_id,
                        entry.wait_seconds, status)
            self.run(queue.max_wait_action, call, outbox, hops)

    def no_agents(self, entry, queue, call, outbox, hops=0):
        """Nobody of the queue is logged in and the queue says what to do then."""
        status = TIMED_OUT if _kind(queue.no_agents_action) == ACTION_HANGUP else OVERFLOWED
        if self.engine.leave(entry, status, outbox):
            logger.info("queue %s: nobody logged in for call %s: %s", queue.id, entry.call_id,
                        status)
            self.run(queue.no_agents_action, call, outbox, hops)

    def to_agent(self, call, agent_id, outbox):
        """Offer the caller to one agent directly: its phone rings (the caller's own leg
        bridges to it); nobody available there: a tone, then the caller is hung up."""
        try:
            agent = self.engine.agents.reserve(agent_id, call.id)
        except (Conflict, NotFound) as exc:
            logger.info("call %s: agent %s cannot take it (%s): hanging up", call.id,
                        agent_id, exc)
            return self.engine.commands.tone_and_hangup(outbox, call.fs_uuid, node=call.node)
        leg_uuid = str(uuid.uuid4())
        call.agent_id, call.agent_leg_uuid = agent.id, leg_uuid
        Call.update(agent_id=agent.id, agent_leg_uuid=leg_uuid, updated_at=utcnow()).where(
            Call.id == call.id).execute()
        timeout = self.engine.config.get("FREESWITCH_ORIGINATE_TIMEOUT", 45)
        command = bridge_in_command(call.fs_uuid, call.id, leg_uuid, dial_string(agent.endpoint),
                                    agent_timeout=timeout)
        outbox.add(self.engine.commands.break_then, call.fs_uuid, command, call.node)
        return None
