"""The transactional outbox, in process: news is stored with its transaction, sent after the
commit, kept while Redis is down and sent in order by the relay once it answers."""
import json
import threading

import gevent
import pytest
from rq import Queue

from models import db
from models.outbox import OutboxMessage
from services import outbox_send as outbox_module
from services.outbox import Outbox
from services.outbox_relay import OutboxRelay
from services.outbox_send import SendLock, send_stored
from services.publisher import Publisher
from services.redis_client import make_redis, stream_key
from tests.conftest import RedisServer, wait_until


class WatchingPublisher(Publisher):
    """The real publisher, noting what the database held when each batch went out."""

    def __init__(self, redis_conn):
        super().__init__(redis_conn)
        self.seen = []

    def publish_many(self, messages):
        self.seen.append((db.in_transaction(), OutboxMessage.select().count()))
        return super().publish_many(messages)


@pytest.fixture
def outbox_db(bound_db):
    OutboxMessage.delete().execute()
    yield bound_db
    OutboxMessage.delete().execute()


@pytest.fixture
def publisher(redis_client, outbox_db):
    return WatchingPublisher(redis_client)


def sent(redis_conn, channel="calls"):
    """(type, data) of the messages on a channel's stream, in order."""
    return [(json.loads(fields[b"m"])["type"], json.loads(fields[b"m"])["data"])
            for _, fields in redis_conn.xrange(stream_key(channel))]


def test_a_rolled_back_transaction_announces_nothing(publisher, redis_client):
    outbox = Outbox()
    with pytest.raises(RuntimeError):
        with outbox.atomic():
            outbox.publish(publisher, "calls", "call.ended", {"id": "c1"})
            raise RuntimeError("the change failed")
    assert sent(redis_client) == []
    assert OutboxMessage.select().count() == 0


def test_a_commit_stores_the_news_then_sends_it_then_deletes_it(publisher, redis_client):
    outbox = Outbox()
    with outbox.atomic():
        outbox.publish(publisher, "calls", "call.ringing", {"id": "c1"})
        outbox.publish(publisher, "calls", "call.answered", {"id": "c1"})
        assert OutboxMessage.select().count() == 0  # one INSERT, just before the commit
    # sent once, after the commit, while both rows were stored
    assert publisher.seen == [(False, 2)]
    assert sent(redis_client) == [("call.ringing", {"id": "c1"}), ("call.answered", {"id": "c1"})]
    assert OutboxMessage.select().count() == 0


def test_a_savepoint_that_rolls_back_drops_only_its_news(publisher, redis_client):
    outbox = Outbox()
    with outbox.atomic():
        outbox.publish(publisher, "calls", "call.ringing", {"id": "kept"})
        with pytest.raises(ValueError):
            with outbox.savepoint():
                outbox.publish(publisher, "calls", "call.ended", {"id": "dropped"})
                raise ValueError("handler failed")
    assert sent(redis_client) == [("call.ringing", {"id": "kept"})]


def test_nested_atomic_waits_for_the_outermost_commit(publisher, redis_client):
    outer = Outbox()
    with outer.atomic():
        inner = Outbox()
        with inner.atomic():
            inner.publish(publisher, "calls", "call.initiated", {"id": "c1"})
        with outer.atomic():
            outer.publish(publisher, "calls", "call.ringing", {"id": "c1"})
        with pytest.raises(KeyError):
            with Outbox().atomic() as failing:
                failing.publish(publisher, "calls", "call.ended", {"id": "c1"})
                raise KeyError("rolled back")
        assert sent(redis_client) == []  # nothing before the outermost commit
    assert sent(redis_client) == [("call.initiated", {"id": "c1"}), ("call.ringing", {"id": "c1"})]
    assert OutboxMessage.select().count() == 0


@pytest.fixture
def relays():
    """Start relays in the background; stopped after the test."""
    started = []

    def start(relay):
        started.append(relay)
        threading.Thread(target=relay.run, daemon=True).start()
        return relay
    yield start
    for relay in started:
        relay.stop()


