"""Webhooks routes: thin views that parse, make one service call and dump."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.webhooks.schemas import (
    DeliveryQueryArgsSchema,
    DeliverySchema,
    WebhookCreatedSchema,
    WebhookCreateSchema,
    WebhookSchema,
    WebhookUpdateSchema,
)

blp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks",
                description="Signed HTTP deliveries (Standard Webhooks) of the live channels' "
                            "messages; their deliveries and redelivery.")


NOT_FOUND = "No such webhook"


def webhooks():
    return current_app.extensions["services"].webhooks


@blp.route("")
class WebhookList(MethodView):
    @blp.response(200, WebhookSchema(many=True))
    def get(self):
        """List webhooks (never their secrets)."""
        return webhooks().list()

    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookCreatedSchema)
    def post(self, args):
        """Create a webhook; the answer shows its signing secret, the only time it is shown."""
        return webhooks().create(args)


@blp.route("/<webhook_id>")
class WebhookById(MethodView):
    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    def get(self, webhook_id):
        """Get one webhook."""
        return webhooks().get(webhook_id)

    @blp.arguments(WebhookUpdateSchema, required=False)
    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, description=NOT_FOUND)
    def put(self, changes, webhook_id):
        """Change a webhook's URL, event types, filter, description or enabled (enabling
        again sends what waited)."""
        return webhooks().update(webhook_id, changes)

    @blp.response(204)
    @blp.alt_response(404, description=NOT_FOUND)
    def delete(self, webhook_id):
        """Delete a webhook and its deliveries."""
        webhooks().delete(webhook_id)


@blp.route("/<webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @blp.arguments(DeliveryQueryArgsSchema, location="query")
    @blp.response(200, DeliverySchema(many=True))
    @blp.alt_response(404, description=NOT_FOUND)
    def get(self, args, webhook_id):
        """A webhook's deliveries, newest first: status, response code, attempts, times."""
        return webhooks().deliveries(webhook_id, args)


@blp.route("/<webhook_id>/deliveries/<delivery_id>/redeliver")
class WebhookRedeliver(MethodView):
    @blp.response(202, DeliverySchema)
    @blp.alt_response(404, description=NOT_FOUND + " (webhook_not_found), or no such delivery "
                      "(webhook_delivery_not_found)")
    def post(self, webhook_id, delivery_id):
        """Send one delivery again (the same webhook-id), with a fresh retry schedule."""
        return webhooks().redeliver(webhook_id, delivery_id)
