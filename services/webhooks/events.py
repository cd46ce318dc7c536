"""The event types a webhook may ask for, and which messages a webhook wants.

The names are the live channels' message types (the outbox-published channels:
calls, recordings, sip, agents, webhooks); `<prefix>.*` asks for a whole family
("call.*"). A filter narrows to one agent, campaign or queue.
"""
from services.agents.state import EVENT_TYPES as AGENT_STATE_TYPES
from services.calls.state import EVENT_TYPES as CALL_STATE_TYPES
from services.sip.notifier import STATE_EVENT_TYPES as SIP_STATE_TYPES

# Channels whose messages go through the outbox (metrics and performance do not:
# they are no database change, and are for dashboards, not integrations).
DELIVERABLE_CHANNELS = ("calls", "recordings", "sip", "agents", "webhooks")

EVENT_TYPES = frozenset(
    list(CALL_STATE_TYPES.values()) + list(AGENT_STATE_TYPES.values())
    + list(SIP_STATE_TYPES.values()) + [
        "call.ended", "call.updated", "call.deleted", "call.quality_degraded",
        "call.quality_recovered", "call.quality_summary", "call.held", "call.unheld",
        "call.muted", "call.unmuted", "call.dtmf_sent", "call.transferred",
        "call.transfer_consulting", "call.transfer_cancelled", "call.monitor_changed",
        "recording.started", "recording.stopped", "recording.ready", "recording.failed",
        "recording.deleted", "call.transcribed", "call.transcription_failed",
        "sip.gateway_saved", "sip.credentials_changed",
        "sip.gateway_applied", "sip.gateway_deleted", "sip.state",
        "agent.created", "agent.updated", "agent.deleted", "webhook.disabled"])
FAMILIES = frozenset(name.split(".", 1)[0] + ".*" for name in EVENT_TYPES)
FILTER_FIELDS = ("agent_id", "campaign_id", "queue_id")

# The message types a status callback (per call, on POST /api/calls/start) receives.
CALLBACK_CHANNEL = "calls"
CALLBACK_KEY = "status_callback"  # where the call keeps it: its metadata


def unknown_types(names):
    """The names that are neither a known event type nor a `<prefix>.*` family."""
    return sorted(name for name in names if name not in EVENT_TYPES and name not in FAMILIES)


def order_key(channel, data):
    """What a webhook's deliveries are ordered by: the call (or the agent, the gateway)."""
    if channel == "calls":
        return data.get("id") or ""
    if channel == "recordings":
        return data.get("call_id") or data.get("id") or ""
    if channel == "agents":
        return "agent:" + str(data.get("id") or "")
    return channel


class Subscription:
    """One enabled webhook as the fan-out matches it: in memory, no database."""

    __slots__ = ("id", "types", "families", "filter")

    def __init__(self, webhook_id, event_types, filters):
        self.id = webhook_id
        self.types = frozenset(t for t in event_types if not t.endswith(".*"))
        self.families = frozenset(t[:-1] for t in event_types if t.endswith(".*"))
        self.filter = {k: v for k, v in (filters or {}).items() if v not in (None, "")}

    def wants(self, event_type, data):
        if event_type not in self.types and not any(
                event_type.startswith(prefix) for prefix in self.families):
            return False
        return all(_field(data, name) == value for name, value in self.filter.items())


def _field(data, name):
    """A filter field of a message: the call's own, or its metadata's (queue_id)."""
    if name in data:
        return data.get(name)
    metadata = data.get("metadata") or {}
    return metadata.get(name) if isinstance(metadata, dict) else None


def status_callback_of(channel, data):
    """The call's status_callback URL, for a `calls` message of a call that has one."""
    if channel != CALLBACK_CHANNEL:
        return None
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        return None
    url = metadata.get(CALLBACK_KEY)
    return url if isinstance(url, str) and url else None
