"""Redis clients with short timeouts, so a Redis outage degrades instead of hanging."""
import redis

KEY_PREFIX = "cc:"


def make_redis(url, **overrides):
    """A Redis client for commands (publish, queues, rate limits)."""
    options = dict(socket_timeout=2.0, socket_connect_timeout=2.0,
                   health_check_interval=15, retry_on_timeout=False)
    options.update(overrides)
    return redis.Redis.from_url(url, **options)


def pubsub_channel(channel):
    """The Redis pub/sub channel that carries one live channel ("calls", ...)."""
    return f"{KEY_PREFIX}live:{channel}"


def stream_key(channel):
    """The capped Redis stream that keeps the last messages of a live channel."""
    return f"{KEY_PREFIX}stream:{channel}"


def seq_key(channel):
    return f"{KEY_PREFIX}seq:{channel}"
