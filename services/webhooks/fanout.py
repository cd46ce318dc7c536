"""The fan-out: every message the outbox hands to Redis, matched against the webhooks.

Called by services/outbox.py right after a group of messages is published (in
whichever process sends it: a request's commit, the events process, the relay),
before the outbox rows are deleted: a failure here leaves the rows to be sent
again (at-least-once). It costs nothing when nothing matches: the enabled
webhooks are matched in memory, from a list reloaded only when the webhooks
change (a version key in Redis, looked at most once a second). A match costs
one Redis round trip (RPUSH to the target's inbox), plus one to enqueue a drain
job when none is queued yet; the RQ webhook workers do the rest (dispatch.py).
"""
import datetime
import json
import logging
import os
import threading
import time

import peewee
import redis

from models.db import db_session
from models.webhook import CALLBACK_PREFIX, Webhook
from services.jobs import enqueue_many
from services.redis_client import KEY_PREFIX
from services.webhooks.events import (
    DELIVERABLE_CHANNELS,
    Subscription,
    order_key,
    status_callback_of,
)

logger = logging.getLogger(__name__)

QUEUE = "webhooks"
DRAIN_JOB = "workers.webhooks.drain"
VERSION_KEY = f"{KEY_PREFIX}webhooks:version"
INBOX_PREFIX = f"{KEY_PREFIX}webhooks:inbox:"
QUEUED_PREFIX = f"{KEY_PREFIX}webhooks:queued:"
QUEUED_TTL = 300  # a drain job lost with Redis is enqueued again after this (or by the sweep)
REFRESH_EVERY = 1.0  # seconds between looks at the version key


def inbox_key(target):
    return INBOX_PREFIX + target


def queued_key(target):
    return QUEUED_PREFIX + target


def bump_version(redis_conn):
    """Tell every process's fan-out that the webhooks changed (after the commit)."""
    try:
        redis_conn.incr(VERSION_KEY)
    except redis.RedisError as exc:
        logger.warning("webhooks changed but Redis is down (%s): processes see the change "
                       "once it answers", exc)


class Registry:
    """This process's list of enabled webhooks, reloaded when the version key moves."""

    def __init__(self):
        self._subscriptions = []
        self._version = object()
        self._checked = 0.0
        self._pid = None
        self._lock = threading.Lock()

    def current(self, redis_conn):
        now = time.monotonic()
        if self._pid == os.getpid() and now - self._checked < REFRESH_EVERY:
            return self._subscriptions
        with self._lock:
            version = redis_conn.get(VERSION_KEY)
            if version != self._version or self._pid != os.getpid():
                self._subscriptions = self._load()
                self._version, self._pid = version, os.getpid()
            self._checked = now
        return self._subscriptions

    @staticmethod
    def _load():
        try:
            with db_session():
                return [Subscription(row.id, row.event_types or [], row.filter)
                        for row in Webhook.select(Webhook.id, Webhook.event_types,
                                                  Webhook.filter).where(Webhook.enabled == True)]  # noqa: E712
        except peewee.DatabaseError as exc:
            logger.warning("webhooks: could not load the webhook list (%s)", exc)
            return []


REGISTRY = Registry()


def _envelope_text(channel, event_type, data_text, seq):
    head = json.dumps({"id": seq, "channel": channel, "type": event_type,
                       "ts": _now()}, separators=(",", ":"))
    return head[:-1] + ',"data":' + data_text + "}"


def _now():
    """The same format as the live envelope's ts (services.publisher)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def matches(subscriptions, channel, event_type, data_text):
    """[(target, order key, url or None)] for one message."""
    if channel not in DELIVERABLE_CHANNELS:
        return []
    if not subscriptions and '"status_callback"' not in data_text:
        return []
    data = json.loads(data_text)
    if not isinstance(data, dict):
        return []
    key = order_key(channel, data)
    found = [(sub.id, key, None) for sub in subscriptions if sub.wants(event_type, data)]
    callback = status_callback_of(channel, data)
    if callback:
        found.append((CALLBACK_PREFIX + str(data.get("id")), key, callback))
    return found


def fan_out(redis_conn, messages, seqs):
    """After a publish: queue a delivery per matching webhook (and status callback)."""
    subscriptions = REGISTRY.current(redis_conn)
    items = []
    for (channel, event_type, data), seq in zip(messages, seqs):
        data_text = data if isinstance(data, str) else json.dumps(data, default=str)
        for target, key, url in matches(subscriptions, channel, event_type, data_text):
            body = _envelope_text(channel, event_type, data_text, seq)
            items.append((target, json.dumps({"k": key, "t": event_type, "u": url, "b": body})))
    if not items:
        return 0
    pipe = redis_conn.pipeline(transaction=False)
    targets = list(dict.fromkeys(target for target, _ in items))
    for target, item in items:
        pipe.rpush(inbox_key(target), item)
    for target in targets:
        pipe.set(queued_key(target), "1", nx=True, ex=QUEUED_TTL)
    flags = pipe.execute()[len(items):]
    wake = [(DRAIN_JOB, [target]) for target, flag in zip(targets, flags) if flag]
    if wake and enqueue_many(redis_conn, QUEUE, wake) is None:
        raise redis.ConnectionError("could not enqueue the webhook drain jobs")
    return len(items)
