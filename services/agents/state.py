"""The agent state machine: which action moves an agent from which states to which state."""
from models.agent import (  # noqa: F401  (re-exported: the state words of services and blueprints)
    ALL_STATES,
    AVAILABLE,
    LOGGED_OUT,
    ON_CALL,
    PAUSE_REASONS,
    PAUSED,
    RINGING,
    WRAP_UP,
)

# action -> (the states it may start from, the state it leads to). The first
# five are the agent's (API) actions; the others follow calls and the clock.
ACTIONS = {
    "login": ({LOGGED_OUT}, AVAILABLE),
    "logout": ({AVAILABLE, PAUSED, WRAP_UP}, LOGGED_OUT),
    "pause": ({AVAILABLE, PAUSED, WRAP_UP}, PAUSED),
    "resume": ({PAUSED}, AVAILABLE),
    "ready": ({WRAP_UP}, AVAILABLE),
    "offer": ({AVAILABLE}, RINGING),
    "connect": ({RINGING}, ON_CALL),
    "release": ({ON_CALL}, WRAP_UP),
    "withdraw": ({RINGING}, AVAILABLE),       # the offered call ended before the agent answered
    "no_answer": ({RINGING}, PAUSED),         # the agent let the offered call ring out
    "wrapup_over": ({WRAP_UP}, AVAILABLE),
}
API_ACTIONS = ("login", "logout", "pause", "resume", "ready")

ALLOWED = {}
for _sources, _target in ACTIONS.values():
    for _source in _sources:
        ALLOWED.setdefault(_source, set()).add(_target)

# The `agents` channel message type announcing an agent that reached a state.
EVENT_TYPES = {
    LOGGED_OUT: "agent.logged_out", AVAILABLE: "agent.available", RINGING: "agent.ringing",
    ON_CALL: "agent.on_call", WRAP_UP: "agent.wrap_up", PAUSED: "agent.paused",
}


class InvalidAgentTransition(Exception):
    """The action is not allowed from the agent's current state."""

    def __init__(self, current, action):
        target = ACTIONS[action][1] if action in ACTIONS else action
        super().__init__(f"an agent who is {current} cannot {action.replace('_', ' ')} "
                         f"(to become {target})")
        self.current = current
        self.action = action


def event_type(state):
    return EVENT_TYPES[state]


def decide(current, action, reason=None, current_reason=None):
    """The state action leads to, or None for a harmless repeat; raise InvalidAgentTransition.

    Asking for the state the agent is already in (login while available, the
    same pause reason again) changes nothing; a pause with another reason is a
    change (the trail keeps both).
    """
    if action not in ACTIONS:
        raise InvalidAgentTransition(current, action)
    sources, target = ACTIONS[action]
    if current == target and (target != PAUSED or reason == current_reason):
        return None
    if current not in sources:
        raise InvalidAgentTransition(current, action)
    return target


def needs_phone(target):
    """Only an agent whose phone can ring may be offered calls."""
    return target == AVAILABLE
