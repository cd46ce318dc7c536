"""Agents (the people who take calls) and the trail of every agent state change."""
import peewee

from models.db import BaseModel, JSONTextField, utcnow

# The agent state words, defined once (services.agents.state re-exports them).
LOGGED_OUT = "logged-out"
AVAILABLE = "available"
RINGING = "ringing"
ON_CALL = "on-call"
WRAP_UP = "wrap-up"
PAUSED = "paused"
ALL_STATES = (LOGGED_OUT, AVAILABLE, RINGING, ON_CALL, WRAP_UP, PAUSED)

# Why an agent is paused: the agent's own reasons, and no-answer (an offered
# call rang out: the agent is taken out of rotation until they resume), and
# phone-offline (the agent's browser phone is no longer registered; back when it is).
PAUSE_REASONS = ("break", "lunch", "training", "other", "no-answer", "phone-offline")


class Agent(BaseModel):
    """One agent; id is the `agent_id` that calls and agent API keys carry."""

    id = peewee.CharField(primary_key=True, max_length=64)
    name = peewee.CharField(max_length=128)
    # Canonical form: user/<name>, sip:<user>@<host>[:<port>] or gateway/<gateway>/<number>.
    endpoint = peewee.CharField(max_length=255)
    wrapup_seconds = peewee.IntegerField(default=30)
    skills = JSONTextField(null=True)  # {"billing": 7, ...}: levels 1-10
    enabled = peewee.BooleanField(default=True)
    state = peewee.CharField(max_length=16, default=LOGGED_OUT, index=True)
    state_reason = peewee.CharField(max_length=32, null=True)
    state_since = peewee.DateTimeField(default=utcnow)
    # The call the agent is ringing for or handling (kept through wrap-up).
    call_id = peewee.CharField(max_length=36, null=True)
    # When an agent in wrap-up goes back to available on its own.
    wrapup_until = peewee.DateTimeField(null=True, index=True)
    missed_offers = peewee.IntegerField(default=0)  # queue offers missed in a row; reset on answer
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        only_save_dirty = True


class AgentStateChange(BaseModel):
    """One agent state change, with when, why and who caused it (occupancy and adherence)."""

    id = peewee.BigAutoField()
    agent = peewee.ForeignKeyField(Agent, backref="state_changes", on_delete="CASCADE")
    from_state = peewee.CharField(max_length=16, null=True)
    to_state = peewee.CharField(max_length=16)
    reason = peewee.CharField(max_length=32, null=True)
    at = peewee.DateTimeField(default=utcnow)
    source = peewee.CharField(max_length=16)  # api | call | timer
    call_id = peewee.CharField(max_length=36, null=True)

    class Meta:
        indexes = ((("agent", "at"), False),)


MODELS = [Agent, AgentStateChange]
