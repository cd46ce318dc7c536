"""Inbound routes: thin views that parse, make one service call and dump."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.inbound_routes.schemas import (
    InboundRouteCreateSchema,
    InboundRouteQueryArgsSchema,
    InboundRouteSchema,
    InboundRouteUpdateSchema,
)
from blueprints.pagination import PeeweePage

blp = Blueprint("inbound_routes", __name__, url_prefix="/api/inbound-routes",
                description="Which queue, agent or number a dialled number reaches: exact "
                            "numbers beat prefixes, longer prefixes beat shorter ones.")


def queue_config():
    return current_app.extensions["services"].queue_config


@blp.route("")
class InboundRouteList(MethodView):
    @blp.arguments(InboundRouteQueryArgsSchema, location="query")
    @blp.response(200, InboundRouteSchema(many=True))
    @blp.paginate(PeeweePage, page_size=100, max_page_size=1000)
    def get(self, args):
        """List inbound routes by number, optionally by match, target type or target."""
        return queue_config().list_routes(args)

    @blp.arguments(InboundRouteCreateSchema)
    @blp.response(201, InboundRouteSchema)
    @blp.alt_response(409, description="A route with this match and number exists")
    def post(self, args):
        """Create a route (a queue or agent target must exist)."""
        return queue_config().create_route(args)


@blp.route("/match/<number>")
class InboundRouteMatch(MethodView):
    @blp.response(200, InboundRouteSchema)
    @blp.alt_response(404, description="No route matches and no default queue is set")
    def get(self, number):
        """The route a call to the dialled `number` takes (the default queue's when none
        matches: `match` is then "default" and `id` null)."""
        return queue_config().resolve_or_404(number)


@blp.route("/<route_id>")
class InboundRouteById(MethodView):
    @blp.response(200, InboundRouteSchema)
    def get(self, route_id):
        """Get one inbound route."""
        return queue_config().get_route(route_id)

    @blp.arguments(InboundRouteUpdateSchema, required=False)
    @blp.response(200, InboundRouteSchema)
    @blp.alt_response(409, description="A route with this match and number exists")
    def put(self, changes, route_id):
        """Change a route (target_type and target are checked together)."""
        return queue_config().update_route(route_id, changes)

    @blp.response(204)
    def delete(self, route_id):
        """Delete an inbound route."""
        queue_config().delete_route(route_id)
