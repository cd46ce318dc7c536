"""Inbound queues (ACD): queues, their members, inbound routes and each caller's stay."""
import peewee

from models.agent import Agent
from models.db import BaseModel, JSONTextField, new_id, utcnow

# How a queue picks the agent to offer a caller to.
LONGEST_IDLE = "longest-idle-agent"
ROUND_ROBIN = "round-robin"
RING_ALL = "ring-all"
SKILLS = "skills"
STRATEGIES = (LONGEST_IDLE, ROUND_ROBIN, RING_ALL, SKILLS)

# A queue entry's status (one caller's stay in one queue).
WAITING = "waiting"
OFFERING = "offering"
ANSWERED = "answered"
ABANDONED = "abandoned"
OVERFLOWED = "overflowed"
CLOSED = "closed"
TIMED_OUT = "timed-out"  # hung up after a tone at the queue's maximum wait
ENTRY_LIVE = (WAITING, OFFERING)
ENTRY_STATUSES = (WAITING, OFFERING, ANSWERED, ABANDONED, OVERFLOWED, CLOSED, TIMED_OUT)

# What an action dict (max_wait_action, no_agents_action, closed_action) may do.
ACTION_QUEUE = "queue"
ACTION_AGENT = "agent"
ACTION_NUMBER = "number"
ACTION_HANGUP = "hangup"
ACTIONS = (ACTION_QUEUE, ACTION_AGENT, ACTION_NUMBER, ACTION_HANGUP)
# A queue's fields that hold such an action.
ACTION_FIELDS = ("max_wait_action", "no_agents_action", "closed_action")

# Inbound routes: how the number is matched and where the call goes.
MATCH_EXACT = "exact"
MATCH_PREFIX = "prefix"
MATCHES = (MATCH_EXACT, MATCH_PREFIX)
TARGET_QUEUE = "queue"
TARGET_AGENT = "agent"
TARGET_NUMBER = "number"
TARGET_TYPES = (TARGET_QUEUE, TARGET_AGENT, TARGET_NUMBER)


class Queue(BaseModel):
    """One queue; id is a slug given by the client, like agents'."""

    id = peewee.CharField(primary_key=True, max_length=64)
    name = peewee.CharField(max_length=128)
    strategy = peewee.CharField(max_length=24, default=LONGEST_IDLE)
    required_skills = JSONTextField(null=True)  # {"billing": 5}: minimum levels
    ring_timeout = peewee.IntegerField(default=15)  # seconds an agent's phone rings
    max_wait_seconds = peewee.IntegerField(null=True)  # None: wait forever
    max_wait_action = JSONTextField(null=True)  # action dict; None: hang up after a tone
    no_agents_action = JSONTextField(null=True)  # None: keep waiting
    hours = JSONTextField(null=True)  # None: always open
    closed_action = JSONTextField(null=True)  # None: hang up after a tone
    service_level_seconds = peewee.IntegerField(default=20)
    wrapup_seconds = peewee.IntegerField(null=True)  # overrides the agent's
    max_missed_offers = peewee.IntegerField(default=3)  # misses in a row -> paused no-answer
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)


class QueueMember(BaseModel):
    """An agent's membership of a queue; tier 1 is offered first."""

    id = peewee.BigAutoField()
    queue = peewee.ForeignKeyField(Queue, backref="members", on_delete="CASCADE")
    agent = peewee.ForeignKeyField(Agent, backref="queue_memberships", on_delete="CASCADE")
    # Higher tiers are offered only when lower tiers have nobody available.
    tier = peewee.IntegerField(default=1)
    last_offered_at = peewee.DateTimeField(null=True)  # round-robin

    class Meta:
        table_name = "queue_member"
        indexes = ((("queue", "agent"), True),)


class InboundRoute(BaseModel):
    """A dialled number (exact or prefix) -> a queue, an agent or a number."""

    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    match = peewee.CharField(max_length=8)  # exact | prefix
    number = peewee.CharField(max_length=32)  # digits, optional leading +
    target_type = peewee.CharField(max_length=8)  # queue | agent | number
    target = peewee.CharField(max_length=64)
    name = peewee.CharField(max_length=128, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "inbound_route"
        indexes = ((("match", "number"), True),)


class QueueEntry(BaseModel):
    """One caller's stay in one queue (kept after the queue is deleted, for statistics)."""

    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    queue_id = peewee.CharField(max_length=64, index=True)  # no FK: stats outlive the queue
    call_id = peewee.CharField(max_length=36, index=True)
    status = peewee.CharField(max_length=16, default=WAITING)
    priority = peewee.IntegerField(default=0)  # higher first, then oldest entered_at
    entered_at = peewee.DateTimeField(default=utcnow)
    offered_at = peewee.DateTimeField(null=True)  # first offer
    answered_at = peewee.DateTimeField(null=True)
    left_at = peewee.DateTimeField(null=True)
    agent_id = peewee.CharField(max_length=64, null=True)  # who answered
    offering_agents = JSONTextField(null=True)  # agent ids being rung now
    offer_leg_uuids = JSONTextField(null=True)  # {agent_id: leg uuid}
    offers = peewee.IntegerField(default=0)  # offers made
    wait_seconds = peewee.IntegerField(null=True)  # entered -> answered/left
    node = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "queue_entry"
        indexes = ((("queue_id", "status", "entered_at"), False), (("entered_at",), False))


def senders_to(kind, target):
    """What sends callers to a queue or an agent (kind "queue" | "agent", which routes'
    target types and actions share): inbound routes and other queues' actions, named."""
    users = [f"inbound route {route.number} ({route.match})" for route in InboundRoute.select()
             .where((InboundRoute.target_type == kind) & (InboundRoute.target == target))]
    for queue in Queue.select().order_by(Queue.id):
        if kind == TARGET_QUEUE and queue.id == target:
            continue  # its own actions never send to itself (checked when set)
        for field in ACTION_FIELDS:
            action = getattr(queue, field)
            if action and action.get("action") == kind and action.get("target") == target:
                users.append(f"queue {queue.id}'s {field}")
    return users


MODELS = [Queue, QueueMember, InboundRoute, QueueEntry]
