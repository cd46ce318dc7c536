"""The webhook backlog /metrics reports (services/webhooks/backlog.py), on a real database and
Redis: what the fan-out left in the inboxes (no webhook worker running) and the pending rows
both count, per webhook id, with the age of the oldest; status callbacks count together."""
import datetime
import uuid

import pytest
import redis

from models.db import utcnow
from models.webhook import PENDING, SUCCEEDED, Webhook, WebhookDelivery
from services.webhooks import fanout
from services.webhooks.backlog import CALLBACKS, read_backlog
from tests.conftest import free_port

URL = "https://hooks.example.com/secret-path?token=abc"


@pytest.fixture
def webhook(bound_db, redis_client, monkeypatch):
    WebhookDelivery.delete().execute()
    Webhook.delete().execute()
    hook = Webhook.create(url=URL, event_types=["call.*"], secret_encrypted="opaque")
    monkeypatch.setattr(fanout, "REGISTRY", fanout.Registry())  # loads the list afresh
    yield hook
    WebhookDelivery.delete().execute()
    Webhook.delete().execute()


def delivery(target, status, age, webhook_id=None):
    created = utcnow() - datetime.timedelta(seconds=age)
    return WebhookDelivery.create(message_id=f"msg_{uuid.uuid4().hex}", target=target,
                                  webhook_id=webhook_id, order_key="c", event_type="call.ended",
                                  payload="{}", status=status, created_at=created)


def figures(backlog):
    return {label: (count, age) for label, count, age in backlog.ages()}


def test_inbox_and_pending_rows_count_per_webhook_and_callbacks_together(webhook,
                                                                        redis_client):
    assert figures(read_backlog(redis_client)[0]) == {webhook.id: (0, 0.0), CALLBACKS: (0, 0.0)}
    messages = [("calls", "call.answered", {"id": "c1"}),
                ("calls", "call.ended", {"id": "c1"}),
                ("calls", "call.ended", {"id": "c2", "metadata": {
                    "status_callback": "https://cb.example.com/x"}})]
    assert fanout.fan_out(redis_client, messages, [1, 2, 3]) == 4  # 3 for the webhook, 1 cb
    delivery(webhook.id, PENDING, 120, webhook.id)  # a retry waiting for 2 minutes
    delivery(webhook.id, SUCCEEDED, 600, webhook.id)  # sent: not backlog
    delivery("call:c0", PENDING, 30)

    backlog, inboxes_read = read_backlog(redis_client)
    found = figures(backlog)
    assert inboxes_read and set(found) == {webhook.id, CALLBACKS}
    assert found[webhook.id][0] == 4 and 120 <= found[webhook.id][1] < 180
    assert found[CALLBACKS][0] == 2 and 30 <= found[CALLBACKS][1] < 90
    assert URL not in repr(backlog.figures)


def test_with_redis_down_the_stored_rows_still_count(webhook):
    delivery(webhook.id, PENDING, 45, webhook.id)
    down = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    backlog, inboxes_read = read_backlog(down)
    assert not inboxes_read
    count, age = figures(backlog)[webhook.id]
    assert count == 1 and 45 <= age < 105
