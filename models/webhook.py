"""Webhooks (an integrator's URL and the events it wants) and their deliveries."""
import peewee

from models.db import BaseModel, JSONTextField, new_id, utcnow

# A delivery's status.
PENDING = "pending"      # waiting for its (next) attempt
SUCCEEDED = "succeeded"  # the receiver answered 2xx
FAILED = "failed"        # every attempt of the retry schedule failed (or the URL is refused)
DELIVERY_STATUSES = (PENDING, SUCCEEDED, FAILED)

# A status callback's deliveries belong to no webhook: their target is "call:<call id>".
CALLBACK_PREFIX = "call:"


class Webhook(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    url = peewee.CharField(max_length=2048)
    description = peewee.CharField(max_length=255, null=True)
    event_types = JSONTextField()  # ["call.answered", "call.*", ...]
    filter = JSONTextField(null=True)  # {"agent_id": ..., "campaign_id": ..., "queue_id": ...}
    enabled = peewee.BooleanField(default=True)
    secret_encrypted = peewee.TextField()  # SecretBox token of the whsec_ signing secret
    failing_since = peewee.DateTimeField(null=True)
    disabled_reason = peewee.CharField(max_length=255, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "webhook"


class WebhookDelivery(BaseModel):
    """One message for one webhook (or status callback); the id orders them."""

    id = peewee.BigAutoField()
    message_id = peewee.CharField(max_length=40, unique=True)  # the webhook-id header
    target = peewee.CharField(max_length=80)  # webhook id or "call:<call id>"
    webhook_id = peewee.CharField(max_length=36, null=True, index=True)
    url = peewee.CharField(max_length=2048, null=True)  # status callbacks only
    order_key = peewee.CharField(max_length=128)  # in order per (target, order_key): the call
    event_type = peewee.CharField(max_length=64)
    payload = peewee.TextField()  # the envelope, as sent
    status = peewee.CharField(max_length=16, default=PENDING)
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(null=True)
    response_code = peewee.IntegerField(null=True)
    last_error = peewee.CharField(max_length=500, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    last_attempt_at = peewee.DateTimeField(null=True)
    delivered_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "webhook_delivery"
        indexes = ((("target", "status", "id"), False),)


MODELS = [Webhook, WebhookDelivery]
