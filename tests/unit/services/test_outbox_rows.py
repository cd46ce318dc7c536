"""Rows written with insert_row (a call's trail) inside an Outbox.atomic(): stored with its
commit, in the order written, and dropped with a savepoint that rolls back."""
import uuid

import pytest

from models import Call, db
from models.call import CallEvent
from services.outbox import Outbox, insert_row


def trail(call):
    return [e.event_name for e in CallEvent.select().where(CallEvent.call == call.id)
            .order_by(CallEvent.id)]


def note(call, name):
    insert_row(CallEvent, call=call.id, source="api", event_name=name, from_status="initiated",
               to_status="initiated", data={"n": name})


@pytest.fixture
def call(bound_db):
    return Call.create(fs_uuid=str(uuid.uuid4()))


def test_rows_of_a_transaction_are_stored_with_its_commit_in_order(call):
    with Outbox().atomic():
        for name in ("a", "b", "c"):
            note(call, name)
        assert trail(call) == []  # not yet: they go together, just before the commit
    assert trail(call) == ["a", "b", "c"]
    stored = CallEvent.select().where(CallEvent.call == call.id).order_by(CallEvent.id)
    assert [e.data for e in stored] == [{"n": "a"}, {"n": "b"}, {"n": "c"}]
    assert all(e.created_at is not None for e in stored)  # the model's defaults apply


def test_a_savepoint_that_rolls_back_drops_its_rows_and_keeps_the_others(call):
    with Outbox().atomic() as outbox:
        note(call, "kept-1")
        with pytest.raises(RuntimeError):
            with outbox.savepoint():
                note(call, "dropped")
                raise RuntimeError("this event failed")
        note(call, "kept-2")
    assert trail(call) == ["kept-1", "kept-2"]


def test_an_inner_outbox_that_fails_takes_its_rows_with_it(call):
    with Outbox().atomic():
        note(call, "outer")
        with pytest.raises(RuntimeError):
            with Outbox().atomic():
                note(call, "inner")
                raise RuntimeError("the inner work failed")
        with Outbox().atomic():
            note(call, "inner-ok")
    assert trail(call) == ["outer", "inner-ok"]


def test_a_failed_transaction_stores_none_of_its_rows(call):
    with pytest.raises(RuntimeError):
        with Outbox().atomic():
            note(call, "lost")
            raise RuntimeError("rolled back")
    assert trail(call) == []


def test_outside_an_outbox_a_row_is_written_at_once(call):
    with db.atomic():
        note(call, "now")
        assert trail(call) == ["now"]
    note(call, "no-transaction")
    assert trail(call) == ["now", "no-transaction"]
