"""The shared command connection when a command times out, against the ESL simulator: the
connection is dropped (a late reply would answer the wrong command), and the commands that
were waiting behind the slow one still go out, on a new connection."""
import uuid

import gevent
import pytest

from freeswitch.esl import queues as fsq
from freeswitch.esl.commands import FreeSwitchCommands
from freeswitch.esl.connection import FreeSwitchUnavailable


@pytest.fixture
def slow_originates(sim):
    sim.originate_reply_delay = 1.0
    yield
    sim.originate_reply_delay = 0.0
    for fs_uuid in list(sim.channels):
        sim.hangup(fs_uuid)
    sim.wait_for(lambda: not sim.channels)


def test_a_kill_queued_behind_a_timed_out_originate_still_reaches_the_switch(sim,
                                                                            slow_originates):
    commands = FreeSwitchCommands("127.0.0.1", sim.port, "ClueCon", timeout=0.4)
    assert "UP" in commands.api("status")
    leg = str(uuid.uuid4())
    originate = fsq.offer_originate_command(leg, str(uuid.uuid4()), str(uuid.uuid4()),
                                            "user/1001", 15)
    slow = gevent.spawn(commands.bgapi, originate, job_uuid=leg)
    gevent.sleep(0.05)  # the originate holds the connection, waiting for its reply
    kill = gevent.spawn(commands.api, fsq.kill_command(leg))
    gevent.joinall([slow, kill], timeout=5)
    # The originate timed out on our side (the switch ran it all the same)...
    assert isinstance(slow.exception, FreeSwitchUnavailable)
    assert "did not answer" in str(slow.exception)
    # ...and the kill that waited behind it was sent, on a new connection, and killed the leg.
    assert kill.exception is None, kill.exception
    assert kill.value.startswith("+OK")
    assert f"api uuid_kill {leg} NORMAL_CLEARING" in sim.commands
    sim.wait_for(lambda: leg not in sim.channels or sim.channels[leg].ended)
    commands.close()


def test_a_command_that_times_out_is_not_sent_again(sim, slow_originates):
    commands = FreeSwitchCommands("127.0.0.1", sim.port, "ClueCon", timeout=0.4)
    leg = str(uuid.uuid4())
    originate = fsq.offer_originate_command(leg, str(uuid.uuid4()), str(uuid.uuid4()),
                                            "user/1001", 15)
    with pytest.raises(FreeSwitchUnavailable, match="did not answer"):
        commands.bgapi(originate, job_uuid=leg)
    # It may have run: sending it again could ring the agent twice.
    assert sum(1 for c in sim.commands if c.startswith("bgapi originate") and leg in c) == 1
    commands.close()
