"""Who may do what: the role table for every route, and its enforcement on each request.

Anything not listed needs admin: a new route is safe before anyone thinks about it,
and tests/integration/test_authz_matrix.py fails until it is listed here. For agents,
a route's `call_id` (or `recording_id`) must belong to them, otherwise 404; list
routes narrow themselves with identity.scoped_to_agent().
"""
import logging

from flask import g, request
from flask_smorest import abort

from blueprints.access.identity import auth_enabled, current_principal, is_websocket_route
from services.auth import ROLES, owner_of

logger = logging.getLogger(__name__)

PUBLIC = "public"
WEBSOCKET = "websocket"  # the handshake may carry no credentials: the hub asks for them
AGENT, SUPERVISOR, ADMIN = ROLES
AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="api"'}
# An agent on someone else's resource hears that it does not exist.
NOT_FOUND_IDS = {"call_id": "call_not_found", "recording_id": "recording_not_found",
                 "agent_id": "agent_not_found"}

# (flask endpoint, method) -> minimum role.
POLICY = {
    ("health.Health", "GET"): PUBLIC,
    ("api-docs.openapi_json", "GET"): PUBLIC,
    ("docs.page", "GET"): PUBLIC,  # the docs page (blueprints/docs) and its files
    ("docs.asset", "GET"): PUBLIC,
    ("asyncapi.asyncapi_json", "GET"): PUBLIC,  # the live feed's AsyncAPI document
    # a signed recording URL: its token is the credential (services/recordings/signing.py)
    ("signed_recordings.signed_audio", "GET"): PUBLIC,
    ("health.HealthDetailed", "GET"): ADMIN,
    ("auth.AuthToken", "POST"): AGENT,
    ("auth.WhoAmI", "GET"): AGENT,
    ("auth.AuthTokenRefresh", "POST"): AGENT,
    # calls: agents start, see, update and end their own; only admins delete
    ("calls.CallStart", "POST"): AGENT,
    ("calls.CallHistory", "GET"): AGENT,
    ("calls.CallById", "GET"): AGENT,
    ("calls.CallById", "DELETE"): ADMIN,
    ("calls.CallUpdate", "PUT"): AGENT,
    ("calls.CallEnd", "POST"): AGENT,
    ("calls.CallEvents", "GET"): AGENT,
    # live call control: an agent controls its own calls (the call_id owner check),
    # supervisors any call
    ("calls.CallHold", "POST"): AGENT,
    ("calls.CallUnhold", "POST"): AGENT,
    ("calls.CallMute", "POST"): AGENT,
    ("calls.CallUnmute", "POST"): AGENT,
    ("calls.CallDtmf", "POST"): AGENT,
    ("calls.CallTransfer", "POST"): AGENT,
    ("calls.CallTransferComplete", "POST"): AGENT,
    ("calls.CallTransferCancel", "POST"): AGENT,
    # monitoring: supervisors only (agents get 403), on any call
    ("calls.CallMonitorStart", "POST"): SUPERVISOR,
    ("calls.CallMonitorMode", "POST"): SUPERVISOR,
    ("calls.CallMonitorMode", "PUT"): SUPERVISOR,
    ("calls.CallMonitorStop", "POST"): SUPERVISOR,
    # recordings: agents record and play their own calls; only admins delete.
    # The view narrows an agent's list to its own calls with scoped_to_agent().
    ("recordings.RecordingList", "GET"): AGENT,
    ("recordings.RecordingStart", "POST"): AGENT,
    ("recordings.RecordingStop", "POST"): AGENT,
    ("recordings.RecordingAudio", "GET"): AGENT,
    ("recordings.RecordingUrl", "GET"): AGENT,
    ("recordings.RecordingAudio", "DELETE"): ADMIN,
    # transcripts: agents read their own calls' (the call_id owner check); the
    # statistics across agents and campaigns are for supervisors
    ("transcripts.CallTranscript", "GET"): AGENT,
    ("transcripts.TranscriptStatistics", "GET"): SUPERVISOR,
    # live figures: the same as the metrics channel, which agents do not get
    ("metrics.RealtimeMetrics", "GET"): SUPERVISOR,
    # analytics: agents get the statistics of their own calls (the view narrows with
    # scoped_to_agent()); quality trends rank gateways: supervisors
    ("analytics.CallStatistics", "GET"): AGENT,
    ("analytics.CallQualityTrends", "GET"): SUPERVISOR,
    # SIP: supervisors see gateways and their state (never secrets); admins change them.
    # The connectivity test sends packets to any host it is given: admin only.
    ("sip.SipProviders", "GET"): SUPERVISOR,
    ("sip.SipSettings", "GET"): SUPERVISOR,
    ("sip.SipStatus", "GET"): SUPERVISOR,
    ("sip.SipGatewayByName", "GET"): SUPERVISOR,
    ("sip.SipConfigure", "POST"): ADMIN,
    ("sip.SipCredentials", "PUT"): ADMIN,
    ("sip.SipTest", "POST"): ADMIN,
    ("sip.SipGatewayByName", "DELETE"): ADMIN,
    # agents: an agent key reads and changes the state of itself only (the agent_id
    # owner check: another agent is 404); supervisors read all and change any
    # agent's state; admins create, change and delete agents.
    ("agents.AgentList", "GET"): SUPERVISOR,
    ("agents.AgentList", "POST"): ADMIN,
    ("agents.AgentById", "GET"): AGENT,
    ("agents.AgentById", "PUT"): ADMIN,
    ("agents.AgentById", "DELETE"): ADMIN,
    ("agents.AgentLogin", "POST"): AGENT,
    ("agents.AgentLogout", "POST"): AGENT,
    ("agents.AgentPause", "POST"): AGENT,
    ("agents.AgentResume", "POST"): AGENT,
    ("agents.AgentReady", "POST"): AGENT,
    ("agents.AgentStates", "GET"): AGENT,
    # browser phones: an agent gets its own phone's config and rotates its own password
    # (the agent_id owner check); supervisors are refused in the view (no passwords), admins any
    ("phones.AgentPhoneConfig", "GET"): AGENT,
    ("phones.AgentPhoneCredentials", "POST"): AGENT,
    # Prometheus metrics: admin keys, or the METRICS_TOKEN bearer (blueprints/monitoring)
    ("prometheus.PrometheusMetrics", "GET"): ADMIN,
    # queues and inbound routes: agents list the queues (to transfer a caller to one);
    # supervisors read everything; admins create, change and delete the configuration.
    # (GET /api/queues/<queue_id> stays SUPERVISOR: agents have no owner check on queue_id.)
    ("queues.QueueList", "GET"): AGENT,
    ("queues.QueueList", "POST"): ADMIN,
    ("queues.QueueById", "GET"): SUPERVISOR,
    ("queues.QueueById", "PUT"): ADMIN,
    ("queues.QueueById", "DELETE"): ADMIN,
    ("queues.QueueCallers", "GET"): SUPERVISOR,  # the live callers of a queue (routing engine)
    ("inbound_routes.InboundRouteList", "GET"): SUPERVISOR,
    ("inbound_routes.InboundRouteList", "POST"): ADMIN,
    ("inbound_routes.InboundRouteMatch", "GET"): SUPERVISOR,
    ("inbound_routes.InboundRouteById", "GET"): SUPERVISOR,
    ("inbound_routes.InboundRouteById", "PUT"): ADMIN,
    ("inbound_routes.InboundRouteById", "DELETE"): ADMIN,
    # queue KPIs: supervisors read queue statistics and staffing; an agent reads its own
    # statistics (the agent_id owner check), supervisors anyone's
    ("queue_kpis.QueueStatistics", "GET"): SUPERVISOR,
    ("queue_kpis.QueueStaffing", "GET"): SUPERVISOR,
    ("queue_kpis.AgentStatistics", "GET"): AGENT,
    # webhooks: supervisors see them and their deliveries (never a secret); admins
    # create, change, redeliver and delete
    ("webhooks.WebhookList", "GET"): SUPERVISOR,
    ("webhooks.WebhookList", "POST"): ADMIN,
    ("webhooks.WebhookById", "GET"): SUPERVISOR,
    ("webhooks.WebhookById", "PUT"): ADMIN,
    ("webhooks.WebhookById", "DELETE"): ADMIN,
    ("webhooks.WebhookDeliveries", "GET"): SUPERVISOR,
    ("webhooks.WebhookRedeliver", "POST"): ADMIN,
    # exports: the call history as CSV / NDJSON; an agent's export holds its own calls
    ("exports.CallExport", "GET"): AGENT,
    # browser pages and their static files (the page itself asks for an API key)
    ("pages.console", "GET"): PUBLIC,
    ("pages.wallboard", "GET"): PUBLIC,
    ("pages.asset", "GET"): PUBLIC,
}


