"""Calls routes: thin views that parse, make one service call and dump."""
from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.access.identity import current_principal, scoped_to_agent
from blueprints.calls.schemas import (
    CallDtmfSchema,
    CallEndSchema,
    CallEventSchema,
    CallMonitorModeSchema,
    CallMonitorSchema,
    CallQueryArgsSchema,
    CallSchema,
    CallStartSchema,
    CallTransferSchema,
    CallUpdateSchema,
)
from blueprints.pagination import CallPage

blp = Blueprint("calls", __name__, url_prefix="/api/calls",
                description="Place, track and end calls; the call history.")


def calls():
    return current_app.extensions["services"].calls


@blp.route("/start")
class CallStart(MethodView):
    @blp.arguments(CallStartSchema)
    @blp.response(201, CallSchema)
    @blp.alt_response(503, description="FreeSWITCH unreachable; the call is stored as failed")
    def post(self, args):
        """Start an outbound call (an Idempotency-Key header makes retries safe)."""
        args = scoped_to_agent(args)  # an agent's calls are always its own
        args["from"] = args.pop("from_", None)
        key = request.headers.get("Idempotency-Key")
        call, created = calls().start(args, idempotency_key=key[:255] if key else None)
        g.call_id = call.id  # for the access log line
        return call, 201 if created else 200


@blp.route("/history")
class CallHistory(MethodView):
    @blp.arguments(CallQueryArgsSchema, location="query")
    @blp.response(200, CallSchema(many=True))
    @blp.paginate(CallPage, page_size=50, max_page_size=500)
    def get(self, args):
        """List calls, newest first, with filters; paging in X-Pagination."""
        return calls().history_query(scoped_to_agent(args))


@blp.route("/<uuid:call_id>")
class CallById(MethodView):
    @blp.response(200, CallSchema)
    def get(self, call_id):
        """Get one call."""
        return calls().get(call_id)

    @blp.response(204)
    @blp.alt_response(409, description="The call is live; end it first")
    def delete(self, call_id):
        """Delete an ended call with its event trail and recordings."""
        calls().delete(call_id)


@blp.route("/<uuid:call_id>/update")
class CallUpdate(MethodView):
    @blp.arguments(CallUpdateSchema, required=False)  # what is left out stays as it is
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description="Impossible status transition")
    def put(self, changes, call_id):
        """Update status (through the state machine), notes, outcome or metadata."""
        return calls().update(call_id, changes)


@blp.route("/<uuid:call_id>/end")
class CallEnd(MethodView):
    @blp.arguments(CallEndSchema, required=False)  # no body: just hang up
    @blp.response(200, CallSchema)
    @blp.alt_response(503, description="FreeSWITCH unreachable; the call is still up")
    def post(self, args, call_id):
        """Hang up a live call; ending an ended call returns it unchanged (idempotent)."""
        return calls().end(call_id, outcome=args.get("outcome"), notes=args.get("notes"))


@blp.route("/<uuid:call_id>/events")
class CallEvents(MethodView):
    @blp.response(200, CallEventSchema(many=True))
    def get(self, call_id):
        """The call's trail of state changes, oldest first."""
        return calls().events_of(call_id)


# ----- live call control: one route per action, each one service call ----------
def control():
    return current_app.extensions["services"].call_control


NOT_NOW = "The call is not in a state that allows this (not answered, ended, ...)"


FREESWITCH_REFUSED = "FreeSWITCH refused the command (e.g. the channel went away)"
FREESWITCH_DOWN = "FreeSWITCH unreachable; nothing was changed"


@blp.route("/<uuid:call_id>/hold")
class CallHold(MethodView):
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description=NOT_NOW)
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, call_id):
        """Put the customer on hold (they hear hold music)."""
        return control().hold(call_id)


@blp.route("/<uuid:call_id>/unhold")
class CallUnhold(MethodView):
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description=NOT_NOW)
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, call_id):
        """Take the customer off hold; the time held is added to hold_seconds."""
        return control().unhold(call_id)


@blp.route("/<uuid:call_id>/mute")
class CallMute(MethodView):
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description=NOT_NOW + "; or the call has no agent leg")
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, call_id):
        """Mute the agent's microphone."""
        return control().mute(call_id)


@blp.route("/<uuid:call_id>/unmute")
class CallUnmute(MethodView):
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description=NOT_NOW + "; or the call has no agent leg")
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, call_id):
        """Unmute the agent's microphone."""
        return control().unmute(call_id)


@blp.route("/<uuid:call_id>/dtmf")
class CallDtmf(MethodView):
    @blp.arguments(CallDtmfSchema)
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description="The call is not answered or has ended")
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, args, call_id):
        """Send DTMF digits to the customer's side."""
        return control().dtmf(call_id, args["digits"])


@blp.route("/<uuid:call_id>/transfer")
class CallTransfer(MethodView):
    @blp.arguments(CallTransferSchema)
    @blp.response(200, CallSchema)
    @blp.alt_response(404, description="No such call, or (`queue`) no such queue")
    @blp.alt_response(409, description="The call is not answered, or the agent is not "
                      "available")
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, args, call_id):
        """Transfer the customer to a number, an agent or a queue; the call keeps its id.
        Blind, or attended (`attended: true`, not for a queue: consult the target while the
        customer holds)."""
        if args.pop("attended", False):
            return consult().start(call_id, **args)
        return control().transfer(call_id, **args)


# ----- attended transfer and monitoring ----------------------------------------
def consult():
    return current_app.extensions["services"].call_consult


def monitor():
    return current_app.extensions["services"].call_monitor


@blp.route("/<uuid:call_id>/transfer/complete")
class CallTransferComplete(MethodView):
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description=NOT_NOW + "; or no attended transfer is running")
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, call_id):
        """Join the customer and the consulted target; the transferring agent goes to
        wrap-up."""
        return consult().complete(call_id)


@blp.route("/<uuid:call_id>/transfer/cancel")
class CallTransferCancel(MethodView):
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description=NOT_NOW + "; or no attended transfer is running")
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, call_id):
        """Hang up the consult leg and put the agent back with the customer (off hold)."""
        return consult().cancel(call_id)


@blp.route("/<uuid:call_id>/monitor")
class CallMonitorStart(MethodView):
    @blp.arguments(CallMonitorSchema)
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description=NOT_NOW + "; no agent leg; or monitored already")
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, args, call_id):
        """Supervisors: ring your endpoint and, on answer, listen / whisper / barge."""
        principal = current_principal()
        return monitor().start(call_id, args["mode"], endpoint=args.get("endpoint"),
                               supervisor_agent_id=principal.agent_id if principal else None)


@blp.route("/<uuid:call_id>/monitor/mode")
class CallMonitorMode(MethodView):
    @blp.arguments(CallMonitorModeSchema)
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description="The call is not being monitored")
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, args, call_id):
        """Switch the running monitoring to listen, whisper or barge."""
        return monitor().switch(call_id, args["mode"])

    @blp.arguments(CallMonitorModeSchema)
    @blp.response(200, CallSchema)
    def put(self, args, call_id):
        """Switch the running monitoring (the same as POST)."""
        return monitor().switch(call_id, args["mode"])


@blp.route("/<uuid:call_id>/monitor/stop")
class CallMonitorStop(MethodView):
    @blp.response(200, CallSchema)
    @blp.alt_response(409, description="The call is not being monitored")
    @blp.alt_response(502, description=FREESWITCH_REFUSED)
    @blp.alt_response(503, description=FREESWITCH_DOWN)
    def post(self, call_id):
        """Stop monitoring (the supervisor's leg hangs up)."""
        return monitor().stop(call_id)
