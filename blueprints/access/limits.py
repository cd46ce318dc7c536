"""Rate limits (flask-limiter in Redis): RATELIMIT_DEFAULT per key, RATELIMIT_ANONYMOUS per IP
for callers without valid credentials.

When Redis is down flask-limiter counts in the memory of each web process (the same
limits, enforced per process instead of cluster-wide) and goes back to Redis when it
answers again; a storage error never fails a request ("fail open" with a local safety net).
"""
import time

import redis
from flask import current_app, request
from flask_limiter import HeaderNames, Limit, Limiter

from blueprints.access.identity import current_principal
from services.recordings.signing import RecordingUrlSigner

LIMITER_RETRY_HEADER = "X-RateLimit-Retry-After"
EXTENSION = "cc_limiter"


def _key_of_caller():
    return f"key:{current_principal().key_id}"


def _key_of_address():
    return f"ip:{request.remote_addr}"


def _is_anonymous():
    return current_principal() is None


def _is_authenticated():
    return current_principal() is not None


# The API docs page, its assets and the spec: static text, not counted (a docs page
# loads a dozen files; reading the docs must not use up the anonymous budget).
UNLIMITED_ENDPOINTS = frozenset({"health.Health", "api-docs.openapi_json", "docs.page",
                                 "docs.asset"})
SIGNED_RECORDING_ENDPOINT = "signed_recordings.signed_audio"


def _signed_recording_url():
    """A signed recording URL with a valid token is authorised by its signature: the
    anonymous limit does not count it (a player seeking sends many Range requests)."""
    if request.endpoint != SIGNED_RECORDING_ENDPOINT:
        return False
    token = (request.view_args or {}).get("token", "")
    return RecordingUrlSigner(current_app.config["SECRET_KEY"]).is_valid(token)


def _exempt_from_limits():
    return (request.method == "OPTIONS" or request.endpoint in UNLIMITED_ENDPOINTS
            or _signed_recording_url())


def make_limiter(app):
    cfg = app.config
    # Both limits count across all routes (shared scope "api"); passing them as
    # default_limits also stops flask-limiter from reading RATELIMIT_DEFAULT from
    # the config as a per-route, per-IP limit of its own.
    limiter = Limiter(
        key_func=_key_of_address,
        default_limits=[
            Limit(cfg.get("RATELIMIT_DEFAULT", "1000 per minute"), key_function=_key_of_caller,
                  exempt_when=_is_anonymous, scope="api", shared=True),
            Limit(cfg.get("RATELIMIT_ANONYMOUS", "100 per 15 minutes"),
                  key_function=_key_of_address, exempt_when=_is_authenticated, scope="api",
                  shared=True),
        ],
        storage_uri=cfg["REDIS_URL"],
        storage_options={"socket_connect_timeout": 1.0, "socket_timeout": 1.0,
                         "key_prefix": "cc:ratelimit"},
        strategy="sliding-window-counter",
        headers_enabled=True,
        header_name_mapping={HeaderNames.RETRY_AFTER: LIMITER_RETRY_HEADER},
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        enabled=cfg.get("RATELIMIT_ENABLED", True),
    )
    limiter.request_filter(_exempt_from_limits)
    return limiter


def install_limiter(app):
    """The limiter's before_request runs where this is called in the chain."""
    limiter = make_limiter(app)
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter
    return limiter


def drop_limiter_retry_hint(response):
    """flask-limiter would put (or stretch) Retry-After on every response; it writes it under
    LIMITER_RETRY_HEADER instead, dropped here, so Retry-After keeps what views and the
    429 handler mean by it (e.g. 503 "FreeSWITCH is down, retry in 5 s")."""
    response.headers.pop(LIMITER_RETRY_HEADER, None)
    return response


def seconds_until_reset():
    """Seconds until the limit just exceeded lets the caller in again (60 when unknown)."""
    limiter = current_app.extensions.get(EXTENSION)
    limit = limiter.current_limit if limiter is not None else None
    try:
        reset_at = limit.reset_at if limit is not None else None
    except (redis.RedisError, OSError):  # storage trouble: a generic hint is better than none
        reset_at = None
    return 60 if reset_at is None else max(1, int(reset_at - time.time()))
