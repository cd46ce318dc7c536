"""Browser phone routes: what the agent's page registers with, and a new password."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from blueprints.access.identity import current_principal
from blueprints.phones.schemas import PhoneConfigSchema, PhoneCredentialsSchema

blp = Blueprint("phones", __name__, url_prefix="/api/agents",
                description="Agents' browser phones (WebRTC): SIP credentials the service "
                            "owns, for the agent's own page.")
NO_STORE = {"Cache-Control": "no-store"}


def phones():
    return current_app.extensions["services"].agent_phones


def _only_the_agent_or_an_admin():
    """The policy lets agents in (their own agent_id only, 404 otherwise); supervisors never
    see passwords: for them the credentials do not exist (404, like another agent's call)."""
    principal = current_principal()
    if principal is not None and principal.role == "supervisor":
        abort(404, message="an agent's phone credentials are only for that agent's own "
                           "session or an admin", error_id="phone_credentials_hidden")


@blp.route("/<agent_id>/phone/config")
class AgentPhoneConfig(MethodView):
    @blp.response(200, PhoneConfigSchema)
    @blp.alt_response(409, description="The agent's endpoint is not a directory user")
    @blp.alt_response(503, description="Browser phones are not configured, or FreeSWITCH "
                                       "is unreachable")
    def get(self, agent_id):
        """What the agent's browser registers with (credentials made on first use)."""
        _only_the_agent_or_an_admin()
        return phones().phone_config(agent_id), 200, NO_STORE


@blp.route("/<agent_id>/phone/credentials")
class AgentPhoneCredentials(MethodView):
    @blp.response(200, PhoneCredentialsSchema)
    @blp.alt_response(409, description="The agent's endpoint is not a directory user")
    def post(self, agent_id):
        """A new SIP password (shown once); the phone's registrations are dropped."""
        _only_the_agent_or_an_admin()
        return phones().rotate(agent_id), 200, NO_STORE
