"""Export routes: the call history streamed as CSV (default) or NDJSON."""
from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.access.identity import scoped_to_agent
from blueprints.exports.schemas import CallExportArgsSchema
from services.calls import export

blp = Blueprint("exports", __name__, url_prefix="/api/calls",
                description="The call history as a file: CSV or NDJSON, streamed.")

CSV, NDJSON = "text/csv", "application/x-ndjson"


def chosen_format(args):
    """format=csv|ndjson, else the Accept header (application/x-ndjson, else CSV)."""
    asked = args.pop("format", None)
    if asked:
        return NDJSON if asked == "ndjson" else CSV
    return NDJSON if request.accept_mimetypes.best_match([CSV, NDJSON], CSV) == NDJSON else CSV


@blp.route("/export")
class CallExport(MethodView):
    @blp.arguments(CallExportArgsSchema, location="query")
    @blp.response(200, content_type=CSV, description=(
        "The matching calls (the history's filters and order), one row per call after a "
        "header row; with Accept: application/x-ndjson, one JSON object per line"))
    def get(self, args):
        """Export the call history (all its filters), streamed: CSV or NDJSON."""
        mimetype = chosen_format(args)
        filters = scoped_to_agent(args)  # an agent exports its own calls only
        body = export.as_ndjson(filters) if mimetype == NDJSON else export.as_csv(filters)
        extension = "ndjson" if mimetype == NDJSON else "csv"
        response = Response(stream_with_context(body), mimetype=mimetype, headers={
            "Content-Disposition": f'attachment; filename="calls.{extension}"',
            "X-Accel-Buffering": "no"})
        # Never turned into a list (e.g. by an after_request asking for its length): the
        # body must stream, in constant memory.
        response.implicit_sequence_conversion = False
        return response
