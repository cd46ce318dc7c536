"""Wire schemas of queues and inbound routes: the dump that REST (and any live message) share."""
from marshmallow import Schema, fields

from models import queue as qm  # noqa: F401  (the words the HTTP layer checks against)
from services.fields import UTCDateTime

ACTION_HELP = ('{"action": "queue"|"agent"|"number"|"hangup", "target": "<queue id | agent id '
               '| number>"} (hangup: a short tone, then hang up; no target)')


def members_of(queue):
    """[{agent_id, tier}] by tier then agent id: the rows the service attached, or a query."""
    rows = queue.__dict__.get("member_rows")
    if rows is None:
        rows = list(queue.members)
    return [{"agent_id": row.agent_id, "tier": row.tier}
            for row in sorted(rows, key=lambda row: (row.tier, row.agent_id))]


class ActionSchema(Schema):
    action = fields.String()
    target = fields.String(allow_none=True)


class HoursSchema(Schema):
    timezone = fields.String(metadata={"example": "Europe/Paris"})
    days = fields.Dict(keys=fields.String(),
                       values=fields.List(fields.List(fields.String())),
                       metadata={"example": {"mon": [["09:00", "17:30"]]}})
    closed_dates = fields.List(fields.String(), metadata={"example": ["2026-12-25"]})


class QueueMemberSchema(Schema):
    agent_id = fields.String()
    tier = fields.Integer()


class QueueSchema(Schema):
    id = fields.String()
    name = fields.String()
    strategy = fields.String()
    required_skills = fields.Dict(keys=fields.String(), values=fields.Integer(),
                                  allow_none=True)
    ring_timeout = fields.Integer()
    max_wait_seconds = fields.Integer(allow_none=True)
    max_wait_action = fields.Nested(ActionSchema, allow_none=True,
                                    metadata={"description": ACTION_HELP})
    no_agents_action = fields.Nested(ActionSchema, allow_none=True)
    hours = fields.Nested(HoursSchema, allow_none=True)
    closed_action = fields.Nested(ActionSchema, allow_none=True)
    service_level_seconds = fields.Integer()
    wrapup_seconds = fields.Integer(allow_none=True)
    max_missed_offers = fields.Integer()
    members = fields.Function(members_of, metadata={
        "type": "array", "items": {"type": "object", "properties": {
            "agent_id": {"type": "string"}, "tier": {"type": "integer"}}}})
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class InboundRouteSchema(Schema):
    id = fields.String(allow_none=True)
    match = fields.String(metadata={"description": "exact | prefix (default: the "
                                                   "INBOUND_DEFAULT_QUEUE fallback)"})
    number = fields.String()
    target_type = fields.String()
    target = fields.String()
    name = fields.String(allow_none=True)
    created_at = UTCDateTime(allow_none=True)
    updated_at = UTCDateTime(allow_none=True)


_QUEUE_SCHEMA = QueueSchema()
_ROUTE_SCHEMA = InboundRouteSchema()


def dump_queue(queue):
    return _QUEUE_SCHEMA.dump(queue)


def dump_route(route):
    return _ROUTE_SCHEMA.dump(route)
