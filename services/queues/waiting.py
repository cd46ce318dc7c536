"""Who waits in a queue: each live caller's position, seconds waited and estimated wait.

Position 1 is the next caller to be offered (priority first, then the oldest). The
estimated wait is `ceil((position - agents available now) / staffed) * handle time`:
staffed = the queue's members logged in and not paused; handle time = the average
talk + hold seconds of the queue's last 50 answered calls (120 s until there are some);
0 when an agent is available for the caller now.
"""
from peewee import fn

from models import Call, utcnow
from models.agent import AVAILABLE, LOGGED_OUT, PAUSED, Agent
from models.queue import ANSWERED, ENTRY_LIVE, QueueEntry, QueueMember
from services.queues.notifier import dump_entry
from services.queues.selection import caller_order_key, estimated_wait, seconds_between

DEFAULT_HANDLE_SECONDS = 120
HANDLE_SAMPLE = 50


def handle_seconds(queue_id):
    """The queue's recent average handling time (talk + hold), in seconds."""
    recent = (QueueEntry.select(QueueEntry.call_id)
              .where((QueueEntry.queue_id == queue_id) & (QueueEntry.status == ANSWERED))
              .order_by(QueueEntry.answered_at.desc()).limit(HANDLE_SAMPLE))
    value = (Call.select(fn.AVG(Call.talk_seconds + Call.hold_seconds))
             .where(Call.id.in_(recent) & Call.talk_seconds.is_null(False)).scalar())
    return float(value) if value else DEFAULT_HANDLE_SECONDS


def staffing(queue_id):
    """(members logged in and not paused, members available now)."""
    states = [state for (state,) in QueueMember.select(Agent.state).join(Agent)
              .where(QueueMember.queue == queue_id).tuples()]
    staffed = sum(1 for s in states if s not in (LOGGED_OUT, PAUSED))
    return staffed, sum(1 for s in states if s == AVAILABLE)


def callers(queue_id, now=None):
    """The queue's live callers in the order they are served, with position, waited and
    estimated wait seconds (dicts: the entry's dump plus those)."""
    now = now or utcnow()
    entries = sorted(QueueEntry.select().where((QueueEntry.queue_id == queue_id)
                                               & QueueEntry.status.in_(ENTRY_LIVE)),
                     key=caller_order_key)
    if not entries:
        return []
    staffed, available = staffing(queue_id)
    handle = handle_seconds(queue_id)
    result = []
    for position, entry in enumerate(entries, start=1):
        ahead = position - available
        data = dump_entry(entry)
        data.update(position=position, waited_seconds=seconds_between(entry.entered_at, now),
                    estimated_wait_seconds=estimated_wait(ahead, staffed, handle))
        result.append(data)
    return result
