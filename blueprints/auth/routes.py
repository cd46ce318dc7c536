"""Auth routes: tokens for browsers (signed with SECRET_KEY) and the caller's identity."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.access.identity import current_principal
from blueprints.auth.schemas import PrincipalSchema, TokenSchema
from services.auth import TokenService

blp = Blueprint("auth", __name__, url_prefix="/api/auth",
                description="Short-lived tokens for browsers, obtained with an API key.")


@blp.route("/token")
class AuthToken(MethodView):
    @blp.response(201, TokenSchema)
    def post(self):
        """Exchange the API key in Authorization for a 15-minute token with the same role."""
        return TokenService(current_app.config["SECRET_KEY"]).issue(current_principal())


@blp.route("/me")
class WhoAmI(MethodView):
    @blp.response(200, PrincipalSchema)
    def get(self):
        """The key (name, role, agent id) this request is authenticated with."""
        return current_principal()
