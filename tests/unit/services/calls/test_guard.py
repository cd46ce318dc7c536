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
