"""The live call-control command strings: what reaches FreeSWITCH, and what never may."""
import pytest

from freeswitch.esl import commands as fsc
from freeswitch.esl.connection import FreeSwitchError

LEG = "11111111-2222-4333-8444-555566667777"


def test_hold_mute_dtmf_and_transfer_commands():
    assert fsc.hold_command(LEG) == f"uuid_hold {LEG}"
    assert fsc.hold_command(LEG, off=True) == f"uuid_hold off {LEG}"
    assert fsc.mute_command(LEG) == f"uuid_audio {LEG} start read mute -4"
    assert fsc.mute_command(LEG, muted=False) == f"uuid_audio {LEG} stop"
    assert fsc.dtmf_command(LEG, "12#A*") == f"uuid_send_dtmf {LEG} 12#A*"
    assert fsc.transfer_command(LEG, "sofia/gateway/farend/answer-2", leg_uuid=LEG) == (
        f"uuid_transfer {LEG} bridge:{{origination_uuid={LEG}}}sofia/gateway/farend/answer-2 "
        "inline")


@pytest.mark.parametrize("digits", ["", "12E", "1 2", "1;uuid_kill x", "1\n", "9" * 65, None])
def test_digits_outside_dtmf_are_refused(digits):
    with pytest.raises(ValueError):
        fsc.dtmf_command(LEG, digits)


@pytest.mark.parametrize("dialstring", ["", "user/1001,hangup", "user/1001 x", "a'b"])
def test_a_transfer_target_cannot_add_inline_applications(dialstring):
    with pytest.raises(ValueError):
        fsc.transfer_command(LEG, dialstring)


def test_replies_other_than_ok_are_errors_with_freeswitch_words():
    assert fsc.control_reply_ok("+OK Success\n")
    with pytest.raises(FreeSwitchError, match="Operation failed"):
        fsc.control_reply_ok("-ERR Operation failed\n")
