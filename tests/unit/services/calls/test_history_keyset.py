"""Keyset paging of the call history (services/calls/history.py) on a real database: walking
by cursor, in either order, with or without a filter, returns every call exactly once in
(created_at, id) order, however many calls share an instant."""
import datetime
import uuid

import pytest

from models import Call
from services.calls.history import history_query


@pytest.fixture
def calls(bound_db):
    """45 calls over 9 instants (5 per instant, so the id breaks ties), 3 agents."""
    Call.delete().execute()
    start = datetime.datetime(2026, 3, 1, 12, 0, 0, 250000)
    made = []
    for n in range(45):
        made.append(Call.create(id=str(uuid.uuid4()), agent_id=f"keyset-{n % 3}",
                                status="completed",
                                created_at=start + datetime.timedelta(seconds=n // 5)))
    yield made
    Call.delete().execute()


def walk(filters, page_size):
    """Every page by cursor (the last row of a page is the next cursor), as the API does."""
    seen, cursor = [], None
    while True:
        query = history_query(dict(filters, **({"cursor": cursor} if cursor else {})))
        page = list(query.limit(page_size))
        seen += [call.id for call in page]
        if len(page) < page_size:
            return seen
        cursor = (page[-1].created_at, page[-1].id)


@pytest.mark.parametrize("sort", ["-created_at", "created_at"])
@pytest.mark.parametrize("page_size", [1, 4, 5, 7])
def test_walking_by_cursor_gives_every_call_once_in_order(calls, sort, page_size):
    expected = sorted(calls, key=lambda c: (c.created_at, c.id), reverse=sort == "-created_at")
    assert walk({"sort": sort}, page_size) == [c.id for c in expected]
    mine = [c for c in expected if c.agent_id == "keyset-1"]
    assert walk({"sort": sort, "agent_id": "keyset-1"}, page_size) == [c.id for c in mine]


def test_a_cursor_in_the_middle_of_a_tie_continues_within_it(calls):
    newest_first = sorted(calls, key=lambda c: (c.created_at, c.id), reverse=True)
    middle = newest_first[7]  # the 3rd of the 5 calls of its instant
    after = history_query({"cursor": (middle.created_at, middle.id)})
    assert [c.id for c in after.limit(5)] == [c.id for c in newest_first[8:13]]
    oldest_first = newest_first[::-1]
    middle = oldest_first[12]
    after = history_query({"cursor": (middle.created_at, middle.id), "sort": "created_at"})
    assert [c.id for c in after.limit(5)] == [c.id for c in oldest_first[13:18]]
