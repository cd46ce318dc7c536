"""The call log: one row per call and the trail of every state change."""
import peewee

from models.db import BaseModel, JSONTextField, new_id, utcnow

# The call status words, defined once (services.calls.state re-exports them).
INITIATED = "initiated"
RINGING = "ringing"
IN_PROGRESS = "in-progress"
COMPLETED = "completed"
BUSY = "busy"
NO_ANSWER = "no-answer"
FAILED = "failed"
CANCELED = "canceled"

LIVE_STATUSES = (INITIATED, RINGING, IN_PROGRESS)
TERMINAL_STATUSES = (COMPLETED, BUSY, NO_ANSWER, FAILED, CANCELED)
ALL_STATUSES = LIVE_STATUSES + TERMINAL_STATUSES

# Which side rings first when a call has an agent: the agent (click-to-call) or
# the customer (a progressive dialer). NULL: no agent leg, the call parks.
AGENT_FIRST = "agent_first"
CUSTOMER_FIRST = "customer_first"
MODES = (AGENT_FIRST, CUSTOMER_FIRST)

# Which leg of a call an event came from (the trail's data["leg"]).
LEG_CUSTOMER = "customer"
LEG_AGENT = "agent"
LEG_CONSULT = "consult"


class Call(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    fs_uuid = peewee.CharField(max_length=64, null=True, unique=True)
    fs_job_uuid = peewee.CharField(max_length=64, null=True, index=True)
    direction = peewee.CharField(max_length=10, default="outbound")
    from_number = peewee.CharField(max_length=64, null=True)
    to_number = peewee.CharField(max_length=64, null=True, index=True)
    caller_id = peewee.CharField(max_length=128, null=True)
    agent_id = peewee.CharField(max_length=64, null=True, index=True)
    campaign_id = peewee.CharField(max_length=64, null=True, index=True)
    gateway = peewee.CharField(max_length=64, null=True)
    status = peewee.CharField(max_length=16, default=INITIATED, index=True)
    hangup_cause = peewee.CharField(max_length=64, null=True)
    status_reason = peewee.CharField(max_length=255, null=True)
    created_at = peewee.DateTimeField(default=utcnow)  # indexed with id, see Meta
    ringing_at = peewee.DateTimeField(null=True)
    answered_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)
    updated_at = peewee.DateTimeField(default=utcnow)
    duration = peewee.IntegerField(null=True)
    billsec = peewee.IntegerField(null=True)
    outcome = peewee.CharField(max_length=64, null=True)
    notes = peewee.TextField(null=True)
    metadata = JSONTextField(null=True)
    idempotency_key = peewee.CharField(max_length=255, null=True, unique=True)
    record = peewee.BooleanField(default=False)
    record_format = peewee.CharField(max_length=8, null=True)
    # FreeSWITCH's per-call RTP statistics at hangup and the worker's summary.
    rtp_stats = JSONTextField(null=True)
    quality = JSONTextField(null=True)
    # Legs: fs_uuid is the customer's leg; the agent's leg (and a transfer's
    # consult leg) ring and hang up on their own, so they are kept apart.
    agent_leg_uuid = peewee.CharField(max_length=64, null=True, index=True)
    consult_leg_uuid = peewee.CharField(max_length=64, null=True)
    mode = peewee.CharField(max_length=16, null=True)
    bridged_at = peewee.DateTimeField(null=True)
    held_at = peewee.DateTimeField(null=True)
    # Handling-time figures (seconds): ringing before answer, customer and agent
    # bridged, customer on hold (accumulates over several holds).
    hold_seconds = peewee.IntegerField(default=0)
    talk_seconds = peewee.IntegerField(null=True)
    ring_seconds = peewee.IntegerField(null=True)
    # The FreeSWITCH node (FREESWITCH_NODES name) the call is on; NULL: the first node.
    node = peewee.CharField(max_length=64, null=True)

    class Meta:
        # UPDATE only what changed: cheaper, and concurrent writers (web and
        # events) do not overwrite each other's untouched columns.
        only_save_dirty = True
        # The history's order is (created_at, id) and its cursor continues after one:
        # with id last, a cursor page and its capped count read only the index
        # (migration 0010).
        indexes = (
            (("created_at", "id"), False),
            (("status", "created_at", "id"), False),
            (("agent_id", "created_at", "id"), False),
            (("campaign_id", "created_at", "id"), False),
        )

    LIVE_STATUSES = LIVE_STATUSES

    @property
    def is_live(self):
        return self.status in self.LIVE_STATUSES


class CallEvent(BaseModel):
    """One state change (or noteworthy event) of a call, with where it came from."""

    id = peewee.BigAutoField()
    call = peewee.ForeignKeyField(Call, backref="events", on_delete="CASCADE", index=True)
    created_at = peewee.DateTimeField(default=utcnow)
    source = peewee.CharField(max_length=16)  # api | freeswitch | reconcile
    event_name = peewee.CharField(max_length=64)
    from_status = peewee.CharField(max_length=16, null=True)
    to_status = peewee.CharField(max_length=16, null=True)
    data = JSONTextField(null=True)
