"""The commands this service sends to FreeSWITCH, over a lazily (re)connected link."""
import dataclasses
import datetime
import json
import logging
import re
import time

import gevent.lock

from freeswitch.esl.connection import ESLConnection, FreeSwitchError, FreeSwitchUnavailable, NotSent

logger = logging.getLogger(__name__)

# Channel-variable values go inside {a=b,c=d}: commas, braces, quotes and spaces
# would end the variable or the dial string, so they are refused up front.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_+*#.@:\-]*$")
_UUID = re.compile(r"^[0-9a-fA-F-]{8,64}$")


def channel_var(value):
    value = "" if value is None else str(value)
    if not _SAFE_VALUE.fullmatch(value):
        raise ValueError(f"unsafe characters in channel variable value {value!r}")
    return value


def check_uuid(value):
    if not _UUID.fullmatch(value or ""):
        raise ValueError(f"not a channel uuid: {value!r}")
    return value


# Channels (reconciliation). `show channels` lags the channel events on a real
# switch, so a channel missing from it is only taken as gone once `uuid_exists`
# says so.
SHOW_CHANNELS = "show channels as json"


def parse_channels(body):
    """`show channels as json` -> its rows (list of dicts); ValueError if it is not that."""
    text = (body or "").strip()
    if not text.startswith("{"):
        raise ValueError(f"unexpected `show channels as json` reply: {text[:200]}")
    return json.loads(text).get("rows") or []


def uuid_dump_command(fs_uuid):
    return f"uuid_dump {check_uuid(fs_uuid)} json"


