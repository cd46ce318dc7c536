"""The sending side of the outbox (services/outbox.py): stored news sent to Redis in id order.

News is stored with one bulk insert in the transaction of the change it reports, sent
right after the commit under a Redis lock (so that senders keep the order), and its rows
deleted once sent; the relay (services/outbox_relay.py) sends what a commit could not.
"""
import json
import logging
import time
import uuid

import peewee
import redis

from models import db
from models.db import db_session, utcnow
from models.outbox import ENQUEUE, PUBLISH, OutboxMessage
from services.jobs import enqueue_many
from services.publisher import EncodedJSON, encode_data
from services.redis_client import KEY_PREFIX
from services.webhooks.fanout import fan_out

logger = logging.getLogger(__name__)

LOCK_KEY = f"{KEY_PREFIX}outbox:lock"
WAKE_KEY = f"{KEY_PREFIX}outbox:wake"
LOCK_TTL_MS = 3_000  # a sender that died holding it blocks the others this long at most
# How long a commit waits for another sender (milliseconds of work) before it
# leaves its news to the relay.
LOCK_WAIT = 0.1
INSERT_CHUNK = 1000  # rows per INSERT: 5 parameters each, well under SQLite's limit
CATCH_UP_LIMIT = 500  # older rows a commit sends before its own; the relay sends the rest

_RELEASE_LUA = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                "return redis.call('DEL', KEYS[1]) end return 0")
_EXTEND_LUA = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
               "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0")


def job_path(func):
    """A job's dotted path ("workers.quality.summarize_call"): stored rows name jobs as text."""
    if isinstance(func, str):
        return func
    return f"{func.__module__}.{func.__qualname__}"


class SendLock:
    """One sender at a time hands stored news to Redis, so each row goes out once, in id order."""

    def __init__(self, redis_conn):
        self.redis = redis_conn
        self.token = uuid.uuid4().hex

    def acquire(self, wait=0.0):
        """True once held; False if another sender still holds it after wait seconds."""
        deadline = time.monotonic() + wait
        while not self.redis.set(LOCK_KEY, self.token, nx=True, px=LOCK_TTL_MS):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def extend(self):
        self.redis.eval(_EXTEND_LUA, 1, LOCK_KEY, self.token, LOCK_TTL_MS)

    def release(self):
        try:
            self.redis.eval(_RELEASE_LUA, 1, LOCK_KEY, self.token)
        except redis.RedisError:
            pass  # it expires by itself


def wake_relay(redis_conn):
    """Tell the relay that news waits (it also looks every second by itself)."""
    try:
        pipe = redis_conn.pipeline(transaction=False)
        pipe.lpush(WAKE_KEY, 1)
        pipe.ltrim(WAKE_KEY, 0, 9)
        pipe.execute()
    except redis.RedisError:
        pass


def _group_key(item):
    kind, sender, target = item[:3]
    return (kind, id(sender), target if kind == ENQUEUE else None)


def _send_group(group):
    """One round trip: a publisher's messages in order, or one queue's jobs in order."""
    kind, sender, target = group[0][:3]
    try:
        if kind == PUBLISH:
            messages = [(t, n, d) for _, _, t, n, d in group]
            result = sender.publish_many(messages)
            if result is None or None in result:
                return False
            _fan_out(sender.redis, messages, result)
            return True
        calls = [(name, tuple(args)) for _, _, _, name, args in group]
        return enqueue_many(sender, target, calls) is not None
    except redis.RedisError:
        return False
    except Exception:  # a malformed message can never go out: drop it, do not block the rest
        logger.exception("dropping %d outbox messages that cannot be sent", len(group))
        return True


def _fan_out(redis_conn, messages, seqs):
    """Queue the webhook deliveries of published messages (services/webhooks/fanout.py);
    a Redis error fails the group (it is sent again: at-least-once), any other is logged."""
    try:
        fan_out(redis_conn, messages, seqs)
    except redis.RedisError:
        raise
    except Exception:  # a webhook bug must never stop the live channels
        logger.exception("webhooks: fan-out of %d messages failed", len(messages))


