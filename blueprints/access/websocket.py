"""WebSocket access: the handshake's Origin, credentials from the handshake or a first message."""
import urllib.parse

from flask import current_app, g, has_request_context, request
from flask_smorest import abort
from simple_websocket import ConnectionClosed
from werkzeug.wrappers import Request

from blueprints.access.headers import frontend_origins
from blueprints.access.identity import (
    auth_enabled,
    authenticate,
    credential_of,
    is_websocket_route,
)
from services import auth as auth_service
from services.auth import AUTH_DISABLED_PRINCIPAL

WS_AUTH_TIMEOUT = 10.0
WS_UNAUTHORIZED = 4401  # close code: private range, mirrors HTTP 401
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalized_origin(url):
    """scheme://host[:port] in lower case without a default port, or None when unreadable."""
    try:
        parts = urllib.parse.urlsplit(str(url).strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port in (None, DEFAULT_PORTS.get(scheme)) else f":{port}")


def origin_allowed(origin, own_origin, allowed):
    """Browsers send Origin: this service's own origin, or one of FRONTEND_URL's ("*": any)."""
    if "*" in allowed:
        return True
    mine = normalized_origin(origin)
    return mine is not None and (mine == normalized_origin(own_origin)
                                 or mine in {normalized_origin(o) for o in allowed})


def check_ws_origin():
    """Refuse a /ws handshake from a page of another origin (403), like CORS for REST: a page
    elsewhere could otherwise open a socket with a key or token it got hold of. Clients
    that send no Origin (not browsers) are let through to authentication."""
    if not is_websocket_route():
        return
    origin = request.headers.get("Origin")
    if origin is None or origin_allowed(origin, f"{request.scheme}://{request.host}",
                                        frontend_origins(current_app)):
        return
    abort(403, message=f"WebSocket connections from origin {origin[:100]!r} are not allowed: "
          "use this service's own origin or one listed in FRONTEND_URL",
          error_id="origin_not_allowed")


def authenticate_ws(source=None):
    """The Principal of a WebSocket handshake (?token=, ?api_key= or headers), or None.

    source: the flask request (default) or a WSGI environ.
    """
    if not auth_enabled():
        return AUTH_DISABLED_PRINCIPAL
    if has_request_context() and (source is None or source is request
                                  or source is request.environ):
        if "principal" in g:
            return g.principal
        source = request
    req = source if isinstance(source, Request) else Request(source)
    return authenticate(credential_of(req, allow_query=True))


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
    if not auth_enabled():
        return AUTH_DISABLED_PRINCIPAL
    return auth_service.authenticate_message(message, current_app.config["SECRET_KEY"])
