"""Inbound route matching: which route a dialled number takes.

An exact route for the number beats every prefix route; among prefix routes the
longest prefix that starts the number wins. Numbers are compared as given (a
leading + is a character like any other: "+3312" does not match "003312...").
When nothing matches, the `INBOUND_DEFAULT_QUEUE` setting (when set) names the
queue: match_route returns an unsaved route for it (id None, match "default").
"""
import logging
import re

from models import fastsql
from models.queue import MATCH_EXACT, MATCH_PREFIX, TARGET_QUEUE, InboundRoute, Queue

logger = logging.getLogger(__name__)

MATCH_DEFAULT = "default"
NUMBER_PATTERN = r"^(\+[0-9]{1,31}|[0-9]{1,32})$"
NUMBER_HELP = "digits with an optional leading +, 1-32 characters"
_NUMBER = re.compile(NUMBER_PATTERN)


def is_number(text):
    return isinstance(text, str) and _NUMBER.fullmatch(text) is not None


def _prefixes(number):
    return [number[:length] for length in range(1, len(number) + 1)]


def find_route(number):
    """The most specific stored route for number, or None.

    One query for the exact route and every prefix route that starts the number; its SQL
    is built once per number length (the events process routes every inbound call)."""
    number = (number or "").strip()
    if not number or len(number) > 64:
        return None
    prefixes = _prefixes(number)
    candidates = fastsql.select_rows(
        InboundRoute, ("route", len(prefixes)), lambda: InboundRoute.select().where(
            ((InboundRoute.match == MATCH_EXACT) & (InboundRoute.number == number))
            | ((InboundRoute.match == MATCH_PREFIX) & InboundRoute.number.in_(prefixes))),
        [MATCH_EXACT, number, MATCH_PREFIX, *prefixes])
    if not candidates:
        return None
    return max(candidates, key=lambda route: (route.match == MATCH_EXACT, len(route.number)))


def default_route(default_queue):
    """An unsaved route sending to the default queue, or None when there is none (or it
    names no queue: then the call stays parked, logged at warning)."""
    if not default_queue:
        return None
    if fastsql.select_one(Queue, "id", default_queue) is None:
        logger.warning("INBOUND_DEFAULT_QUEUE names queue %r, which does not exist",
                       default_queue)
        return None
    return InboundRoute(id=None, match=MATCH_DEFAULT, number="", target_type=TARGET_QUEUE,
                        target=default_queue, name="default (INBOUND_DEFAULT_QUEUE)")


def match_route(dialled_number, default_queue=None):
    """The route a call to dialled_number takes: exact, else the longest prefix, else the
    default queue's route when default_queue is given and exists, else None."""
    route = find_route(dialled_number)
    if route is None:
        route = default_route(default_queue)
    if route is None:
        logger.warning("no inbound route for %r and no default queue: the call stays parked",
                       dialled_number)
    return route
