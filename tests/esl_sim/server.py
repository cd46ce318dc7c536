"""The ESL simulator: a gevent StreamServer that answers like FreeSWITCH 1.11 in inbound mode.

Every reply string and every event comes from the captured transcripts in tests/fixtures/esl
(see templates.py); call behaviour is chosen by the destination number of `originate`:

    486...  busy          (-ERR USER_BUSY, cause USER_BUSY)
    408...  rings, no answer (-ERR NO_ANSWER after ~0.3 s)
    503...  immediate failure (-ERR NORMAL_TEMPORARY_FAILURE)
    999...  answered, then every ESL connection is cut and the call ends unseen
    777...  answered, remote hangs up after ~0.5 s
    other   answered and parked until uuid_kill / sim.hangup()
    user/N  an agent's phone (farend_phone_N: answer, noanswer, busy, reject); with
            `&bridge(...)` or `uuid_transfer ... bridge:` two bridged legs (bridging.py)

Each connection has its own subscription, format, filters and outgoing queue (a slow reader
only slows itself). While a connection's command runs, events for it wait, exactly as FreeSWITCH
writes them from the listener thread: the reply comes first, then the events it caused.
"""
import logging
import math
import os
import random
import re
import socket
import struct
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
import xml.sax.saxutils
from pathlib import Path
from types import SimpleNamespace

import gevent
import gevent.event
import gevent.lock
import gevent.queue
import gevent.server

from tests.esl_sim import templates as T
from tests.esl_sim import transcripts as tr
from tests.esl_sim.bridging import BridgingMixin
from tests.esl_sim.consult import ConsultBridge, ConsultMixin
from tests.esl_sim.queues import QueueMixin

log = logging.getLogger("tests.esl_sim")

# switch_event.c EVENT_NAMES (case-insensitive for `event`)
EVENT_NAMES = [
    "CUSTOM", "CLONE", "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_STATE", "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "API", "LOG", "INBOUND_CHAN",
    "OUTBOUND_CHAN", "STARTUP", "SHUTDOWN", "PUBLISH", "UNPUBLISH", "TALK", "NOTALK", "SESSION_CRASH",
    "MODULE_LOAD", "MODULE_UNLOAD", "DTMF", "MESSAGE", "PRESENCE_IN", "NOTIFY_IN", "PRESENCE_OUT",
    "PRESENCE_PROBE", "MESSAGE_WAITING", "MESSAGE_QUERY", "ROSTER", "CODEC", "BACKGROUND_JOB",
    "DETECTED_SPEECH", "DETECTED_TONE", "PRIVATE_COMMAND", "HEARTBEAT", "TRAP", "ADD_SCHEDULE",
    "DEL_SCHEDULE", "EXE_SCHEDULE", "RE_SCHEDULE", "RELOADXML", "NOTIFY", "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE", "SEND_MESSAGE", "RECV_MESSAGE", "REQUEST_PARAMS", "CHANNEL_DATA",
    "GENERAL", "COMMAND", "SESSION_HEARTBEAT", "CLIENT_DISCONNECTED", "SERVER_DISCONNECTED",
    "SEND_INFO", "RECV_INFO", "RECV_RTCP_MESSAGE", "SEND_RTCP_MESSAGE", "CALL_SECURE", "NAT",
    "RECORD_START", "RECORD_STOP", "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "FAILURE",
    "SOCKET_DATA", "MEDIA_BUG_START", "MEDIA_BUG_STOP", "CONFERENCE_DATA_QUERY", "CONFERENCE_DATA",
    "CALL_SETUP_REQ", "CALL_SETUP_RESULT", "CALL_DETAIL", "DEVICE_STATE", "TEXT", "SHUTDOWN_REQUESTED",
    "ALL",
]
_EVENT_NAMES_UC = {n.upper(): n for n in EVENT_NAMES}
LOG_LEVELS = {"console": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4, "notice": 5,
              "info": 6, "debug": 7}

# scenario timings in seconds at speed=1.0
RING_DELAY = 0.03
ANSWER_DELAY = 0.15
BUSY_DELAY = 0.05
NO_ANSWER_TIMEOUT = 0.3
DROP_AFTER = 0.3
REMOTE_HANGUP_AFTER = 0.5
GATEWAY_STEP = 0.1
# FreeSWITCH re-registers a registered gateway on its own timer (sofia_reg.c): REGED
# lasts freq - 15 s (freq > 30) or freq / 2, then UNREGED; one tick of its gateway
# loop (1 s) later TRYING and the REGISTER's 200 OK, one more tick REGED
# (tests/fixtures/esl/21_gateway_refresh_expire10.capture; at full speed).
GATEWAY_TICK = 1.0


