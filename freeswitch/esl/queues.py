"""The commands of inbound queues (owner: services/queues): music while a caller waits in
FreeSWITCH (parked), the offer of a caller to an agent's phone, the bridge, a tone then
hang-up, and sending a caller on to a number.

A waiting caller's channel is answered and parked (context `public`); music is a
looping tone stream broadcast on it (`uuid_broadcast <uuid> tone_stream://...;loops=-1
aleg`), stopped by `uuid_break <uuid> all` before the caller is bridged or sent on.
An offer is a separate leg to the agent's phone, parked when answered and tagged
cc_call_id / cc_leg=agent / cc_queue_entry; `uuid_bridge <caller> <agent leg>` joins
them (the caller's CHANNEL_BRIDGE: Bridge-A = caller, Bridge-B = agent leg).
"""
import re

from freeswitch.esl.commands import channel_var, check_uuid, leg_variables

# Music on hold: a North-American ringback-like cadence, forever (tone_stream://, no files).
DEFAULT_MUSIC = "tone_stream://%(400,200,400,450);%(400,2000,400,450);loops=-1"
# What a caller hears before a queue hangs up (closed, max wait): three short beeps.
HANGUP_TONE = "tone_stream://%(200,200,480,620);loops=3"
HANGUP_TONE_SECONDS = 2
_TONE = re.compile(r"^tone_stream://[0-9%(),;=+.\-a-z]+$")


def _tone(path):
    if not _TONE.fullmatch(path or ""):
        raise ValueError(f"not a tone stream: {path!r}")
    return path


def music_command(fs_uuid, music=DEFAULT_MUSIC):
    """Play music (a looping tone stream) to a parked caller until uuid_break."""
    return f"uuid_broadcast {check_uuid(fs_uuid)} {_tone(music)} aleg"


def break_command(fs_uuid):
    """Stop whatever is playing to the caller (the music), so it can be bridged or sent on."""
    return f"uuid_break {check_uuid(fs_uuid)} all"


def tone_command(fs_uuid, tone=HANGUP_TONE):
    return f"uuid_broadcast {check_uuid(fs_uuid)} {_tone(tone)} aleg"


def sched_hangup_command(fs_uuid, seconds=HANGUP_TONE_SECONDS, cause="NORMAL_CLEARING"):
    """Hang the caller up after seconds (once the tone has played)."""
    return f"sched_hangup +{int(seconds)} {check_uuid(fs_uuid)} {channel_var(cause)}"


def bridge_command(caller_uuid, agent_uuid):
    """Bridge the waiting (parked) caller to the answered, parked agent leg."""
    return f"uuid_bridge {check_uuid(caller_uuid)} {check_uuid(agent_uuid)}"


def offer_originate_command(leg_uuid, call_id, entry_id, dialstring, timeout, queue_id=None):
    """Ring the agent's phone for a queued caller; the answered leg parks until bridged.

    hangup_after_bridge: when the caller hangs up, the agent's leg goes too.
    The INVITE carries `X-CC-Queue: <queue id>` (sip_h_) so a phone (the browser
    phone) can show which queue the caller waited in.
    """
    block = leg_variables(leg_uuid, call_id, "agent", timeout=timeout)
    extra = f"cc_queue_entry={check_uuid(entry_id)},hangup_after_bridge=true,"
    if queue_id:
        extra += f"sip_h_X-CC-Queue={channel_var(queue_id)},"
    if not dialstring or re.search(r"[\s,(){}'|;\"]", dialstring):
        raise ValueError(f"unsafe dial string {dialstring!r}")
    return f"originate {{{extra}{block[1:]}{dialstring} &park()"


def kill_command(fs_uuid, cause="NORMAL_CLEARING"):
    return f"uuid_kill {check_uuid(fs_uuid)} {channel_var(cause)}"


def reply_ok(body):
    """True when FreeSWITCH answered +OK."""
    return (body or "").strip().startswith("+OK")
