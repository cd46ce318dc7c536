"""The wire schema of a queue's live callers (GET /api/queues/<id>/callers)."""
from marshmallow import Schema, fields


class QueueCallerSchema(Schema):
    id = fields.String(metadata={"description": "the caller's queue entry"})
    queue_id = fields.String()
    call_id = fields.String()
    status = fields.String(metadata={"description": "waiting, or offering (an agent's phone "
                                                    "rings for it)"})
    priority = fields.Integer()
    position = fields.Integer(metadata={"description": "1 = the next caller served"})
    waited_seconds = fields.Integer()
    estimated_wait_seconds = fields.Integer(metadata={
        "description": "ceil((position - agents available) / agents staffed) x the queue's "
                       "recent average handling time; 0 when an agent is free for it"})
    entered_at = fields.String()
    offered_at = fields.String(allow_none=True)
    offers = fields.Integer()
    offering_agents = fields.List(fields.String())


class QueueCallersSchema(Schema):
    queue_id = fields.String()
    items = fields.List(fields.Nested(QueueCallerSchema))
