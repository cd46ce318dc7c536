"""The call state machine: which status may follow which, and what ends a call with which status."""
from models.call import (  # noqa: F401  (re-exported: the status words of services and blueprints)
    ALL_STATUSES,
    BUSY,
    CANCELED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    INITIATED,
    LIVE_STATUSES,
    NO_ANSWER,
    RINGING,
    TERMINAL_STATUSES,
)
from models.db import utcnow

LIVE = LIVE_STATUSES
TERMINAL = TERMINAL_STATUSES
ALL = ALL_STATUSES

ALLOWED = {
    INITIATED: {RINGING, IN_PROGRESS, COMPLETED, BUSY, NO_ANSWER, FAILED, CANCELED},
    RINGING: {IN_PROGRESS, COMPLETED, BUSY, NO_ANSWER, FAILED, CANCELED},
    # Once answered, a call can only end as completed (or failed if the media died).
    IN_PROGRESS: {COMPLETED, FAILED},
}

EVENT_TYPES = {
    INITIATED: "call.initiated",
    RINGING: "call.ringing",
    IN_PROGRESS: "call.answered",
}

BUSY_CAUSES = {"USER_BUSY", "CALL_REJECTED", "NORMAL_CIRCUIT_CONGESTION_BUSY"}
NO_ANSWER_CAUSES = {"NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT",
                    "PROGRESS_TIMEOUT", "RECOVERY_ON_TIMER_EXPIRE"}
CANCEL_CAUSES = {"ORIGINATOR_CANCEL", "LOSE_RACE", "PICKED_OFF", "MANAGER_REQUEST"}

# Why reconciliation closed a call. It is also the mark of the only ended calls
# that may come back: `show channels` lags the channel events on a real switch,
# so a channel can show up live after the verdict (see reopen()).
GONE_REASON = "channel gone from FreeSWITCH while its events were not received"
REOPENABLE = (COMPLETED, FAILED)

# The causes this service records when it ends a call itself (POST /end).
API_END_ANSWERED_CAUSE = "NORMAL_CLEARING"
API_END_UNANSWERED_CAUSE = "ORIGINATOR_CANCEL"


class InvalidTransition(Exception):
    """The requested status cannot follow the current one."""

    def __init__(self, current, requested):
        super().__init__(f"a call that is {current} cannot become {requested}")
        self.current = current
        self.requested = requested


def event_type(status):
    """The `calls` channel event type announcing a call that reached status."""
    return EVENT_TYPES.get(status, "call.ended")


def status_for_hangup(cause, answered):
    """The terminal status of a call that hung up with cause (a channel event)."""
    if answered:
        return COMPLETED
    cause = (cause or "").upper()
    if cause in BUSY_CAUSES:
        return BUSY
    if cause in NO_ANSWER_CAUSES:
        return NO_ANSWER
    if cause in CANCEL_CAUSES:
        return CANCELED
    return FAILED


def originate_failure_cause(result):
    """The hangup cause in a failed originate's BACKGROUND_JOB body ("-ERR USER_BUSY")."""
    result = (result or "").strip()
    cause = result[len("-ERR"):].strip() if result.startswith("-ERR") else result
    return cause.split()[0] if cause else "UNKNOWN"


def status_for_originate_failure(cause):
    """The terminal status of a call whose originate failed: it was never answered."""
    return status_for_hangup(cause, answered=False)


def api_end(current):
    """(status, hangup_cause) for a live call hung up through the API."""
    if current == IN_PROGRESS:
        return COMPLETED, API_END_ANSWERED_CAUSE
    return CANCELED, API_END_UNANSWERED_CAUSE


def reconcile_verdict(answered):
    """The status of a call whose channel FreeSWITCH no longer has and whose hangup was
    missed: completed if it had been answered, else failed."""
    return COMPLETED if answered else FAILED


def decide(current, requested, strict):
    """Return True to apply, False for a harmless no-op; raise InvalidTransition.

    Repeats and stale (backward) moves are no-ops so that replayed, duplicated
    or out-of-order FreeSWITCH events change nothing. With strict (an API
    request), anything that is not a real forward transition is refused,
    except asking for the status the call already has.
    """
    if requested not in ALL:
        raise InvalidTransition(current, requested)
    if requested == current:
        return False
    if requested in ALLOWED.get(current, ()):
        return True
    if strict:
        raise InvalidTransition(current, requested)
    return False


def apply(call, requested, strict=False, at=None):
    """Move call to requested if allowed (see decide); return the status it had, or None.

    The one place that writes a call's status, with the timestamps and
    durations that go with reaching it; the caller stores the row.
    """
    if not decide(call.status, requested, strict):
        return None
    at = at or utcnow()
    previous = call.status
    call.status = requested
    if requested == RINGING:
        call.ringing_at = call.ringing_at or at
    elif requested == IN_PROGRESS:
        call.answered_at = call.answered_at or at
    elif requested in TERMINAL:
        call.ended_at = call.ended_at or at
        _fill_durations(call)
    return previous


def answered_after_all(call, status):
    """True for a call ended as canceled (the API hung up before the answer's event was
    applied) whose hangup says FreeSWITCH had answered it: the hangup's word wins."""
    return call.status == CANCELED and status == COMPLETED and call.answered_at is not None


def correct_to_completed(call):
    """Make a canceled call that had been answered completed (its talk time recounted from
    the answer); returns the status it had."""
    previous = call.status
    call.status = COMPLETED
    call.billsec = call.ring_seconds = None  # rang until the answer, talked from it
    _fill_durations(call)
    return previous


def reopenable(call):
    """True for a call that reconciliation ended (its channel was believed gone)."""
    return call.status in REOPENABLE and call.status_reason == GONE_REASON


def reopen(call, requested, at=None):
    """Bring a call closed by reconciliation back to the live status requested.

    The only move from an ended status back to a live one, allowed only for a
    reconcile-closed call (reopenable): its channel showed up live after all.
    Returns the status it had, or None when the move is not allowed.
    """
    if requested not in LIVE or not reopenable(call):
        return None
    at = at or utcnow()
    previous = call.status
    call.status = requested
    call.ended_at = call.duration = call.billsec = None
    call.hangup_cause = call.status_reason = None
    if requested == RINGING:
        call.ringing_at = call.ringing_at or at
    elif requested == IN_PROGRESS:
        call.answered_at = call.answered_at or at
    return previous


def _fill_durations(call):
    if call.ended_at and call.duration is None:
        call.duration = max(0, int((call.ended_at - call.created_at).total_seconds()))
    if call.billsec is None:
        if call.answered_at and call.ended_at:
            call.billsec = max(0, int((call.ended_at - call.answered_at).total_seconds()))
        else:
            call.billsec = 0
