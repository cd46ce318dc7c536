"""Health schemas."""
from marshmallow import Schema, fields


class ComponentSchema(Schema):
    status = fields.String(metadata={"description": "ok | down | degraded"})
    detail = fields.String(allow_none=True)


class NodesHealthSchema(ComponentSchema):
    nodes = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "each FreeSWITCH node (FREESWITCH_NODES name) -> its status and detail"})


class HealthSchema(Schema):
    status = fields.String(metadata={"description": "ok | degraded | down"})
    version = fields.String()
    time = fields.String()
    database = fields.Nested(ComponentSchema)
    redis = fields.Nested(ComponentSchema)
    freeswitch = fields.Nested(NodesHealthSchema)
    events = fields.Nested(NodesHealthSchema)


class DatabaseHealthSchema(ComponentSchema):
    engine = fields.String(metadata={"description": "sqlite | postgresql"})
    latency_ms = fields.Float()


class RedisHealthSchema(ComponentSchema):
    latency_ms = fields.Float()


class QueueFiguresSchema(Schema):
    name = fields.String()
    queued = fields.Integer()
    failed = fields.Integer()


class QueuesHealthSchema(ComponentSchema):
    queues = fields.List(fields.Nested(QueueFiguresSchema))


class WorkersHealthSchema(ComponentSchema):
    count = fields.Integer(metadata={"description": "RQ workers registered in Redis"})


class DiskHealthSchema(ComponentSchema):
    path = fields.String(metadata={"description": "SIP_RECORDING_PATH"})
    free_mb = fields.Integer()
    total_mb = fields.Integer()
    free_percent = fields.Float()


class MemoryHealthSchema(ComponentSchema):
    process_rss_mb = fields.Integer()
    system_available_mb = fields.Integer()
    system_used_percent = fields.Float()


class DetailedHealthSchema(HealthSchema):
    pid = fields.Integer(metadata={"description": "the web process that answered"})
    database = fields.Nested(DatabaseHealthSchema)
    redis = fields.Nested(RedisHealthSchema)
    queues = fields.Nested(QueuesHealthSchema)
    workers = fields.Nested(WorkersHealthSchema)
    disk = fields.Nested(DiskHealthSchema)
    memory = fields.Nested(MemoryHealthSchema)
