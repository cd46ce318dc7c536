"""Migration 0007: webhooks and their deliveries (issue 16).

Frozen copy of models/webhook.py's Webhook and WebhookDelivery as this step
creates them; never edit it, change the tables in a new migration.
"""
import datetime

import peewee

VERSION = 7
NAME = "webhooks"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Frozen(peewee.Model):
    class Meta:
        database = None
        legacy_table_names = False


class Webhook(Frozen):
    id = peewee.CharField(primary_key=True, max_length=36)
    url = peewee.CharField(max_length=2048)
    description = peewee.CharField(max_length=255, null=True)
    event_types = peewee.TextField()  # ["call.answered", "call.*", ...]
    filter = peewee.TextField(null=True)  # {"agent_id": ..., "campaign_id": ..., "queue_id": ...}
    enabled = peewee.BooleanField(default=True)
    secret_encrypted = peewee.TextField()  # SecretBox token of the whsec_ signing secret
    failing_since = peewee.DateTimeField(null=True)
    disabled_reason = peewee.CharField(max_length=255, null=True)
    created_at = peewee.DateTimeField(default=_now)
    updated_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "webhook"


class WebhookDelivery(Frozen):
    """One message for one webhook (or status callback); the id orders them."""

    id = peewee.BigAutoField()
    message_id = peewee.CharField(max_length=40, unique=True)  # the webhook-id header
    target = peewee.CharField(max_length=80)  # webhook id or "call:<call id>"
    webhook_id = peewee.CharField(max_length=36, null=True, index=True)
    url = peewee.CharField(max_length=2048, null=True)  # status callbacks only
    order_key = peewee.CharField(max_length=128)  # in order per (target, order_key): the call
    event_type = peewee.CharField(max_length=64)
    payload = peewee.TextField()  # the envelope, as sent
    status = peewee.CharField(max_length=16, default="pending")
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DateTimeField(null=True)
    response_code = peewee.IntegerField(null=True)
    last_error = peewee.CharField(max_length=500, null=True)
    created_at = peewee.DateTimeField(default=_now)
    last_attempt_at = peewee.DateTimeField(null=True)
    delivered_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "webhook_delivery"
        indexes = ((("target", "status", "id"), False),)


MODELS = [Webhook, WebhookDelivery]


def apply(database, migrator):
    """Create webhook and webhook_delivery."""
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)
