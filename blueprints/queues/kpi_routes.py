"""Queue KPI routes: statistics per queue and per agent, and Erlang C staffing."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.queues.kpi_schemas import (
    AgentStatisticsSchema,
    KpiQueryArgsSchema,
    QueueStatisticsSchema,
    StaffingQueryArgsSchema,
    StaffingSchema,
)

blp = Blueprint("queue_kpis", __name__, url_prefix="/api",
                description="Queue and agent KPIs by local interval; Erlang C staffing.")


def services():
    return current_app.extensions["services"]


@blp.route("/queues/<queue_id>/statistics")
class QueueStatistics(MethodView):
    @blp.arguments(KpiQueryArgsSchema, location="query")
    @blp.response(200, QueueStatisticsSchema)
    @blp.alt_response(404, description="No such queue")
    def get(self, args, queue_id):
        """Offered, answered, abandoned, service level, ASA, AHT ... per local bucket."""
        return services().queue_statistics.queue(queue_id, args)


@blp.route("/queues/<queue_id>/staffing")
class QueueStaffing(MethodView):
    @blp.arguments(StaffingQueryArgsSchema, location="query")
    @blp.response(200, StaffingSchema)
    @blp.alt_response(404, description="No such queue")
    def get(self, args, queue_id):
        """Erlang C agents needed for a service-level target, from measured or given load."""
        return services().queue_staffing.staffing(queue_id, args)


@blp.route("/agents/<agent_id>/statistics")
class AgentStatistics(MethodView):
    @blp.arguments(KpiQueryArgsSchema, location="query")
    @blp.response(200, AgentStatisticsSchema)
    @blp.alt_response(404, description="No such agent")
    def get(self, args, agent_id):
        """An agent's queue calls, handling times, occupancy and time in state per bucket."""
        return services().queue_statistics.agent(agent_id, args)
