"""Agents routes: thin views that parse, make one service call and dump."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.agents.schemas import (
    AgentCreateSchema,
    AgentPauseSchema,
    AgentQueryArgsSchema,
    AgentSchema,
    AgentStateChangeSchema,
    AgentStatesQueryArgsSchema,
    AgentUpdateSchema,
)

blp = Blueprint("agents", __name__, url_prefix="/api/agents",
                description="Agents, their phones, their state (login, pause, ready ...) "
                            "and its trail.")


def agents():
    return current_app.extensions["services"].agents


@blp.route("")
class AgentList(MethodView):
    @blp.arguments(AgentQueryArgsSchema, location="query")
    @blp.response(200, AgentSchema(many=True))
    def get(self, args):
        """List agents by id, optionally by state or enabled, each with whether FreeSWITCH
        has its phone registered now (`phone_registered`: null when it cannot tell)."""
        return agents().list_with_phones(args)

    @blp.arguments(AgentCreateSchema)
    @blp.response(201, AgentSchema)
    @blp.alt_response(409, description="An agent with this id exists")
    def post(self, args):
        """Create an agent (logged out)."""
        return agents().create(args)


@blp.route("/<agent_id>")
class AgentById(MethodView):
    @blp.response(200, AgentSchema)
    def get(self, agent_id):
        """Get one agent, with whether FreeSWITCH has its phone registered now."""
        return agents().get_with_phone(agent_id)

    @blp.arguments(AgentUpdateSchema, required=False)
    @blp.response(200, AgentSchema)
    @blp.alt_response(409, description="Disabling a logged-in agent")
    def put(self, changes, agent_id):
        """Change an agent's name, endpoint, wrap-up seconds, skills or enabled."""
        return agents().update(agent_id, changes)

    @blp.response(204)
    @blp.alt_response(409, description="The agent is logged in (log it out first), or an inbound "
                      "route or a queue's action sends callers to it (agent_in_use)")
    def delete(self, agent_id):
        """Delete a logged-out agent and its state trail."""
        agents().delete(agent_id)


def _action_view(name, doc):
    class AgentAction(MethodView):
        @blp.response(200, AgentSchema)
        @blp.alt_response(409, description="Not allowed from the agent's state (or its phone "
                                           "is not registered)")
        def post(self, agent_id):
            return getattr(agents(), name)(agent_id)

    AgentAction.post.__doc__ = doc
    AgentAction.__name__ = AgentAction.__qualname__ = "Agent" + name.capitalize()
    return AgentAction


blp.route("/<agent_id>/login")(_action_view(
    "login", "Log in: logged-out -> available (the phone must be registered)."))
blp.route("/<agent_id>/logout")(_action_view(
    "logout", "Log out: available, paused or wrap-up -> logged-out."))
blp.route("/<agent_id>/resume")(_action_view(
    "resume", "End a pause: paused -> available (the phone must be registered)."))
blp.route("/<agent_id>/ready")(_action_view(
    "ready", "End wrap-up early: wrap-up -> available (the phone must be registered)."))


@blp.route("/<agent_id>/pause")
class AgentPause(MethodView):
    @blp.arguments(AgentPauseSchema)
    @blp.response(200, AgentSchema)
    @blp.alt_response(409, description="Not allowed from the agent's state")
    def post(self, args, agent_id):
        """Pause with a reason (break, lunch, training, other): no calls are offered."""
        return agents().pause(agent_id, args["reason"])


@blp.route("/<agent_id>/states")
class AgentStates(MethodView):
    @blp.arguments(AgentStatesQueryArgsSchema, location="query")
    @blp.response(200, AgentStateChangeSchema(many=True))
    def get(self, args, agent_id):
        """The agent's state changes between date_from and date_to, oldest first."""
        return agents().trail(agent_id, args.get("date_from"), args.get("date_to"))
