"""Registration state of the gateways: what a gateway_state report changes, and the status view.

FreeSWITCH's events are parsed in freeswitch/events/sip.py; this module gets
the plain facts (a GatewayStateReport) and decides what is stored and shown.
"""
import datetime
from dataclasses import dataclass

from models import utcnow

HEALTHY_STATES = ("REGED", "NOREG")
FAILURE_STATES = ("FAILED", "TIMEOUT")
# What FreeSWITCH reports while it refreshes a registration that is still valid:
# UNREGED -> TRYING -> REGISTER (Status 200) -> REGED on its own timer, or just
# REGISTER (200) -> REGED when sofia-sip refreshes by itself
# (tests/fixtures/esl/10_gateway_refresh_plain.txt).
REFRESH_STATES = ("UNREGED", "TRYING", "REGISTER")


@dataclass(frozen=True)
class GatewayStateReport:
    """One sofia::gateway_state event, as facts: which gateway, which state, when, why."""

    name: str
    state: str  # REGED, TRYING, FAILED, FAIL_WAIT, NOREG, DOWN ... (upper case)
    at: datetime.datetime  # naive UTC
    core_uuid: str = None  # the FreeSWITCH run; with sequence it identifies the event
    sequence: int = 0
    ping_status: str = None
    status_code: int = None  # the SIP answer of a failed REGISTER
    phrase: str = None


def already_applied(row, report):
    """True when the stored state came from this very event or a later one of the same run."""
    return (row is not None and row.core_uuid == report.core_uuid and bool(report.sequence)
            and report.sequence <= row.event_seq)


def is_failure(report):
    """A failed registration: FAILED or TIMEOUT, or any answer but a 2xx (401, 403, 408, 503)."""
    return report.state in FAILURE_STATES or (
        report.status_code is not None and not 200 <= report.status_code < 300)


def is_routine(row, report):
    """A step of a working registration that must neither be stored nor told.

    The 200 OK (State REGISTER) that precedes REGED, and the UNREGED and
    TRYING of a refresh of a registered gateway: they would make dashboards
    flicker "unregistered" at every refresh. A failure is never routine.
    """
    if row is None or is_failure(report) or report.state not in REFRESH_STATES:
        return False
    return report.state == "REGISTER" or row.state == "REGED"


def routine_values(report):
    """The columns a routine step changes: only which event was applied last."""
    return {"core_uuid": report.core_uuid, "event_seq": report.sequence, "event_at": report.at}


def state_values(row, report):
    """The SipGatewayState columns after this report (failure kept until a healthy state)."""
    state, at, status_code, phrase = report.state, report.at, report.status_code, report.phrase
    values = {"state": state, "ping_status": report.ping_status,
              "status_code": row.status_code if row else None,
              "phrase": row.phrase if row else None,
              "failure_reason": row.failure_reason if row else None,
              "failure_at": row.failure_at if row else None,
              "changed_at": at if row is None or row.state != state else row.changed_at}
    if is_failure(report):
        reason = " ".join(str(p) for p in (status_code, phrase) if p) or \
            ("registration timed out" if state == "TIMEOUT" else "registration failed")
        values.update(status_code=status_code, phrase=phrase and phrase[:128],
                      failure_reason=reason[:160], failure_at=at)
    elif state == "REGED":
        values.update(status_code=None, phrase=None, failure_reason=None)
    values.update(core_uuid=report.core_uuid, event_seq=report.sequence, event_at=at)
    return values


def is_news(row, values):
    """Whether the stored state changed enough to tell the live clients."""
    return row is None or row.state != values["state"] or \
        row.ping_status != values["ping_status"] or values["state"] == "FAILED"


def status_entry(gateway, state_row, view):
    """One gateway's status. view: xmlstatus fields, {} = not loaded, None = not asked."""
    entry = {"name": gateway.name, "provider": gateway.provider, "enabled": gateway.enabled,
             "register": gateway.register, "transport": gateway.transport,
             "apply_state": gateway.apply_state, "apply_detail": gateway.apply_detail,
             "loaded": None, "state": None, "status": None, "ping_status": None,
             "ping_time_ms": None, "retry": None, "last_change": None,
             "last_event_at": None, "failure_reason": None, "failure_status_code": None,
             "failure_at": None, "source": "none", "freeswitch_error": None}
    if state_row is not None:
        entry.update(state=state_row.state, ping_status=state_row.ping_status,
                     last_change=state_row.changed_at, last_event_at=state_row.event_at,
                     failure_reason=state_row.failure_reason,
                     failure_status_code=state_row.status_code,
                     failure_at=state_row.failure_at, source="events")
    if view is not None and "error" in view:
        entry["freeswitch_error"] = view["error"]
    elif view is not None:
        entry["loaded"] = bool(view)
        if view:
            entry.update(state=view.get("state"), status=view.get("status"),
                         ping_time_ms=_float(view.get("pingtime")),
                         retry=view.get("retry"), source="freeswitch")
            if refreshing(state_row, view, gateway.expiry):
                entry.update(state="REGED", retry=None)
        else:
            entry.update(state=None, status=None, source="freeswitch")
    if entry["status"] is None and entry["ping_status"] is not None:
        entry["status"] = entry["ping_status"]
    entry["registered"] = entry["state"] == "REGED"
    if entry["state"] in HEALTHY_STATES and entry["status"] != "DOWN":
        entry["failure_reason"] = None  # a past failure, no longer the current story
    return entry


def refreshing(state_row, view, expiry, now=None):
    """FreeSWITCH's view shows a refresh step of a gateway its events say is registered.

    A refresh answers within a second or two; the events process may apply its
    steps a little later than FreeSWITCH shows them, so the registration is
    taken as good while the last event is younger than the expiry (a refresh
    that fails ends in FAILED or TIMEOUT, which the events store at once).
    """
    if state_row is None or state_row.state != "REGED" or state_row.event_at is None:
        return False
    if view.get("state") not in REFRESH_STATES or view.get("status") == "DOWN":
        return False
    age = ((now or utcnow()) - state_row.event_at).total_seconds()
    return age <= (expiry or 3600)


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
