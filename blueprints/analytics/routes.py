"""Analytics routes: call statistics and quality trends (registered before the calls blueprint)."""
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.access.identity import scoped_to_agent
from blueprints.analytics.schemas import (
    QualityQueryArgsSchema,
    QualityTrendsSchema,
    StatisticsQueryArgsSchema,
    StatisticsSchema,
)

blp = Blueprint("analytics", __name__, url_prefix="/api/calls",
                description="Call statistics and quality trends.")


def statistics():
    return current_app.extensions["services"].statistics


@blp.route("/statistics")
class CallStatistics(MethodView):
    @blp.arguments(StatisticsQueryArgsSchema, location="query")
    @blp.response(200, StatisticsSchema)
    def get(self, args):
        """Call statistics for local days in a time zone: totals, series, per agent or campaign.
        An agent key gets the figures of its own calls only (agent_id is forced to its own)."""
        return statistics().statistics(scoped_to_agent(args))


@blp.route("/quality")
class CallQualityTrends(MethodView):
    @blp.arguments(QualityQueryArgsSchema, location="query")
    @blp.response(200, QualityTrendsSchema)
    def get(self, args):
        """Quality trends: average MOS per bucket, share below the threshold, worst gateways."""
        return statistics().quality(args)
