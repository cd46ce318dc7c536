"""Delivery: a target's messages in order, with retries over about a day (the RQ webhook jobs).

A target is a webhook (its id) or a call's status callback ("call:<id>"). Its
drain job, one at a time per target (a Redis lock), moves what the fan-out left
in the target's Redis inbox into webhook_delivery rows (the id orders them;
the message id is a hash of target and envelope, so moving twice stores once),
then sends the oldest pending delivery of each order key (a call) whose time
has come. A failed attempt waits for the next step of WEBHOOK_RETRY_SCHEDULE
(default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: 8 attempts over ~27.6 h)
and holds back that call's later deliveries, so each call's events arrive in
order; other calls go on. After the last step the delivery is `failed` and the
next one goes. The retry is an RQ job scheduled for that time, and a periodic
sweep (WEBHOOK_SWEEP_INTERVAL) wakes any target whose job was lost.

A webhook failing without a success for WEBHOOK_DISABLE_AFTER seconds is
disabled: a `webhook.disabled` event and a `performance.webhook_disabled` alert.
"""
import datetime
import hashlib
import json
import logging
import time
import uuid

import redis

from models.db import db_session, utcnow, write_transaction
from models.webhook import CALLBACK_PREFIX, FAILED, PENDING, SUCCEEDED, Webhook, WebhookDelivery
from services import jobs
from services.outbox import Outbox
from services.redis_client import KEY_PREFIX
from services.webhooks import fanout, sender
from services.webhooks.schemas import dump_webhook
from services.webhooks.service import callback_secret

logger = logging.getLogger(__name__)

LOCK_PREFIX = f"{KEY_PREFIX}webhooks:lock:"
AGAIN_PREFIX = f"{KEY_PREFIX}webhooks:again:"
LOCK_TTL_MS = 120_000
INGEST_BATCH = 500
SCAN_LIMIT = 1000  # pending rows looked at per round (their heads are sent)
RUN_FOR = 240.0  # seconds one job works before it hands over to a new one
DEFAULT_SCHEDULE = "5,300,1800,7200,18000,36000,36000"

_RELEASE_LUA = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                "return redis.call('DEL', KEYS[1]) end return 0")


def parse_schedule(text):
    """'5,300,1800' -> [5.0, 300.0, 1800.0]: the waits after the 1st, 2nd ... failure."""
    return [float(part) for part in str(text or DEFAULT_SCHEDULE).split(",") if part.strip()]


def message_id(target, body):
    return "msg_" + hashlib.sha256(f"{target}\n{body}".encode()).hexdigest()[:32]


def job_id_for(target, due):
    return "webhook-retry-" + target.replace(":", "_") + f"-{int(due)}"


class TargetLock:
    """One drain per target at a time (SET NX PX, released only by its holder)."""

    def __init__(self, redis_conn, target):
        self.redis, self.key, self.token = redis_conn, LOCK_PREFIX + target, uuid.uuid4().hex

    def acquire(self):
        return bool(self.redis.set(self.key, self.token, nx=True, px=LOCK_TTL_MS))

    def extend(self):
        self.redis.pexpire(self.key, LOCK_TTL_MS)

    def release(self):
        try:
            self.redis.eval(_RELEASE_LUA, 1, self.key, self.token)
        except redis.RedisError:
            pass  # it expires by itself


