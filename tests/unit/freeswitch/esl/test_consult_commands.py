"""The attended-transfer and monitoring commands: what reaches FreeSWITCH, and what never may."""
import pytest

from freeswitch.esl import consult as fcc

A = "aaaaaaaa-0000-0000-0000-000000000001"
C = "cccccccc-0000-0000-0000-000000000001"
X = "dddddddd-0000-0000-0000-000000000001"


def test_consult_moves_the_agent_leg_to_a_tagged_consult_leg_and_parks_after():
    command = fcc.consult_command(A, C, X, "user/1002", timeout=4)
    assert command.startswith(f"uuid_transfer {A} '^^;")
    assert f"bridge:{{origination_uuid={X},cc_call_id={C},cc_leg=agent,originate_timeout=4}}" \
           "user/1002;park' inline" in command
    assert "set:continue_on_fail=true" in command  # a failed consult parks, not hangs up


@pytest.mark.parametrize("dial", ["user/1002;hangup", "user/1002 x", "user/1002'", ""])
def test_consult_refuses_a_dial_string_that_could_inject(dial):
    with pytest.raises(ValueError):
        fcc.consult_command(A, C, X, dial)


def test_monitor_starts_in_the_mode_asked_and_switches_with_eavesdrop_digits():
    listen = fcc.monitor_originate_command(X, C, "user/1003", A, "listen", timeout=4)
    assert listen.endswith(f"user/1003 &eavesdrop({A})") and "whisper" not in listen
    barge = fcc.monitor_originate_command(X, C, "user/1003", A, "barge")
    assert "eavesdrop_whisper_aleg=true,eavesdrop_whisper_bleg=true}" in barge
    assert fcc.monitor_mode_command(X, "whisper") == f"uuid_recv_dtmf {X} 2"
    assert fcc.monitor_mode_command(X, "listen") == f"uuid_recv_dtmf {X} 0"
    with pytest.raises(ValueError):
        fcc.uuid_bridge_command(A, "x; hupall")
