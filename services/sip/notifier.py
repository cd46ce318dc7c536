"""SipNotifier: the only publisher on the `sip` channel, through the outbox (after commit)."""
from services.sip.schemas import GatewaySchema, GatewayStatusSchema

CHANNEL = "sip"

# sofia::gateway_state State -> the `sip` channel message type.
STATE_EVENT_TYPES = {
    "REGED": "sip.registered", "REGISTER": "sip.trying", "TRYING": "sip.trying",
    "UNREGED": "sip.unregistered", "UNREGISTER": "sip.unregistered",
    "EXPIRED": "sip.unregistered", "FAILED": "sip.failed", "TIMEOUT": "sip.failed",
    "FAIL_WAIT": "sip.fail_wait", "NOREG": "sip.noreg", "DOWN": "sip.down",
}


class SipNotifier:
    """The `sip` channel's messages; payloads are the REST dumps (never a password).

    Each method queues its message in the given outbox, dumped now: it is sent
    when the outbox's transaction commits, and dropped if it rolls back.
    """

    def __init__(self, publisher):
        self.publisher = publisher

    def gateway_changed(self, gateway, event_type, outbox):
        """sip.gateway_saved, sip.credentials_changed or sip.gateway_applied: the gateway."""
        outbox.publish(self.publisher, CHANNEL, event_type, GatewaySchema().dump(gateway))

    def gateway_deleted(self, name, outbox):
        outbox.publish(self.publisher, CHANNEL, "sip.gateway_deleted", {"name": name})

    def gateway_state(self, entry, outbox):
        """A registration change (sip.registered, sip.failed ...): the gateway's status entry."""
        event_type = STATE_EVENT_TYPES.get(entry.get("state"), "sip.state")
        outbox.publish(self.publisher, CHANNEL, event_type, GatewayStatusSchema().dump(entry))
