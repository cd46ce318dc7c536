"""The application factory: config, database, Redis, Api, Sock, blueprints, errors, CLI."""
import logging

from flask import Flask
from flask_smorest import Api
from flask_sock import Sock

from blueprints import access
from blueprints.access.timing import install_request_timing
from blueprints.agents.routes import blp as agents_blp
from blueprints.analytics.routes import blp as analytics_blp
from blueprints.asyncapi.routes import blp as asyncapi_blp
from blueprints.auth.routes import blp as auth_blp
from blueprints.calls.routes import blp as calls_blp
from blueprints.docs.routes import blp as docs_blp
from blueprints.errors import ErrorSchema, register_error_handlers
from blueprints.exports.routes import blp as exports_blp
from blueprints.health.routes import blp as health_blp
from blueprints.inbound_routes.routes import blp as inbound_routes_blp
from blueprints.monitoring.routes import blp as prometheus_blp
from blueprints.pages import routes as pages_routes
from blueprints.pagination import link_header
from blueprints.phones.routes import blp as phones_blp
from blueprints.queues.kpi_routes import blp as queue_kpis_blp
from blueprints.queues.routes import blp as queues_blp
from blueprints.recordings.routes import blp as recordings_blp
from blueprints.recordings.signed_routes import blp as signed_recordings_blp
from blueprints.sip.routes import blp as sip_blp
from blueprints.transcripts.routes import blp as transcripts_blp
from blueprints.webhooks.routes import blp as webhooks_blp
from blueprints.ws import routes as ws_routes
from blueprints.ws.metrics_routes import blp as metrics_blp
from config import load_config
from models import db
from services.container import build_process_services

# Order matters for routing: /api/calls/recordings and /api/calls/statistics are
# registered before the /api/calls/<id> routes could shadow them (they cannot,
# being typed uuid, but keep the specific ones first anyway).
BLUEPRINTS = (health_blp, auth_blp, recordings_blp, analytics_blp, metrics_blp, calls_blp,
              sip_blp, agents_blp, queues_blp, inbound_routes_blp, prometheus_blp,
              queue_kpis_blp, exports_blp,
              webhooks_blp, transcripts_blp, phones_blp)

logger = logging.getLogger(__name__)


class CallCenterApi(Api):
    """flask-smorest's Api, documenting X-Pagination as what it is on the wire and the
    error body with its error_id."""

    ERROR_SCHEMA = ErrorSchema

    def _register_pagination_header(self):
        # The header carries JSON text; an object schema would tell client
        # generators (and schemathesis) to expect a parsed object.
        self.spec.components.header("PAGINATION", {
            "description": "Pagination metadata as JSON: total, total_pages, first_page, "
                           "last_page, page, previous_page, next_page. `total` is exact up "
                           "to 10,000 and reads 10,001 beyond.",
            "schema": {"type": "string"}}, lazy=True)


def create_app(config=None):
    cfg = load_config()
    cfg.update(config or {})
    app = Flask(__name__)
    app.config.update(cfg)
    app.config.update(
        API_TITLE="Call Center API", API_VERSION="1.0.0", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api", OPENAPI_JSON_PATH="openapi.json",
        # /api/docs is blueprints/docs (Swagger UI from a package, no CDN), not flask-smorest's
        MAX_CONTENT_LENGTH=cfg["MAX_CONTENT_LENGTH"])
    app.json.sort_keys = False
    logging.basicConfig(level=cfg["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app.extensions["services"] = build_process_services(cfg)

    # No eager connect: peewee connects on the first query, so routes that need
    # no database (and /api/health, which reports it down) work without one.
    @app.teardown_request
    def _close_db(exc):
        if not db.is_closed():
            db.close()

    api = CallCenterApi(app)
    access.init_app(app, api)  # before the blueprints: it documents each route's role
    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
    # not API operations (no OpenAPI entries): the docs page, signed recording URLs
    app.register_blueprint(docs_blp)
    app.register_blueprint(signed_recordings_blp)
    app.register_blueprint(asyncapi_blp)  # /api/asyncapi.json: the live feed (AsyncAPI 3)
    sock = Sock(app)
    ws_routes.register(app, sock)
    pages_routes.init_app(app)  # the browser pages: /, /wallboard, /assets/
    install_request_timing(app)
    app.after_request(link_header)  # the call history's Link: rel="next" (cursor paging)
    register_error_handlers(app)
    return app
