"""An agent's browser phone: the SIP credentials the service owns for the agent's directory user."""
import peewee

from models.agent import Agent
from models.db import BaseModel, utcnow


class AgentPhone(BaseModel):
    """One per agent with a browser phone; the password only ever stored encrypted.

    username is the agent's FreeSWITCH directory user (user/<username> is its endpoint);
    FreeSWITCH learns it from the generated directory file (services/agents/phones.py).
    """

    agent = peewee.ForeignKeyField(Agent, primary_key=True, backref="phone",
                                   on_delete="CASCADE")
    username = peewee.CharField(max_length=64, unique=True)
    password_encrypted = peewee.TextField()
    rotated_at = peewee.DateTimeField(default=utcnow)
    created_at = peewee.DateTimeField(default=utcnow)


MODELS = [AgentPhone]