def parse_uuid_dump(body):
    """A `uuid_dump <uuid> json` reply -> the channel's variables, or None (gone, garbled)."""
    text = (body or "").lstrip()
    if not text.startswith("{"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def uuid_exists_command(fs_uuid):
    return f"uuid_exists {check_uuid(fs_uuid)}"


def parse_uuid_exists(body):
    """`uuid_exists` answers `true` or `false`; anything else (-ERR ...) is None: unknown."""
    answer = (body or "").strip().lower()
    return {"true": True, "false": False}.get(answer)


@dataclasses.dataclass
class ChannelSnapshot:
    """What FreeSWITCH had at taken_at (naive UTC, taken BEFORE `show channels` was sent):
    the `show channels` rows, each with its `uuid_dump` under "_dump" when it could be
    read, and the channel uuids that `uuid_exists` confirmed gone."""

    taken_at: datetime.datetime
    rows: list
    gone: set = dataclasses.field(default_factory=set)


def take_channel_snapshot(api, taken_at, suspects, max_queries=5000):
    """Ask FreeSWITCH, through api(command) -> body, for a ChannelSnapshot.

    suspects(channel uuids) -> the uuids of calls believed live whose channel is
    not in the list; each is checked with `uuid_exists`. Raises
    FreeSwitchUnavailable, or ValueError on an unreadable channel list.
    """
    rows = parse_channels(api(SHOW_CHANNELS))
    # `show channels` does not say reliably whether a channel was answered (a
    # parked, answered call still shows callstate RINGING), so each live
    # channel's full state comes from `uuid_dump <uuid> json`.
    for row in rows[:max_queries]:
        if _UUID.fullmatch(row.get("uuid") or ""):
            dump = parse_uuid_dump(api(uuid_dump_command(row["uuid"])))
            if dump is not None:
                row["_dump"] = dump
    gone = set()
    for fs_uuid in list(suspects({row.get("uuid") for row in rows}))[:max_queries]:
        if _UUID.fullmatch(fs_uuid or "") and \
                parse_uuid_exists(api(uuid_exists_command(fs_uuid))) is False:
            gone.add(fs_uuid)
    return ChannelSnapshot(taken_at, rows, gone)


class FreeSwitchCommands:
    """Sends commands over one shared command connection (no event subscription).

    After a failed connect it waits `retry_after` seconds before trying again,
    so that while FreeSWITCH is down requests fail fast with 503 instead of each
    waiting for a connect timeout.
    """

    def __init__(self, host, port, password, timeout=5.0, retry_after=1.0,
                 profile="external"):
        self._conn = ESLConnection(host, port, password, timeout=timeout)
        self._lock = gevent.lock.RLock()
        self._retry_after = retry_after
        self._failed_at = None
        self._last_error = None
        self.profile = profile

    @property
    def connected(self):
        return self._conn.connected

    def state(self):
        if self._conn.connected:
            return "connected"
        return "unreachable" if self._failed_at else "idle"

    def _ensure(self):
        with self._lock:
            if self._conn.connected:
                return self._conn
            now = time.monotonic()
            if self._failed_at and now - self._failed_at < self._retry_after:
                raise FreeSwitchUnavailable(self._last_error)
            try:
                self._conn.connect()
            except FreeSwitchUnavailable as exc:
                self._failed_at, self._last_error = now, str(exc)
                logger.warning("FreeSWITCH unreachable: %s", exc)
                raise
            self._failed_at = None
            logger.info("command connection to FreeSWITCH established")
            return self._conn

    def _send(self, run):
        """run(connection); once more on a new connection when the command never went out
        (another command's timeout closed the shared connection while this one waited)."""
        try:
            return run(self._ensure())
        except NotSent:
            return run(self._ensure())

    def api(self, command, timeout=None):
        return self._send(lambda conn: conn.api(command, timeout=timeout))

    def bgapi(self, command, job_uuid=None):
        return self._send(lambda conn: conn.bgapi(command, job_uuid=job_uuid))

    def ping(self):
        """True when FreeSWITCH answers `status`."""
        try:
            return "UP" in self.api("status", timeout=2.0)
        except FreeSwitchUnavailable:
            return False

    # Calls
    @staticmethod
    def originate_command(fs_uuid, call_id, dialstring, caller_id=None, timeout=45,
                          extra_vars=None):
        variables = {"origination_uuid": check_uuid(fs_uuid), "cc_call_id": check_uuid(call_id),
                     "originate_timeout": int(timeout), "hangup_after_bridge": "true"}
        if caller_id:
            variables["origination_caller_id_number"] = channel_var(caller_id)
            variables["effective_caller_id_number"] = channel_var(caller_id)
        for key, value in (extra_vars or {}).items():
            variables[channel_var(key)] = channel_var(value)
        rendered = ",".join(f"{k}={v}" for k, v in variables.items())
        return f"originate {{{rendered}}}{dialstring} &park()"

    def dialstring(self, to_number, gateway=None):
        to_number = channel_var(to_number)
        if gateway:
            return f"sofia/gateway/{channel_var(gateway)}/{to_number}"
        if "@" in to_number:
            return f"sofia/{channel_var(self.profile)}/{to_number}"
        raise ValueError("no gateway given and no DEFAULT_GATEWAY configured")

    def originate(self, fs_uuid, call_id, to_number, gateway=None, caller_id=None,
                  timeout=45, job_uuid=None):
        """Start an outbound call in the background; returns the bgapi Job-UUID."""
        command = self.originate_command(fs_uuid, call_id, self.dialstring(to_number, gateway),
                                         caller_id=caller_id, timeout=timeout)
        return self.bgapi(command, job_uuid=job_uuid)

    def uuid_kill(self, fs_uuid, cause="NORMAL_CLEARING"):
        """Hang up a channel; returns False when FreeSWITCH no longer has it."""
        body = self.api(f"uuid_kill {check_uuid(fs_uuid)} {channel_var(cause)}")
        if body.startswith("-ERR"):
            if "No such channel" in body:
                return False
            raise FreeSwitchError(body.strip())
        return True

    def uuid_exists(self, fs_uuid):
        """True/False: does FreeSWITCH have the channel; None when its answer is unreadable."""
        return parse_uuid_exists(self.api(uuid_exists_command(fs_uuid)))

    def close(self):
        self._conn.close()


# ----- Recordings (uuid_record; owner: the recordings domain) ---------------
# MAX_RECORDING_SIZE is enforced as uuid_record's time limit: FreeSWITCH stops
# writing after limit seconds of 16-bit PCM WAV. When the channel's rate is
# unknown, narrow-band telephony (8000 Hz: 16,000 bytes a second) is assumed.
WAV_HEADER_BYTES = 44
ASSUMED_SAMPLE_RATE = 8000
BYTES_PER_SAMPLE = 2


def recording_limit_seconds(max_bytes, sample_rate=None, channels=1):
    """Seconds of 16-bit PCM WAV that fit in max_bytes (at least 1)."""
    rate = sample_rate or ASSUMED_SAMPLE_RATE
    per_second = rate * BYTES_PER_SAMPLE * max(1, channels)
    return max(1, (max_bytes - WAV_HEADER_BYTES) // per_second)


def _record_path(path):
    # uuid_record splits its arguments on spaces: such a path would record elsewhere.
    if not path or re.search(r"\s", path):
        raise ValueError(f"unusable recording path {path!r}")
    return path


def record_start_command(fs_uuid, path, limit_seconds):
    """Record a channel to path (WAV), stopping after limit_seconds."""
    return f"uuid_record {check_uuid(fs_uuid)} start {_record_path(path)} {int(limit_seconds)}"


def record_stereo_command(fs_uuid, stereo=True):
    """Before `uuid_record start`: record the two directions on two channels (RECORD_STEREO).

    The left channel is what the recorded channel reads (its own party, the
    customer on the call's leg), the right what it is sent (the agent).
    """
    return f"uuid_setvar {check_uuid(fs_uuid)} RECORD_STEREO {'true' if stereo else 'false'}"


def record_stop_command(fs_uuid, path):
    return f"uuid_record {check_uuid(fs_uuid)} stop {_record_path(path)}"


def read_rate_command(fs_uuid):
    """Ask a channel's read (sample) rate, in Hz."""
    return f"uuid_getvar {check_uuid(fs_uuid)} read_rate"


def parse_read_rate(reply):
    """uuid_getvar's reply -> a plausible sample rate, or None when FreeSWITCH cannot tell."""
    reply = (reply or "").strip()
    return int(reply) if reply.isdigit() and 4000 <= int(reply) <= 192000 else None


# ----- Agent phones (show registrations; owner: the agents domain) ----------
# Every registration of every profile, as JSON: {"row_count":N,"rows":[{"reg_user",
# "realm", "url", "expires", ...}]}; with none, `{"row_count": 0}` and no rows
# (tests/fixtures/esl/12_api_show_registrations_as_json_*.capture).
SHOW_REGISTRATIONS = "show registrations as json"


def parse_registrations(body):
    """`show registrations as json` -> {(user, realm)} registered now; ValueError if not that."""
    text = (body or "").strip()
    if not text.startswith("{"):
        raise ValueError(f"unexpected `{SHOW_REGISTRATIONS}` reply: {text[:200]}")
    rows = json.loads(text).get("rows") or []
    return {(row.get("reg_user"), row.get("realm")) for row in rows if row.get("reg_user")}


# ----- Live call control (hold, mute, DTMF, transfer; owner: the calls domain) ----
# Replies of the real switch (tests/fixtures/esl/22_call_control_hold_dtmf.capture):
# `uuid_hold` answers `+OK Success`, or `-ERR Operation failed` when the channel is
# already (un)held; `uuid_send_dtmf` answers `+OK <uuid> sent DTMF <digits>.`; a gone
# channel answers `-ERR No such channel!` (uuid_hold even answers +OK for one, so the
# service checks the call's state before it sends anything).
DTMF_DIGITS = re.compile(r"^[0-9*#A-D]{1,64}$")
# Silence what FreeSWITCH reads from the agent's phone (its microphone); the level is
# the silence generator's divisor (negative: no comfort noise at all).
MUTE_LEVEL = -4


def check_digits(digits):
    if not isinstance(digits, str) or not DTMF_DIGITS.fullmatch(digits):
        raise ValueError(f"DTMF digits must be 1-64 of 0-9 * # A-D, not {digits!r}")
    return digits


def hold_command(fs_uuid, off=False):
    """Hold a leg: FreeSWITCH re-INVITEs it sendonly and plays its hold_music to the
    leg bridged to it; `off` takes it back."""
    return f"uuid_hold off {check_uuid(fs_uuid)}" if off else f"uuid_hold {check_uuid(fs_uuid)}"


def mute_command(fs_uuid, muted=True):
    """Silence (or stop silencing) what FreeSWITCH reads from a leg's phone."""
    if muted:
        return f"uuid_audio {check_uuid(fs_uuid)} start read mute {MUTE_LEVEL}"
    return f"uuid_audio {check_uuid(fs_uuid)} stop"


def dtmf_command(fs_uuid, digits):
    """Send digits (RFC 2833) to the far side of a leg."""
    return f"uuid_send_dtmf {check_uuid(fs_uuid)} {check_digits(digits)}"


def transfer_command(fs_uuid, dialstring, leg_uuid=None):
    """Send a leg to a new destination: it leaves its bridge or park and bridges to
    dialstring (the inline dialplan: no spaces or commas may reach it). leg_uuid names
    the new leg, so that its events can be told apart."""
    if re.search(r"[\s,']", dialstring or "") or not dialstring:
        raise ValueError(f"unusable dial string {dialstring!r}")
    prefix = f"{{origination_uuid={check_uuid(leg_uuid)}}}" if leg_uuid else ""
    return f"uuid_transfer {check_uuid(fs_uuid)} bridge:{prefix}{dialstring} inline"


def park_command(fs_uuid):
    """Take a leg out of its bridge and park it (a blind transfer into a queue: the
    queue then plays its music and offers it on)."""
    return f"uuid_transfer {check_uuid(fs_uuid)} park inline"


def control_reply_ok(body):
    """True for a call-control command's +OK; FreeSwitchError with FreeSWITCH's words else."""
    text = (body or "").strip()
    if text.startswith("+OK"):
        return True
    raise FreeSwitchError(text or "no reply")


# ----- Bridging (agent legs; owner: the calls domain) -----------------------
# Agent first (click-to-call): one originate rings the agent and, once the agent
# answers, its `&bridge(...)` dials the customer; each leg is named by its own
# origination_uuid and tagged cc_leg, so its events are told apart. The
# BACKGROUND_JOB answers when the AGENT answers (or fails): a -ERR is the agent's.
# When the bridge fails the agent leg's only application ends and FreeSWITCH
# hangs it up: no orphan (tests/fixtures/esl/22_bridge_agent_first*.capture).
LEG_VAR = "cc_leg"


def leg_variables(fs_uuid, call_id, leg, caller_id=None, timeout=None):
    """The {...} block of one leg: its uuid, our call id and which leg it is."""
    variables = {"origination_uuid": check_uuid(fs_uuid), "cc_call_id": check_uuid(call_id),
                 LEG_VAR: channel_var(leg)}
    if timeout is not None:
        variables["originate_timeout"] = int(timeout)
    if caller_id:
        variables["origination_caller_id_number"] = channel_var(caller_id)
        variables["effective_caller_id_number"] = channel_var(caller_id)
    return "{" + ",".join(f"{k}={v}" for k, v in variables.items()) + "}"


def bridge_originate_command(call_id, agent_uuid, agent_dialstring, customer_uuid,
                             customer_dialstring, caller_id=None, agent_timeout=45,
                             customer_timeout=45):
    """originate the agent's leg, then bridge it to the customer's (agent first)."""
    agent = leg_variables(agent_uuid, call_id, "agent", timeout=agent_timeout)
    customer = leg_variables(customer_uuid, call_id, "customer", caller_id=caller_id,
                             timeout=customer_timeout)
    return (f"originate {agent}{_dial(agent_dialstring)} "
            f"&bridge({customer}{_dial(customer_dialstring)})")


def bridge_in_command(customer_uuid, call_id, agent_uuid, agent_dialstring, agent_timeout=45):
    """Customer first: the answered, parked customer leg bridges to the agent's endpoint.

    `inline` runs the bridge on the customer's channel without a dialplan; when the
    agent does not answer the bridge fails and the customer's leg hangs up. The inline
    list splits on commas, which the {...} block is full of: `^^;` makes `;` the
    separator instead (a plain comma list fails on the real switch with "Parse Error").
    """
    agent = leg_variables(agent_uuid, call_id, "agent", timeout=agent_timeout)
    return (f"uuid_transfer {check_uuid(customer_uuid)} "
            f"'^^;bridge:{agent}{_dial(agent_dialstring)}' inline")


def _dial(dialstring):
    # Dial strings come from validated endpoints/numbers; refuse anything that
    # could end the application argument or start another one.
    if not dialstring or re.search(r"[\s,(){}'|;\"]", dialstring):
        raise ValueError(f"unsafe dial string {dialstring!r}")
    return dialstring
