"""SIP provider routes: presets, live configuration, credentials, status, tests, delete."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.sip.schemas import (
    CredentialsSchema,
    GatewayConfigSchema,
    GatewayTestResultSchema,
    GatewayTestSchema,
    ProviderSchema,
    SipStatusSchema,
)
from services.sip.presets import provider_list
from services.sip.schemas import GatewaySchema

blp = Blueprint("sip", __name__, url_prefix="/api/sip",
                description="SIP gateways: presets, configuration, status and tests.")

PENDING_NOTE = ("Saved and the gateway file written, but FreeSWITCH is unreachable: "
                "apply_state is `pending` and the events process applies it when "
                "FreeSWITCH answers again")


def sip():
    return current_app.extensions["services"].sip


@blp.route("/providers")
class SipProviders(MethodView):
    @blp.response(200, ProviderSchema(many=True))
    def get(self):
        """Provider presets: host pattern, port, transport, registration, codecs, notes."""
        return provider_list()


@blp.route("/configure")
class SipConfigure(MethodView):
    @blp.arguments(GatewayConfigSchema)
    @blp.response(200, GatewaySchema, description="Updated and applied to FreeSWITCH")
    @blp.alt_response(201, schema=GatewaySchema, description="Created and applied to FreeSWITCH")
    @blp.alt_response(202, schema=GatewaySchema, description=PENDING_NOTE)
    @blp.alt_response(502, description="Saved, but FreeSWITCH refused it (apply_state failed)")
    def post(self, args):
        """Create or update a gateway and apply it to FreeSWITCH live (rescan / killgw + rescan)."""
        return sip().configure(args)


@blp.route("/settings")
class SipSettings(MethodView):
    @blp.response(200, GatewaySchema(many=True))
    def get(self):
        """Every gateway, without secrets (password_set tells whether one is stored)."""
        return sip().list_gateways()


@blp.route("/credentials")
class SipCredentials(MethodView):
    @blp.arguments(CredentialsSchema)
    @blp.response(200, GatewaySchema)
    @blp.alt_response(202, schema=GatewaySchema, description=PENDING_NOTE)
    def put(self, args):
        """Change a gateway's username/password; FreeSWITCH re-registers without a restart."""
        return sip().change_credentials(args)


@blp.route("/status")
class SipStatus(MethodView):
    @blp.response(200, SipStatusSchema)
    def get(self):
        """ESL connection state and each gateway's registration, last change and failure reason."""
        return sip().status()


@blp.route("/test")
class SipTest(MethodView):
    @blp.arguments(GatewayTestSchema)
    @blp.response(200, GatewayTestResultSchema)
    def post(self, args):
        """Test a gateway step by step: DNS, SIP OPTIONS / TLS / WebSocket, FreeSWITCH."""
        return sip().test(args)


@blp.route("/gateways/<string:name>")
class SipGatewayByName(MethodView):
    @blp.response(200, GatewaySchema)
    def get(self, name):
        """One gateway, without secrets."""
        return sip().get(name)

    @blp.response(204)
    @blp.alt_response(202, description="Deleted here and its file removed; FreeSWITCH is "
                                       "unreachable and is told when it answers again")
    def delete(self, name):
        """Delete a gateway: its file, and from FreeSWITCH (killgw + rescan)."""
        if not sip().delete(name):
            return {"code": 202, "status": "Accepted", "message": "deleted; FreeSWITCH is "
                    "unreachable and drops the gateway when it answers again"}, 202
        return None
