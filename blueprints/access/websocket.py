"""WebSocket authentication: credentials from the handshake or from a first auth message."""
from flask import current_app, g, has_request_context, request
from simple_websocket import ConnectionClosed
from werkzeug.wrappers import Request

from blueprints.access.identity import auth_enabled, authenticate, credential_of
from services import auth as auth_service
from services.auth import AUTH_DISABLED_PRINCIPAL

WS_AUTH_TIMEOUT = 10.0
WS_UNAUTHORIZED = 4401  # close code: private range, mirrors HTTP 401


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