def send_in_order(news):
    """Hand news [(kind, sender, target, name, data)] to Redis: each publisher's messages
    in order in one round trip, then each queue's jobs in order in one; the indexes of
    what went out (after a failure the rest waits for Redis)."""
    groups = {}
    for index, item in enumerate(news):
        groups.setdefault(_group_key(item), []).append(index)
    sent = []
    for indexes in groups.values():
        if not _send_group([news[i] for i in indexes]):
            break
        sent += indexes
    return sorted(sent)


# Plain SQL, built without the query builder: a commit runs these three every
# time, and building a peewee query costs more than running it.
_TABLE = OutboxMessage._meta.table_name


def _placeholders(count, width=1):
    row = "(" + ", ".join([db.param] * width) + ")"
    return ", ".join([row] * count) if width > 1 else "(" + ", ".join([db.param] * count) + ")"


def store(news):
    """Write news in one INSERT (per 1000 rows) in the open transaction; the new ids, in order."""
    now = str(utcnow())
    ids = []
    for start in range(0, len(news), INSERT_CHUNK):
        chunk = news[start:start + INSERT_CHUNK]
        params = []
        for kind, _, target, name, data in chunk:
            params += (kind, target, name, encode_data(data), now)
        sql = (f"INSERT INTO {_TABLE} (kind, target, name, payload, created_at) VALUES "
               f"{_placeholders(len(chunk), 5)} RETURNING id")
        # One statement assigns its ids in row order; RETURNING may list them in any.
        ids += sorted(row[0] for row in db.execute_sql(sql, params).fetchall())
    return ids


def delete_sent(ids):
    """One DELETE for the rows that went out."""
    with db_session(), db.atomic():
        db.execute_sql(f"DELETE FROM {_TABLE} WHERE id IN {_placeholders(len(ids))}", list(ids))


def stored_up_to(last_id, limit):
    """The ids of stored rows up to last_id, oldest first (at most limit)."""
    sql = (f"SELECT id FROM {_TABLE} WHERE id <= {db.param} ORDER BY id "
           f"LIMIT {int(limit)}")
    with db_session():
        return [row[0] for row in db.execute_sql(sql, (last_id,)).fetchall()]


def send_stored(publisher, redis_conn, limit):
    """Send up to limit stored rows in id order (the caller holds the SendLock) and delete
    them; (sent, more): more is True when all went out and others may follow."""
    with db_session():
        rows = list(OutboxMessage.select().order_by(OutboxMessage.id).limit(limit))
    news = [(PUBLISH, publisher, row.target, row.name, EncodedJSON(row.payload))
            if row.kind == PUBLISH else
            (row.kind, redis_conn, row.target, row.name, json.loads(row.payload))
            for row in rows]
    sent = send_in_order(news)
    if sent:
        delete_sent([rows[i].id for i in sent])
    return len(sent), len(sent) == len(rows) == limit


def _redis_of(item):
    return item[1].redis if item[0] == PUBLISH else item[1]


def deliver(stored):
    """After a commit: send its stored news [(id, news)] and delete it, unless older news
    waits (then that goes first) or Redis cannot take it now (then the relay sends it)."""
    ids = [row_id for row_id, _ in stored]
    news = [item for _, item in stored]
    redis_conn = _redis_of(news[0])
    lock = SendLock(redis_conn)
    try:
        if not lock.acquire(LOCK_WAIT):
            wake_relay(redis_conn)
            return
    except redis.RedisError as exc:
        logger.warning("live feed degraded: Redis unreachable (%s); %d messages wait in the "
                       "outbox", exc, len(news))
        return
    try:
        present = stored_up_to(ids[-1], len(ids) + 1)
        if not set(present) <= set(ids):
            # Never overtake older news: send it first, ours with it, in id order.
            publisher = next((item[1] for item in news if item[0] == PUBLISH), None)
            if publisher is None or send_stored(publisher, redis_conn,
                                                CATCH_UP_LIMIT + len(ids))[1]:
                wake_relay(redis_conn)
            return
        # What the relay already sent (it may run while we waited for the lock) is gone.
        present = set(present)
        stored = [(row_id, item) for row_id, item in stored if row_id in present]
        sent = send_in_order([item for _, item in stored])
        if sent:
            delete_sent([stored[i][0] for i in sent])
    except peewee.DatabaseError as exc:
        logger.warning("outbox: could not read or delete sent rows (%s); the relay will "
                       "send what is left", exc)
    finally:
        lock.release()
