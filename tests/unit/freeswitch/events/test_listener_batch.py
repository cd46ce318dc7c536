"""The events process's batch apply, in process: one transaction per batch (a savepoint per
event once an event failed in it), and news only of what was stored."""
import json

import peewee
import pytest

from freeswitch.events.listener import EventListener
from models.outbox import OutboxMessage
from models.queue import Queue
from services.publisher import Publisher
from services.redis_client import stream_key


def announce(publisher):
    def handler(event, outbox):
        outbox.publish(publisher, "calls", "call.updated", {"id": event["id"]})
    return handler


def announce_then_fail(publisher):
    def handler(event, outbox):
        outbox.publish(publisher, "calls", "call.updated", {"id": event["id"]})
        raise RuntimeError("the handler failed after queueing its news")
    return handler


def announced_ids(redis_conn):
    return [json.loads(fields[b"m"])["data"]["id"]
            for _, fields in redis_conn.xrange(stream_key("calls"))]


def test_an_event_whose_savepoint_rolls_back_announces_nothing(bound_db, redis_client):
    publisher = Publisher(redis_client)
    listener = EventListener({}, {"GOOD": announce(publisher),
                                  "BAD": announce_then_fail(publisher)}, reconcile=None)
    listener.apply_batch([("GOOD", {"id": "e1"}), ("BAD", {"id": "e2"}),
                          ("GOOD", {"id": "e3"}), ("BAD", {"id": "e4"}),
                          ("GOOD", {"id": "e5"})])
    # the failed events' news never reaches Redis; the others' does, in order
    assert announced_ids(redis_client) == ["e1", "e3", "e5"]
    assert listener.events_applied == 5
    assert OutboxMessage.select().count() == 0  # sent, then deleted


def test_a_batch_announces_after_its_commit_even_when_redis_is_slow_to_return(bound_db,
                                                                               redis_server):
    redis_server.stop()
    try:
        conn = redis_server.client(socket_timeout=1, socket_connect_timeout=1)
        publisher = Publisher(conn)
        listener = EventListener({}, {"GOOD": announce(publisher)}, reconcile=None)
        listener.apply_batch([("GOOD", {"id": "d1"}), ("GOOD", {"id": "d2"})])
        # Redis was down: the batch still committed and its news waits in the database
        assert [json.loads(r.payload)["id"] for r in OutboxMessage.select()] == ["d1", "d2"]
    finally:
        redis_server.start()
    conn.flushall()
    listener.apply_batch([("GOOD", {"id": "d3"})])
    # the next batch does not overtake the news that waited
    assert announced_ids(conn) == ["d1", "d2", "d3"]
    assert OutboxMessage.select().count() == 0


def test_an_urgent_action_goes_out_before_the_rest_of_the_batch_is_applied(bound_db):
    """A phone to ring (Outbox.add_first) does not wait for the events behind it."""
    seen = []

    def applied(event, outbox):
        seen.append(("applied", event["id"]))

    def rings(event, outbox):
        seen.append(("applied", event["id"]))
        outbox.add(seen.append, ("after-commit", event["id"]))
        outbox.add_first(seen.append, ("ring", event["id"]))

    listener = EventListener({}, {"GOOD": applied, "OFFER": rings}, reconcile=None)
    batch = [("GOOD", {"id": "e1"}), ("OFFER", {"id": "e2"}), ("GOOD", {"id": "e3"})]
    listener.apply_batch(batch)
    assert seen == [("applied", "e1"), ("applied", "e2"), ("ring", "e2"),
                    ("after-commit", "e2"), ("applied", "e3")]
    assert listener.events_applied == 3 and batch == []


def stores_a_queue(calls):
    def handler(event, outbox):
        calls.append(event["id"])
        Queue.create(id=event["id"], name=event["id"])
    return handler


def test_a_failing_event_leaves_the_others_stored_once_and_itself_not_at_all(bound_db):
    """The batch goes first without a savepoint per event; when one fails it is applied
    again event by event: what the first attempt wrote is not there twice."""
    applied = []
    listener = EventListener({}, {"GOOD": stores_a_queue(applied),
                                  "BAD": lambda event, outbox: (
                                      stores_a_queue(applied)(event, outbox), 1 / 0)},
                             reconcile=None)
    Queue.delete().execute()
    listener.apply_batch([("GOOD", {"id": "q1"}), ("BAD", {"id": "q2"}),
                          ("GOOD", {"id": "q3"})])
    assert sorted(q.id for q in Queue.select()) == ["q1", "q3"]
    assert listener.events_applied == 3
    assert applied == ["q1", "q2", "q1", "q2", "q3"]  # the second time, event by event


def test_a_database_failure_keeps_the_whole_batch_for_another_attempt(bound_db, redis_client):
    """The database failing is no event's fault: no event is skipped for it, the batch
    stays whole (run_writer applies it again) and nothing of it was announced."""
    publisher = Publisher(redis_client)
    down = [True]

    def flaky(event, outbox):
        outbox.publish(publisher, "calls", "call.updated", {"id": event["id"]})
        if down[0] and event["id"] == "f2":
            raise peewee.OperationalError("server closed the connection unexpectedly")

    listener = EventListener({}, {"EV": flaky}, reconcile=None)
    batch = [("EV", {"id": "f1"}), ("EV", {"id": "f2"}), ("EV", {"id": "f3"})]
    with pytest.raises(peewee.OperationalError):
        listener.apply_batch(batch)
    assert len(batch) == 3 and listener.events_applied == 0
    assert announced_ids(redis_client) == []
    down[0] = False
    listener.apply_batch(batch)
    assert announced_ids(redis_client) == ["f1", "f2", "f3"]