class Dispatcher:
    """Drains targets; built per job from the worker's services."""

    def __init__(self, services):
        config = services.config
        self.config = config
        self.redis = services.redis
        self.webhooks = services.webhooks
        self.live_notifier = getattr(services, "live_notifier", None)
        self.schedule = parse_schedule(config.get("WEBHOOK_RETRY_SCHEDULE"))
        self.timeout = float(config.get("WEBHOOK_TIMEOUT", 5.0))
        self.allow_private = bool(config.get("WEBHOOK_ALLOW_PRIVATE", False))
        self.disable_after = float(config.get("WEBHOOK_DISABLE_AFTER", 259200.0))

    # ----- the job ---------------------------------------------------------------
    def drain(self, target):
        """Send what is due for target, in order; schedule the next retry. What was sent."""
        self.redis.delete(fanout.queued_key(target))
        if not target.startswith(CALLBACK_PREFIX) and not self._exists(target):
            self.redis.delete(fanout.inbox_key(target))  # deleted meanwhile: nothing to send
            return 0
        deadline = time.monotonic() + RUN_FOR
        sent, earliest = 0, None
        while True:
            lock = TargetLock(self.redis, target)
            if not lock.acquire():
                # Another job drains it: it looks at this flag (and the inbox) before it stops.
                self.redis.set(AGAIN_PREFIX + target, "1", ex=LOCK_TTL_MS // 1000)
                return sent
            try:
                with db_session():
                    done, earliest = self._work(target, lock, deadline)
                sent += done
            finally:
                lock.release()
            if time.monotonic() >= deadline:
                self.webhooks.wake(target)  # more work: a fresh job (RQ's job timeout)
                return sent
            again = self.redis.delete(AGAIN_PREFIX + target)  # a redelivery, a busy wake-up
            if not again and not self.redis.llen(fanout.inbox_key(target)):
                break
        if earliest is not None:
            self._schedule(target, earliest)
        return sent

    @staticmethod
    def _exists(webhook_id):
        with db_session():
            return Webhook.select().where(Webhook.id == webhook_id).exists()

    def _work(self, target, lock, deadline):
        earliest = None
        done = 0
        while time.monotonic() < deadline:
            ingested = self._ingest(target)
            progressed, earliest = self._send_due(target, lock)
            done += progressed
            if not progressed and not ingested:
                break
        return done, earliest

    def _ingest(self, target):
        """Move the target's inbox into rows, in order; how many items were moved."""
        inbox = fanout.inbox_key(target)
        items = self.redis.lrange(inbox, 0, INGEST_BATCH - 1)
        if not items:
            return 0
        now = utcnow()
        webhook_id = None if target.startswith(CALLBACK_PREFIX) else target
        rows = []
        for raw in items:
            item = json.loads(raw)
            rows.append(dict(
                message_id=message_id(target, item["b"]), target=target, webhook_id=webhook_id,
                url=item.get("u"), order_key=str(item.get("k") or "")[:128],
                event_type=item["t"][:64], payload=item["b"], status=PENDING, attempts=0,
                next_attempt_at=now, created_at=now))
        with write_transaction():
            WebhookDelivery.insert_many(rows).on_conflict_ignore().execute()
        self.redis.ltrim(inbox, len(items), -1)
        return len(items)

    def _destination(self, target):
        """(webhook or None, secret) for target; None when it must not be sent to now."""
        if target.startswith(CALLBACK_PREFIX):
            return None, callback_secret(self.config)
        webhook = Webhook.get_or_none(Webhook.id == target)
        if webhook is None or not webhook.enabled:
            return webhook, None
        return webhook, self.webhooks.secret_of(webhook)

    def _send_due(self, target, lock):
        """Attempt each call's oldest pending delivery that is due: (sent, earliest later due)."""
        webhook, secret = self._destination(target)
        if secret is None:
            return 0, None
        rows = (WebhookDelivery.select()
                .where((WebhookDelivery.target == target) & (WebhookDelivery.status == PENDING))
                .order_by(WebhookDelivery.id).limit(SCAN_LIMIT))
        heads = {}
        for row in rows:
            heads.setdefault(row.order_key, row)
        sent, earliest = 0, None
        for row in heads.values():
            if row.next_attempt_at is not None and row.next_attempt_at > utcnow():
                earliest = min(earliest or row.next_attempt_at, row.next_attempt_at)
                continue
            lock.extend()
            if self._attempt(row, webhook, secret):
                sent += 1
            elif row.status == PENDING:
                earliest = min(earliest or row.next_attempt_at, row.next_attempt_at)
            if webhook is not None and not webhook.enabled:
                return sent, None  # disabled by this failure
        return sent, earliest

    # ----- one attempt -------------------------------------------------------------
    def _attempt(self, row, webhook, secret):
        url = webhook.url if webhook is not None else row.url
        headers = sender.signed_headers(secret, row.message_id, row.payload)
        outcome = sender.post(url, row.payload, headers, self.timeout, self.allow_private)
        now = utcnow()
        was_due = row.next_attempt_at
        row.attempts += 1
        row.last_attempt_at, row.response_code = now, outcome.code
        if outcome.ok:
            row.status, row.delivered_at, row.next_attempt_at, row.last_error = (
                SUCCEEDED, now, None, None)
        else:
            row.last_error = (outcome.error or "failed")[:500]
            if outcome.final or row.attempts > len(self.schedule):
                row.status, row.next_attempt_at = FAILED, None
            else:
                wait = self.schedule[row.attempts - 1]
                row.next_attempt_at = now + datetime.timedelta(seconds=wait)
        self._record(row, was_due)
        logger.info("webhook delivery %s (%s) to %s: attempt %d %s%s", row.message_id,
                    row.event_type, row.target, row.attempts, row.status,
                    "" if outcome.ok else f" ({row.last_error})")
        if webhook is not None:
            self._track_health(webhook, outcome.ok, now)
        return outcome.ok

    @staticmethod
    def _record(row, was_due):
        """Store the attempt, unless the row was redelivered meanwhile (its next_attempt_at
        moved): then the redelivery stands and goes out next."""
        fields = ("status", "attempts", "last_attempt_at", "response_code", "delivered_at",
                  "next_attempt_at", "last_error")
        with write_transaction():
            return WebhookDelivery.update({getattr(WebhookDelivery, name): getattr(row, name)
                                           for name in fields}).where(
                (WebhookDelivery.id == row.id)
                & (WebhookDelivery.next_attempt_at == was_due)).execute()

    def _track_health(self, webhook, ok, now):
        """Reset failing_since on success; disable after WEBHOOK_DISABLE_AFTER of failures."""
        if ok:
            if webhook.failing_since is not None:
                Webhook.update(failing_since=None).where(Webhook.id == webhook.id).execute()
                webhook.failing_since = None
            return
        if webhook.failing_since is None:
            Webhook.update(failing_since=now).where(
                (Webhook.id == webhook.id) & Webhook.failing_since.is_null()).execute()
            webhook.failing_since = now
        if (now - webhook.failing_since).total_seconds() >= self.disable_after:
            self._disable(webhook, now)

    def _disable(self, webhook, now):
        failing = int((now - webhook.failing_since).total_seconds())
        reason = f"every delivery failed for {failing} s (WEBHOOK_DISABLE_AFTER)"
        with Outbox().atomic() as outbox:
            changed = Webhook.update(enabled=False, disabled_reason=reason, updated_at=now).where(
                (Webhook.id == webhook.id) & (Webhook.enabled == True)).execute()  # noqa: E712
            if changed:
                webhook.enabled, webhook.disabled_reason = False, reason
                self.webhooks.notifier.webhook_disabled(dump_webhook(webhook), outbox)
        if not changed:
            return
        fanout.bump_version(self.redis)
        logger.warning("webhook %s disabled: %s", webhook.id, reason)
        if self.live_notifier is not None:
            self.live_notifier.webhook_disabled({
                "webhook_id": webhook.id, "url": webhook.url, "reason": reason,
                "failing_seconds": failing})

    # ----- retries -------------------------------------------------------------------
    def _schedule(self, target, due):
        delay = max(0.0, (due - utcnow()).total_seconds())
        try:
            jobs.queue(fanout.QUEUE, self.redis).enqueue_in(
                datetime.timedelta(seconds=delay), fanout.DRAIN_JOB, target,
                job_id=job_id_for(target, due.timestamp()), **jobs.JOB_POLICY[fanout.QUEUE])
        except redis.RedisError as exc:
            logger.warning("webhooks: could not schedule the retry of %s (%s); the sweep "
                           "will", target, exc)

    def sweep(self):
        """Wake every target with a due delivery or a waiting inbox (lost jobs); how many."""
        with db_session():
            due = {row.target for row in WebhookDelivery.select(WebhookDelivery.target)
                   .where((WebhookDelivery.status == PENDING)
                          & (WebhookDelivery.next_attempt_at <= utcnow())).distinct()}
            disabled = {row.id for row in Webhook.select(Webhook.id).where(
                Webhook.enabled == False)}  # noqa: E712
        for key in self.redis.scan_iter(match=fanout.INBOX_PREFIX + "*", count=500):
            due.add(key.decode()[len(fanout.INBOX_PREFIX):])
        due -= disabled  # their deliveries wait until they are enabled again
        for target in sorted(due):
            self.webhooks.wake(target)
        return len(due)
