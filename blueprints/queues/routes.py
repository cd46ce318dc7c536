"""Queues routes: thin views that parse, make one service call and dump."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.queues.caller_schemas import QueueCallersSchema
from blueprints.queues.schemas import QueueCreateSchema, QueueSchema, QueueUpdateSchema
from services.queues import waiting

blp = Blueprint("queues", __name__, url_prefix="/api/queues",
                description="Inbound queues: members and tiers, strategy, ring timeout, "
                            "maximum wait, business hours and what happens to callers "
                            "when the queue is closed, full of waiting or has nobody.")


def queue_config():
    return current_app.extensions["services"].queue_config


@blp.route("")
class QueueList(MethodView):
    @blp.response(200, QueueSchema(many=True))
    def get(self):
        """List queues by id, with their members."""
        return queue_config().list()

    @blp.arguments(QueueCreateSchema)
    @blp.response(201, QueueSchema)
    @blp.alt_response(409, description="A queue with this id exists")
    def post(self, args):
        """Create a queue (members must be existing agents; action targets must exist)."""
        return queue_config().create(args)


@blp.route("/<queue_id>")
class QueueById(MethodView):
    @blp.response(200, QueueSchema)
    def get(self, queue_id):
        """Get one queue with its members."""
        return queue_config().get(queue_id)

    @blp.arguments(QueueUpdateSchema, required=False)
    @blp.response(200, QueueSchema)
    def put(self, changes, queue_id):
        """Change a queue's settings; `members`, when given, replaces the member list."""
        return queue_config().update(queue_id, changes)

    @blp.response(204)
    @blp.alt_response(409, description="Callers wait in the queue, or a route or another "
                                       "queue's action points at it")
    def delete(self, queue_id):
        """Delete a queue nobody waits in and nothing points at (its members go with it)."""
        queue_config().delete(queue_id)


# Routes below this line: the queue's live callers (routing engine) ------------------


@blp.route("/<queue_id>/callers")
class QueueCallers(MethodView):
    @blp.response(200, QueueCallersSchema)
    def get(self, queue_id):
        """The queue's live callers in the order they are served: position, seconds waited
        and estimated wait (the same figures as `queue.caller_position` on `queues`)."""
        queue_config().get(queue_id)  # 404 for an unknown queue
        return {"queue_id": queue_id, "items": waiting.callers(queue_id)}