@pytest.fixture
def own_redis(tmp_path):
    """A private redis-server this test may stop and start again on the same port."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def test_news_written_while_redis_is_down_is_sent_in_order_once_it_answers(outbox_db, own_redis,
                                                                           relays):
    conn = make_redis(own_redis.url)
    publisher = Publisher(conn)
    own_redis.stop()
    for status in ("call.ringing", "call.answered", "call.ended"):
        outbox = Outbox()
        with outbox.atomic():
            outbox.publish(publisher, "calls", status, {"id": "c1"})
            if status == "call.ended":
                outbox.enqueue(conn, "quality", "workers.quality.summarize_call", "c1")
    # nothing was lost: the news waits in the database, in order
    assert [(r.kind, r.name) for r in OutboxMessage.select().order_by(OutboxMessage.id)] == [
        ("publish", "call.ringing"), ("publish", "call.answered"), ("publish", "call.ended"),
        ("enqueue", "workers.quality.summarize_call")]

    own_redis.start()
    # A commit made now must not overtake the older news: it goes out after it.
    outbox = Outbox()
    with outbox.atomic():
        outbox.publish(publisher, "calls", "call.updated", {"id": "c1"})
    relays(OutboxRelay(publisher, conn, idle=0.2))
    wait_until(lambda: OutboxMessage.select().count() == 0, 10, message="the relay to send")
    assert [t for t, _ in sent(conn)] == ["call.ringing", "call.answered", "call.ended",
                                          "call.updated"]
    jobs = Queue("quality", connection=conn).jobs
    assert [(job.func_name, job.args) for job in jobs] == [
        ("workers.quality.summarize_call", ("c1",))]


def test_the_relay_sends_news_left_behind_without_a_restart(outbox_db, own_redis, relays):
    conn = make_redis(own_redis.url)
    publisher = Publisher(conn)
    relays(OutboxRelay(publisher, conn, idle=0.2, max_backoff=0.3))
    own_redis.stop()
    for n in range(5):
        with Outbox().atomic() as outbox:
            outbox.publish(publisher, "calls", "call.updated", {"n": n})
    assert OutboxMessage.select().count() == 5
    own_redis.start()  # the same relay, still running, sends them once Redis answers
    wait_until(lambda: OutboxMessage.select().count() == 0, 10, message="the relay to send")
    assert [data["n"] for _, data in sent(conn)] == [0, 1, 2, 3, 4]


def commit_waiting_for_the_relay(publisher, redis_client, monkeypatch):
    """A commit of call.ended c1 stored and waiting for the send lock, which the relay
    holds; returns (the relay's lock, the committing greenlet)."""
    monkeypatch.setattr(outbox_module, "LOCK_WAIT", 5.0)
    relay_lock = SendLock(redis_client)
    assert relay_lock.acquire()

    def commit():
        with Outbox().atomic() as outbox:
            outbox.publish(publisher, "calls", "call.ended", {"id": "c1"})
    committer = gevent.spawn(commit)
    wait_until(lambda: OutboxMessage.select().count() == 1, 5, 0.01, "the commit")
    return relay_lock, committer


def test_news_the_relay_sent_while_a_commit_waited_for_the_lock_goes_out_once(
        publisher, redis_client, monkeypatch):
    relay_lock, committer = commit_waiting_for_the_relay(publisher, redis_client, monkeypatch)
    # the relay, holding the lock, sends the committed row before the committer can
    assert send_stored(publisher, redis_client, 100) == (1, False)
    relay_lock.release()
    committer.join(5)
    assert sent(redis_client) == [("call.ended", {"id": "c1"})]


def test_a_commit_never_takes_newer_news_under_its_old_ids_for_its_own(
        publisher, redis_client, monkeypatch):
    """The relay sent a waiting commit's rows and emptied the table; another process stored
    news before the commit got the lock. Its rows must not pass for the commit's (SQLite
    reused ids once the table was empty): they go out once, after, and nothing is lost."""
    relay_lock, committer = commit_waiting_for_the_relay(publisher, redis_client, monkeypatch)
    first_id = OutboxMessage.select().get().id
    assert send_stored(publisher, redis_client, 100) == (1, False)  # the relay sent it
    with db.atomic():  # another process's commit, its own send still to come
        outbox_module.store([("publish", publisher, "calls", "call.ended",
                              outbox_module.encode_data({"id": "c2"}))])
    assert OutboxMessage.select().get().id > first_id  # an id never given before
    relay_lock.release()
    committer.join(5)
    assert OutboxMessage.select().count() == 1  # c2 waits for its sender, not deleted
    assert send_stored(publisher, redis_client, 100) == (1, False)
    assert sent(redis_client) == [("call.ended", {"id": "c1"}), ("call.ended", {"id": "c2"})]
