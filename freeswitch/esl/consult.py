"""FreeSWITCH commands of attended transfer (consult legs) and supervisor monitoring (eavesdrop)."""
from freeswitch.esl.commands import _dial, check_uuid, leg_variables

# Checked on the real switch (tests/fixtures/esl/23_consult_*.capture,
# 23_monitor_eavesdrop.capture): with park_after_bridge on the customer's leg, moving
# the agent's leg away parks the customer instead of hanging it up, and uuid_broadcast
# plays it the switch's hold music; `uuid_bridge <customer> <consult>` answers
# `+OK <consult uuid>` and joins the two (the agent's leg is left parked: we hang it up).
# A consult leg is tagged cc_leg=agent: until it becomes the call's agent leg its
# events are a former agent leg's (trail notes only), never the customer's.
EAVESDROP_DIGITS = {"listen": "0", "whisper": "2", "barge": "3"}
# The mode a monitor leg starts in (eavesdrop's own variables); switching later goes
# through eavesdrop's DTMF controls (2: speak with the agent, 3: three-way, 0: listen).
EAVESDROP_START_VARS = {"listen": {}, "whisper": {"eavesdrop_whisper_aleg": "true"},
                        "barge": {"eavesdrop_whisper_aleg": "true",
                                  "eavesdrop_whisper_bleg": "true"}}


def park_after_bridge_command(fs_uuid):
    """Keep a leg up (parked) when its bridge partner is moved away."""
    return f"uuid_setvar {check_uuid(fs_uuid)} park_after_bridge true"


def hangup_command(fs_uuid, cause="NORMAL_CLEARING"):
    """Hang up one leg (a consult, a monitor, a transferred agent) and only it."""
    return f"uuid_kill {check_uuid(fs_uuid)} {cause}"


def end_with_partner_command(fs_uuid):
    """After a consult: the customer's leg hangs up with its partner again (no silent park)."""
    return f"uuid_setvar {check_uuid(fs_uuid)} park_after_bridge false"


def hangup_after_bridge_command(fs_uuid):
    """After a cancelled consult: the agent's leg hangs up with the customer again."""
    return f"uuid_setvar {check_uuid(fs_uuid)} hangup_after_bridge true"


def hold_music_command(fs_uuid):
    """Play the switch's hold music to a parked leg until it is bridged again."""
    return f"uuid_broadcast {check_uuid(fs_uuid)} endless_playback::${{hold_music}} aleg"


def consult_command(agent_uuid, call_id, consult_uuid, dialstring, timeout=45):
    """Move the agent's leg to a consult: it rings dialstring and bridges to it; when
    that fails or ends the agent's leg parks (so cancel can bridge it back)."""
    leg = leg_variables(consult_uuid, call_id, "agent", timeout=timeout)
    return (f"uuid_transfer {check_uuid(agent_uuid)} '^^;set:hangup_after_bridge=false;"
            f"set:continue_on_fail=true;bridge:{leg}{_dial(dialstring)};park' inline")


def uuid_bridge_command(a_uuid, b_uuid):
    return f"uuid_bridge {check_uuid(a_uuid)} {check_uuid(b_uuid)}"


def monitor_originate_command(monitor_uuid, call_id, dialstring, target_uuid, mode,
                              timeout=45):
    """Ring a supervisor; on answer the leg eavesdrops on target_uuid (the agent's leg)."""
    leg = leg_variables(monitor_uuid, call_id, "agent", timeout=timeout)
    extra = "".join(f",{k}={v}" for k, v in EAVESDROP_START_VARS[mode].items())
    return (f"originate {leg[:-1]}{extra}}}{_dial(dialstring)} "
            f"&eavesdrop({check_uuid(target_uuid)})")


def monitor_mode_command(monitor_uuid, mode):
    """Switch a running eavesdrop: the digit as if the supervisor's phone had sent it."""
    return f"uuid_recv_dtmf {check_uuid(monitor_uuid)} {EAVESDROP_DIGITS[mode]}"
