"""LeaderLock: of two processes exactly one publishes metrics; the other takes over later."""
import time

from services.live.leader import LeaderLock
from services.redis_client import make_redis

KEY = "cc:test:leader"


def test_only_one_of_two_holders_leads(redis_client):
    first, second = LeaderLock(redis_client, KEY, ttl=5), LeaderLock(redis_client, KEY, ttl=5)

    assert first.hold() is True
    assert second.hold() is False
    assert first.hold() is True  # renewing keeps it
    assert second.hold() is False


def test_release_hands_the_lead_over(redis_client):
    first, second = LeaderLock(redis_client, KEY, ttl=5), LeaderLock(redis_client, KEY, ttl=5)
    first.hold()

    first.release()

    assert second.hold() is True
    assert first.hold() is False


def test_a_lapsed_leader_is_replaced_and_cannot_renew(redis_client):
    first, second = LeaderLock(redis_client, KEY, ttl=0.2), LeaderLock(redis_client, KEY, ttl=5)
    first.hold()

    time.sleep(0.35)  # the leader died without releasing

    assert second.hold() is True
    assert first.hold() is False
    first.release()  # a former leader's release must not free the new leader's lock
    assert LeaderLock(redis_client, KEY, ttl=5).hold() is False


def test_without_redis_nobody_leads(redis_server):
    down = make_redis("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)

    assert LeaderLock(down, KEY, ttl=5).hold() is False
