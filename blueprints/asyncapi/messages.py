"""Every live channel's message types and the schema of their `data` (docs/websocket.md).

A schema is the name of an OpenAPI component (the same marshmallow wire schema REST
dumps: `Call` is services/calls/schemas.py's CallSchema) or an inline schema. New message
types are added here; tests/integration/test_generated_client.py validates every message
a whole call sends against the document.
"""
from services.agents.state import EVENT_TYPES as AGENT_STATE_TYPES
from services.calls.state import EVENT_TYPES as CALL_STATE_TYPES
from services.sip.notifier import STATE_EVENT_TYPES as SIP_STATE_TYPES

ID_ONLY = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
NAME_ONLY = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
FIGURES = {"type": "object", "additionalProperties": True}
CALL_WITH_ALERT = {"allOf": [{"$ref": "#/components/schemas/Call"}, {
    "type": "object", "properties": {"alert": {
        "type": "object", "additionalProperties": True,
        "description": "thresholds crossed, and whether the alert is active"}}}]}


def _unique(*names):
    return tuple(dict.fromkeys(names))


CALL_CHANGES = _unique(*CALL_STATE_TYPES.values(), "call.initiated", "call.ended",
                       "call.updated", "call.quality_summary", "call.held", "call.unheld",
                       "call.muted", "call.unmuted", "call.dtmf_sent", "call.transferred",
                       "call.transfer_consulting", "call.transfer_cancelled",
                       "call.monitor_changed")

# channel -> ((message types, data schema, what they say), ...)
CHANNEL_MESSAGES = {
    "calls": (
        (CALL_CHANGES, "Call", "the call, as GET /api/calls/{call_id} returns it"),
        (("call.deleted",), ID_ONLY, "the deleted call's id"),
        (("call.quality_degraded", "call.quality_recovered"), CALL_WITH_ALERT,
         "the call plus its quality alert"),
    ),
    "recordings": (
        (("recording.started", "recording.stopped", "recording.ready", "recording.failed",
          "recording.deleted"), "Recording", "the recording, as the recordings API shows it"),
        (("call.transcribed", "call.transcription_failed"), FIGURES,
         "the transcript's figures (never its words)"),
    ),
    "sip": (
        (("sip.gateway_saved", "sip.credentials_changed", "sip.gateway_applied"), "Gateway",
         "the gateway, never a password"),
        (("sip.gateway_deleted",), NAME_ONLY, "the deleted gateway's name"),
        (_unique(*SIP_STATE_TYPES.values(), "sip.state"), "GatewayStatus",
         "the gateway's registration status"),
    ),
    "agents": (
        (_unique("agent.created", "agent.updated", *AGENT_STATE_TYPES.values()), "Agent",
         "the agent, as GET /api/agents/{agent_id} returns it"),
        (("agent.deleted",), ID_ONLY, "the deleted agent's id"),
    ),
    "queues": (
        (("queue.caller_joined", "queue.caller_offered", "queue.caller_answered",
          "queue.caller_position", "queue.caller_left"), FIGURES,
         "one caller's stay in a queue (docs/websocket.md)"),
        (("queue.snapshot",), FIGURES, "every queue's figures"),
    ),
    "metrics": ((("metrics.snapshot",), "Metrics",
                 "the figures GET /api/calls/metrics/realtime returns"),),
    "performance": (
        (("performance.slow_request", "performance.memory_high", "performance.queue_backlog",
          "performance.webhook_disabled"), FIGURES, "an operational alert"),
    ),
    "webhooks": ((("webhook.disabled",), FIGURES, "a webhook disabled after failing"),),
}
