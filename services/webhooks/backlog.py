"""The webhook backlog, for operators (`/metrics`): deliveries not yet sent, per webhook.

A delivery waits in one of two places: in its target's Redis inbox (fanned out, not
yet stored by a drain job: where the backlog grows when no webhook worker runs), or
as a `pending` webhook_delivery row (stored, waiting for its first or next attempt:
where it grows while a receiver is down). Both count. Webhooks are named by their
id only, never by URL; every call's status callback counts under CALLBACKS.
"""
import datetime
import json

import peewee
import redis

from models.db import utcnow
from models.webhook import CALLBACK_PREFIX, PENDING, Webhook, WebhookDelivery
from services.webhooks import fanout

CALLBACKS = "status_callbacks"  # the label of all the calls' status callbacks together
SCAN_COUNT = 500


class Backlog:
    """label -> [pending deliveries, creation time of the oldest (naive UTC) or None]."""

    def __init__(self):
        self.figures = {}

    def add(self, label, count, oldest):
        entry = self.figures.setdefault(label, [0, None])
        entry[0] += count
        if count and oldest is not None and (entry[1] is None or oldest < entry[1]):
            entry[1] = oldest

    def ages(self, now=None):
        """[(label, pending, age in seconds of the oldest, 0 when none)], by label."""
        now = now or utcnow()
        return [(label, count, max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
                for label, (count, oldest) in sorted(self.figures.items())]


def stored(backlog):
    """Add the pending rows: per webhook by the (target, status, id) index; every webhook
    gets a figure (0 when nothing waits), and so do the status callbacks."""
    webhook_ids = [row[0] for row in Webhook.select(Webhook.id).tuples()]
    for webhook_id in webhook_ids:
        _add_rows(backlog, webhook_id, WebhookDelivery.target == webhook_id)
    _add_rows(backlog, CALLBACKS, WebhookDelivery.webhook_id.is_null())
    return webhook_ids


def _add_rows(backlog, label, where):
    pending = WebhookDelivery.status == PENDING
    count, first = (WebhookDelivery.select(peewee.fn.COUNT(WebhookDelivery.id),
                                           peewee.fn.MIN(WebhookDelivery.id))
                    .where(where & pending).tuples().get())
    oldest = None
    if count:
        oldest = (WebhookDelivery.select(WebhookDelivery.created_at)
                  .where(WebhookDelivery.id == first).scalar())
    backlog.add(label, count or 0, oldest)


def inboxes(backlog, redis_conn, webhook_ids):
    """Add what waits in the Redis inboxes (the oldest by its envelope's time)."""
    keys = [(webhook_id, fanout.inbox_key(webhook_id)) for webhook_id in webhook_ids]
    keys += [(CALLBACKS, key.decode() if isinstance(key, bytes) else key)
             for key in redis_conn.scan_iter(
                 match=fanout.inbox_key(CALLBACK_PREFIX) + "*", count=SCAN_COUNT)]
    pipe = redis_conn.pipeline(transaction=False)
    for _, key in keys:
        pipe.llen(key)
        pipe.lindex(key, 0)
    answers = pipe.execute()
    for n, (label, _) in enumerate(keys):
        count, head = answers[2 * n], answers[2 * n + 1]
        backlog.add(label, int(count or 0), _queued_at(head))


def _queued_at(item):
    """When an inbox item was published (its envelope's ts), naive UTC; None if unknown."""
    if not item:
        return None
    try:
        envelope = json.loads(json.loads(item)["b"])
        when = datetime.datetime.fromisoformat(envelope["ts"].replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return when.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def read_backlog(redis_conn):
    """The backlog (database rows, then the inboxes when Redis answers); the caller holds
    a database connection. Returns (Backlog, whether the inboxes could be read)."""
    backlog = Backlog()
    webhook_ids = stored(backlog)
    try:
        inboxes(backlog, redis_conn, webhook_ids)
    except redis.RedisError:
        return backlog, False
    return backlog, True
