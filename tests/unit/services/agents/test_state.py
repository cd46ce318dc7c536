"""The agent state machine: every action from every state, written out here independently."""
import pytest

from services.agents import state as ag

LO, AV, RI, ON, WU, PA = ("logged-out", "available", "ringing", "on-call", "wrap-up", "paused")
STATES = (LO, AV, RI, ON, WU, PA)

# action -> {from state: to state}; every pair not listed must be refused.
EXPECTED = {
    "login": {LO: AV},
    "logout": {AV: LO, PA: LO, WU: LO},
    "pause": {AV: PA, WU: PA, PA: PA},
    "resume": {PA: AV},
    "ready": {WU: AV},
    "offer": {AV: RI},
    "connect": {RI: ON},
    "release": {ON: WU},
    "withdraw": {RI: AV},
    "no_answer": {RI: PA},
    "wrapup_over": {WU: AV},
}
PAIRS = [(action, state) for action in EXPECTED for state in STATES]


@pytest.mark.parametrize("action,current", PAIRS)
def test_every_action_from_every_state(action, current):
    target = EXPECTED[action].get(current)
    reason = "lunch" if action in ("pause", "no_answer") else None
    if target is None and current == ag.ACTIONS[action][1]:
        # asking for the state the agent is in already: a harmless no-op
        assert ag.decide(current, action) is None
    elif target is None:
        with pytest.raises(ag.InvalidAgentTransition) as exc:
            ag.decide(current, action, reason)
        assert current in str(exc.value)
    else:
        assert ag.decide(current, action, reason, current_reason="break") == target


def test_a_repeated_pause_with_the_same_reason_changes_nothing_another_reason_does():
    assert ag.decide(PA, "pause", "lunch", current_reason="lunch") is None
    assert ag.decide(PA, "pause", "training", current_reason="lunch") == PA


def test_the_refusal_names_the_state_and_the_action():
    with pytest.raises(ag.InvalidAgentTransition) as exc:
        ag.decide(ON, "ready")
    assert str(exc.value) == "an agent who is on-call cannot ready (to become available)"


def test_an_unknown_action_is_refused():
    with pytest.raises(ag.InvalidAgentTransition):
        ag.decide(AV, "teleport")


def test_only_becoming_available_needs_a_registered_phone():
    assert [s for s in STATES if ag.needs_phone(s)] == [AV]


def test_each_state_has_its_channel_message_type():
    assert {ag.event_type(s) for s in STATES} == {
        "agent.logged_out", "agent.available", "agent.ringing", "agent.on_call",
        "agent.wrap_up", "agent.paused"}
