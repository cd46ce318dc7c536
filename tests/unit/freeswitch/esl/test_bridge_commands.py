"""The originate-with-bridge commands, in the form verified on the real switch
(tests/fixtures/esl/22_bridge_agent_first_*.capture)."""
import pytest

from freeswitch.esl.commands import bridge_in_command, bridge_originate_command

CALL = "cccccccc-0000-4000-8000-000000000001"
AGENT = "aaaaaaaa-0000-4000-8000-000000000001"
CUSTOMER = "bbbbbbbb-0000-4000-8000-000000000001"


def test_agent_first_rings_the_agent_and_bridges_the_customer_each_leg_named():
    command = bridge_originate_command(CALL, AGENT, "user/1001", CUSTOMER,
                                       "sofia/gateway/farend/answer-1", caller_id="5551234",
                                       agent_timeout=20, customer_timeout=30)
    assert command == (
        f"originate {{origination_uuid={AGENT},cc_call_id={CALL},cc_leg=agent,"
        f"originate_timeout=20}}user/1001 &bridge({{origination_uuid={CUSTOMER},"
        f"cc_call_id={CALL},cc_leg=customer,originate_timeout=30,"
        "origination_caller_id_number=5551234,effective_caller_id_number=5551234}"
        "sofia/gateway/farend/answer-1)")


def test_customer_first_bridges_the_agent_inline_with_a_separator_that_is_no_comma():
    command = bridge_in_command(CUSTOMER, CALL, AGENT, "user/1001", agent_timeout=15)
    assert command == (f"uuid_transfer {CUSTOMER} '^^;bridge:{{origination_uuid={AGENT},"
                       f"cc_call_id={CALL},cc_leg=agent,originate_timeout=15}}user/1001' inline")


@pytest.mark.parametrize("dial", ["user/1001 &park()", "user/1001,user/1002", "x'y", "", "a|b"])
def test_nothing_can_reach_into_the_dial_strings(dial):
    with pytest.raises(ValueError):
        bridge_originate_command(CALL, AGENT, dial, CUSTOMER, "sofia/gateway/g/1")
    with pytest.raises(ValueError):
        bridge_in_command(CUSTOMER, CALL, AGENT, dial)
    with pytest.raises(ValueError):
        bridge_originate_command(CALL, AGENT, "user/1001", CUSTOMER, "sofia/gateway/g/1",
                                 caller_id="1,2")
