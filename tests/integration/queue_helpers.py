"""What the queue engine tests share: queues, members and routes written to the stack's
database (the test process is bound to it), callers' calls and queue entries read back."""
import uuid

from models import Call
from models.queue import InboundRoute, Queue, QueueEntry, QueueMember
from tests.conftest import wait_until


def make_queue(agent_ids=(), tiers=None, **fields):
    """A new queue with agent_ids as members (tiers: {agent_id: tier}); returns its id."""
    queue_id = f"q-{uuid.uuid4().hex[:8]}"
    Queue.create(id=queue_id, name=queue_id, **fields)
    for agent_id in agent_ids:
        QueueMember.create(queue=queue_id, agent=agent_id, tier=(tiers or {}).get(agent_id, 1))
    return queue_id


def route_to(target, target_type="queue", number=None):
    """An exact inbound route for a new number; returns the number."""
    number = number or "800" + str(uuid.uuid4().int)[:7]
    InboundRoute.create(match="exact", number=number, target_type=target_type, target=target)
    return number


def call_of_channel(fs_uuid, timeout=10):
    return wait_until(lambda: Call.get_or_none(Call.fs_uuid == fs_uuid), timeout,
                      message=f"the call of channel {fs_uuid}")


def call_row(call_id):
    return Call.get_by_id(call_id)


def entries_of(call_id):
    return list(QueueEntry.select().where(QueueEntry.call_id == call_id)
                .order_by(QueueEntry.entered_at))


def entry_of(call_id, timeout=10):
    return wait_until(lambda: (entries_of(call_id) or [None])[-1], timeout,
                      message=f"a queue entry for call {call_id}")


def entry_status(call_id):
    found = entries_of(call_id)
    return found[-1].status if found else None
