"""GET /metrics: Prometheus text format, and the HTTP figures every request adds to it.

Needs an admin key like the other admin routes, or the bearer token METRICS_TOKEN
(when set) meant for the Prometheus server: that token opens this route and no other.
"""
import hmac
import time

from flask import Response, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from blueprints.access.identity import credential_of
from services.auth import Principal
from services.monitoring.cluster import cluster_metrics_text
from services.monitoring.http import observe_request, process_metrics_text

ENDPOINT = "prometheus.PrometheusMetrics"
METRICS_TOKEN_PRINCIPAL = Principal(key_id="metrics-token", name="metrics-token", role="admin")

blp = Blueprint("prometheus", __name__, url_prefix="/metrics",
                description="Prometheus metrics (text format) for the operators' monitoring.")


@blp.route("")
class PrometheusMetrics(MethodView):
    @blp.response(200, description="Prometheus text format 0.0.4: HTTP requests and latency by "
                  "route and status, events ingested by node and type, ESL state and live calls "
                  "by node, WebSocket clients, RQ queue depths and failed jobs",
                  content_type="text/plain")
    def get(self):
        """Prometheus metrics of the whole deployment (admin key, or METRICS_TOKEN)."""
        services = current_app.extensions["services"]
        body = process_metrics_text() + cluster_metrics_text(services)
        return Response(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _metrics_token():
    """The METRICS_TOKEN bearer is an admin for /metrics only (checked before the policy)."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token or request.endpoint != ENDPOINT:
        return
    presented = credential_of(request) or ""
    if hmac.compare_digest(presented.encode(), token.encode()):
        g.principal = METRICS_TOKEN_PRINCIPAL
        g.credentials_presented = True


def _observe(response):
    started = g.get("started")  # accesslog.start_request's clock
    if started is not None and request.headers.get("Upgrade", "").lower() != "websocket":
        route = request.url_rule.rule if request.url_rule is not None else None
        observe_request(route, request.method, response.status_code,
                        time.perf_counter() - started)
    return response


@blp.record_once
def _install(state):
    # First of all before_request functions: the policy must find the token's principal.
    state.app.before_request_funcs.setdefault(None, []).insert(0, _metrics_token)
    state.app.after_request(_observe)
