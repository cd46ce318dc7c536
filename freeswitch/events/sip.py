"""FreeSWITCH events of the SIP domain: sofia::gateway_state, read into plain facts."""
import datetime
import logging

from models import utcnow
from services.sip.registration import GatewayStateReport

logger = logging.getLogger(__name__)


def subscriptions(services):
    """Every SIP event this service handles, and its handler: name -> fn(event, outbox)."""
    sip = services.sip

    def on_gateway_state(event, outbox):
        report = gateway_state_report(event)
        if report is None:
            logger.debug("gateway_state without Gateway or State ignored")
            return
        sip.record_gateway_state(report, outbox)

    return {"sofia::gateway_state": on_gateway_state}


def gateway_state_report(event):
    """CUSTOM sofia::gateway_state headers -> a GatewayStateReport (None without name or state)."""
    name = event.get("Gateway")
    state = (event.get("State") or "").upper()
    if not name or not state:
        return None
    return GatewayStateReport(
        name=name, state=state, at=event_time(event), core_uuid=event.get("Core-UUID"),
        sequence=_int(event.get("Event-Sequence")) or 0,
        ping_status=event.get("Ping-Status") or None, status_code=_int(event.get("Status")),
        phrase=(event.get("Phrase") or "").strip() or None)


def event_time(event):
    """Event-Date-Timestamp (microseconds since the epoch) as naive UTC; now if absent."""
    micros = _int(event.get("Event-Date-Timestamp"))
    if not micros:
        return utcnow()
    return datetime.datetime.fromtimestamp(micros / 1_000_000, datetime.UTC) \
        .replace(tzinfo=None)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
