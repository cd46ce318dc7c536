"""The envelope publisher under every domain notifier: Redis pub/sub, kept in a capped stream for resume."""
import datetime
import json
import logging

import redis

from services import redis_client

logger = logging.getLogger(__name__)

CHANNELS = ("calls", "recordings", "sip", "metrics", "performance")

# INCR the channel's sequence, keep the envelope in the stream under that id
# and publish it, atomically, so stream order == publish order == id order.
_PUBLISH_LUA = """
local seq = redis.call('INCR', KEYS[1])
local env = string.gsub(ARGV[1], '"id":0', '"id":' .. seq, 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-1', 'm', env)
redis.call('PUBLISH', ARGV[2], env)
return seq
"""


def envelope(channel, event_type, data, seq=0, ts=None):
    ts = ts or datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    return {"channel": channel, "type": event_type, "id": seq, "ts": ts, "data": data}


class Publisher:
    """Publishes domain events; callers invoke it only after their commit."""

    def __init__(self, redis_conn, history=1000):
        self.redis = redis_conn
        self.history = history
        self._script = redis_conn.register_script(_PUBLISH_LUA)

    def _call_args(self, channel, event_type, data):
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel}")
        # "id":0 is placed first in the JSON so the script can fill in the sequence.
        body = json.dumps(envelope(channel, event_type, data), separators=(",", ":"),
                          default=str)
        body = '{"id":0,' + body[1:].replace(',"id":0', "", 1)
        return dict(keys=[redis_client.seq_key(channel), redis_client.stream_key(channel)],
                    args=[body, redis_client.pubsub_channel(channel), self.history])

    def publish(self, channel, event_type, data):
        """Publish one message; returns its sequence id, or None if Redis is down."""
        call_args = self._call_args(channel, event_type, data)
        try:
            return int(self._script(**call_args))
        except redis.RedisError as exc:
            logger.warning("live feed degraded: could not publish %s on %s: %s",
                           event_type, channel, exc)
            return None

    def publish_many(self, messages):
        """Publish (channel, type, data) messages in order, in one round trip."""
        if len(messages) == 1:
            return [self.publish(*messages[0])]
        try:
            try:
                return self._evalsha_pipeline(messages)
            except redis.exceptions.NoScriptError:
                self.redis.script_load(_PUBLISH_LUA)  # Redis restarted and forgot it
                return self._evalsha_pipeline(messages)
        except redis.RedisError as exc:
            logger.warning("live feed degraded: could not publish %d messages: %s",
                           len(messages), exc)
            return None

    def _evalsha_pipeline(self, messages):
        # EVALSHA directly: a pipelined Script would first ask SCRIPT EXISTS,
        # a second round trip per batch.
        pipe = self.redis.pipeline(transaction=False)
        for channel, event_type, data in messages:
            call_args = self._call_args(channel, event_type, data)
            pipe.evalsha(self._script.sha, 2, *call_args["keys"], *call_args["args"])
        return [int(seq) for seq in pipe.execute()]
