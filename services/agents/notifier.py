"""AgentNotifier: the only publisher on the `agents` channel, through the outbox (after commit)."""
from services.agents import state as ag
from services.agents.schemas import dump_agent

CHANNEL = "agents"


class AgentNotifier:
    """Queues news of an agent in the caller's outbox; the payload is the agent's dump now."""

    def __init__(self, publisher):
        self.publisher = publisher

    def _queue(self, event_type, data, outbox):
        outbox.publish(self.publisher, CHANNEL, event_type, data)

    def agent_saved(self, agent, created, outbox):
        self._queue("agent.created" if created else "agent.updated", dump_agent(agent), outbox)

    def agent_deleted(self, agent_id, outbox):
        self._queue("agent.deleted", {"id": agent_id}, outbox)

    def state_changed(self, agent, outbox):
        """agent.available, agent.paused ...: the agent reached agent.state."""
        self._queue(ag.event_type(agent.state), dump_agent(agent), outbox)
