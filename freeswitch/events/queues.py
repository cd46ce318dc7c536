"""Channel events of queue offers -> the queue engine: an offered agent's leg answered,
hung up without answering, or could not be originated.

These handlers run after the calls' own handlers of the same event (the calls service
records the leg in the call's trail; the caller's hang-up, the bridge and the agent's
state after the bridge go through it as for any call with an agent).
"""
import logging

from models.call import LEG_AGENT

logger = logging.getLogger(__name__)


class QueueEventHandlers:
    """engine: the QueueEngine; on_call_change: called when a call row was changed here
    (the calls' handlers drop the calls they keep for the batch); node: the FreeSWITCH
    node this process listens to (a leg whose event came from it is on it)."""

    def __init__(self, engine, on_call_change=None, node=None):
        self.engine = engine
        self.on_call_change = on_call_change or (lambda: None)
        self.node = node

    def subscriptions(self):
        return {
            "CHANNEL_ANSWER": self.on_channel_answer,
            "CHANNEL_HANGUP_COMPLETE": self.on_channel_hangup_complete,
            "BACKGROUND_JOB": self.on_background_job,
        }

    def _offer_of(self, event):
        if event.get("variable_cc_leg") != LEG_AGENT:
            return None, None
        return self.engine.offers.of_leg(event.get("variable_cc_call_id"), event.get("Unique-ID"))

    def on_channel_answer(self, event, outbox):
        entry, agent_id = self._offer_of(event)
        if entry is None:
            self._hang_up_stale(event, outbox)
            return
        if self.engine.offers.answered(entry, agent_id, event["Unique-ID"], outbox):
            logger.info("queue %s: call %s answered by %s", entry.queue_id, entry.call_id,
                        agent_id)
        self.on_call_change()

    def _hang_up_stale(self, event, outbox, seen="answered"):
        """An offer leg no offer wants (rung late): hang it up, the agent is elsewhere."""
        if event.get("variable_cc_leg") == LEG_AGENT and self.engine.offers.stale_leg(
                event.get("variable_cc_call_id"), event.get("Unique-ID"),
                event.get("variable_cc_queue_entry")):
            logger.warning("queues: stale offer leg %s %s; hanging it up",
                           event.get("Unique-ID"), seen)
            self.engine.commands.kill_later(outbox, event.get("Unique-ID"), node=self.node)

    def on_listed_leg(self, event, outbox):
        """Reconciliation lists an agent's leg that is no call's channel: one no offer wants
        (its hang-up on answer could not be sent, FreeSWITCH was unreachable) goes now."""
        self._hang_up_stale(event, outbox, seen="still up")

    def on_channel_hangup_complete(self, event, outbox):
        entry, agent_id = self._offer_of(event)
        if entry is not None:
            logger.info("queue %s: offer of call %s to %s ended (%s)", entry.queue_id,
                        entry.call_id, agent_id, event.get("Hangup-Cause"))
            self.engine.offers.failed(entry, agent_id, outbox)

    def on_background_job(self, event, outbox):
        if event.get("Job-Command") != "originate":
            return
        if not (event.get("_body") or "").strip().startswith("-ERR"):
            return
        entry, agent_id = self.engine.offers.of_job(event.get("Job-UUID"))
        if entry is not None:
            logger.info("queue %s: offer of call %s to %s failed: %s", entry.queue_id,
                        entry.call_id, agent_id, (event.get("_body") or "").strip())
            self.engine.offers.failed(entry, agent_id, outbox)


def subscriptions(services, call_handlers=None):
    """The queue handlers of the events process (call_handlers: its CallEventHandlers; the
    queues also judge the agents' legs its reconciliation lists)."""
    on_change = call_handlers.begin_batch if call_handlers is not None else None
    queue_handlers = QueueEventHandlers(services.queue_engine, on_change,
                                        getattr(call_handlers, "node", None))
    if call_handlers is not None:
        call_handlers.leg_watchers.append(queue_handlers.on_listed_leg)
    return queue_handlers.subscriptions()


def add_to(handlers, services, call_handlers=None):
    """Add the queue handlers to handlers (event name -> fn(event, outbox)): an event that
    already has a handler runs it first, then the queue's."""
    for name, handler in subscriptions(services, call_handlers).items():
        before = handlers.get(name)
        handlers[name] = handler if before is None else _chain(before, handler)
    return handlers


def _chain(first, second):
    def both(event, outbox):
        first(event, outbox)
        second(event, outbox)
    both.__name__ = f"{getattr(first, '__name__', 'handler')}+queues"
    return both
