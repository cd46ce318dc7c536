"""Access control and abuse protection for every route, present and future.

`init_app(app, api)` installs, in this order for each request:

1. a request id (X-Request-ID) and a timer;
2. the caller's identity from `Authorization: Bearer <key or token>` or
   `X-API-Key` (looked up once, cached on `g`);
3. rate limits (flask-limiter in Redis): RATELIMIT_DEFAULT per key,
   RATELIMIT_ANONYMOUS per IP for callers without valid credentials;
4. the POLICY table below: 401 without valid credentials, 403 below the
   route's role, 404 for an agent on someone else's call;
5. input checks: 413 when too large, 415 when a JSON route gets another type,
   400/404 for NUL characters (PostgreSQL cannot store them);

and on the way out: security headers, CORS for FRONTEND_URL, the request id
header and one JSON access-log line. Unexpected exceptions become a JSON 500
that carries the request id.

Rate limiting when Redis is down: flask-limiter falls back to counting in the
memory of each web process (the same limits, enforced per process instead of
cluster-wide) and goes back to Redis when it answers again; a storage error
never fails a request ("fail open" with a local safety net).
"""
import json
import logging
import re
import sys
import time
import uuid

import click
import redis
from apispec import BasePlugin
from flask import current_app, g, has_request_context, request
from flask.cli import AppGroup
from flask_cors import CORS
from flask_limiter import HeaderNames, Limit, Limiter, RateLimitExceeded
from flask_smorest import abort
from simple_websocket import ConnectionClosed
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Request

from freeswitch.esl.connection import FreeSwitchUnavailable
from models import Call
from services import auth as auth_service
from services.auth import (  # noqa: F401  (can_receive: the WebSocket hub's filter)
    AUTH_DISABLED_PRINCIPAL,
    ROLES,
    ApiKeyService,
    call_owner,
    can_receive,
    database_connection,
)
from services.errors import ServiceError

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("access")

PUBLIC = "public"
WEBSOCKET = "websocket"  # the handshake may carry no credentials: the hub asks for them
AGENT, SUPERVISOR, ADMIN = ROLES

# Who may do what: (flask endpoint, method) -> minimum role.
# Anything not listed needs admin: a new route is safe before anyone thinks
# about it, and tests/test_authz_matrix.py fails until it is listed here.
# For agents, a route's `call_id` (or `recording_id`) must belong to them,
# otherwise 404; list routes narrow themselves with agent_scope().
POLICY = {
    ("health.Health", "GET"): PUBLIC,
    ("api-docs.openapi_json", "GET"): PUBLIC,
    ("api-docs.openapi_swagger_ui", "GET"): PUBLIC,
    ("health.HealthDetailed", "GET"): ADMIN,
    ("auth.AuthToken", "POST"): AGENT,
    ("auth.WhoAmI", "GET"): AGENT,
    # calls: agents start, see, update and end their own; only admins delete
    ("calls.CallStart", "POST"): AGENT,
    ("calls.CallHistory", "GET"): AGENT,
    ("calls.CallById", "GET"): AGENT,
    ("calls.CallById", "DELETE"): ADMIN,
    ("calls.CallUpdate", "PUT"): AGENT,
    ("calls.CallEnd", "POST"): AGENT,
    ("calls.CallEvents", "GET"): AGENT,
    # recordings: agents record and play their own calls; only admins delete.
    # The view narrows an agent's list to its own calls with scoped_to_agent().
    ("recordings.RecordingList", "GET"): AGENT,
    ("recordings.RecordingStart", "POST"): AGENT,
    ("recordings.RecordingStop", "POST"): AGENT,
    ("recordings.RecordingAudio", "GET"): AGENT,
    ("recordings.RecordingAudio", "DELETE"): ADMIN,
    # live figures: the same as the metrics channel, which agents do not get
    ("metrics.RealtimeMetrics", "GET"): SUPERVISOR,
    # analytics: CallStatistics becomes AGENT once its view narrows with scoped_to_agent()
    ("analytics.CallStatistics", "GET"): SUPERVISOR,
    ("analytics.CallQualityTrends", "GET"): SUPERVISOR,
    # SIP: supervisors see gateways and their state (never secrets); admins change them.
    # The connectivity test sends packets to any host it is given: admin only.
    ("sip.SipProviders", "GET"): SUPERVISOR,
    ("sip.SipSettings", "GET"): SUPERVISOR,
    ("sip.SipStatus", "GET"): SUPERVISOR,
    ("sip.SipGatewayByName", "GET"): SUPERVISOR,
    ("sip.SipConfigure", "POST"): ADMIN,
    ("sip.SipCredentials", "PUT"): ADMIN,
    ("sip.SipTest", "POST"): ADMIN,
    ("sip.SipGatewayByName", "DELETE"): ADMIN,
}

AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="api"'}
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
BODY_METHODS = ("POST", "PUT", "PATCH")
WS_QUERY_CREDENTIALS = ("token", "api_key")
LIMITER_RETRY_HEADER = "X-RateLimit-Retry-After"
WS_AUTH_TIMEOUT = 10.0
WS_UNAUTHORIZED = 4401  # close code: private range, mirrors HTTP 401

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI loads its code from the CDN named in OPENAPI_SWAGGER_UI_URL and
# starts it with one inline script; only the docs page gets this policy.
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "img-src 'self' data: https://cdn.jsdelivr.net; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
DOCS_ENDPOINT = "api-docs.openapi_swagger_ui"


# ----- the policy -------------------------------------------------------------
def required_role(endpoint, method, websocket=False):
    """The POLICY entry for a route (HEAD as GET); unlisted routes need admin."""
    method = "GET" if method == "HEAD" else method
    listed = POLICY.get((endpoint, method))
    if listed is None and websocket:
        return WEBSOCKET
    return listed or ADMIN


def is_listed(endpoint, method):
    return (endpoint, method.upper()) in POLICY


def _recording_owner(recording_id):
    from models.recording import Recording  # the recordings domain owns that model
    row = (Call.select(Call.agent_id).join(Recording)
           .where(Recording.id == str(recording_id)).first())
    return row.agent_id if row else None


# view argument -> fn(value) returning the agent id that owns the resource
OWNER_LOOKUPS = {"call_id": call_owner, "recording_id": _recording_owner}


# ----- who is calling -----------------------------------------------------------
def _credential_of(req, allow_query=False):
    """The key or token a request presents, or None; query parameters only for WebSockets."""
    header = req.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else header
    if req.headers.get("X-API-Key"):
        return req.headers["X-API-Key"].strip()
    if allow_query:
        for name in WS_QUERY_CREDENTIALS:
            if req.args.get(name):
                return req.args[name]
    return None


def _is_websocket_route():
    return bool(request.url_rule is not None and getattr(request.url_rule, "websocket", False))


def _identify():
    """Look the caller up once per request; remembers whether bad credentials were sent."""
    credential = _credential_of(request, allow_query=_is_websocket_route())
    g.credentials_presented = credential is not None
    g.principal = (auth_service.authenticate(credential, current_app.config["SECRET_KEY"])
                   if credential else None)
    return g.principal


def current_principal():
    """The authenticated caller of this request (a services.auth.Principal), or None."""
    if not current_app.config.get("AUTH_ENABLED", True):
        return AUTH_DISABLED_PRINCIPAL
    if "principal" not in g:
        return _identify()
    return g.principal


def agent_scope():
    """The agent id a list must be narrowed to (agent callers), or None for everyone else."""
    principal = current_principal()
    return principal.agent_id if principal is not None and principal.is_agent else None


def scoped_to_agent(args):
    """args with agent_id forced to the caller's own for agent callers (filters, new calls)."""
    agent_id = agent_scope()
    return dict(args, agent_id=agent_id) if agent_id else args


# ----- request pipeline ---------------------------------------------------------
def _start_request():
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if REQUEST_ID_PATTERN.match(supplied) else uuid.uuid4().hex
    g.started = time.perf_counter()
    if request.method != "OPTIONS" and _rule() not in (PUBLIC, None):
        current_principal()  # database errors surface here as 503, before the limiter


def _rule():
    if request.endpoint is None:
        return None  # no such route: Flask answers 404/405
    return required_role(request.endpoint, request.method, _is_websocket_route())


def _enforce_policy():
    rule = _rule()
    if request.method == "OPTIONS" or rule in (PUBLIC, None):
        return
    if not current_app.config.get("AUTH_ENABLED", True):
        return
    principal = current_principal()
    if rule == WEBSOCKET:
        if principal is None and g.get("credentials_presented"):
            abort(401, message="invalid, expired or revoked credentials", headers=AUTHENTICATE)
        return  # no credentials yet: the hub waits for {"type": "auth", ...}
    if principal is None:
        message = ("invalid, expired or revoked credentials" if g.get("credentials_presented")
                   else "authentication required: send Authorization: Bearer <API key or token>")
        abort(401, message=message, headers=AUTHENTICATE)
    if not principal.at_least(rule):
        abort(403, message=f"this needs the {rule} role; your key has the {principal.role} role")
    if principal.is_agent:
        _check_ownership(principal)


