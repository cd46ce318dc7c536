"""The one envelope publisher under the notifiers: Redis pub/sub, kept in a capped stream."""
import datetime
import json
import logging

import redis

from services import redis_client

logger = logging.getLogger(__name__)

CHANNELS = ("calls", "recordings", "sip", "metrics", "performance", "agents", "queues",
            "webhooks")

# INCR the channel's sequence, keep the envelope in the stream under that id
# and publish it, atomically, so stream order == publish order == id order.
_PUBLISH_LUA = """
local seq = redis.call('INCR', KEYS[1])
local env = string.gsub(ARGV[1], '"id":0', '"id":' .. seq, 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-1', 'm', env)
redis.call('PUBLISH', ARGV[2], env)
return seq
"""


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def envelope(channel, event_type, data, seq=0, ts=None):
    return {"channel": channel, "type": event_type, "id": seq, "ts": ts or _now(), "data": data}


class EncodedJSON(str):
    """A message's data already encoded (the outbox stores it so): published as it is."""


def encode_data(data):
    if isinstance(data, EncodedJSON):
        return data
    return EncodedJSON(json.dumps(data, separators=(",", ":"), default=str))


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
        head = json.dumps({"channel": channel, "type": event_type, "ts": _now()},
                          separators=(",", ":"))
        body = '{"id":0,' + head[1:-1] + ',"data":' + encode_data(data) + "}"
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
