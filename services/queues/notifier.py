"""QueueNotifier: the only publisher on the `queues` channel, through the outbox (after commit).

Messages about one caller's stay in a queue carry the entry (see dump_entry):
queue.caller_joined, queue.caller_position (position, waited and estimated wait),
queue.caller_offered (the agents rung), queue.caller_answered, queue.caller_left
(reason = the entry's final status, wait_seconds).
"""
from services.fields import UTCDateTime

CHANNEL = "queues"
_TIME = UTCDateTime()


def _time(value):
    return _TIME._serialize(value, None, None) if value is not None else None


def dump_entry(entry):
    """One caller's stay in a queue, as the `queues` channel and GET .../callers show it."""
    return {
        "id": entry.id, "queue_id": entry.queue_id, "call_id": entry.call_id,
        "status": entry.status, "priority": entry.priority,
        "entered_at": _time(entry.entered_at), "offered_at": _time(entry.offered_at),
        "answered_at": _time(entry.answered_at), "left_at": _time(entry.left_at),
        "agent_id": entry.agent_id, "offering_agents": list(entry.offering_agents or []),
        "offers": entry.offers, "wait_seconds": entry.wait_seconds,
    }


class QueueNotifier:
    """Queues news of queue callers in the caller's outbox."""

    def __init__(self, publisher):
        self.publisher = publisher

    def _queue(self, event_type, data, outbox):
        outbox.publish(self.publisher, CHANNEL, event_type, data)

    def caller_joined(self, entry, outbox):
        self._queue("queue.caller_joined", dump_entry(entry), outbox)

    def caller_offered(self, entry, outbox):
        self._queue("queue.caller_offered", dump_entry(entry), outbox)

    def caller_answered(self, entry, outbox):
        self._queue("queue.caller_answered", dump_entry(entry), outbox)

    def caller_left(self, entry, outbox):
        """The caller left the queue: reason is how (abandoned, overflowed, closed, timed-out)."""
        data = dump_entry(entry)
        data["reason"] = entry.status
        self._queue("queue.caller_left", data, outbox)

    def caller_position(self, position, outbox):
        """position: a dict of services.queues.waiting.callers (position, waited_seconds,
        estimated_wait_seconds and the entry)."""
        self._queue("queue.caller_position", position, outbox)

    def snapshot(self, data, outbox=None):
        """queue.snapshot (services/queues/snapshot.py, Q-KPI): a queue's state now. It
        reports no change of its own, so without an outbox it goes straight to the
        publisher; returns the message id, or None while Redis is down."""
        if outbox is not None:
            return self._queue("queue.snapshot", data, outbox)
        return self.publisher.publish(CHANNEL, "queue.snapshot", data)