def required_role(endpoint, method, websocket=False):
    """The POLICY entry for a route (HEAD as GET); unlisted routes need admin."""
    method = "GET" if method == "HEAD" else method
    listed = POLICY.get((endpoint, method))
    if listed is None and websocket:
        return WEBSOCKET
    return listed or ADMIN


def is_listed(endpoint, method):
    return (endpoint, method.upper()) in POLICY


def _rule():
    if request.endpoint is None:
        return None  # no such route: Flask answers 404/405
    return required_role(request.endpoint, request.method, is_websocket_route())


def _needs_no_check():
    return request.method == "OPTIONS" or _rule() in (PUBLIC, None)


def identify_caller():
    """Look the caller up before the rate limiter runs: database errors surface here as 503."""
    if not _needs_no_check():
        current_principal()


def enforce_policy():
    """401 without valid credentials, 403 below the route's role, 404 on another agent's call."""
    if _needs_no_check() or not auth_enabled():
        return
    rule = _rule()
    principal = current_principal()
    if rule == WEBSOCKET:
        if principal is None and g.get("credentials_presented"):
            abort(401, message="invalid, expired or revoked credentials", headers=AUTHENTICATE,
                  error_id="invalid_credentials")
        return  # no credentials yet: the hub waits for {"type": "auth", ...}
    if principal is None:
        if g.get("credentials_presented"):
            abort(401, message="invalid, expired or revoked credentials", headers=AUTHENTICATE,
                  error_id="invalid_credentials")
        abort(401, message="authentication required: send Authorization: Bearer <API key "
              "or token>", headers=AUTHENTICATE, error_id="unauthorized")
    if not principal.at_least(rule):
        abort(403, message=f"this needs the {rule} role; your key has the {principal.role} role",
              error_id="forbidden")
    if principal.is_agent:
        _check_ownership(principal)


def _check_ownership(principal):
    for name, value in (request.view_args or {}).items():
        known, owner = owner_of(name, value)
        if not known:
            logger.warning("agent refused on %s: no owner lookup for %r", request.endpoint, name)
            abort(403, message="agents may not use this route", error_id="forbidden")
        if owner != principal.agent_id:
            # 404, not 403: an agent must not learn which other calls exist.
            abort(404, message=f"{name.removesuffix('_id')} {value} not found",
                  error_id=NOT_FOUND_IDS.get(name, "not_found"))
