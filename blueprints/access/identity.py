"""Who is calling: the credential a request presents, the principal it names, agent scoping."""
from flask import current_app, g, request

from services import auth as auth_service
from services.auth import AUTH_DISABLED_PRINCIPAL

WS_QUERY_CREDENTIALS = ("token", "api_key")


def credential_of(req, allow_query=False):
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


def authenticate(credential):
    """The Principal a credential names (checked against the database), or None."""
    return auth_service.authenticate(credential, current_app.config["SECRET_KEY"]) \
        if credential else None


def is_websocket_route():
    return bool(request.url_rule is not None and getattr(request.url_rule, "websocket", False))


def _identify():
    """Look the caller up once per request; remembers whether bad credentials were sent."""
    credential = credential_of(request, allow_query=is_websocket_route())
    g.credentials_presented = credential is not None
    g.principal = authenticate(credential)
    return g.principal


def auth_enabled():
    return current_app.config.get("AUTH_ENABLED", True)


def current_principal():
    """The authenticated caller of this request (a services.auth.Principal), or None."""
    if not auth_enabled():
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
