"""SIP provider routes (issue: SIP providers)."""
from flask_smorest import Blueprint

blp = Blueprint("sip", __name__, url_prefix="/api/sip",
                description="SIP gateways: presets, configuration, status and tests.")
