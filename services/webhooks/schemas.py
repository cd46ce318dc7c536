"""The wire schemas of webhooks and deliveries (REST and the `webhooks` channel): no secret."""
from marshmallow import Schema, fields

from models.webhook import DELIVERY_STATUSES  # noqa: F401  (the status words)
from services.fields import UTCDateTime


class WebhookFilterSchema(Schema):
    agent_id = fields.String(allow_none=True)
    campaign_id = fields.String(allow_none=True)
    queue_id = fields.String(allow_none=True)


class WebhookSchema(Schema):
    id = fields.String(dump_only=True)
    url = fields.String()
    description = fields.String(allow_none=True)
    event_types = fields.List(fields.String())
    filter = fields.Nested(WebhookFilterSchema, allow_none=True)
    enabled = fields.Boolean()
    failing_since = UTCDateTime(dump_only=True, allow_none=True)
    disabled_reason = fields.String(dump_only=True, allow_none=True)
    created_at = UTCDateTime(dump_only=True)
    updated_at = UTCDateTime(dump_only=True)


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(dump_only=True, metadata={
        "description": "the Standard Webhooks signing secret (whsec_...): shown only in this "
                       "answer; keep it to verify deliveries"})


class DeliverySchema(Schema):
    id = fields.String(attribute="message_id", dump_only=True, metadata={
        "description": "the delivery id: the webhook-id header of its requests"})
    event_type = fields.String()
    status = fields.String(metadata={"description": "pending | succeeded | failed"})
    attempts = fields.Integer()
    response_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    order_key = fields.String(metadata={"description": "deliveries of one key (a call) go "
                                                       "out in order"})
    created_at = UTCDateTime()
    last_attempt_at = UTCDateTime(allow_none=True)
    next_attempt_at = UTCDateTime(allow_none=True)
    delivered_at = UTCDateTime(allow_none=True)


def dump_webhook(webhook):
    return WebhookSchema().dump(webhook)
