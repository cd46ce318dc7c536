"""WebhookService: the webhooks (secret shown once, stored encrypted) and their deliveries."""
import base64
import secrets

from models.db import utcnow, write_transaction
from models.webhook import PENDING, Webhook, WebhookDelivery
from services import jobs
from services.crypto import SecretBox, derive_key
from services.errors import NotFound, Unprocessable
from services.jobs import periodic_enqueue
from services.redis_client import KEY_PREFIX
from services.webhooks import fanout, sender
from services.webhooks.events import unknown_types
from services.webhooks.notifier import WebhookNotifier

SECRET_PURPOSE = "webhook-signing-secret"
CALLBACK_PURPOSE = "webhook-status-callback"
SWEEP_JOB = "workers.webhooks.sweep"


def new_secret():
    """A Standard Webhooks signing secret: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def callback_secret(config):
    """The secret status callbacks are signed with: WEBHOOK_CALLBACK_SECRET, or one derived
    from SECRET_KEY (`python -m workers.webhooks callback-secret` prints it)."""
    configured = config.get("WEBHOOK_CALLBACK_SECRET")
    if configured:
        return configured
    raw = base64.urlsafe_b64decode(derive_key(config["SECRET_KEY"], CALLBACK_PURPOSE))
    return "whsec_" + base64.b64encode(raw).decode("ascii")


def check_url(url):
    """422 webhook_url_invalid unless url is http(s)://host/... without credentials."""
    try:
        sender.split_url(url)
    except (sender.Refused, ValueError) as exc:
        raise Unprocessable(str(exc), errors={"json": {"url": [str(exc)]}},
                            error_id="webhook_url_invalid") from None


def check_types(event_types):
    unknown = unknown_types(event_types)
    if unknown:
        message = f"unknown event types: {', '.join(unknown)}"
        raise Unprocessable(message, errors={"json": {"event_types": [message]}},
                            error_id="webhook_event_type_unknown")


class WebhookService:
    """CRUD of webhooks; the deliveries' list and redelivery (the sending is dispatch.py's)."""

    def __init__(self, config, publisher, redis_conn):
        self.config = config
        self.redis = redis_conn
        self.box = SecretBox(config["SECRET_KEY"], purpose=SECRET_PURPOSE)
        self.notifier = WebhookNotifier(publisher)

    def secret_of(self, webhook):
        return self.box.decrypt(webhook.secret_encrypted)

    def create(self, args):
        """The new webhook, with its secret in `secret` (the only time it is shown)."""
        check_url(args["url"])
        check_types(args["event_types"])
        secret = new_secret()
        with write_transaction():
            webhook = Webhook.create(
                url=args["url"], description=args.get("description"),
                event_types=list(dict.fromkeys(args["event_types"])),
                filter=args.get("filter") or None, enabled=args.get("enabled", True),
                secret_encrypted=self.box.encrypt(secret))
        fanout.bump_version(self.redis)
        webhook.secret = secret
        return webhook

    def list(self):
        return list(Webhook.select().order_by(Webhook.created_at, Webhook.id))

    def get(self, webhook_id):
        webhook = Webhook.get_or_none(Webhook.id == webhook_id)
        if webhook is None:
            raise NotFound(f"webhook {webhook_id} not found", error_id="webhook_not_found")
        return webhook

    def update(self, webhook_id, changes):
        if "url" in changes:
            check_url(changes["url"])
        if "event_types" in changes:
            check_types(changes["event_types"])
        with write_transaction():
            webhook = self.get(webhook_id)
            for name in ("url", "description", "event_types", "filter", "enabled"):
                if name in changes:
                    setattr(webhook, name, changes[name])
            if changes.get("enabled"):
                webhook.failing_since = webhook.disabled_reason = None
            webhook.updated_at = utcnow()
            webhook.save()
        fanout.bump_version(self.redis)
        if webhook.enabled:
            self.wake(webhook.id)  # deliveries held while it was disabled go out now
        return webhook

    def delete(self, webhook_id):
        with write_transaction():
            webhook = self.get(webhook_id)
            WebhookDelivery.delete().where(WebhookDelivery.target == webhook.id).execute()
            webhook.delete_instance()
        fanout.bump_version(self.redis)
        self.redis.delete(fanout.inbox_key(webhook_id))

    def deliveries(self, webhook_id, args):
        """A webhook's deliveries, newest first (optionally of one status)."""
        self.get(webhook_id)
        query = WebhookDelivery.select().where(WebhookDelivery.target == webhook_id)
        if args.get("status"):
            query = query.where(WebhookDelivery.status == args["status"])
        return list(query.order_by(WebhookDelivery.id.desc()).limit(args.get("limit", 100)))

    def redeliver(self, webhook_id, message_id):
        """Send one delivery again (same webhook-id), with a fresh retry schedule."""
        self.get(webhook_id)
        with write_transaction():
            delivery = WebhookDelivery.get_or_none(
                (WebhookDelivery.target == webhook_id)
                & (WebhookDelivery.message_id == message_id))
            if delivery is None:
                raise NotFound(f"delivery {message_id} not found",
                               error_id="webhook_delivery_not_found")
            delivery.status, delivery.attempts = PENDING, 0
            delivery.next_attempt_at, delivery.last_error = utcnow(), None
            delivery.save()
        self.wake(webhook_id)
        return delivery

    def wake(self, target):
        """Enqueue a drain of target's deliveries (the webhook workers send them)."""
        jobs.enqueue(self.redis, fanout.QUEUE, fanout.DRAIN_JOB, target)


def register(services):
    """The webhooks service; the events process enqueues the sweep of due retries."""
    services.webhooks = WebhookService(services.config, services.publisher, services.redis)
    interval = float(services.config.get("WEBHOOK_SWEEP_INTERVAL", 30.0))
    services.background_tasks.append(periodic_enqueue(
        services.redis, f"{KEY_PREFIX}webhooks:sweep-lock", interval, fanout.QUEUE, SWEEP_JOB,
        first_delay=min(interval, 5.0)))
