"""Health routes."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.health.schemas import HealthSchema
from services.health import HealthService

blp = Blueprint("health", __name__, url_prefix="/api/health",
                description="Service health for load balancers and operators.")


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database is down")
    def get(self):
        """State of the database, Redis and FreeSWITCH (503 only when the database is down)."""
        report = HealthService(current_app.extensions["services"]).basic()
        return report, 503 if report["database"]["status"] == "down" else 200
