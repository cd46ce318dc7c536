"""Inbound route matching on a real database (SQLite, and PostgreSQL when reachable): an
exact number beats every prefix, a longer prefix beats a shorter one, and a number no
route knows goes to INBOUND_DEFAULT_QUEUE, or nowhere."""
import pytest

from models.queue import InboundRoute, Queue
from services.queues.routes import is_number, match_route


@pytest.fixture
def routes(bound_db):
    InboundRoute.delete().execute()
    Queue.delete().execute()
    Queue.create(id="sales", name="Sales")
    Queue.create(id="fallback", name="Everything else")
    made = {}
    for key, match, number, target_type, target in (
            ("fr", "prefix", "+33", "queue", "sales"),
            ("paris", "prefix", "+331", "queue", "sales"),
            ("paris-hq", "prefix", "+33123", "agent", "ann"),
            ("desk", "exact", "+33123456789", "number", "+15550001111"),
            ("desk-prefix", "prefix", "+33123456789", "queue", "sales"),
            ("local", "exact", "1000", "queue", "sales")):
        made[key] = InboundRoute.create(match=match, number=number, target_type=target_type,
                                        target=target, name=key)
    yield made
    InboundRoute.delete().execute()
    Queue.delete().execute()


@pytest.mark.parametrize("number, expected", [
    ("+33123456789", "desk"),        # exact beats the equally long prefix
    ("+331234567890", "desk-prefix"),  # longer than the exact one: the longest prefix
    ("+33123000000", "paris-hq"),
    ("+33199999999", "paris"),
    ("+33612345678", "fr"),
    ("1000", "local"),
])
def test_the_most_specific_route_wins(routes, number, expected):
    assert match_route(number).id == routes[expected].id


@pytest.mark.parametrize("number", ["10001", "100", "+34123456789", "33123456789", "", None,
                                    "x" * 100])
def test_an_unknown_number_matches_nothing_without_a_default(routes, number):
    assert match_route(number) is None


def test_the_default_queue_takes_what_no_route_matches(routes, caplog):
    route = match_route("+4420000000", default_queue="fallback")
    assert (route.id, route.match, route.target_type, route.target) == (
        None, "default", "queue", "fallback")
    # a route that matches still wins over the default
    assert match_route("+33612345678", default_queue="fallback").id == routes["fr"].id
    # a default naming no queue is no default: the call stays parked, with a warning
    assert match_route("+4420000000", default_queue="gone") is None
    assert "INBOUND_DEFAULT_QUEUE names queue 'gone'" in caplog.text


def test_deleting_a_route_falls_back_to_the_next_most_specific(routes):
    routes["desk"].delete_instance()
    assert match_route("+33123456789").id == routes["desk-prefix"].id
    routes["desk-prefix"].delete_instance()
    routes["paris-hq"].delete_instance()
    assert match_route("+33123456789").id == routes["paris"].id


@pytest.mark.parametrize("text, ok", [
    ("+33123456789", True), ("1000", True), ("1", True), ("+" + "1" * 31, True),
    ("1" * 32, True), ("+" + "1" * 32, False), ("1" * 33, False), ("", False), ("+", False),
    ("++33", False), ("33+1", False), ("12 34", False), ("12-34", False), ("1234\n", False),
    ("abc", False), ("*1", False), (None, False), (1234, False),
])
def test_what_a_route_number_may_be(text, ok):
    assert is_number(text) is ok
