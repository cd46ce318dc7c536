"""Health routes: a public liveness summary and the operator's detailed view (admin)."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.health.schemas import DetailedHealthSchema, HealthSchema
from services.health import HealthService

blp = Blueprint("health", __name__, url_prefix="/api/health",
                description="Service health for load balancers and operators.")


def health():
    return HealthService(current_app.extensions["services"])


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database is down")
    def get(self):
        """State of the database, Redis and FreeSWITCH (503 only when the database is down)."""
        report = health().basic()
        return report, 503 if report["database"]["status"] == "down" else 200


@blp.route("/detailed")
class HealthDetailed(MethodView):
    @blp.response(200, DetailedHealthSchema)
    @blp.alt_response(503, schema=DetailedHealthSchema, description="The database is down")
    def get(self):
        """Database, Redis, FreeSWITCH, events, RQ queues and workers, disk, memory (admin)."""
        report = health().detailed()
        return report, 503 if report["status"] == "down" else 200