def _check_ownership(principal):
    for name, value in (request.view_args or {}).items():
        lookup = OWNER_LOOKUPS.get(name)
        if lookup is None:
            logger.warning("agent refused on %s: no owner lookup for %r", request.endpoint, name)
            abort(403, message="agents may not use this route")
        if lookup(value) != principal.agent_id:
            # 404, not 403: an agent must not learn which other calls exist.
            noun = name.removesuffix("_id")
            abort(404, message=f"{noun} {value} not found")


_json_body_cache = {}


def _expects_json_body(endpoint, method):
    """True when the view declares a JSON body (flask-smorest @blp.arguments, location json)."""
    key = (endpoint, method)
    if key not in _json_body_cache:
        view = current_app.view_functions.get(endpoint)
        func = getattr(getattr(view, "view_class", None), method.lower(), None) or view
        params = getattr(func, "_apidoc", {}).get("arguments", {}).get("parameters", [])
        _json_body_cache[key] = any(
            isinstance(p, dict) and p.get("in") == "json"
            and p.get("content_type", "application/json").endswith("json") for p in params)
    return _json_body_cache[key]


def _has_nul(value):
    """True if a NUL character hides anywhere in parsed JSON (PostgreSQL text refuses it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _refuse_nul_characters():
    """No name, filter or text of this API contains NUL; a database would fail on it."""
    if "\x00" in request.path:
        abort(404, message="no resource has a NUL character in its name")
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        abort(400, message="query parameters must not contain NUL characters")


def _check_input():
    if request.endpoint is None:
        return
    _refuse_nul_characters()
    if request.method not in BODY_METHODS:
        return
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and request.content_length and request.content_length > limit:
        abort(413, message=f"the request body is larger than {limit} bytes")
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not (request.content_length or chunked) or not _expects_json_body(request.endpoint,
                                                                         request.method):
        return
    if not request.is_json:
        abort(415, message="send the body as JSON with Content-Type: application/json")
    # Without Content-Length werkzeug stops reading at the limit and the JSON
    # parser would call the cut body invalid (400); read it here to say 413.
    if chunked and limit and len(request.get_data(cache=True)) >= limit:
        abort(413, message=f"the request body is larger than {limit} bytes")
    if _has_nul(request.get_json(silent=True, cache=True)):
        abort(400, message="text in the body must not contain NUL characters (\\u0000)")


# ----- responses ----------------------------------------------------------------
def _security_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers["Content-Security-Policy"] = (DOCS_CSP if request.endpoint == DOCS_ENDPOINT
                                          else API_CSP)
    if request.endpoint != DOCS_ENDPOINT and response.mimetype == "application/json":
        headers.setdefault("Cache-Control", "no-store")
    if request.is_secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https":
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if "request_id" in g:
        headers["X-Request-ID"] = g.request_id
    return response


def _drop_limiter_retry_hint(response):
    """flask-limiter would put (or stretch) Retry-After on every response; it writes it under
    LIMITER_RETRY_HEADER instead, dropped here, so Retry-After keeps what views and the
    429 handler mean by it (e.g. 503 "FreeSWITCH is down, retry in 5 s")."""
    response.headers.pop(LIMITER_RETRY_HEADER, None)
    return response


def _log_request(response):
    """One JSON line per request: no query string (it may carry a WebSocket token), no key."""
    principal = g.get("principal")
    started = g.get("started")
    access_logger.info(json.dumps({
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "event": "request", "request_id": g.get("request_id"),
        "method": request.method, "path": request.path, "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        "key_name": principal.name if principal else None,
        "role": principal.role if principal else None,
        "ip": request.remote_addr, "bytes": response.calculate_content_length(),
    }, separators=(",", ":")))
    return response


def _error_body(code, status, message):
    return {"code": code, "status": status, "message": message}


def _register_error_handlers(app, api):
    @app.errorhandler(HTTPException)
    def http_error(exc):
        # flask-smorest's JSON body, plus a message for errors raised without one (404, 405).
        payload, code, headers = api.handle_http_exception(exc)
        payload.setdefault("message", exc.description)
        own_headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return payload, code, {**own_headers, **(headers or {})}  # e.g. Allow on a 405

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(exc):
        retry_after = _seconds_until_reset()
        body = _error_body(429, "Too Many Requests",
                           f"rate limit exceeded ({exc.description}); retry in {retry_after} s")
        return body, 429, {"Retry-After": str(retry_after)}

    @app.errorhandler(redis.RedisError)
    def redis_down(exc):
        # A view that needs Redis (queues, live state) degrades to a clean 503.
        logger.warning("Redis unavailable during %s %s: %s", request.method, request.path, exc)
        return (_error_body(503, "Service Unavailable", "Redis is unavailable; try again shortly"),
                503, {"Retry-After": "5"})

    @app.errorhandler(FreeSwitchUnavailable)
    def freeswitch_down(exc):
        return (_error_body(503, "Service Unavailable",
                            "FreeSWITCH is unreachable; try again shortly"),
                503, {"Retry-After": "5"})

    @app.errorhandler(Exception)
    def unexpected(exc):
        request_id = g.get("request_id")
        logger.exception("unhandled error in %s %s (request %s)", request.method, request.path,
                         request_id)
        # The id goes in the message (and the X-Request-ID header), not in a field
        # of its own: the error format documented in the spec has exactly these keys.
        return _error_body(500, "Internal Server Error",
                           f"unexpected error; quote request id {request_id} when reporting it"
                           ), 500


def _seconds_until_reset():
    limiter = current_app.extensions.get("cc_limiter")
    limit = limiter.current_limit if limiter is not None else None
    try:
        reset_at = limit.reset_at if limit is not None else None
    except (redis.RedisError, OSError):  # storage trouble: a generic hint is better than none
        reset_at = None
    return 60 if reset_at is None else max(1, int(reset_at - time.time()))


# ----- rate limits --------------------------------------------------------------
def _key_of_caller():
    principal = current_principal()
    return f"key:{principal.key_id}"


def _key_of_address():
    return f"ip:{request.remote_addr}"


def _is_anonymous():
    return current_principal() is None


def _is_authenticated():
    return current_principal() is not None


def _exempt_from_limits():
    return request.method == "OPTIONS" or request.endpoint == "health.Health"


def _make_limiter(app):
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


# ----- OpenAPI: document who may call what --------------------------------------
class PolicyDocPlugin(BasePlugin):
    """Adds security requirements, the required role and 401/403/429 to each operation."""

    def init_spec(self, spec):
        spec.components.security_scheme(
            "bearerAuth", {"type": "http", "scheme": "bearer",
                           "description": "An API key, or a token from POST /api/auth/token"})
        spec.components.security_scheme(
            "apiKeyHeader", {"type": "apiKey", "in": "header", "name": "X-API-Key"})

    def operation_helper(self, path=None, operations=None, rule=None, **kwargs):
        for method, operation in (operations or {}).items():
            if method.startswith("x-") or rule is None:
                continue
            role = required_role(rule.endpoint, method.upper())
            if role == PUBLIC:
                operation["security"] = []
                continue
            operation["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
            operation["x-required-role"] = role
            if not is_listed(rule.endpoint, method):
                operation["x-policy"] = "unlisted: admin by default"
            responses = operation.setdefault("responses", {})
            responses.setdefault(401, "UNAUTHORIZED")
            responses.setdefault(403, "FORBIDDEN")
            responses.setdefault(429, "TOO_MANY_REQUESTS")


# ----- WebSocket ----------------------------------------------------------------
def authenticate_ws(source=None):
    """The Principal of a WebSocket handshake (?token=, ?api_key= or headers), or None.

    source: the flask request (default) or a WSGI environ.
    """
    if not current_app.config.get("AUTH_ENABLED", True):
        return AUTH_DISABLED_PRINCIPAL
    if has_request_context() and (source is None or source is request
                                  or source is request.environ):
        if "principal" in g:
            return g.principal
        source = request
    req = source if isinstance(source, Request) else Request(source)
    credential = _credential_of(req, allow_query=True)
    return auth_service.authenticate(credential, current_app.config["SECRET_KEY"]) \
        if credential else None


def authenticate_ws_connection(ws, timeout=WS_AUTH_TIMEOUT):
    """The Principal of a new /ws client, or None after closing it with code 4401.

    Credentials come from the handshake (?token=, ?api_key=, Authorization,
    X-API-Key) or, for browsers that keep them out of URLs, from a first
    message {"type": "auth", "token": "..."} sent within `timeout` seconds.
    """
    principal = authenticate_ws()
    if principal is None:
        try:
            raw = ws.receive(timeout=timeout)
        except ConnectionClosed:
            return None
        principal = authenticate_ws_message(raw) if raw is not None else None
    if principal is None:
        ws.close(reason=WS_UNAUTHORIZED, message="authentication required")
    return principal


def authenticate_ws_message(message):
    """The Principal from a first WebSocket message {"type": "auth", "token": ...}, or None."""
    if not current_app.config.get("AUTH_ENABLED", True):
        return AUTH_DISABLED_PRINCIPAL
    return auth_service.authenticate_message(message, current_app.config["SECRET_KEY"])


# ----- CLI ----------------------------------------------------------------------
api_keys_cli = AppGroup("api-keys", help="Create, list and revoke API keys.")


def _cli_call(fn, *args):
    try:
        with database_connection():
            return fn(*args)
    except ServiceError as exc:
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.errors or {}).items())
        raise click.ClickException(exc.message + (f" ({details})" if details else "")) from None


@api_keys_cli.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True, help="A unique label, e.g. ops or agent-7-desk.")
@click.option("--agent-id", default=None, help="For agent keys: the agent whose calls it sees.")
def create_key_command(role, name, agent_id):
    """Create a key and print it once (stdout); only its hash is stored."""
    api_key, plaintext = _cli_call(ApiKeyService().create, role, name, agent_id)
    click.echo(plaintext)
    click.echo(f"created {api_key.role} key {api_key.name!r} (id {api_key.id}). It is shown "
               "only this once: store it now.", err=True)


@api_keys_cli.command("list")
def list_keys_command():
    """List keys (name, role, agent, prefix, state); never the keys themselves."""
    keys = _cli_call(ApiKeyService().list)
    click.echo(f"{'ID':36}  {'NAME':20} {'ROLE':10} {'AGENT':12} {'PREFIX':12} STATE")
    for key in keys:
        state = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        click.echo(f"{key.id:36}  {key.name:20} {key.role:10} {key.agent_id or '-':12} "
                   f"{key.prefix + '...':12} {state}")


@api_keys_cli.command("revoke")
@click.argument("name_or_id")
def revoke_key_command(name_or_id):
    """Revoke a key (by name or id): it and its tokens stop working at once."""
    api_key = _cli_call(ApiKeyService().revoke, name_or_id)
    click.echo(f"revoked key {api_key.name!r} (id {api_key.id})")


# ----- wiring -------------------------------------------------------------------
def _access_log_handler():
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(auth_service.REDACTING_FILTER)
    return handler


def _frontend_origins(app):
    return [o.strip().rstrip("/") for o in str(app.config.get("FRONTEND_URL", "")).split(",")
            if o.strip()]


def init_app(app, api):
    """Protect every route of app; call after Api(app), before registering blueprints."""
    hops = int(app.config.get("PROXY_FIX_HOPS", 0) or 0)
    if hops:
        # Behind N trusted proxies (Heroku's router: 1) the client's address and
        # scheme come from X-Forwarded-For/-Proto; trusting them without a proxy
        # would let anyone pick the IP that the anonymous rate limit counts.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    api.spec.plugins.append(PolicyDocPlugin())
    api.spec.plugins[-1].init_spec(api.spec)

    app.before_request(_start_request)
    app.after_request(_drop_limiter_retry_hint)  # runs after the limiter's own
    limiter = _make_limiter(app)
    limiter.init_app(app)  # its before_request runs after _start_request, before the policy
    app.extensions["cc_limiter"] = limiter
    app.before_request(_enforce_policy)
    app.before_request(_check_input)

    # after_request functions run last-registered first: the log line sees final headers.
    app.after_request(_log_request)
    app.after_request(_security_headers)
    CORS(app, origins=_frontend_origins(app), supports_credentials=False, max_age=600,
         allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key",
                        "X-Request-ID"],
         expose_headers=["X-Request-ID", "X-Pagination", "Retry-After", "X-RateLimit-Limit",
                         "X-RateLimit-Remaining", "X-RateLimit-Reset", "Content-Disposition"])
    _register_error_handlers(app, api)
    app.cli.add_command(api_keys_cli)

    if not access_logger.handlers:
        access_logger.addHandler(_access_log_handler())
        access_logger.setLevel(logging.INFO)
        access_logger.propagate = False
    auth_service.install_log_redaction()
