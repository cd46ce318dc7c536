"""LeaderLock: one process of a deployment does a periodic job; another takes over when it stops."""
import logging
import uuid

import redis

from services.live.process import process_id

logger = logging.getLogger(__name__)

_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaderLock:
    """A Redis lock (SET NX PX) one process holds and renews; another takes over when it lapses."""

    def __init__(self, redis_conn, key, ttl):
        self.redis = redis_conn
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.token = f"{process_id()}:{uuid.uuid4().hex}"
        self._renew = redis_conn.register_script(_RENEW_LUA)
        self._release = redis_conn.register_script(_RELEASE_LUA)
        self.held = False

    def hold(self):
        """Renew the lock if this process holds it, else try to take it; True if held."""
        try:
            if self.held and self._renew(keys=[self.key], args=[self.token, self.ttl_ms]):
                return True
            self.held = bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except redis.RedisError as exc:
            logger.debug("leader lock %s unavailable: %s", self.key, exc)
            self.held = False
        return self.held

    def release(self):
        if not self.held:
            return
        try:
            self._release(keys=[self.key], args=[self.token])
        except redis.RedisError:
            pass
        self.held = False
