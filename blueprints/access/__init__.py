"""Access control and abuse protection for every route, present and future.

`init_app(app, api)` installs, in this order for each request:

1. a request id (X-Request-ID) and a timer (accesslog);
2. the caller's identity from `Authorization: Bearer <key or token>` or
   `X-API-Key`, looked up once and cached on `g` (identity);
3. rate limits per key, or per IP for callers without valid credentials (limits);
4. the POLICY table: 401 without valid credentials, 403 below the route's role,
   404 for an agent on someone else's call (policy);
5. input checks: 413 when too large, 415 when a JSON route gets another type,
   400/404 for NUL characters (inputs);

and on the way out: security headers, CORS for FRONTEND_URL, the request id
header and one JSON access-log line (headers, accesslog). Error answers are
blueprints/errors.py's; the OpenAPI plugin (openapi) documents each route's role.
"""
from blueprints.access import accesslog, headers, inputs, limits, openapi, policy, websocket
from blueprints.access.cli import api_keys_cli


def init_app(app, api):
    """Protect every route of app; call after Api(app), before registering blueprints."""
    headers.trust_proxies(app)
    openapi.install_policy_doc(api)

    app.before_request(accesslog.start_request)
    app.before_request(websocket.check_ws_origin)  # /ws: a foreign Origin is refused
    app.before_request(policy.identify_caller)
    app.after_request(limits.drop_limiter_retry_hint)  # runs after the limiter's own
    limits.install_limiter(app)  # its before_request runs here: after identity, before policy
    app.before_request(policy.enforce_policy)
    app.before_request(inputs.check_input)

    # after_request functions run last-registered first: the log line sees final headers.
    app.after_request(accesslog.log_request)
    app.after_request(headers.security_headers)
    headers.install_cors(app)
    app.cli.add_command(api_keys_cli)
    accesslog.install_access_log()
