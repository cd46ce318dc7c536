"""Queue offers when the switch answers late, against the ESL simulator: an originate whose
reply times out on our side but which the switch ran anyway must not leave the agent's
phone leg up (ringing or answered) while the agent is offered other callers."""
import pytest

from tests.conftest import wait_until
from tests.integration.agent_helpers import agent_of, make_agent
from tests.integration.queue_helpers import call_of_channel, entry_status, make_queue, route_to


@pytest.fixture(scope="module")
def late_stack(stack_factory, db_url, sim, bound_db):
    return stack_factory(db_url, sim, FREESWITCH_TIMEOUT="0.5")


@pytest.fixture
def late_originates(sim):
    """The switch answers `bgapi originate` after 1 s (we wait 0.5 s); phones answer 1.5 s
    after they start ringing, so a leg whose originate timed out answers after its offer
    was taken back and the next one made."""
    sim.originate_reply_delay = 1.0
    sim.ANSWER_DELAY_S = 1.5
    yield
    sim.originate_reply_delay = 0.0
    del sim.ANSWER_DELAY_S
    for fs_uuid in list(sim.channels):
        channel = sim.channels.get(fs_uuid)
        if channel is not None and channel.direction == "inbound" and not channel.ended:
            sim.hangup(fs_uuid)
    wait_until(lambda: not sim.channels, 10, message="no channel left in the simulator")


def live_legs_of(sim, phone):
    return [ch for ch in sim.channels.values() if ch.phone_user == phone and not ch.ended]


def test_an_originate_that_timed_out_leaves_no_agent_leg_behind(late_stack, sim,
                                                                 late_originates):
    agent_id = make_agent(late_stack, "user/1001", prefix="qf")
    queue_id = make_queue([agent_id])
    caller = sim.inbound_call("15550009001", route_to(queue_id), answer_after=0.05)
    call = call_of_channel(caller)
    # Every originate times out on our side (0.5 s) while the simulator runs it: the offer
    # is taken back and the leg it made is hung up, again and again, never left behind.
    wait_until(lambda: any(c.startswith("api uuid_kill") for c in sim.commands), 15,
               message="the leg of a timed-out originate hung up")
    sim.originate_reply_delay = 0.0  # the switch answers in time again
    wait_until(lambda: entry_status(call.id) == "answered", 20,
               message="the caller answered once originates are answered in time")
    wait_until(lambda: agent_of(late_stack, agent_id)["state"] == "on-call", 10)
    wait_until(lambda: len(live_legs_of(sim, "1001")) == 1, 10,
               message="one agent leg up: the bridged one")
    assert agent_of(late_stack, agent_id)["state"] == "on-call"
