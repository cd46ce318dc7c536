"""Health schemas."""
from marshmallow import Schema, fields


class ComponentSchema(Schema):
    status = fields.String(metadata={"description": "ok | down | degraded"})
    detail = fields.String(allow_none=True)


class HealthSchema(Schema):
    status = fields.String(metadata={"description": "ok | degraded | down"})
    version = fields.String()
    time = fields.String()
    database = fields.Nested(ComponentSchema)
    redis = fields.Nested(ComponentSchema)
    freeswitch = fields.Nested(ComponentSchema)
    events = fields.Nested(ComponentSchema)
