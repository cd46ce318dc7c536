"""The agent's wire schema: the dump that REST and the `agents` channel share."""
from marshmallow import Schema, fields

from services.fields import UTCDateTime


def phone_registered_of(agent):
    """Whether FreeSWITCH has the agent's phone registered, when this request asked it
    (true/false); null when not asked or not a `user/...` endpoint."""
    return agent.__dict__.get("phone_registered")


class AgentSchema(Schema):
    id = fields.String()
    name = fields.String()
    endpoint = fields.String(metadata={
        "description": "user/<user>[@<domain>], sip:<user>@<host>[:<port>] or "
                       "gateway/<gateway>/<number>"})
    wrapup_seconds = fields.Integer()
    skills = fields.Dict(keys=fields.String(), values=fields.Integer())
    enabled = fields.Boolean()
    state = fields.String()
    state_reason = fields.String(allow_none=True)
    state_since = UTCDateTime()
    call_id = fields.String(allow_none=True)
    wrapup_until = UTCDateTime(allow_none=True)
    phone_registered = fields.Function(phone_registered_of, allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class AgentStateChangeSchema(Schema):
    id = fields.Integer()
    agent_id = fields.String(attribute="agent_id")
    from_state = fields.String(allow_none=True)
    to_state = fields.String()
    reason = fields.String(allow_none=True)
    at = UTCDateTime()
    source = fields.String()
    call_id = fields.String(allow_none=True)


_AGENT_SCHEMA = AgentSchema()


def dump_agent(agent):
    return _AGENT_SCHEMA.dump(agent)
