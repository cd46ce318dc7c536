"""QueueConfig: create, read, change and delete queues (with their members) and inbound routes.

The request schemas (blueprints/queues, blueprints/inbound_routes) check each value's
form; this service checks what needs the database: members and action or route targets
must exist, an action never points at its own queue, and a queue is deleted only when
no caller waits in it and no route or other queue's action points at it.

Configuration changes are not announced on a live channel: the queues channel belongs
to the routing engine's notifier, which reads the configuration from the database.
"""
import peewee

from models.agent import Agent
from models.db import utcnow, write_transaction
from models.queue import (
    ACTION_AGENT,
    ACTION_FIELDS,
    ACTION_QUEUE,
    ENTRY_LIVE,
    TARGET_AGENT,
    TARGET_NUMBER,
    TARGET_QUEUE,
    InboundRoute,
    Queue,
    QueueEntry,
    QueueMember,
    senders_to,
)
from services.errors import Conflict, NotFound, Unprocessable
from services.queues.routes import NUMBER_HELP, is_number, match_route

QUEUE_FIELDS = ("name", "strategy", "required_skills", "ring_timeout", "max_wait_seconds",
                "hours", "service_level_seconds", "wrapup_seconds",
                "max_missed_offers") + ACTION_FIELDS
ROUTE_FIELDS = ("match", "number", "target_type", "target", "name")


class QueueConfig:
    """The queues' and inbound routes' configuration (no call handling here)."""

    def __init__(self, config=None):
        self.config = config or {}

    # ----- queues: reading ----------------------------------------------------
    @staticmethod
    def get(queue_id):
        queue = Queue.get_or_none(Queue.id == str(queue_id))
        if queue is None:
            raise NotFound(f"queue {queue_id} not found", error_id="queue_not_found")
        return _with_members([queue])[0]

    @staticmethod
    def list():
        return _with_members(list(Queue.select().order_by(Queue.id)))

    # ----- queues: changing ---------------------------------------------------
    def create(self, args):
        now = utcnow()
        try:
            with write_transaction():
                _check_references(args["id"], args)
                values = {key: args[key] for key in QUEUE_FIELDS if key in args}
                queue = Queue.create(id=args["id"], created_at=now, updated_at=now, **values)
                _set_members(queue, args.get("members") or [])
        except peewee.IntegrityError:
            raise Conflict(f"queue {args['id']} already exists", error_id="queue_exists") from None
        return self.get(queue.id)

    def update(self, queue_id, changes):
        """Change the given fields; `members`, when given, replaces the whole list."""
        with write_transaction():
            queue = self.get(queue_id)
            _check_references(queue.id, changes)
            for key in QUEUE_FIELDS:
                if key in changes:
                    setattr(queue, key, changes[key])
            queue.updated_at = utcnow()
            queue.save()
            if "members" in changes:
                _set_members(queue, changes["members"] or [])
        return self.get(queue_id)

    def delete(self, queue_id):
        """Delete a queue nobody waits in and nothing points at (its members go with it)."""
        with write_transaction():
            queue = self.get(queue_id)
            waiting = (QueueEntry.select().where((QueueEntry.queue_id == queue.id)
                                                 & QueueEntry.status.in_(ENTRY_LIVE)).count())
            if waiting:
                raise Conflict(f"queue {queue.id} has {waiting} caller(s) waiting or being "
                               "offered; delete it once they are served (or point its routes "
                               "elsewhere first)", error_id="queue_has_callers")
            users = senders_to(TARGET_QUEUE, queue.id)
            if users:
                raise Conflict(f"queue {queue.id} is in use by {', '.join(users)}; point them "
                               "elsewhere first", error_id="queue_in_use")
            QueueMember.delete().where(QueueMember.queue == queue.id).execute()
            queue.delete_instance()

    # ----- inbound routes -----------------------------------------------------
    @staticmethod
    def get_route(route_id):
        route = InboundRoute.get_or_none(InboundRoute.id == str(route_id))
        if route is None:
            raise NotFound(f"inbound route {route_id} not found",
                           error_id="inbound_route_not_found")
        return route

    @staticmethod
    def list_routes(filters):
        query = InboundRoute.select().order_by(InboundRoute.number, InboundRoute.match,
                                               InboundRoute.id)
        for key in ("match", "target_type", "target"):
            if filters.get(key):
                query = query.where(getattr(InboundRoute, key) == filters[key])
        return query

    def create_route(self, args):
        now = utcnow()
        values = {key: args[key] for key in ROUTE_FIELDS if key in args}
        try:
            with write_transaction():
                _check_route(None, values)
                route = InboundRoute.create(created_at=now, updated_at=now, **values)
        except peewee.IntegrityError:  # a twin created meanwhile
            raise _route_taken(values) from None
        return route

    def update_route(self, route_id, changes):
        with write_transaction():
            route = self.get_route(route_id)
        values = {key: changes.get(key, getattr(route, key)) for key in ROUTE_FIELDS}
        try:
            with write_transaction():
                route = self.get_route(route_id)
                _check_route(route.id, values)
                for key, value in values.items():
                    setattr(route, key, value)
                route.updated_at = utcnow()
                route.save()
        except peewee.IntegrityError:  # a twin created meanwhile
            raise _route_taken(values) from None
        return route

    def delete_route(self, route_id):
        with write_transaction():
            self.get_route(route_id).delete_instance()

    def resolve(self, number):
        """The route a call to number takes (the default queue's when none matches), or None."""
        return match_route(number, self.config.get("INBOUND_DEFAULT_QUEUE") or None)

    def resolve_or_404(self, number):
        route = self.resolve(number)
        if route is None:
            raise NotFound(f"no inbound route matches {number} and INBOUND_DEFAULT_QUEUE "
                           "names no queue: such a call stays parked",
                           error_id="inbound_route_not_found")
        return route


