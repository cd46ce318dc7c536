"""The queue offer command: what the agent's phone is told about the caller's queue."""
import uuid

import pytest

from freeswitch.esl import queues as fsq

LEG, CALL, ENTRY = (str(uuid.uuid4()) for _ in range(3))


def test_an_offer_tells_the_phone_which_queue_the_caller_waited_in():
    command = fsq.offer_originate_command(LEG, CALL, ENTRY, "user/1001", 15, queue_id="billing")
    assert command.startswith("originate {")
    assert "sip_h_X-CC-Queue=billing," in command
    assert f"cc_queue_entry={ENTRY}" in command and f"origination_uuid={LEG}" in command
    assert command.endswith("}user/1001 &park()")


def test_an_offer_without_a_queue_sends_no_queue_header():
    assert "X-CC-Queue" not in fsq.offer_originate_command(LEG, CALL, ENTRY, "user/1001", 15)


@pytest.mark.parametrize("queue_id", ["a b", "q,x", "q}x", "q'x"])
def test_a_queue_id_that_could_break_the_command_is_refused(queue_id):
    with pytest.raises(ValueError):
        fsq.offer_originate_command(LEG, CALL, ENTRY, "user/1001", 15, queue_id=queue_id)
