"""Auth routes: tokens for browsers (signed with SECRET_KEY) and the caller's identity."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.access.identity import current_principal
from blueprints.auth.schemas import PrincipalSchema, TokenSchema
from services.auth import TokenService

blp = Blueprint("auth", __name__, url_prefix="/api/auth",
                description="Short-lived tokens for browsers, obtained with an API key.")


def tokens():
    cfg = current_app.config
    return TokenService(cfg["SECRET_KEY"], ttl=cfg["TOKEN_TTL"])


@blp.route("/token")
class AuthToken(MethodView):
    @blp.response(201, TokenSchema)
    def post(self):
        """Exchange the API key in Authorization for a token (TOKEN_TTL, default 15 minutes)
        with the same role; a token offered here is refused (403)."""
        return tokens().issue(current_principal())


@blp.route("/token/refresh")
class AuthTokenRefresh(MethodView):
    @blp.response(201, TokenSchema)
    def post(self):
        """Renew the unexpired token in Authorization: a new token with the same role and a
        fresh expiry. An expired token, or one whose API key was revoked meanwhile, gets 401
        (sign in with the key again). Sent with an API key it acts as POST /api/auth/token."""
        return tokens().refresh(current_principal())


@blp.route("/me")
class WhoAmI(MethodView):
    @blp.response(200, PrincipalSchema)
    def get(self):
        """The key (name, role, agent id) this request is authenticated with."""
        return current_principal()
