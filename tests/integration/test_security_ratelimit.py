"""Rate limits in Redis: per key for callers with a key, per IP for everyone else.

A stack of its own with small limits (5 anonymous requests, 8 per key, per
minute) so that the limits are reached in a few requests.
"""
import uuid

import pytest

from services.auth import create_key

ANONYMOUS_LIMIT = 5
KEY_LIMIT = 8


@pytest.fixture(scope="module")
def limited(stack_factory, db_url, sim, redis_server):
    client = redis_server.client()
    for key in client.scan_iter("cc:ratelimit*"):
        client.delete(key)  # counters of earlier runs on this session's Redis
    return stack_factory(db_url, sim, events=False, RATELIMIT_ENABLED="true",
                         RATELIMIT_ANONYMOUS=f"{ANONYMOUS_LIMIT} per minute",
                         RATELIMIT_DEFAULT=f"{KEY_LIMIT} per minute")


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def test_callers_without_a_valid_key_share_a_small_budget_per_ip(limited):
    # bad keys count as anonymous: guessing keys costs the same budget
    guesses = [bearer(f"cck_guess{n}") if n % 2 else {"Authorization": None}
               for n in range(ANONYMOUS_LIMIT)]
    answers = [limited.get("/api/calls/history", headers=headers) for headers in guesses]
    assert [r.status_code for r in answers] == [401] * ANONYMOUS_LIMIT
    refused = limited.get("/api/calls/history", headers={"Authorization": None})
    assert refused.status_code == 429
    assert refused.json()["code"] == 429 and "rate limit" in refused.json()["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == str(ANONYMOUS_LIMIT)
    # the load balancer's health check is never limited
    assert all(limited.get("/api/health", headers={"Authorization": None}).status_code == 200
               for _ in range(ANONYMOUS_LIMIT + 3))


def test_each_key_has_its_own_budget(limited):
    url = limited.env["DATABASE_URL"]
    busy = create_key("supervisor", f"busy-{uuid.uuid4().hex[:6]}", database_url=url)
    calm = create_key("supervisor", f"calm-{uuid.uuid4().hex[:6]}", database_url=url)
    answers = [limited.get("/api/calls/history", headers=bearer(busy)) for _ in range(KEY_LIMIT)]
    assert [r.status_code for r in answers] == [200] * KEY_LIMIT
    assert [r.headers["X-RateLimit-Remaining"] for r in answers][-1] == "0"
    assert not [r for r in answers if "Retry-After" in r.headers]  # only refusals say when
    over = limited.get("/api/calls/history", headers=bearer(busy))
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    assert limited.get("/api/calls/history", headers=bearer(calm)).status_code == 200
    # the budget is per key, not per IP: the anonymous budget spent above does not matter
    assert limited.get("/api/calls/history", headers=bearer(calm)).headers[
        "X-RateLimit-Limit"] == str(KEY_LIMIT)
