"""Request schemas of the webhooks resource (the response schemas are the wire schemas)."""
from marshmallow import Schema, fields, validate

from services.fields import IDENT, StrictBoolean
from services.webhooks.events import EVENT_TYPES, FAMILIES
from services.webhooks.schemas import (  # noqa: F401  (the response schemas)
    DELIVERY_STATUSES,
    DeliverySchema,
    WebhookCreatedSchema,
    WebhookSchema,
)

URL = [validate.URL(schemes={"http", "https"}, require_tld=False),
       # no user:password@ (the spec says so too, as a pattern)
       validate.Regexp(r"^https?://[^/?#@\s]+([/?#]\S*)?$", error="an http(s) URL without "
                       "credentials"),
       validate.Length(max=2048)]
EVENT_TYPE = fields.String(validate=validate.OneOf(sorted(EVENT_TYPES | FAMILIES)))


class WebhookFilterArgs(Schema):
    agent_id = fields.String(validate=IDENT, allow_none=True)
    campaign_id = fields.String(validate=IDENT, allow_none=True)
    queue_id = fields.String(validate=IDENT, allow_none=True)


class WebhookCreateSchema(Schema):
    url = fields.String(required=True, validate=URL,
                        metadata={"example": "https://example.com/hooks/callcenter"})
    event_types = fields.List(EVENT_TYPE, required=True, validate=validate.Length(min=1, max=64),
                              metadata={"description": "live channel message types, or a "
                                                       "family such as call.*"})
    filter = fields.Nested(WebhookFilterArgs, allow_none=True)
    description = fields.String(validate=validate.Length(max=255), allow_none=True)
    enabled = StrictBoolean(load_default=True)


class WebhookUpdateSchema(Schema):
    url = fields.String(validate=URL)
    event_types = fields.List(EVENT_TYPE, validate=validate.Length(min=1, max=64))
    filter = fields.Nested(WebhookFilterArgs, allow_none=True)
    description = fields.String(validate=validate.Length(max=255), allow_none=True)
    enabled = StrictBoolean()


class DeliveryQueryArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
