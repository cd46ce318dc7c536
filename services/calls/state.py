"""The call state machine: which status may follow which, and what a hangup cause means."""

INITIATED = "initiated"
RINGING = "ringing"
IN_PROGRESS = "in-progress"
COMPLETED = "completed"
BUSY = "busy"
NO_ANSWER = "no-answer"
FAILED = "failed"
CANCELED = "canceled"

LIVE = (INITIATED, RINGING, IN_PROGRESS)
TERMINAL = (COMPLETED, BUSY, NO_ANSWER, FAILED, CANCELED)
ALL = LIVE + TERMINAL

# Rank orders the live states: an event that would move a call backwards
# (a late CHANNEL_PROGRESS after CHANNEL_ANSWER) is stale, not a transition.
_RANK = {INITIATED: 0, RINGING: 1, IN_PROGRESS: 2}
for _s in TERMINAL:
    _RANK[_s] = 3

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
    """The terminal status of a call that hung up with cause."""
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


def is_stale(current, requested):
    return _RANK[requested] < _RANK[current]
