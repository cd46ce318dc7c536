"""Schemas of the /ws protocol (client messages) and of the realtime metrics figures."""
from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

CLIENT_MESSAGE_TYPES = ("subscribe", "unsubscribe", "ping")


class ClientRef(fields.Field):
    """An opaque correlation value the server echoes back: a short string or an integer."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("must be a string or an integer")
        if isinstance(value, str) and len(value) > 128:
            raise ValidationError("must be at most 128 characters")
        return value


class ClientMessageSchema(Schema):
    """Any client message: its type and optional ref."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True)
    ref = ClientRef(load_default=None)


class ChannelsMessageSchema(ClientMessageSchema):
    """subscribe / unsubscribe: channels, and for subscribe the last ids already seen."""

    channels = fields.List(fields.String(validate=validate.Length(1, 64)), required=True,
                           validate=validate.Length(1, 16))
    since = fields.Dict(keys=fields.String(),
                        values=fields.Integer(strict=True, validate=validate.Range(min=0)),
                        load_default=dict)

    @validates("channels")
    def _no_repeats(self, value, **kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("lists a channel twice")

    @validates_schema
    def _since_names_subscribed_channels(self, data, **kwargs):
        extra = set(data.get("since", {})) - set(data.get("channels", []))
        if extra:
            raise ValidationError(f"names channels not in 'channels': {sorted(extra)}", "since")
        if data.get("since") and data.get("type") != "subscribe":
            raise ValidationError("only subscribe takes 'since'", "since")


class FreeSwitchStateSchema(Schema):
    state = fields.String(metadata={"description": "connected, disconnected, ... or unknown"})
    since = fields.String(allow_none=True, metadata={
        "format": "date-time",
        "description": "when the first node's connection reached `state` (ISO 8601 UTC; "
                       "until issue 16 an epoch number)"})
    nodes = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "each FreeSWITCH node -> its events process's connection state "
                       "(state and since above are the first node's)"})


class PublisherSchema(Schema):
    process = fields.String(metadata={"description": "host:pid of the publishing events process"})
    rss_mb = fields.Float(metadata={"description": "its resident memory (MB)"})


class MetricsSchema(Schema):
    """The figures of the last `metrics` channel message."""

    generated_at = fields.String(metadata={"description": "ISO-8601 UTC"})
    interval_seconds = fields.Float()
    active_calls = fields.Integer(allow_none=True,
                                  metadata={"description": "initiated, ringing or in-progress"})
    calls_started_5m = fields.Integer(allow_none=True)
    calls_ended_5m = fields.Integer(allow_none=True)
    average_mos = fields.Float(allow_none=True,
                               metadata={"description": "mean MOS of live calls (quality "
                                                        "mos_avg, else the last live sample's "
                                                        "mos); null when none is known"})
    mos_samples = fields.Integer()
    websocket_clients = fields.Integer(metadata={"description": "across all web processes"})
    web_processes = fields.Integer()
    freeswitch = fields.Nested(FreeSwitchStateSchema)
    queues = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "RQ queue depths"})
    publisher = fields.Nested(PublisherSchema)
