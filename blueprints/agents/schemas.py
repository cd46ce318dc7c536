"""Request and query schemas of the agents resource (the response schema is the wire schema)."""
from marshmallow import Schema, ValidationError, fields, validate

from services.agents import state as ag
from services.agents.endpoints import FORMS_HELP, parse_endpoint
from services.agents.endpoints import JSON_SCHEMA as ENDPOINT_JSON_SCHEMA
from services.agents.schemas import AgentSchema, AgentStateChangeSchema  # noqa: F401
from services.fields import IDENT, FullMatch, StrictBoolean, UTCDateTime

SKILL = FullMatch(r"^[A-Za-z0-9_.\-]{1,64}$", error="skill names are 1-64 letters, digits, _ . -")
# The reasons an agent may give; no-answer is set by the service when an offer rings out,
# phone-offline when the agent's browser phone drops.
AGENT_PAUSE_REASONS = tuple(r for r in ag.PAUSE_REASONS if r not in ("no-answer",
                                                                       "phone-offline"))


class EndpointField(fields.Field):
    """An endpoint string or {"number", "gateway"}; loaded as its canonical string."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", dict(ENDPOINT_JSON_SCHEMA, description=FORMS_HELP,
                                           example="user/1001"))
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_endpoint(value).text
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class AgentFieldsSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=128))
    endpoint = EndpointField()
    wrapup_seconds = fields.Integer(validate=validate.Range(min=0, max=3600), strict=True,
                                    metadata={"description": "after-call work, then available"})
    skills = fields.Dict(keys=fields.String(validate=SKILL),
                         values=fields.Integer(validate=validate.Range(min=1, max=10),
                                               strict=True),
                         validate=validate.Length(max=100),
                         metadata={"example": {"billing": 7, "spanish": 4}})
    enabled = StrictBoolean()


class AgentCreateSchema(AgentFieldsSchema):
    id = fields.String(required=True, validate=IDENT,
                       metadata={"description": "the agent_id that calls and agent keys carry"})
    name = fields.String(required=True, validate=validate.Length(min=1, max=128))
    endpoint = EndpointField(required=True)
    wrapup_seconds = fields.Integer(load_default=30, validate=validate.Range(min=0, max=3600),
                                    strict=True)
    enabled = StrictBoolean(load_default=True)


class AgentUpdateSchema(AgentFieldsSchema):
    """What is left out stays as it is."""


class AgentPauseSchema(Schema):
    reason = fields.String(required=True, validate=validate.OneOf(AGENT_PAUSE_REASONS))


class AgentQueryArgsSchema(Schema):
    state = fields.String(validate=validate.OneOf(ag.ALL_STATES))
    enabled = fields.Boolean(truthy={"true"}, falsy={"false"},
                             metadata={"description": "true or false"})


class AgentStatesQueryArgsSchema(Schema):
    date_from = UTCDateTime(metadata={"description": "changes at or after (ISO-8601)"})
    date_to = UTCDateTime(metadata={"description": "changes before (ISO-8601)"})