# ----- helpers -------------------------------------------------------------------
def _with_members(queues):
    """Attach each queue's member rows (one query for all of them)."""
    rows = {}
    if queues:
        for row in QueueMember.select().where(QueueMember.queue.in_([q.id for q in queues])):
            rows.setdefault(row.queue_id, []).append(row)
    for queue in queues:
        queue.member_rows = rows.get(queue.id, [])
    return queues


def _set_members(queue, members):
    agent_ids = [member["agent_id"] for member in members]
    known = {agent.id for agent in Agent.select(Agent.id).where(Agent.id.in_(agent_ids))}
    unknown = [agent_id for agent_id in agent_ids if agent_id not in known]
    if unknown:
        raise Unprocessable(f"members: no agent {', '.join(unknown)} (create the agent first)",
                            error_id="queue_member_unknown")
    kept = {row.agent_id: row for row in QueueMember.select().where(QueueMember.queue == queue.id)}
    gone = [agent_id for agent_id in kept if agent_id not in set(agent_ids)]
    if gone:
        QueueMember.delete().where((QueueMember.queue == queue.id)
                                   & QueueMember.agent.in_(gone)).execute()
    for member in members:
        row = kept.get(member["agent_id"])
        if row is None:  # a new member; a kept one keeps its round-robin history
            QueueMember.create(queue=queue.id, agent=member["agent_id"],
                               tier=member.get("tier", 1))
        elif row.tier != member.get("tier", 1):
            QueueMember.update(tier=member.get("tier", 1)).where(QueueMember.id == row.id).execute()


def _check_references(queue_id, values):
    """Each action's queue or agent target exists, and no action sends to its own queue."""
    for field in ACTION_FIELDS:
        action = values.get(field)
        if not action:
            continue
        target = action.get("target")
        if action["action"] == ACTION_QUEUE:
            if target == queue_id:
                raise Unprocessable(f"{field}: a queue cannot send its callers to itself",
                                    error_id="queue_action_target_invalid")
            if Queue.get_or_none(Queue.id == target) is None:
                raise Unprocessable(f"{field}: no queue {target}",
                                    error_id="queue_action_target_invalid")
        elif action["action"] == ACTION_AGENT and Agent.get_or_none(Agent.id == target) is None:
            raise Unprocessable(f"{field}: no agent {target}",
                                error_id="queue_action_target_invalid")


def _check_route(route_id, values):
    """The route's (match, number) is free and its target exists (or is a number)."""
    twin = InboundRoute.select().where((InboundRoute.match == values["match"])
                                       & (InboundRoute.number == values["number"]))
    if route_id is not None:
        twin = twin.where(InboundRoute.id != route_id)
    if twin.exists():
        raise _route_taken(values)
    target_type, target = values["target_type"], values["target"]
    if target_type == TARGET_NUMBER and not is_number(target):
        raise Unprocessable(f"target: a number target is {NUMBER_HELP}, got {target!r}",
                            error_id="inbound_route_target_unknown")
    if target_type == TARGET_QUEUE and Queue.get_or_none(Queue.id == target) is None:
        raise Unprocessable(f"target: no queue {target}", error_id="inbound_route_target_unknown")
    if target_type == TARGET_AGENT and Agent.get_or_none(Agent.id == target) is None:
        raise Unprocessable(f"target: no agent {target}", error_id="inbound_route_target_unknown")


def _route_taken(args):
    return Conflict(f"an inbound route matching {args['number']} ({args['match']}) exists",
                    error_id="inbound_route_exists")


def register(services):
    """Build the queue configuration service (every process may read it)."""
    services.queue_config = QueueConfig(services.config)