def refresh_delay(freq):
    """Seconds a gateway stays REGED before FreeSWITCH refreshes it (sofia_reg.c)."""
    return max(freq - 15 if freq > 30 else freq // 2, 1)
PLAYBACK_TIME = 0.2

PROFILES = {"external": "sip:mod_sofia@127.0.0.1:5080", "internal": "sip:mod_sofia@127.0.0.1:5060"}
ALIASES = {"127.0.0.1": "internal"}
LINE = "=" * 97


class _Closed(Exception):
    pass


# ============================================================================ channels
class Channel:
    """A live channel as the simulator sees it (sim.channels[uuid])."""

    def __init__(self, sim, uuid, direction, dest, cid, profile, channel_name, userhost, hostport,
                 dial_vars, scenario, application="park", application_data="", gateway=None):
        now_us = int(time.time() * 1_000_000)
        self.sim = sim
        self.uuid = uuid
        self.direction = direction
        self.dest = dest
        self.cid = cid
        self.profile = profile
        self.channel_name = channel_name
        self.userhost = userhost
        self.hostport = hostport
        self.port = hostport.rpartition(":")[2] if ":" in hostport else "5060"
        self.gateway = gateway
        self.dial_vars = dict(dial_vars)
        self.set_vars = {}              # name -> (value, variable it follows)
        self.scenario = scenario
        self.application = application
        self.application_data = application_data
        self.session_id = sim._next_session_id()
        self.sip_call_id = f"{uuidlib.uuid4()}"
        self.created_us = now_us
        self.created = now_us / 1_000_000
        self.progress_us = 0
        self.progress_media_us = 0
        self.answered_us = 0
        self.hangup_us = 0
        self.hangup_cause = None
        self.disposition = None
        self.state = "CS_NEW"
        self.callstate = "DOWN"
        self.answer_state = "ringing"
        self.record_info = None
        self.recordings = {}            # path -> _Recording (active)
        self.finished_recordings = []   # local paths of WAV files written
        self.rtp_stats = {}
        self.rtp_overrides = {}
        self.inbound_overrides = {}
        self.last_var = None
        self.ended = False
        self.job = None                 # (job_uuid, command, arg) of a bgapi originate
        self.originate_arg = ""
        self.result = gevent.event.AsyncResult()   # originate outcome: "+OK <uuid>\n" / "-ERR X\n"
        self.flow = None
        self.playbacks = 0
        self.phone_user = None          # NNNN of a user/NNNN leg (an agent's phone)
        self.partner = None             # the other leg of a two-leg call (bridging.py)
        self.bridge = None              # the Bridge this leg is in, while bridged

    # names used by the brief / the rest of the project
    @property
    def caller_number(self):
        return self.cid

    @property
    def destination_number(self):
        return self.dest

    @property
    def answered(self):
        return bool(self.answered_us)

    @property
    def variables(self):
        merged = dict(self.dial_vars)
        merged.update({k: v for k, (v, _) in self.set_vars.items()})
        return merged

    def __repr__(self):
        return f"<Channel {self.uuid} {self.direction} {self.cid}->{self.dest} {self.state}/{self.callstate}>"


class _Recording:
    def __init__(self, path, local_path, limit):
        self.path = path
        self.local_path = local_path
        self.started = time.monotonic()
        self.limit = limit
        self.timer = None


# ============================================================================ gateways
class Gateway:
    """A sofia gateway as `sofia status gateway <name>` shows it."""

    def __init__(self, name, profile="external", username="FreeSWITCH", realm=None, proxy=None,
                 password="", register=True, expires="3600", ping=0, ping_min=None, ping_max=None,
                 context="public", from_user=None, from_domain=None, extension=None,
                 retry_seconds=30):
        self.name = name
        self.retry_seconds = int(retry_seconds)
        self.profile = profile
        self.scheme = "Digest"
        self.realm = realm or name
        self.username = username
        self.password = bool(password)
        from_user = from_user or username
        from_domain = from_domain or self.realm
        self.from_ = f"<sip:{from_user}@{from_domain}>"
        self.contact = f"<sip:gw+{name}@127.0.0.1:5080;transport=udp;gw={name}>"
        self.exten = extension or username
        self.to = f"sip:{username}@{self.realm}"
        self.proxy = f"sip:{proxy or self.realm}"
        self.context = context
        self.expires = str(expires)
        self.freq = int(expires)
        self.register = register
        self.pingfreq = int(ping or 0)
        self.ping = int(time.time()) + self.pingfreq if self.pingfreq else 0
        self.pingmin = int(ping_min if ping_min is not None else (1 if self.pingfreq else 0))
        self.pingmax = int(ping_max if ping_max is not None else (1 if self.pingfreq else 0))
        self.pingcount = 0
        self.pingtime = 0.0
        self.pinging = 0
        self.state = "UNREGED" if register else "NOREG"
        self.status = "DOWN" if register else "UP"
        self.uptime_start = None if register else time.time()
        self.frozen_uptime_usec = None
        self.retry_at = None
        self.frozen_retry = None
        self.network = None  # (ip, port) of the registrar once it answered a REGISTER
        self.calls_in = self.calls_out = self.failed_in = self.failed_out = 0

    @classmethod
    def from_params(cls, name, params, profile="external"):
        """From the <param name=.. value=..> of a <gateway> element (FreeSWITCH defaults)."""
        p = {k.lower(): v for k, v in params.items()}
        return cls(name, profile=profile, username=p.get("username", "FreeSWITCH"), realm=p.get("realm"),
                   proxy=p.get("proxy"), password=p.get("password", ""),
                   register=p.get("register", "true").lower() == "true",
                   expires=p.get("expire-seconds", "3600"), ping=p.get("ping", 0),
                   ping_min=p.get("ping-min"), ping_max=p.get("ping-max"),
                   context=p.get("context", "public"), from_user=p.get("from-user"),
                   from_domain=p.get("from-domain"), extension=p.get("extension"),
                   retry_seconds=p.get("retry-seconds", 30))

    @classmethod
    def from_xmlstatus(cls, text):
        """A frozen copy of a gateway as captured by `sofia xmlstatus gateway <name>`."""
        root = ET.fromstring(text.split("?>", 1)[1].strip())
        f = {child.tag: (child.text or "") for child in root}
        gw = cls.__new__(cls)
        gw.name, gw.profile, gw.scheme, gw.realm = f["name"], f["profile"], f["scheme"], f["realm"]
        gw.username, gw.password = f["username"], f["password"] == "yes"
        gw.from_, gw.contact, gw.exten, gw.to = f["from"], f["contact"], f["exten"], f["to"]
        gw.proxy, gw.context, gw.expires, gw.freq = f["proxy"], f["context"], f["expires"], int(f["freq"])
        gw.ping, gw.pingfreq, gw.pingmin = int(f["ping"]), int(f["pingfreq"]), int(f["pingmin"])
        gw.pingcount, gw.pingmax, gw.pingtime = int(f["pingcount"]), int(f["pingmax"]), float(f["pingtime"])
        gw.pinging, gw.state, gw.status = int(f["pinging"]), f["state"], f["status"]
        gw.register = gw.state != "NOREG"
        gw.uptime_start = None
        gw.frozen_uptime_usec = int(f["uptime-usec"])
        gw.retry_at = None
        gw.network = None
        gw.frozen_retry = f.get("retry")
        gw.calls_in, gw.calls_out = int(f["calls-in"]), int(f["calls-out"])
        gw.failed_in, gw.failed_out = int(f["failed-calls-in"]), int(f["failed-calls-out"])
        return gw

    # -- dynamic values
    def uptime_usec(self):
        if self.frozen_uptime_usec is not None:
            return self.frozen_uptime_usec if self.status == "UP" else 0
        if self.status != "UP" or not self.uptime_start:
            return 0
        return int((time.time() - self.uptime_start) * 1_000_000)

    def retry_text(self):
        """'4s', 'NEVER' or None (only FAILED/TRYING/FAIL_WAIT show a retry)."""
        if self.state not in ("FAILED", "TRYING", "FAIL_WAIT"):
            return None
        if self.frozen_retry is not None:
            return self.frozen_retry
        if self.retry_at and self.retry_at > time.time():
            return f"{int(self.retry_at - time.time())}s"
        return "NEVER"

    def registrar_answered(self):
        """Remember the registrar's address: FreeSWITCH reports it (Register-Network-IP/Port)
        once a REGISTER was answered (21_gateway_refresh_*), not for a 503 or 408 it made
        itself when nothing answered (06_gateway_state_events_*)."""
        host = self.proxy.split(":", 1)[1] if self.proxy.startswith("sip:") else self.proxy
        host, _, port = host.partition(";")[0].rpartition(":") if ":" in host else (host, "", "5060")
        self.network = (host, port or "5060")

    def set_status(self, status):
        if status == "UP" and self.status != "UP":
            self.uptime_start = time.time()
        self.status = status

    # -- renderings (mod_sofia cmd_status / xml_gateway_status)
    def status_text(self):
        lines = [LINE, f"Name    \t{self.name}", f"Profile \t{self.profile}", f"Scheme  \t{self.scheme}",
                 f"Realm   \t{self.realm}", f"Username\t{self.username}",
                 f"Password\t{'yes' if self.password else 'no'}", f"From    \t{self.from_}",
                 f"Contact \t{self.contact}", f"Exten   \t{self.exten}", f"To      \t{self.to}",
                 f"Proxy   \t{self.proxy}", f"Context \t{self.context}", f"Expires \t{self.expires}",
                 f"Freq    \t{self.freq}", f"Ping    \t{self.ping}", f"PingFreq\t{self.pingfreq}",
                 f"PingTime\t{self.pingtime:0.2f}", f"PingState\t{self.pingmin}/{self.pingcount}/{self.pingmax}",
                 f"State   \t{self.state}", f"Status  \t{self.status}{' (ping)' if self.pinging else ''}",
                 f"Uptime  \t{self.uptime_usec() // 1_000_000}s", f"CallsIN \t{self.calls_in}",
                 f"CallsOUT\t{self.calls_out}", f"FailedCallsIN\t{self.failed_in}",
                 f"FailedCallsOUT\t{self.failed_out}", LINE]
        return "\n".join(lines) + "\n"

    def xml_text(self):
        esc = xml.sax.saxutils.escape
        retry = self.retry_text()
        lines = ["  <gateway>", f"    <name>{self.name}</name>", f"    <profile>{self.profile}</profile>",
                 f"    <scheme>{self.scheme}</scheme>", f"    <realm>{self.realm}</realm>",
                 f"    <username>{self.username}</username>",
                 f"    <password>{'yes' if self.password else 'no'}</password>",
                 f"    <from>{esc(self.from_)}</from>", f"    <contact>{esc(self.contact)}</contact>",
                 f"    <exten>{esc(self.exten)}</exten>", f"    <to>{self.to}</to>",
                 f"    <proxy>{self.proxy}</proxy>", f"    <context>{self.context}</context>",
                 f"    <expires>{self.expires}</expires>", f"    <freq>{self.freq}</freq>",
                 f"    <ping>{self.ping}</ping>", f"    <pingfreq>{self.pingfreq}</pingfreq>",
                 f"    <pingmin>{self.pingmin}</pingmin>", f"    <pingcount>{self.pingcount}</pingcount>",
                 f"    <pingmax>{self.pingmax}</pingmax>", f"    <pingtime>{self.pingtime:0.2f}</pingtime>",
                 f"    <pinging>{self.pinging}</pinging>", f"    <state>{self.state}</state>",
                 f"    <status>{self.status}</status>", f"    <uptime-usec>{self.uptime_usec()}</uptime-usec>",
                 f"    <calls-in>{self.calls_in}</calls-in>", f"    <calls-out>{self.calls_out}</calls-out>",
                 f"    <failed-calls-in>{self.failed_in}</failed-calls-in>",
                 f"    <failed-calls-out>{self.failed_out}</failed-calls-out>"]
        if retry:
            lines.append(f"    <retry>{retry}</retry>")
        lines.append("  </gateway>")
        return "\n".join(lines) + "\n"

    def __repr__(self):
        return f"<Gateway {self.profile}::{self.name} {self.state}/{self.status}>"


def transcript_gateways():
    """{name: Gateway} frozen exactly as captured (uas_gw NOREG/UP, reg_fail_gw FAIL_WAIT/DOWN)."""
    out = {}
    for name in ("reg_fail_gw", "uas_gw"):
        body = T.api_body(f"02_api_sofia_xmlstatus_gateway_{name}", "api sofia xmlstatus gateway")
        out[name] = Gateway.from_xmlstatus(body)
    return out


def read_gateway_dir(directory):
    """[(name, params)] of every <gateway name=...> in directory/*.xml (any nesting)."""
    found = []
    if not directory or not os.path.isdir(directory):
        return found
    for path in sorted(Path(directory).glob("*.xml")):
        try:
            root = ET.fromstring(path.read_text(encoding="utf-8"))
        except (ET.ParseError, OSError, UnicodeDecodeError) as exc:
            log.warning("gateway file %s unreadable: %s", path, exc)
            continue
        for gw in root.iter("gateway"):
            name = gw.get("name")
            if not name:
                continue
            params = {p.get("name"): p.get("value", "") for p in gw.iter("param") if p.get("name")}
            found.append((name, params))
    return found


# ============================================================================ WAV
_TONE_SECOND = None


def _tone_second():
    """One second of 8 kHz 16-bit mono PCM: 440 Hz with a 2 Hz amplitude modulation (repeats exactly)."""
    global _TONE_SECOND
    if _TONE_SECOND is None:
        samples = []
        for n in range(8000):
            t = n / 8000.0
            envelope = 0.55 + 0.35 * math.sin(2 * math.pi * 2.0 * t)
            samples.append(int(12000 * envelope * math.sin(2 * math.pi * 440.0 * t)))
        _TONE_SECOND = struct.pack("<8000h", *samples)
    return _TONE_SECOND


def write_wav(path, seconds):
    """Write a real WAV (8 kHz mono s16le) of `seconds`; returns the number of samples."""
    samples = max(0, round(seconds * 8000))
    second = _tone_second()
    whole, part = divmod(samples * 2, len(second))
    data = second * whole + second[:part]
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    header += b"data" + struct.pack("<I", len(data))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.write(data)
    return samples


# ============================================================================ events
class SimEvent:
    """An event ready to send: headers (wire order), optional body, wire bytes cached per format."""
    __slots__ = ("_wire", "body", "headers", "name", "subclass")

    def __init__(self, headers, body=None):
        self.headers = headers
        self.body = body
        self.name = None
        self.subclass = None
        for k, v in headers:
            if k == "Event-Name":
                self.name = v
            elif k == "Event-Subclass":
                self.subclass = v
        self._wire = {}

    def get(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def wire(self, fmt):
        data = self._wire.get(fmt)
        if data is None:
            data = self._wire[fmt] = T.frame_event(fmt, T.SERIALIZERS[fmt](self.headers, self.body))
        return data


_CLOSE = object()


# ============================================================================ connections
class Client:
    """One ESL connection: auth state, subscription, filters and its own outgoing queue."""

    def __init__(self, sim, sock, address):
        self.sim = sim
        self.sock = sock
        self.address = address
        self.authenticated = False
        self.format = "plain"
        self.events_enabled = False
        self.event_types = set()
        self.custom_subclasses = set()
        self.all_custom = False
        self.filters = []           # [(header, value)]
        self.log_level = None
        self.queue = gevent.queue.Queue()
        self.lock = gevent.lock.BoundedSemaphore(1)
        self.lost_events = 0
        self.closed = False
        self.writer = None
        self.reader = None
        self.busy = False           # the writer holds bytes it has not finished writing

    # -- subscription -------------------------------------------------------------------
    @property
    def subscriptions(self):
        subs = set(self.event_types)
        subs.update(f"CUSTOM {s}" for s in self.custom_subclasses)
        return subs

    def wants(self, event):
        if not self.events_enabled or self.closed:
            return False
        types = self.event_types
        if "ALL" in types:
            send = True
        elif event.name in types:
            send = (event.name != "CUSTOM" or not event.subclass or self.all_custom
                    or event.subclass in self.custom_subclasses)
        else:
            send = False
        if send and self.filters:
            send = self._passes_filters(event)
        return send

    def _passes_filters(self, event):
        send = False
        for name, value in self.filters:
            hval = event.get(name)
            if hval is None:
                continue
            comp, pos = value or "", True
            while comp and comp[0] in "+- ":
                if comp[0] == "+":
                    pos = True
                elif comp[0] == "-":
                    pos = False
                comp = comp[1:]
            if send and pos:
                continue
            if not comp:
                continue
            if comp.startswith("/"):
                pattern = comp[1:-1] if comp.endswith("/") and len(comp) > 1 else comp[1:]
                try:
                    match = re.search(pattern, hval) is not None
                except re.error:
                    match = False
            else:
                match = hval.lower() == comp.lower()
            if match:
                if pos:
                    send = True
                else:
                    return False
        return send

    # -- output ---------------------------------------------------------------------------
    def push(self, data):
        if self.closed:
            return
        if self.queue.qsize() >= self.sim.max_queue:
            self.lost_events += 1
            if self.lost_events > self.sim.max_missed:
                log.warning("%s: killing listener because of too many lost events", self.name)
                gevent.spawn(self.close, T.DISCONNECT_GOODBYE)
            return
        self.queue.put(data)

    def _write(self, data):
        self.sock.sendall(data)

    def _writer_loop(self):
        try:
            while not self.closed:
                self.busy = False
                item = self.queue.get()
                self.busy = True
                batch, size = [], 0
                while True:
                    if item is _CLOSE:
                        if batch:
                            with self.lock:
                                self._write(b"".join(batch))
                        self._final_close()
                        return
                    batch.append(item)
                    size += len(item)
                    if size >= 262144 or self.queue.empty():
                        break
                    item = self.queue.get_nowait()
                with self.lock:
                    self._write(b"".join(batch))
        except (OSError, gevent.GreenletExit):
            pass
        finally:
            self._abort()

    def close_after_queue(self, notice):
        """Send what is queued, then the disconnect notice, then close (fsctl shutdown)."""
        self._notice_on_close = notice
        self.queue.put(_CLOSE)

    def _final_close(self):
        notice = getattr(self, "_notice_on_close", None)
        try:
            if notice:
                with self.lock:
                    self._write(T.frame_with_body("text/disconnect-notice", notice))
        except OSError:
            pass
        self._abort(graceful=True)

    def close(self, notice=None):
        """Write the disconnect notice directly (if any) and close."""
        if self.closed:
            return
        try:
            if notice and self.lock.acquire(timeout=1.0):
                try:
                    self.sock.settimeout(1.0)
                    self._write(T.frame_with_body("text/disconnect-notice", notice))
                finally:
                    self.lock.release()
        except OSError:
            pass
        self._abort(graceful=True)

    def _abort(self, graceful=False, reset=False):
        if self.closed:
            return
        self.closed = True
        self.sim._forget_client(self)
        try:
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        current = gevent.getcurrent()
        for g in (self.writer, self.reader):
            if g is not None and g is not current and not g.dead:
                g.kill(block=False)
        log.info("%s: connection closed%s", self.name, " (reset)" if reset else "")

    @property
    def name(self):
        return f"esl[{self.address[0]}:{self.address[1]}]" if self.address else "esl[?]"

    # -- input ------------------------------------------------------------------------------
    def serve(self):
        self.reader = gevent.getcurrent()
        self.writer = gevent.spawn(self._writer_loop)
        log.info("%s: connected", self.name)
        buf = b""
        try:
            with self.lock:
                self._write(T.AUTH_REQUEST)
            while not self.closed:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                while not self.closed:
                    command, buf = _take_command(buf)
                    if command is None:
                        break
                    self._run(command)
        except (OSError, _Closed, gevent.GreenletExit):
            pass
        finally:
            self._abort()

    def _run(self, command):
        lines, headers, body = command
        first = lines[0]
        self.sim.commands.append(first)
        shown = "auth *****" if first.lower().startswith("auth ") else first
        log.info("%s: %s", self.name, shown)
        with self.lock:
            reply, after = self.sim._handle_command(self, first, headers, body)
            if reply is not None:
                self._write(reply)
        if after is not None:
            after()


def _take_command(buf):
    """(lines, headers, body), rest  -- or (None, buf) when no complete command is buffered."""
    end = buf.find(b"\n\n")
    end_crlf = buf.find(b"\r\n\r\n")
    if end < 0 and end_crlf < 0:
        return None, buf
    if end < 0 or (0 <= end_crlf < end):
        head, rest = buf[:end_crlf], buf[end_crlf + 4:]
    else:
        head, rest = buf[:end], buf[end + 2:]
    lines = head.decode("utf-8", "replace").replace("\r", "").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return _take_command(rest)
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    body = b""
    length = headers.get("content-length")
    if length and length.isdigit() and int(length):
        if len(rest) < int(length):
            return None, buf
        body, rest = rest[:int(length)], rest[int(length):]
    return (lines, headers, body), rest


def _split_args(text):
    """Split on spaces, keeping {..}, [..], <..> groups and '..' quotes together."""
    args, cur, depth, quote = [], [], 0, False
    for ch in text:
        if ch == "'" and depth == 0:
            quote = not quote
            cur.append(ch)
        elif ch in "{[<" and not quote:
            depth += 1
            cur.append(ch)
        elif ch in "}]>" and not quote and depth:
            depth -= 1
            cur.append(ch)
        elif ch == " " and depth == 0 and not quote:
            if cur:
                args.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        args.append("".join(cur))
    return args


def parse_dial_vars(text):
    """'{a=1,b='x,y',c=p\\,q}rest' -> ({'a': '1', 'b': 'x,y', 'c': 'p,q'}, 'rest'). [..] too."""
    variables = {}
    while text and text[0] in "{[<":
        close = {"{": "}", "[": "]", "<": ">"}[text[0]]
        depth, i, quote = 0, 0, False
        for i, ch in enumerate(text):
            if ch == "'":
                quote = not quote
            elif not quote and ch == text[0]:
                depth += 1
            elif not quote and ch == close:
                depth -= 1
                if depth == 0:
                    break
        inner, text = text[1:i], text[i + 1:]
        items, cur, quote, esc = [], [], False, False
        for ch in inner:
            if esc:
                cur.append(ch)
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == "'":
                quote = not quote
            elif ch == "," and not quote:
                items.append("".join(cur))
                cur = []
            else:
                cur.append(ch)
        items.append("".join(cur))
        for item in items:
            if "=" in item:
                key, _, value = item.partition("=")
                variables[key.strip()] = value
    return variables, text


# ============================================================================ simulator
class ESLSimulator(QueueMixin, BridgingMixin, ConsultMixin):
    """FreeSWITCH stand-in speaking the Event Socket protocol (inbound mode).

    sim = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon", recordings_root=None, speed=1.0)
    sim.start(); ...; sim.stop()
    """

    # delays of the two-leg flows (bridging.py), at speed 1.0
    ANSWER_DELAY_S = ANSWER_DELAY
    BUSY_S = BUSY_DELAY
    NO_ANSWER_S = NO_ANSWER_TIMEOUT
    REMOTE_HANGUP_S = REMOTE_HANGUP_AFTER

    def __init__(self, host="127.0.0.1", port=0, password="ClueCon", recordings_root=None, speed=1.0,
                 gateway_dir=None, strict_gateways=False, max_queue=100000, max_missed=500,
                 hostname="vm"):
        self.host = host
        self.port = port
        self.password = password
        self.recordings_root = recordings_root
        self.speed = float(speed) if speed else 1.0
        self.gateway_dir = gateway_dir
        self.strict_gateways = strict_gateways
        self.max_queue = max_queue
        self.max_missed = max_missed
        self.hostname = hostname
        self.core_uuid = str(uuidlib.uuid4())
        self.channels = {}
        self.commands = []
        self.gateways = {}
        self.registration_results = {}   # gateway name -> "REGED" (default) or ("FAILED", 503, "Service Unavailable")
        self.global_vars = {"hostname": hostname, "switchname": hostname, "core_uuid": self.core_uuid}
        self.rtp_defaults = {}
        # Like a real switch, `show channels` may lag the channel events (it reads the
        # core's channel table, written behind them): a new channel is listed only
        # after this many seconds and a gone one stays listed as long. 0: no lag.
        self.show_channels_lag = 0.0
        # Fault injection: seconds the reply to `bgapi originate` is held back after the
        # originate started (a switch too busy to answer in time that still runs it).
        self.originate_reply_delay = 0.0
        self._gone_listed = []
        self.events_sent = 0
        self._deferred = {}
        self._clients = []
        self._server = None
        self._sequence = 0
        self._session_ids = 0
        self._sessions_total = 0
        self._peak = 0
        self._started_at = time.time()

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        """Bind and serve; after stop() the same port is reused."""
        if self._server is not None:
            return self
        self._server = gevent.server.StreamServer((self.host, self.port), self._handle_connection)
        self._server.reuse_addr = 1
        self._server.start()
        self.port = self._server.server_port
        self._started_at = time.time()
        log.info("ESL simulator listening on %s:%s", self.host, self.port)
        return self

    @property
    def running(self):
        return self._server is not None

    def stop(self, hangup_calls=True):
        """FreeSWITCH down: close the listener and every client socket (no notice)."""
        server, self._server = self._server, None
        for client in list(self._clients):
            client._abort()
        if server is not None:
            server.close()
        if hangup_calls:
            for ch in list(self.channels.values()):
                self._end_silently(ch, "SYSTEM_SHUTDOWN")
        log.info("ESL simulator stopped (calls %s)", "ended" if hangup_calls else "kept")

    def drop_connections(self):
        """Cut every client TCP connection abruptly (RST, no notice); keep listening and keep calls."""
        clients = list(self._clients)
        for client in clients:
            client._abort(reset=True)
        log.info("dropped %d ESL connection(s)", len(clients))
        return len(clients)

    @property
    def connections(self):
        """The live ESL connections (Client objects: .authenticated, .format, .subscriptions...)."""
        return list(self._clients)

    def wait_for(self, predicate, timeout=5.0, interval=0.01):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("simulator condition not met")
            gevent.sleep(interval)
        return True

    def _handle_connection(self, sock, address):
        client = Client(self, sock, address)
        self._clients.append(client)
        client.serve()

    def _forget_client(self, client):
        try:
            self._clients.remove(client)
        except ValueError:
            pass

    def _sleep(self, seconds):
        gevent.sleep(seconds / self.speed)

    def _next_session_id(self):
        self._session_ids += 1
        return self._session_ids

    # ------------------------------------------------------------------ event emission
    def _context(self):
        self._sequence += 1
        return T.EventContext(self.core_uuid, self._sequence, hostname=self.hostname, profile_urls=PROFILES)

    def _emit_headers(self, headers, body=None):
        event = SimEvent(headers, body)
        deferred = self._deferred.get(gevent.getcurrent())
        if deferred is not None:
            deferred.append(event)
            return event
        self._deliver(event)
        return event

    def _deliver(self, event):
        self.events_sent += 1
        for client in list(self._clients):
            if client.wants(event):
                client.push(event.wire(client.format))

    def _emit(self, template, ch=None, overrides=None, drop=(), append=(), body=None):
        headers = T.render(template, self._context(), ch, overrides=overrides, drop=drop, append=append)
        if ch is not None:
            for k, v in headers:
                if k == "Channel-State":
                    ch.state = v
                elif k == "Channel-Call-State":
                    ch.callstate = v
                elif k == "Answer-State":
                    ch.answer_state = v
            log.debug("call %s: %s", ch.uuid, template.name)
        return self._emit_headers(headers, body if body is not None else template.body)

    def _emit_api_event(self, command, arg):
        overrides = {"API-Command": command}
        drop = ()
        if arg:
            overrides["API-Command-Argument"] = arg
        else:
            drop = ("API-Command-Argument",)
        self._emit(T.API_EVENT, overrides=overrides, drop=drop)

    def _emit_background_job(self, job_uuid, command, arg, body):
        overrides = {"Job-UUID": job_uuid, "Job-Command": command}
        if arg:
            overrides["Job-Command-Arg"] = arg
            template = T.BACKGROUND_JOB_WITH_ARG
        else:
            template = T.BACKGROUND_JOB_NO_ARG
        self._emit(template, overrides=overrides, body=body)

    # ------------------------------------------------------------------ ESL commands
    def _handle_command(self, client, first, headers, body):
        """Returns (reply bytes or None, callable to run after the reply or None)."""
        word, _, rest = first.partition(" ")
        lword = word.lower()
        if lword in ("exit", "...", "bye"):
            return T.frame_reply("+OK bye"), lambda: client.close(T.DISCONNECT_GOODBYE)
        if not client.authenticated:
            if lword == "auth":
                if rest == self.password:
                    client.authenticated = True
                    return T.frame_reply("+OK accepted"), None
                log.info("%s: wrong password", client.name)
                return T.frame_reply("-ERR invalid"), lambda: client.close(T.DISCONNECT_GOODBYE)
            return T.frame_reply("-ERR command not found"), None
        if lword == "api" and rest:
            return self._esl_api(client, rest), None
        if lword == "bgapi" and rest:
            return self._esl_bgapi(rest, headers.get("job-uuid")), None
        if lword == "event":
            return T.frame_reply(self._esl_event(client, rest)), None
        if lword == "nixevent":
            return T.frame_reply(self._esl_nixevent(client, rest)), None
        if lword == "noevents":
            return T.frame_reply(self._esl_noevents(client)), None
        if lword == "filter" and rest:
            return T.frame_reply(self._esl_filter(client, rest)), None
        if lword in ("linger", "nolinger"):
            return T.frame_reply("-ERR not controlling a session"), None
        if lword == "log":
            return T.frame_reply(self._esl_log(client, rest)), None
        if lword == "nolog":
            if client.log_level is None:
                return T.frame_reply("-ERR not loging"), None
            client.log_level = None
            return T.frame_reply("+OK no longer logging"), None
        if lword == "sendmsg":
            return T.frame_reply(self._esl_sendmsg(rest.strip(), headers)), None
        return T.frame_reply("-ERR command not found"), None

    def _esl_event(self, client, rest):
        words = [w for w in rest.split(" ") if w]
        key_count, custom = 0, False
        for i, word in enumerate(words):
            if i == 0 and word.lower() in ("plain", "json", "xml"):
                client.format = word.lower()
                continue
            if custom:
                client.custom_subclasses.add(word)
                continue
            name = _EVENT_NAMES_UC.get(word.upper())
            if name is None:
                continue
            key_count += 1
            if name == "ALL":
                client.all_custom = True
            client.event_types.add(name)
            if name == "CUSTOM":
                custom = True
        if not key_count:
            return "-ERR no keywords supplied"
        client.events_enabled = True
        return f"+OK event listener enabled {client.format}"

    def _esl_nixevent(self, client, rest):
        words = [w for w in rest.split(" ") if w]
        key_count, custom = 0, False
        for word in words:
            if custom:
                client.custom_subclasses.discard(word)
                continue
            name = _EVENT_NAMES_UC.get(word.upper())
            if name is None:
                continue
            key_count += 1
            if name == "CUSTOM":
                custom = True
            elif name == "ALL":
                client.event_types.clear()
                client.all_custom = False
            else:
                if "ALL" in client.event_types:
                    client.event_types = set(EVENT_NAMES) - {"ALL"}
                    client.all_custom = False
                client.event_types.discard(name)
        if not key_count:
            return "-ERR no keywords supplied"
        client.events_enabled = True
        return "+OK events nixed"

    def _esl_noevents(self, client):
        while not client.queue.empty():
            item = client.queue.get_nowait()
            if item is _CLOSE:
                client.queue.put(item)
                break
        if not client.events_enabled:
            return "-ERR not listening for events"
        client.events_enabled = False
        client.event_types.clear()
        client.custom_subclasses.clear()
        client.all_custom = False
        return "+OK no longer listening for events"

    def _esl_filter(self, client, rest):
        rest = rest.lstrip(" ")
        name, _, value = rest.partition(" ")
        if name.lower() == "delete" and value:
            name, _, value = value.partition(" ")
            if name.lower() == "all":
                client.filters = []
            else:
                client.filters = [(k, v) for k, v in client.filters
                                  if not (k == name and (not value or v == value))]
            return f"+OK filter deleted. [{name}][{value}]"
        if value:
            if name.lower() == "add":
                name, _, value = value.partition(" ")
            client.filters.append((name, value))
            return f"+OK filter added. [{name}]=[{value}]"
        return "-ERR invalid syntax"

    def _esl_log(self, client, rest):
        level_s = rest.strip().split(" ")[0] if rest.strip() else ""
        if not level_s:
            level = 7
        elif level_s.isdigit() and 0 <= int(level_s) <= 7:
            level = int(level_s)
        elif level_s.lower() in LOG_LEVELS:
            level = LOG_LEVELS[level_s.lower()]
        else:
            return "-ERR invalid log level"
        client.log_level = level
        return f"+OK log level {level_s} [{level}]"

    def _esl_sendmsg(self, target, headers):
        ch = self.channels.get(target)
        if ch is None or ch.ended:
            return f"-ERR invalid session id [{target}]"
        command = headers.get("call-command", "").lower()
        if command == "hangup":
            cause = headers.get("hangup-cause", "NORMAL_CLEARING")
            gevent.spawn(self._hangup, ch, cause, local=True)
        elif command == "execute":
            app = headers.get("execute-app-name", "")
            arg = headers.get("execute-app-arg", "")
            gevent.spawn(self._execute_app, ch, app, arg)
        return "+OK"

    def _esl_api(self, client, text):
        command, _, arg = text.partition(" ")
        body = self.api(command, arg)
        self._emit_api_event(command, arg)
        return T.frame_with_body("api/response", body)

    def _esl_bgapi(self, text, job_uuid=None):
        job_uuid = job_uuid or str(uuidlib.uuid4())
        command, _, arg = text.partition(" ")
        if command == "originate":
            # the channel flow delivers the API and BACKGROUND_JOB events at the captured point
            self._originate(arg, job=(job_uuid, command, arg))
            if self.originate_reply_delay:
                gevent.sleep(self.originate_reply_delay)
        else:
            def run():
                # what the command causes (e.g. uuid_kill's hangup events) happens on the channel's
                # own thread in FreeSWITCH and reaches listeners after the BACKGROUND_JOB (09_*)
                held = self._deferred[gevent.getcurrent()] = []
                try:
                    result = self.api(command, arg)
                finally:
                    del self._deferred[gevent.getcurrent()]
                self._emit_api_event(command, arg)
                self._emit_background_job(job_uuid, command, arg, result)
                for event in held:
                    self._deliver(event)
            gevent.spawn(run)
        return T.frame_reply(f"+OK Job-UUID: {job_uuid}", [("Job-UUID", job_uuid)])

    # ------------------------------------------------------------------ api commands
    def api(self, command, arg=""):
        """Run an API command as `api <command> <arg>` would; returns the response body (str)."""
        arg = arg.strip() if arg else ""
        handler = getattr(self, "_api_" + command.lower(), None) if command.isidentifier() else None
        if handler is None:
            return f"-ERR {command} Command not found!\n"
        body = handler(arg)
        if not body:
            return T.NO_REPLY_BODY
        return body

    def _api_status(self, arg):
        us = int((time.time() - self._started_at) * 1_000_000)
        sec, us = divmod(us, 1_000_000)
        ms, mms = divmod(us, 1000)
        mins, sec = divmod(sec, 60)
        hrs, mins = divmod(mins, 60)
        days, hrs = divmod(hrs, 24)
        yrs, days = divmod(days, 365)

        def unit(n, word):
            return f"{n} {word}{'' if n == 1 else 's'}"
        first = (f"UP {unit(yrs, 'year')}, {unit(days, 'day')}, {unit(hrs, 'hour')}, {unit(mins, 'minute')}, "
                 f"{unit(sec, 'second')}, {unit(ms, 'millisecond')}, {unit(mms, 'microsecond')}")
        lines = T.STATUS_BODY.split("\n")
        lines[0] = first
        lines[2] = f"{self._sessions_total} session(s) since startup"
        live = len(self.channels)
        lines[3] = f"{live} session(s) - peak {self._peak}, last 5min {self._peak} "
        return "\n".join(lines)

    def _api_version(self, arg):
        return T.VERSION_BODY

    def _api_hostname(self, arg):
        return self.hostname

    def _api_reloadxml(self, arg):
        return T.RELOADXML_BODY

    def _api_global_getvar(self, arg):
        if not arg:
            return "".join(f"{k}={v}\n" for k, v in self.global_vars.items())
        return self.global_vars.get(arg, "")

    def _api_global_setvar(self, arg):
        name, _, value = arg.partition("=")
        if not name.strip():
            return "-USAGE: <var>=<value>\n"
        self.global_vars[name.strip()] = value.strip()
        return "+OK\n"

    def _api_show(self, arg):
        words = arg.split()
        what = words[0].lower() if words else ""
        as_json = len(words) >= 3 and words[1].lower() == "as" and words[2].lower() == "json"
        if what == "registrations":
            return self._show_registrations(as_json)
        if what not in ("channels", "calls"):
            return "-USAGE: " + "show codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status\n"
        rows = [self._show_row(ch, what) for ch in self._live_channels()]
        if len(words) >= 2 and words[1].lower() == "count":
            return f"\n{len(rows)} total.\n"
        if as_json:
            if not rows:
                return T.SHOW_IDLE_JSON
            joined = ",".join(T.serialize_json(list(r.items())).decode("utf-8") for r in rows)
            return f'{{"row_count":{len(rows)},"rows":[{joined}]}}'
        if not rows:
            return T.SHOW_IDLE_PLAIN
        keys = list(rows[0].keys())
        out = [",".join(keys)] + [",".join(r[k] for k in keys) for r in rows]
        return "\n".join(out) + f"\n\n{len(rows)} total.\n"

    # ----- directory users' registrations (agents' phones) -----------------------------
    @property
    def phones(self):
        """Registered directory users, user -> realm: 1001-1003, as `fs start` registers them.
        Tests register (`sim.phones["1010"] = "127.0.0.1"`) or unregister (`pop`) phones."""
        if "_phones" not in self.__dict__:
            self._phones = {user: "127.0.0.1" for user in ("1001", "1002", "1003")}
        return self._phones

    def _show_registrations(self, as_json):
        """`show registrations [as json]`, shaped like 12_api_show_registrations_as_json_*.capture
        (newest first, compact JSON without a trailing newline; none: the idle reply)."""
        rows = [{"reg_user": user, "realm": realm, "token": str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, user)),
                 "url": f"sofia/internal/sip:gw+phone{user}@{realm}:5080;transport=udp;gw=phone{user}",
                 "expires": str(int(time.time()) + 3600), "network_ip": realm, "network_port": "5080",
                 "network_proto": "udp", "hostname": self.hostname, "metadata": ""}
                for user, realm in reversed(list(self.phones.items()))]
        if as_json:
            if not rows:
                return T.SHOW_IDLE_JSON
            joined = ",".join(T.serialize_json(list(r.items())).decode("utf-8") for r in rows)
            return f'{{"row_count":{len(rows)},"rows":[{joined}]}}'
        keys = list(rows[0].keys()) if rows else ["reg_user", "realm", "token", "url", "expires"]
        out = [",".join(keys)] + [",".join(r[k] for k in keys) for r in rows]
        return "\n".join(out) + f"\n\n{len(rows)} total.\n"

    def _live_channels(self):
        if self.show_channels_lag:
            return self._lagging_channels(_now_us() - int(self.show_channels_lag * 1_000_000))
        return sorted((c for c in self.channels.values() if not c.ended), key=lambda c: c.created_us)

    def _lagging_channels(self, as_of_us):
        """The channels as the lagging channel table still has them at as_of_us."""
        self._gone_listed = [c for c in self._gone_listed if c.hangup_us > as_of_us]
        listed = [c for c in self.channels.values() if not c.ended and c.created_us <= as_of_us]
        listed += [c for c in self._gone_listed if c.created_us <= as_of_us]
        return sorted(listed, key=lambda c: c.created_us)

    def _show_row(self, ch, what):
        answered = ch.answered
        outbound = ch.direction == "outbound"
        values = {
            "uuid": ch.uuid, "direction": ch.direction,
            "created": T.stamp(ch.created_us), "created_epoch": str(ch.created_us // 1_000_000),
            "name": ch.channel_name, "state": ch.state,
            "cid_name": "" if outbound else ch.cid, "cid_num": ch.cid,
            "ip_addr": "" if outbound else ch.hostport.rpartition(":")[0] or ch.hostport,
            "dest": ch.dest,
            "application": ch.application if ch.state == "CS_EXECUTE" else "",
            "application_data": ch.application_data if ch.state == "CS_EXECUTE" else "",
            "dialplan": "" if outbound else "XML", "context": "default" if outbound else "public",
            "read_codec": "PCMU" if answered else "", "read_rate": "8000" if answered else "",
            "read_bit_rate": "64000" if answered else "", "write_codec": "PCMU" if answered else "",
            "write_rate": "8000" if answered else "", "write_bit_rate": "64000" if answered else "",
            "secure": "", "hostname": self.hostname, "presence_id": "", "presence_data": "",
            "accountcode": "", "callstate": ch.callstate,
            "callee_name": "Outbound Call" if outbound else "", "callee_num": ch.dest if outbound else "",
            "callee_direction": "", "call_uuid": ch.uuid, "sent_callee_name": "", "sent_callee_num": "",
            "initial_cid_name": "" if outbound else ch.cid, "initial_cid_num": ch.cid,
            "initial_ip_addr": "" if outbound else ch.hostport.rpartition(":")[0] or ch.hostport,
            "initial_dest": ch.dest, "initial_dialplan": "" if outbound else "XML",
            "initial_context": "default" if outbound else "public",
            "call_created_epoch": "",
        }
        keys = T.SHOW_CHANNELS_KEYS if what == "channels" else T.SHOW_CALLS_KEYS
        return {k: values.get(k, "") for k in keys}

    def _channel_for(self, arg):
        ch = self.channels.get(arg)
        return ch if ch is not None and not ch.ended else None

    def _api_uuid_exists(self, arg):
        return "true" if self._channel_for(arg.split(" ")[0]) else "false"

    def _api_uuid_kill(self, arg):
        parts = arg.split()
        if not parts:
            return "-USAGE: <uuid> [cause]\n"
        ch = self._channel_for(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        cause = parts[1] if len(parts) > 1 and parts[1] in T.Q850 else "NORMAL_CLEARING"
        self._hangup(ch, cause, local=True)
        return "+OK\n"

    def _api_uuid_dump(self, arg):
        parts = arg.split()
        if not parts:
            return "-USAGE: <uuid> [format]\n"
        ch = self._channel_for(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        headers = self._dump_headers(ch)
        if len(parts) > 1 and parts[1].lower() == "json":
            return T.serialize_json(headers).decode("utf-8")
        return T.serialize_plain(headers).decode("utf-8")

    def _dump_headers(self, ch):
        overrides = {"Channel-State": ch.state, "Channel-Call-State": ch.callstate, "Answer-State": ch.answer_state}
        return T.render(T.CHANNEL_DATA, self._context(), ch, overrides=overrides)

    def _api_uuid_getvar(self, arg):
        parts = arg.split()
        if len(parts) < 2:
            return "-USAGE: <uuid> <var>\n"
        ch = self._channel_for(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        name = parts[1]
        if name in ch.variables:
            return ch.variables[name]
        for key, value in self._dump_headers(ch):
            if key == "variable_" + name:
                return value
        return "_undef_"

    def _api_uuid_setvar(self, arg):
        uuid, _, rest = arg.partition(" ")
        name, _, value = rest.strip().partition(" ")
        if not uuid or not name:
            return "-USAGE: <uuid> <var> [value]\n"
        ch = self._channel_for(uuid)
        if ch is None:
            return "-ERR No such channel!\n"
        self.set_variable(ch.uuid, name, value if value else None)
        return "+OK\n"

    def _api_uuid_setvar_multi(self, arg):
        uuid, _, rest = arg.partition(" ")
        ch = self._channel_for(uuid)
        if ch is None:
            return "-ERR No such channel!\n"
        for item in rest.split(";"):
            name, _, value = item.partition("=")
            if name.strip():
                self.set_variable(ch.uuid, name.strip(), value or None)
        return "+OK\n"

    def _api_uuid_answer(self, arg):
        ch = self._channel_for(arg.split(" ")[0])
        if ch is None:
            return "-ERR No such channel!\n"
        if not ch.answered:
            if ch.flow is not None and not ch.flow.dead and ch.flow is not gevent.getcurrent():
                ch.flow.kill(block=False)
            self._answer(ch)
        return "+OK\n"

    def _api_uuid_broadcast(self, arg):
        parts = arg.split(" ")
        if len(parts) < 2:
            return "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
        ch = self._channel_for(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        path = " ".join(p for p in parts[1:] if p not in ("aleg", "bleg", "both", "holdb"))
        if self._queue_music(ch, path):  # a queue's music on hold or tone (tests/esl_sim/queues.py)
            return "+OK Message sent\n"
        if path.startswith("endless_playback::"):  # hold music until the leg is bridged again
            ch.hold_music = path.partition("::")[2]
            return "+OK Message sent\n"
        gevent.spawn(self._execute_app, ch, "playback", path)
        return "+OK Message sent\n"

    def _api_uuid_record(self, arg):
        parts = arg.split()
        if len(parts) < 3:
            return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
        uuid, action, path = parts[0], parts[1].lower(), parts[2]
        ch = self._channel_for(uuid)
        if ch is None:
            return "-ERR Cannot locate session!\n"
        if action == "start":
            limit = int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else 0
            self._record_start(ch, path, limit)
            return "+OK Success\n"
        if action == "stop":
            targets = list(ch.recordings) if path == "all" else [path] if path in ch.recordings else []
            if not targets:
                return "-ERR Cannot stop record session!\n"
            for target in targets:
                self._record_stop(ch, target)
            return "+OK Success\n"
        if action in ("mask", "unmask"):
            return "+OK Success\n"
        return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"

    # ----- live call control (tests/fixtures/esl/22_call_control_*.capture) -----------------
    # Only the leg the command names is modelled: the far end's own CHANNEL_HOLD and its DTMF
    # events (the real switch plays the far end too) are not sent; sent digits are kept in
    # ch.dtmf_sent, a transfer's destination in ch.transferred_to.
    def _api_uuid_hold(self, arg):
        parts = arg.split()
        off = bool(parts) and parts[0] == "off"
        parts = parts[1:] if off else parts
        if not parts:
            return "-USAGE: [off|toggle] <uuid> [<display>]\n"
        ch = self._channel_for(parts[0])
        if ch is None:
            return "+OK Success\n"  # sic: the real switch says so for a channel it lacks
        if getattr(ch, "held", False) != off:
            return "-ERR Operation failed\n"
        ch.held = not off
        gevent.spawn(self._emit_control_event, ch, "CHANNEL_UNHOLD" if off else "CHANNEL_HOLD")
        return "+OK Success\n"

    def _emit_control_event(self, ch, name):
        self._sleep(0.02)
        if not ch.ended:
            self._emit(control_template(name), ch)

    def _api_uuid_audio(self, arg):
        parts = arg.split()
        if len(parts) < 2 or parts[1] not in ("start", "stop"):
            return "-USAGE: <uuid> [start [read|write] [mute|level <level>]|stop]\n"
        ch = self._channel_for(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        ch.muted = parts[1] == "start" and "mute" in parts
        return "+OK\n"

    def _api_uuid_send_dtmf(self, arg):
        parts = arg.split()
        if len(parts) < 2:
            return "-USAGE: <uuid> <dtmf_data>\n"
        ch = self._channel_for(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        ch.dtmf_sent = getattr(ch, "dtmf_sent", "") + parts[1]
        return f"+OK {ch.uuid} sent DTMF {parts[1]}.\n"

    def _api_uuid_transfer(self, arg):
        parts = arg.split()
        if len(parts) < 2:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        ch = self._channel_for(parts[0])
        if ch is None:
            return "-ERR No such channel!\n"
        dest = parts[2] if parts[1] in ("-bleg", "-both") and len(parts) > 2 else parts[1]
        dest = dest.strip("'")
        if dest.startswith("^^") and len(dest) > 2:  # '^^;' picks the inline list's separator
            dest = dest[3:]
        ch.transferred_to = dest
        if len(parts) > 2 and parts[-1] == "inline" and ";" in dest:  # a consult (consult.py)
            self._transfer_app_list(ch, dest.split(";"))
        elif len(parts) > 2 and parts[-1] == "inline" and dest.startswith("bridge:"):
            self._transfer_to_bridge(ch, dest[len("bridge:"):])
        elif len(parts) > 2 and parts[-1] == "inline" and dest == "park":
            self._transfer_to_park(ch)
        return "+OK\n"

    def _api_originate(self, arg):
        ch, immediate = self._originate(arg, job=None)
        if immediate is not None:
            return immediate
        return ch.result.get()

    def _api_fsctl(self, arg):
        words = arg.split()
        if words and words[0].lower() == "shutdown":
            gevent.spawn(self.shutdown)
            return "+OK\n"
        if not words:
            return "-USAGE: [hupall|pause|resume|shutdown [cancel|elegant|asap|now|restart]|sps|sync_clock|reclaim_mem|max_sessions|min_dtmf_duration [num]|max_dtmf_duration [num]|default_dtmf_duration [num]|min_idle_cpu|loglevel [level]|debug_level [level]]\n"
        if words[0].lower() == "hupall":
            for ch in list(self.channels.values()):
                self._hangup(ch, words[1] if len(words) > 1 else "MANAGER_REQUEST", local=True)
        return "+OK\n"

    def _api_hupall(self, arg):
        cause = arg.split()[0] if arg.split() else "MANAGER_REQUEST"
        for ch in list(self.channels.values()):
            self._hangup(ch, cause, local=True)
        return "+OK hangup all channels with cause " + cause + "\n"

    # ------------------------------------------------------------------ sofia
    def _api_sofia(self, arg):
        words = arg.split()
        if not words:
            return "-ERR Usage: sofia help\n"
        cmd = words[0].lower()
        if cmd == "status":
            return self._sofia_status(words[1:])
        if cmd == "xmlstatus":
            return self._sofia_xmlstatus(words[1:])
        if cmd == "profile":
            return self._sofia_profile(words[1:])
        if cmd == "global":
            return "+OK\n"
        return "Unknown command\n"

    def _gateways_sorted(self):
        return [self.gateways[k] for k in sorted(self.gateways)]

    def _sofia_status(self, args):
        if not args:
            lines = [f"{'Name':>25}\t   Type\t  {'Data':>40}\tState", LINE]
            entries = [(alias, "alias") for alias in ALIASES] + [(p, "profile") for p in PROFILES]
            for name, kind in sorted(entries):
                if kind == "alias":
                    lines.append(f"{name:>25}\t  alias\t  {ALIASES[name]:>40}\tALIASED")
                    continue
                inuse = sum(1 for c in self.channels.values() if c.profile == name and not c.ended)
                lines.append(f"{name:>25}\tprofile\t  {PROFILES[name]:>40}\tRUNNING ({inuse})")
                for gw in self._gateways_sorted():
                    if gw.profile != name:
                        continue
                    row = f"{gw.profile + '::' + gw.name:>25}\tgateway\t  {gw.to:>40}\t{gw.state}"
                    retry = gw.retry_text()
                    if retry:
                        row += f" (retry: {retry})"
                    lines.append(row)
            lines.append(LINE)
            lines.append(f"{len(PROFILES)} profile{'' if len(PROFILES) == 1 else 's'} "
                         f"{len(ALIASES)} alias{'' if len(ALIASES) == 1 else 'es'}")
            return "\n".join(lines) + "\n"
        what = args[0].lower()
        if what == "gateway":
            if len(args) == 1:
                title = (f"{'Profile::Gateway-Name':>25}\t{'    Data    ':>32}\tState\t{'Ping Time':>9}\t"
                         "IB Calls(F/T)\tOB Calls(F/T)")
                lines = [title, LINE]
                ib_f = ib = ob_f = ob = 0
                gws = self._gateways_sorted()
                for gw in gws:
                    row = (f"{gw.profile + '::' + gw.name:>25}\t{gw.to:>32}\t{gw.state}\t{gw.pingtime:6.2f}\t"
                           f"{gw.failed_in}/{gw.calls_in}\t{gw.failed_out}/{gw.calls_out}")
                    retry = gw.retry_text()
                    if retry:
                        row += f" (retry: {retry})"
                    lines.append(row)
                    ib_f, ib, ob_f, ob = ib_f + gw.failed_in, ib + gw.calls_in, ob_f + gw.failed_out, ob + gw.calls_out
                lines.append(LINE)
                lines.append(f"{len(gws)} gateway{'' if len(gws) == 1 else 's'}: Inbound(Failed/Total): "
                             f"{ib_f}/{ib},Outbound(Failed/Total):{ob_f}/{ob}")
                return "\n".join(lines) + "\n"
            gw = self.gateways.get(args[1])
            return gw.status_text() if gw else "Invalid Gateway!\n"
        if what == "profile":
            if len(args) < 2:
                return "Invalid Profile!\n"
            name = ALIASES.get(args[1], args[1])
            if name not in PROFILES:
                return "Invalid Profile!\n"
            body = T.SOFIA_PROFILE_EXTERNAL_BODY
            if name != "external":
                body = body.replace("external", name).replace(PROFILES["external"], PROFILES[name])
            calls_out = sum(1 for c in self.channels.values() if c.direction == "outbound" and c.profile == name)
            calls_in = sum(1 for c in self.channels.values() if c.direction == "inbound" and c.profile == name)
            body = re.sub(r"CALLS-IN         \t\d+", f"CALLS-IN         \t{calls_in}", body)
            body = re.sub(r"CALLS-OUT        \t\d+", f"CALLS-OUT        \t{calls_out}", body)
            return body
        return "Invalid Syntax!\n"

    def _sofia_xmlstatus(self, args):
        header = '<?xml version="1.0" encoding="ISO-8859-1"?>'
        if not args:
            out = [header, "<profiles>"]
            entries = [(alias, "alias") for alias in ALIASES] + [(p, "profile") for p in PROFILES]
            for name, kind in sorted(entries):
                if kind == "alias":
                    out.append(f"<alias>\n<name>{name}</name>\n<type>alias</type>\n<data>{ALIASES[name]}</data>\n"
                               f"<state>ALIASED</state>\n</alias>")
                    continue
                inuse = sum(1 for c in self.channels.values() if c.profile == name and not c.ended)
                out.append(f"<profile>\n<name>{name}</name>\n<type>profile</type>\n<data>{PROFILES[name]}</data>\n"
                           f"<state>RUNNING ({inuse})</state>\n</profile>")
                for gw in self._gateways_sorted():
                    if gw.profile != name:
                        continue
                    out.append(f"<gateway>\n<name>{gw.name}</name>\n<type>gateway</type>\n<data>{gw.to}</data>\n"
                               f"<state>{gw.state}</state>\n</gateway>")
                    retry = gw.retry_text()
                    out.append(f" (retry: {retry})" if retry else "")
            out.append("</profiles>")
            return "\n".join(out) + "\n"
        if args[0].lower() == "gateway":
            if len(args) == 1:
                return header + "\n<gateways>\n" + "".join(g.xml_text() for g in self._gateways_sorted()) + "</gateways>\n"
            gw = self.gateways.get(args[1])
            return header + "\n" + gw.xml_text() if gw else "Invalid Gateway!\n"
        return "Invalid Syntax!\n"

    def _sofia_profile(self, args):
        if len(args) < 2:
            return "Invalid Args!\n"
        name, action = args[0], args[1].lower()
        name = ALIASES.get(name, name)
        if name not in PROFILES:
            return f"Invalid Profile [{args[0]}]"
        if action == "killgw":
            if len(args) < 3:
                return "-ERR missing gw name\n"
            if args[2] == "_all_":
                for gw in [g for g in self.gateways.values() if g.profile == name]:
                    self._kill_gateway(gw)
                return "+OK every gateway marked for deletion.\n"
            gw = self.gateways.get(args[2])
            if gw is None:
                return "-ERR no such gateway.\n"
            self._kill_gateway(gw)
            return "+OK gateway marked for deletion.\n"
        if action == "rescan":
            self.rescan_gateways(name)
            return T.RESCAN_BODY
        if action in ("restart", "start", "stop"):
            return f"Reload XML [Success]\n{'restarting' if action == 'restart' else action}: {name}\n"
        return "-ERR Unknown command!\n"

    def rescan_gateways(self, profile="external"):
        """Add the gateways of gateway_dir/*.xml that are not loaded yet (as `sofia profile X rescan`)."""
        added = []
        for name, params in read_gateway_dir(self.gateway_dir):
            if name in self.gateways:
                continue
            gw = Gateway.from_params(name, params, profile=profile)
            self.gateways[name] = gw
            added.append(gw)
            log.info("gateway %s added (%s)", name, "register" if gw.register else "noreg")
        if added:
            gevent.spawn(self._gateways_added, added)
        return added

    def _gateways_added(self, gateways):
        self._sleep(GATEWAY_STEP / 5)
        for gw in gateways:
            self._emit(T.GATEWAY_ADD, overrides={"Gateway": gw.name, "profile-name": gw.profile})
        for gw in gateways:
            if gw.pingfreq:
                gw.pingcount, gw.pingtime = gw.pingmin or 1, 1.00
        self._sleep(GATEWAY_STEP)
        for gw in gateways:
            if self.gateways.get(gw.name) is not gw or not gw.register:
                continue
            self.emit_gateway_state(gw.name, "TRYING", "DOWN" if gw.status != "UP" else "UP")
        self._sleep(GATEWAY_STEP)
        for gw in gateways:
            if self.gateways.get(gw.name) is not gw or not gw.register:
                continue
            self._register_answered(gw, step=GATEWAY_STEP)

    def _register_answered(self, gw, step):
        """The REGISTER's answer: 200 OK (REGISTER, then REGED) or the failure of registration_results."""
        outcome = self.registration_results.get(gw.name, "REGED")
        ping = "UP" if gw.status == "UP" else "DOWN"
        if outcome == "REGED" or outcome[1] not in (408, 503):
            gw.registrar_answered()
        if outcome == "REGED":
            self.emit_gateway_state(gw.name, "REGISTER", ping, status="200", phrase="OK")
            self._sleep(step)
            if self.gateways.get(gw.name) is gw:
                self.emit_gateway_state(gw.name, "REGED", "UP")
                gevent.spawn(self._keep_registered, gw)
            return
        _, status, phrase = outcome
        self.emit_gateway_state(gw.name, "FAILED", "DOWN", status=str(status), phrase=phrase)
        gw.retry_at = time.time() + gw.retry_seconds / self.speed
        self.emit_gateway_state(gw.name, "FAIL_WAIT", "DOWN")
        gevent.spawn(self._retry_registration, gw)

    def _keep_registered(self, gw):
        """Refresh a REGED gateway like FreeSWITCH: UNREGED, TRYING, REGISTER (200 OK), REGED."""
        self._sleep(refresh_delay(gw.freq))
        if self.gateways.get(gw.name) is not gw or gw.state != "REGED":
            return
        self.emit_gateway_state(gw.name, "UNREGED", "UP")
        self._sleep(GATEWAY_TICK)
        if self.gateways.get(gw.name) is not gw:
            return
        self.emit_gateway_state(gw.name, "TRYING", "UP")
        self._register_answered(gw, step=GATEWAY_TICK)

    def _retry_registration(self, gw):
        """FAIL_WAIT ends after retry-seconds: UNREGED, a tick later TRYING and the answer
        of registration_results (21_gateway_register_dead_port)."""
        self._sleep(gw.retry_seconds)
        if self.gateways.get(gw.name) is not gw or gw.state != "FAIL_WAIT":
            return
        self.emit_gateway_state(gw.name, "UNREGED", "DOWN")
        self._sleep(GATEWAY_TICK)
        if self.gateways.get(gw.name) is not gw:
            return
        self.emit_gateway_state(gw.name, "TRYING", "DOWN")
        self._register_answered(gw, step=GATEWAY_TICK)

    def _kill_gateway(self, gw):
        self.gateways.pop(gw.name, None)
        log.info("gateway %s marked for deletion", gw.name)

        def later():
            self._sleep(GATEWAY_STEP)
            if gw.register:
                self._emit(T.GATEWAY_STATE, overrides={"Gateway": gw.name, "State": "DOWN", "Ping-Status": "DOWN"})
                self._sleep(GATEWAY_STEP)
            self._emit(T.GATEWAY_DELETE, overrides={"Gateway": gw.name, "profile-name": gw.profile})
        gevent.spawn(later)

    def emit_gateway_state(self, name, state="REGED", ping_status="UP", status=None, phrase=None):
        """CUSTOM sofia::gateway_state as captured (Gateway, State, Ping-Status[, Phrase, Status])."""
        gw = self.gateways.get(name)
        if gw is not None:
            gw.state = state
            gw.set_status("UP" if ping_status == "UP" else "DOWN")
        overrides = {"Gateway": name, "State": state, "Ping-Status": ping_status}
        network = getattr(gw, "network", None) if gw is not None else None
        append = [("Register-Network-IP", network[0]), ("Register-Network-Port", network[1])] \
            if network else []
        if status is not None or phrase is not None:
            append += [("Phrase", phrase if phrase is not None else ""),
                       ("Status", str(status) if status is not None else "")]
            return self._emit(T.GATEWAY_STATE_WITH_STATUS, overrides=overrides,
                              drop=("Phrase", "Status"), append=append)
        return self._emit(T.GATEWAY_STATE, overrides=overrides, append=append)

    def load_transcript_gateways(self):
        """Load reg_fail_gw and uas_gw frozen exactly as the transcripts show them."""
        self.gateways.update(transcript_gateways())
        return self.gateways

    # ------------------------------------------------------------------ originate
    def _originate(self, arg, job=None):
        """Start an outbound channel. Returns (channel or None, immediate result or None)."""
        args = _split_args(arg.strip())
        if len(args) < 2:
            result = "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
            if job:
                gevent.spawn(self._job_done, job, result)
            return None, result
        dial_vars, dialstring = parse_dial_vars(args[0])
        exten = args[1]
        if exten.startswith("&"):
            app = exten[1:]
            app_name, _, app_arg = app.partition("(")
            app_arg = app_arg.removesuffix(")")
        else:
            app_name, app_arg = "park", ""
        cid_num = args[5] if len(args) > 5 and args[5] != "undef" else None
        where = self._dial_target(dialstring)
        error, user = where.error, where.user
        uuid = dial_vars.get("origination_uuid") or str(uuidlib.uuid4())
        cid = dial_vars.get("origination_caller_id_number") or cid_num or "0000000000"
        if error is not None:
            if error in ("INVALID_PROFILE", "INVALID_GATEWAY"):
                gevent.spawn(self._bad_profile_flow, uuid, dial_vars, error, job, arg)
            elif job:
                gevent.spawn(self._job_done, job, f"-ERR {error}\n")
            log.info("originate %s failed: %s", dialstring, error)
            return None, (f"-ERR {error}\n" if job is None else None)
        scenario = "phone" if where.tech == "user" else _scenario(user)
        ch = self._make_channel(uuid, where, cid, dial_vars, scenario, app_name, app_arg)
        ch.job = job
        ch.originate_arg = arg
        log.info("originate %s -> %s (%s) uuid=%s", cid, user, scenario, uuid)
        if scenario == "phone" and app_name == "eavesdrop":  # a supervisor (consult.py)
            ch.flow = gevent.spawn(self._eavesdrop_flow, ch, app_arg)
        elif scenario == "phone":  # an agent's phone rings first (bridging.py)
            ch.flow = gevent.spawn(self._agent_first_flow, ch, app_arg if app_name == "bridge" else None)
        else:
            ch.flow = gevent.spawn(self._outbound_flow, ch)
        return ch, None

    _parse_dial = staticmethod(parse_dial_vars)

    @staticmethod
    def scenario_of(user):
        return _scenario(user)

    def _make_channel(self, uuid, where, cid, dial_vars, scenario, app_name="park", app_arg=""):
        ch = Channel(self, uuid, "outbound", where.user, cid, where.profile, where.channel_name, where.userhost,
                     where.hostport, dial_vars, scenario, application=app_name, application_data=app_arg,
                     gateway=where.gateway)
        if where.tech == "user":
            ch.phone_user = where.user
        self.channels[uuid] = ch
        self._sessions_total += 1
        self._peak = max(self._peak, len(self.channels))
        gw = self.gateways.get(where.gateway) if where.gateway else None
        if gw is not None:
            gw.calls_out += 1
        return ch

    def _dial_target(self, dialstring):
        """Where a dial string goes: tech, user, profile, channel_name, userhost, hostport, gateway,
        error (None, or the originate failure)."""
        parts = dialstring.split("/")
        tech = parts[0].lower()
        gateway = None
        profile = "external"
        error = None
        if tech == "sofia" and len(parts) >= 3:
            profile = parts[1]
            if profile == "gateway":
                gw_name = parts[2] if len(parts) >= 4 else ""
                dest_part = "/".join(parts[3:])
                gw = self.gateways.get(gw_name)
                if gw is None and self.strict_gateways:
                    error = "INVALID_GATEWAY"
                gateway = gw_name
                profile = gw.profile if gw else "external"
                proxy = gw.proxy[4:] if gw else gw_name
                user = dest_part.partition("@")[0]
                channel_name = f"sofia/{profile}/{user}"
                userhost = dest_part if "@" in dest_part else f"{user}@{proxy}"
                hostport = userhost.partition("@")[2]
            else:
                target = "/".join(parts[2:])
                profile = ALIASES.get(profile, profile)
                if profile not in PROFILES:
                    error = "INVALID_PROFILE"
                user, _, host = target.partition("@")
                hostport = host or "127.0.0.1"
                channel_name = f"sofia/{profile}/{target}"
                userhost = target if host else f"{user}@{hostport}"
        elif tech in ("user", "loopback", "error") and len(parts) >= 2:
            user = parts[1].partition("@")[0]
            if tech == "error":
                error = parts[1] if parts[1] in T.Q850 else "NORMAL_CLEARING"
            hostport = "127.0.0.1"
            channel_name = f"sofia/internal/{parts[1]}" if tech == "user" else f"loopback/{parts[1]}-a"
            userhost = f"{user}@{hostport}"
            profile = "internal"
        else:
            error = "CHAN_NOT_IMPLEMENTED"
            user, hostport, channel_name, userhost = "", "", "", ""
        if tech == "user" and user not in self.phones:
            error = "USER_NOT_REGISTERED"
        if tech == "user" and error is None:
            hostport = "127.0.0.1:21224"  # the rig's phones register from here (12_api_show_registrations_*)
            userhost = f"gw+phone{user}@{hostport}"
            channel_name = f"sofia/internal/{userhost}"
        return SimpleNamespace(tech=tech, user=user, profile=profile, channel_name=channel_name,
                               userhost=userhost, hostport=hostport, gateway=gateway, error=error)

    def _job_done(self, job, result):
        job_uuid, command, arg = job
        self._emit_api_event(command, arg)
        self._emit_background_job(job_uuid, command, arg, result)

    def _bad_profile_flow(self, uuid, dial_vars, error, job, arg):
        ch = SimpleChannel(uuid, self._next_session_id())
        self._emit(T.BAD_PROFILE_DESTROY, ch)
        if job:
            self._job_done(job, f"-ERR {error}\n")

    def _emit_ring_phase(self, ch, templates, progress=True):
        for t in templates:
            if t.name == "CHANNEL_PROGRESS":
                if not progress:
                    continue
                self._sleep(RING_DELAY)
                ch.progress_us = _now_us()
            elif t.name == "CHANNEL_CALLSTATE" and not progress:
                continue
            if ch.direction == "inbound" and t.name in ("CHANNEL_OUTGOING", "CHANNEL_ORIGINATE"):
                continue
            self._emit(t, ch)

    def _outbound_flow(self, ch):
        scenario = ch.scenario
        try:
            if scenario == "busy":
                self._emit_ring_phase(ch, T.BUSY_FLOW["ring"])
                self._sleep(BUSY_DELAY)
                self._fail(ch, T.BUSY_FLOW, "USER_BUSY")
                return
            if scenario == "unavailable":
                self._emit_ring_phase(ch, T.NOLISTENER_FLOW["ring"])
                self._fail(ch, T.NOLISTENER_FLOW, "NORMAL_TEMPORARY_FAILURE")
                return
            if scenario == "no_answer":
                self._emit_ring_phase(ch, T.NOANSWER_FLOW["ring"])
                self._sleep(NO_ANSWER_TIMEOUT)
                self._fail(ch, T.NOANSWER_FLOW, "NO_ANSWER")
                return
            self._emit_ring_phase(ch, T.ANSWERED_PHASES["ring"])
            self._sleep(ANSWER_DELAY)
            self._answer(ch)
            if scenario == "remote_hangup":
                self._sleep(REMOTE_HANGUP_AFTER)
                self._hangup(ch, "NORMAL_CLEARING", local=False)
            elif scenario == "drop":
                self._sleep(DROP_AFTER)
                self.drop_connections()
                self._end_silently(ch, "NORMAL_CLEARING")
        except gevent.GreenletExit:
            pass

    def _answer(self, ch):
        ch.answered_us = _now_us()
        if not ch.progress_us:
            ch.progress_us = ch.answered_us
        for t in T.ANSWERED_PHASES["answer"]:
            self._emit(t, ch)
            if t.name == T.ANSWER_JOB_AFTER and ch.direction == "outbound":
                self._originate_done(ch, f"+OK {ch.uuid}\n")
        log.info("call %s answered", ch.uuid)

    def _originate_done(self, ch, result):
        # a blocking `api originate` gets its API event from _esl_api once it returns
        if ch.job is not None:
            job, ch.job = ch.job, None
            self._job_done(job, result)
        if not ch.result.ready():
            ch.result.set(result)

    def _fail(self, ch, flow, cause, disposition=None):
        """Unanswered end of an outbound channel with the captured failure events."""
        ch.hangup_cause = cause
        ch.hangup_us = _now_us()
        ch.disposition = disposition
        gw = self.gateways.get(ch.gateway) if ch.gateway else None
        if gw is not None:
            gw.failed_out += 1
        self._stop_recordings(ch, emit=False)
        ch.rtp_stats = {}
        for item in flow["fail"]:
            if item == "BACKGROUND_JOB":
                if ch.direction == "outbound":
                    self._originate_done(ch, f"-ERR {cause}\n")
                continue
            self._emit(item, ch)
            if item.name == "CHANNEL_HANGUP_COMPLETE":
                pass
        self._forget_channel(ch)
        log.info("call %s ended: %s", ch.uuid, cause)

    def _forget_channel(self, ch):
        ch.ended = True
        self.channels.pop(ch.uuid, None)
        self._end_eavesdroppers(ch)
        if self.show_channels_lag:
            ch.hangup_us = ch.hangup_us or _now_us()
            self._gone_listed.append(ch)
        if not ch.result.ready():
            ch.result.set(f"-ERR {ch.hangup_cause or 'NORMAL_CLEARING'}\n")

    def _hangup(self, ch, cause="NORMAL_CLEARING", local=True):
        if ch.ended or ch.hangup_us:
            return
        if isinstance(ch.bridge, ConsultBridge):
            self._hangup_consult_bridged(ch, cause, local)
            return
        if ch.bridge is not None:
            self._hangup_bridged(ch, cause, local)
            return
        if self._consult_leg_hangup(ch, cause, local):
            return
        partner, ch.partner = ch.partner, None
        if partner is not None:  # a leg of a two-leg call that is not bridged (yet): both go
            partner.partner = None
            self._hangup_alone(ch, cause, local)
            self._hangup(partner, cause, local=True)
            return
        self._hangup_alone(ch, cause, local)

    def _hangup_alone(self, ch, cause, local):
        if ch.flow is not None and not ch.flow.dead and ch.flow is not gevent.getcurrent():
            ch.flow.kill(block=False)
        if not ch.answered:
            if ch.direction == "outbound":
                disposition = None if local else "recv_refuse"
            else:
                disposition = "send_refuse" if local else "recv_cancel"
            self._fail(ch, T.NOANSWER_FLOW, cause, disposition)
            return
        ch.hangup_cause = cause
        ch.hangup_us = _now_us()
        ch.disposition = None if local else "recv_bye"
        self._finish_rtp(ch)
        for t in T.ANSWERED_PHASES["hangup"]:
            if ch.playbacks and not ch.record_info and not ch.recordings:
                t = T.AFTER_PLAYBACK_HANGUP.get(t.name, t)
            self._emit(t, ch)
            if t.name == "CHANNEL_HANGUP" and ch.recordings:
                self._stop_recordings(ch, emit=True, during_hangup=True)
        self._forget_channel(ch)
        log.info("call %s hung up (%s, %s)", ch.uuid, cause, "local" if local else "remote")

    def _end_silently(self, ch, cause):
        """End a channel without telling anyone (FreeSWITCH went on while nobody listened)."""
        if ch.ended:
            return
        if ch.flow is not None and not ch.flow.dead and ch.flow is not gevent.getcurrent():
            ch.flow.kill(block=False)
        ch.hangup_cause = cause
        ch.hangup_us = _now_us()
        self._stop_recordings(ch, emit=False)
        self._forget_channel(ch)
        log.info("call %s ended unseen (%s)", ch.uuid, cause)

    def _finish_rtp(self, ch):
        billsec = max(0.0, (ch.hangup_us - ch.answered_us) / 1_000_000) if ch.answered_us else 0.0
        rnd = random.Random(ch.uuid)
        packets = int(billsec * 50)
        skip = rnd.randint(0, 3) if packets else 0
        flaws = rnd.randint(0, 2) if packets > 50 else 0
        quality = 100.0 - min(100.0, flaws * 0.7)
        mos = 4.5 - min(3.5, flaws * 0.05)
        out_packets = max(0, packets - rnd.randint(0, 2)) if packets else 0
        stats = {
            "rtp_audio_in_raw_bytes": packets * 172, "rtp_audio_in_media_bytes": packets * 172,
            "rtp_audio_in_packet_count": packets, "rtp_audio_in_media_packet_count": packets,
            "rtp_audio_in_skip_packet_count": skip, "rtp_audio_in_jitter_packet_count": 0,
            "rtp_audio_in_dtmf_packet_count": 0, "rtp_audio_in_cng_packet_count": 0,
            "rtp_audio_in_flush_packet_count": 0, "rtp_audio_in_largest_jb_size": 0,
            "rtp_audio_in_jitter_min_variance": f"{rnd.uniform(0.0, 2.0):.2f}" if packets else "0.00",
            "rtp_audio_in_jitter_max_variance": f"{rnd.uniform(2.0, 12.0):.2f}" if packets else "0.00",
            "rtp_audio_in_jitter_loss_rate": "0.00", "rtp_audio_in_jitter_burst_rate": "0.00",
            "rtp_audio_in_mean_interval": "20.00" if packets else "0.00",
            "rtp_audio_in_flaw_total": flaws,
            "rtp_audio_in_quality_percentage": f"{quality:.2f}", "rtp_audio_in_mos": f"{mos:.2f}",
            "rtp_audio_out_raw_bytes": out_packets * 172, "rtp_audio_out_media_bytes": out_packets * 172,
            "rtp_audio_out_packet_count": out_packets, "rtp_audio_out_media_packet_count": out_packets,
            "rtp_audio_out_skip_packet_count": 0, "rtp_audio_out_dtmf_packet_count": 0,
            "rtp_audio_out_cng_packet_count": 0, "rtp_audio_rtcp_packet_count": 0, "rtp_audio_rtcp_octet_count": 0,
        }
        stats.update(self.rtp_defaults)
        stats.update(ch.rtp_overrides)
        ch.rtp_stats = {k: str(v) for k, v in stats.items()}

    # ------------------------------------------------------------------ recording
    def _local_path(self, path):
        if not self.recordings_root:
            return path
        root = Path(self.recordings_root)
        p = Path(path)
        if not p.is_absolute():
            return str(root / p)
        try:
            p.relative_to(root)
            return str(p)
        except ValueError:
            return str(root / p.relative_to(p.anchor))

    def _record_start(self, ch, path, limit):
        local = self._local_path(path)
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        rec = _Recording(path, local, limit)
        ch.recordings[path] = rec
        self._emit(T.TEMPLATES["RECORD_START"], ch, overrides={"Record-File-Path": path})
        self._emit(T.TEMPLATES["MEDIA_BUG_START"], ch, overrides={"Media-Bug-Target": path})
        if limit:
            def stop_at_limit():
                gevent.sleep(limit)
                if path in ch.recordings and not ch.ended:
                    self._record_stop(ch, path)
            rec.timer = gevent.spawn(stop_at_limit)
        log.info("call %s recording to %s", ch.uuid, local)

    def _finalize_recording(self, ch, rec):
        elapsed = time.monotonic() - rec.started
        if rec.limit:
            elapsed = min(elapsed, rec.limit)
        samples = write_wav(rec.local_path, elapsed)
        ch.record_info = {"record_file_size": 44 + samples * 2, "record_samples": samples,
                          "record_seconds": samples // 8000, "record_ms": samples // 8,
                          "record_completion_cause": "success-maxtime"}
        ch.finished_recordings.append(rec.local_path)
        if rec.timer is not None and rec.timer is not gevent.getcurrent():
            rec.timer.kill(block=False)
        log.info("call %s wrote %s (%.2f s)", ch.uuid, rec.local_path, samples / 8000)

    def _record_stop(self, ch, path, during_hangup=False):
        rec = ch.recordings.pop(path)
        self._finalize_recording(ch, rec)
        overrides = {"Record-File-Path": path, "Record-Completion-Cause": "success-maxtime"}
        state = {}
        if during_hangup:
            state = {"Channel-State": ch.state, "Channel-Call-State": ch.callstate, "Answer-State": "hangup"}
        overrides.update(state)
        self._emit(T.TEMPLATES["RECORD_STOP"], ch, overrides=overrides)
        self._emit(T.TEMPLATES["MEDIA_BUG_STOP"], ch, overrides=dict(state, **{"Media-Bug-Target": path}))

    def _stop_recordings(self, ch, emit, during_hangup=False):
        for path in list(ch.recordings):
            if emit:
                self._record_stop(ch, path, during_hangup=during_hangup)
            else:
                self._finalize_recording(ch, ch.recordings.pop(path))

    # ------------------------------------------------------------------ applications
    def _execute_app(self, ch, app, arg):
        app = app.lower()
        if app == "hangup":
            self._hangup(ch, arg or "NORMAL_CLEARING", local=True)
            return
        if app == "answer":
            if not ch.answered:
                self._api_uuid_answer(ch.uuid)
            return
        app_uuid = str(uuidlib.uuid4())
        nth = min(ch.playbacks, len(T.PLAYBACK_EXECUTE) - 1)
        ch.playbacks += 1
        overrides = {"Application": app, "Application-Data": arg, "Application-UUID": app_uuid,
                     "variable_current_application": app}
        self._emit(T.PLAYBACK_EXECUTE[nth], ch, overrides=overrides)
        self._sleep(PLAYBACK_TIME)
        if ch.ended:
            return
        overrides["Application-Response"] = "FILE PLAYED" if app == "playback" else "_none_"
        self._emit(T.PLAYBACK_COMPLETE[nth], ch, overrides=overrides)

    def set_variable(self, uuid, name, value):
        """uuid_setvar: the variable is placed after the channel's last variable at this moment."""
        ch = self.channels[uuid]
        if value is None:
            ch.set_vars.pop(name, None)
            ch.dial_vars.pop(name, None)
            return
        anchor = ch.last_var
        if anchor == name:
            anchor = None
        ch.set_vars.pop(name, None)
        ch.set_vars[name] = (value, anchor)

    # ------------------------------------------------------------------ test controls
    def inbound_call(self, from_number="15550001111", to_number="1000", answer_after=0.1, hangup_after=None,
                     variables=None, gateway=None):
        """A call FreeSWITCH receives: inbound CHANNEL_CREATE ... (answered after `answer_after` s,
        None = keeps ringing), remote hangup after `hangup_after` s (None = stays up). Returns uuid."""
        gw = self.gateways.get(gateway) if gateway else None
        remote = gw.proxy[4:] if gw else "127.0.0.1:5060"
        uuid = str(uuidlib.uuid4())
        ch = Channel(self, uuid, "inbound", to_number, from_number, gw.profile if gw else "external",
                     f"sofia/{gw.profile if gw else 'external'}/{from_number}@{remote.partition(':')[0]}",
                     f"{to_number}@127.0.0.1", remote, dict(variables or {}), "inbound", gateway=gateway)
        ch.inbound_overrides = {
            "Caller-Caller-ID-Number": from_number, "Caller-Orig-Caller-ID-Number": from_number,
            "Caller-ANI": from_number, "Caller-Destination-Number": to_number,
            "Caller-Callee-ID-Number": to_number, "Caller-Caller-ID-Name": from_number,
            "Caller-Source": "mod_sofia", "Caller-Context": "public",
            "variable_caller_id": f'"{from_number}" <{from_number}>',
            "variable_sip_from_user": from_number, "variable_sip_to_user": to_number,
        }
        self.channels[uuid] = ch
        self._sessions_total += 1
        self._peak = max(self._peak, len(self.channels))
        if gw is not None:
            gw.calls_in += 1
        log.info("inbound call %s -> %s uuid=%s", from_number, to_number, uuid)

        def flow():
            try:
                self._emit_ring_phase(ch, T.ANSWERED_PHASES["ring"])
                if answer_after is None:
                    return
                self._sleep(answer_after)
                self._answer(ch)
                if hangup_after is not None:
                    self._sleep(hangup_after)
                    self._hangup(ch, "NORMAL_CLEARING", local=False)
            except gevent.GreenletExit:
                pass
        ch.flow = gevent.spawn(flow)
        return uuid

    def hangup(self, uuid, cause="NORMAL_CLEARING", rtp_stats=None):
        """The remote party hangs up (events as captured, disposition recv_bye)."""
        ch = self.channels.get(uuid)
        if ch is None:
            raise KeyError(uuid)
        if rtp_stats:
            ch.rtp_overrides.update(rtp_stats)
        self._hangup(ch, cause, local=False)

    def hangup_while_disconnected(self, uuid, cause="NORMAL_CLEARING"):
        """End the channel without delivering any event (reconciliation tests)."""
        ch = self.channels.get(uuid)
        if ch is None:
            raise KeyError(uuid)
        self._end_silently(ch, cause)

    def shutdown(self):
        """fsctl shutdown: hang up calls, SHUTDOWN and MODULE_UNLOAD... events, then
        'The system is being shut down.' to every connection, close, stop listening."""
        for ch in list(self.channels.values()):
            self._hangup(ch, "SYSTEM_SHUTDOWN", local=True)
        for t in T.SHUTDOWN_EVENTS:
            self._emit(t)
        clients = list(self._clients)
        for client in clients:
            client.close_after_queue(T.DISCONNECT_SHUTDOWN)
        deadline = time.monotonic() + 2.0
        while any(not c.closed for c in clients) and time.monotonic() < deadline:
            gevent.sleep(0.01)
        self.stop(hangup_calls=True)

    def flood(self, n_calls, events_per_call=4, timeout=None):
        """Benchmark: n complete synthetic calls as fast as possible to subscribed clients.

        events_per_call 4 = CHANNEL_CREATE, CHANNEL_PROGRESS, CHANNEL_ANSWER, CHANNEL_HANGUP_COMPLETE;
        more adds CHANNEL_HANGUP, CHANNEL_DESTROY, CHANNEL_CALLSTATE, CHANNEL_STATE ... (capture order).
        Returns when every byte has been written to every client (or `timeout` passed).
        """
        chosen = _flood_names(events_per_call)
        placeholder = str(uuidlib.uuid4())
        ch = Channel(self, placeholder, "outbound", "15550009999", "15550001000", "external",
                     "sofia/external/15550009999", "15550009999@127.0.0.1:5060", "127.0.0.1:5060",
                     {"cc_flood": "1"}, "answered")
        now = _now_us()
        ch.created_us = now
        ch.progress_us = now + 50_000
        ch.answered_us = now + 200_000
        ch.hangup_us = now + 5_200_000
        ch.hangup_cause = "NORMAL_CLEARING"
        self._finish_rtp(ch)
        seq_mark = "SEQ0SEQ"
        bases = []
        for name in chosen:
            template = T.TEMPLATES[name] if name != "CHANNEL_STATE" else _first_named("CHANNEL_STATE")
            ctx = T.EventContext(self.core_uuid, seq_mark, hostname=self.hostname, profile_urls=PROFILES)
            headers = T.render(template, ctx, ch)
            event = SimEvent(headers, template.body)
            bases.append(event)
        targets = [c for c in self._clients if c.events_enabled]
        per_event = []
        for event in bases:
            wanted = [c for c in targets if c.wants(event)]
            payloads = {}
            for c in wanted:
                if c.format not in payloads:
                    payloads[c.format] = T.SERIALIZERS[c.format](event.headers, event.body)
            per_event.append((wanted, payloads))
        ph = placeholder.encode()
        mark = seq_mark.encode()
        for _ in range(n_calls):
            new = str(uuidlib.uuid4()).encode()
            for wanted, payloads in per_event:
                self._sequence += 1
                seq = str(self._sequence).encode()
                framed = {}
                for fmt, payload in payloads.items():
                    body = payload.replace(ph, new).replace(mark, seq, 1)
                    framed[fmt] = T.frame_event(fmt, body)
                for c in wanted:
                    c.push(framed[c.format])
                self.events_sent += 1
            gevent.sleep(0)
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(not c.closed and (c.busy or not c.queue.empty()) for c in targets):
            if deadline is not None and time.monotonic() > deadline:
                break
            gevent.sleep(0.005)
        return n_calls * len(chosen)


class SimpleChannel:
    """The not-even-created channel of a failed originate (only CHANNEL_DESTROY is sent)."""

    def __init__(self, uuid, session_id=0):
        self.uuid = uuid
        self.channel_name = "N/A"
        self.userhost = self.hostport = ""
        self.dest = self.cid = self.port = ""
        self.direction = "outbound"
        self.set_vars, self.dial_vars = {}, {}
        self.session_id = session_id
        self.sip_call_id = ""
        self.hangup_cause = None
        self.disposition = None
        self.profile = "external"
        self.created_us = self.answered_us = self.progress_us = self.progress_media_us = self.hangup_us = 0
        self.record_info = None
        self.rtp_stats = {}
        self.application = None
        self.inbound_overrides = {}
        self.last_var = None
        self.state = self.callstate = self.answer_state = None


_CONTROL_TEMPLATES = {}


def control_template(name):
    """CHANNEL_HOLD / CHANNEL_UNHOLD of the held leg, as the real switch sent them
    (22_call_control_hold_dtmf.capture), with that capture's leg as the tokens."""
    if not _CONTROL_TEMPLATES:
        source = "22_call_control_hold_dtmf"
        events = [e for _, e in tr.capture_events(source)]
        leg = next(e.get("Unique-ID") for e in events if e.get("Event-Name") == "CHANNEL_HOLD"
                   and e.get("Call-Direction") == "outbound")
        tokens = SimpleNamespace(uuid=leg, dest="answer-hold", cid="0000000000", hostport="",
                                 port="", userhost="answer-hold",
                                 channel_name="sofia/external/answer-hold",
                                 dial_vars=["origination_uuid"], profile="external",
                                 setvar_names=[])
        for i, event in enumerate(events):
            if event.get("Unique-ID") == leg and event.get("Event-Name") not in _CONTROL_TEMPLATES:
                _CONTROL_TEMPLATES[event.get("Event-Name")] = T.Template(event, source, i, tokens)
    return _CONTROL_TEMPLATES[name]


def _now_us():
    return int(time.time() * 1_000_000)


def _scenario(user):
    if user.startswith("486"):
        return "busy"
    if user.startswith("408"):
        return "no_answer"
    if user.startswith("503"):
        return "unavailable"
    if user.startswith("999"):
        return "drop"
    if user.startswith("777"):
        return "remote_hangup"
    return "answered"


_FLOOD_PRIORITY = ["CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE",
                   "CHANNEL_HANGUP", "CHANNEL_DESTROY", "CHANNEL_CALLSTATE", "CHANNEL_STATE", "CODEC",
                   "CALL_UPDATE", "CHANNEL_EXECUTE", "CHANNEL_PARK", "CHANNEL_UNPARK",
                   "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_OUTGOING", "CHANNEL_ORIGINATE"]
_FLOW_ORDER = ["CHANNEL_OUTGOING", "CHANNEL_STATE", "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS",
               "CHANNEL_CALLSTATE", "CODEC", "CHANNEL_ANSWER", "CALL_UPDATE", "CHANNEL_EXECUTE", "CHANNEL_PARK",
               "CHANNEL_HANGUP", "CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP_COMPLETE",
               "CHANNEL_DESTROY"]


def _flood_names(n):
    n = max(1, min(int(n), len(_FLOOD_PRIORITY)))
    chosen = set(_FLOOD_PRIORITY[:n])
    return [name for name in _FLOW_ORDER if name in chosen]


def _first_named(name):
    for phase in T.ANSWERED_PHASES.values():
        for t in phase:
            if t.name == name:
                return t
    raise LookupError(name)
