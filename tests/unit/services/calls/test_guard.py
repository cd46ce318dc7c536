"""Two writers, one call (the API's end and FreeSWITCH's hangup at the same moment): the
move is recorded once, by whoever stored it first, and the other applies on what it finds."""
import uuid

import pytest

from models import Call, CallEvent, utcnow
from models.db import make_database
from services.calls.guard import CallChangedMeanwhile
from services.calls.service import SOURCE_FS, CallService
from services.outbox import Outbox
from services.publisher import Publisher


@pytest.fixture
def calls(bound_db, redis_client):
    CallEvent.delete().execute()
    Call.delete().execute()
    return CallService(Publisher(redis_client), commands=None, config={})


def other_writer_ends(db_url, call_id):
    """Another process (the events process) ends the call and commits."""
    other = make_database(db_url)
    with other.connection_context():
        other.execute_sql("UPDATE call SET status = 'completed' WHERE id = %s" % other.param,
                          (call_id,))
    other.close()


def test_a_move_over_a_status_that_changed_meanwhile_is_refused(calls, db_url):
    call = Call.create(fs_uuid=str(uuid.uuid4()), status="in-progress", answered_at=utcnow())
    stale = Call.get_by_id(call.id)  # read before the other writer commits
    other_writer_ends(db_url, call.id)
    with pytest.raises(CallChangedMeanwhile):
        with Outbox().atomic() as outbox:
            calls.transition(stale, "completed", SOURCE_FS, "CHANNEL_HANGUP_COMPLETE", outbox)
    assert CallEvent.select().where(CallEvent.call == call.id).count() == 0


def test_the_api_end_after_a_concurrent_hangup_is_the_idempotent_one(calls, db_url):
    call = Call.create(fs_uuid=None, status="in-progress", answered_at=utcnow())
    first = [True]
    real_get = calls.get

    def get_then_race(call_id):
        loaded = real_get(call_id)
        if first[0]:  # FreeSWITCH's hangup lands between our read and our write
            first[0] = False
            other_writer_ends(db_url, call_id)
        return loaded

    calls.get = get_then_race
    ended = calls.end(call.id, notes="wrap-up note")
    assert (ended.status, ended.notes) == ("completed", "wrap-up note")
    moves = [(e.from_status, e.to_status) for e in CallEvent.select().where(
        CallEvent.call == call.id)]
    assert ("in-progress", "completed") not in moves  # the other writer's move, not ours


def test_a_request_chosen_as_a_deadlocks_victim_runs_again_and_both_writers_land(
        calls, db_url):
    """PostgreSQL: a request and the events process lock two rows in opposite orders (the
    call and its agent); PostgreSQL rolls one back. The request's transaction runs again
    once the other side went on, instead of answering 503."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: no deadlock between rows")
    import gevent
    import gevent.event

    from gevent_setup import make_db_cooperative
    from models import db
    from services.calls.guard import retried
    make_db_cooperative()
    x, y = (Call.create(fs_uuid=str(uuid.uuid4())).id for _ in range(2))
    a_locked, b_locked = gevent.event.Event(), gevent.event.Event()
    runs = []
    mark = db.param

    def request():
        runs.append(1)
        with db.atomic():
            db.execute_sql(f"UPDATE call SET notes = 'request' WHERE id = {mark}", (x,))
            a_locked.set()
            if len(runs) == 1:
                b_locked.wait(5)
            db.execute_sql(f"UPDATE call SET notes = 'request' WHERE id = {mark}", (y,))

    def events_process():
        other = make_database(db_url)
        with other.connection_context(), other.atomic():
            other.execute_sql(f"UPDATE call SET caller_id = 'events' WHERE id = {mark}", (y,))
            b_locked.set()
            a_locked.wait(5)
            gevent.sleep(0.3)  # the request waits first, so it is the one PostgreSQL picks
            other.execute_sql(f"UPDATE call SET caller_id = 'events' WHERE id = {mark}", (x,))
        other.close()

    other = gevent.spawn(events_process)
    retried(request)
    other.get(timeout=10)
    assert len(runs) == 2
    assert [(c.notes, c.caller_id) for c in Call.select().where(Call.id.in_([x, y]))] == [
        ("request", "events"), ("request", "events")]
