"""GET /api/calls/metrics/realtime: the figures of the last `metrics` channel message."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.ws.schemas import MetricsSchema

blp = Blueprint("metrics", __name__, url_prefix="/api/calls",
                description="Realtime figures, the same as the `metrics` WebSocket channel.")


@blp.route("/metrics/realtime")
class RealtimeMetrics(MethodView):
    @blp.response(200, MetricsSchema)
    @blp.alt_response(503, description="No figures yet (events process down) or Redis down")
    def get(self):
        """The last published metrics: active calls, recent calls, MOS, clients, queues."""
        return current_app.extensions["services"].live_metrics.latest()
