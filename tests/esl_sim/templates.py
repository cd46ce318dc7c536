"""Event templates taken at import time from the real FreeSWITCH transcripts, and their rendering.

Every event the simulator sends is a real event from tests/fixtures/esl/*.raw with its values
substituted: the header NAMES and their ORDER (duplicates included: FreeSWITCH really sends
`Hangup-Cause` twice in CHANNEL_HANGUP_COMPLETE) are the captured ones. What changes per channel:
uuids, numbers, hosts, times, causes, the originate `{var=val}` variables (which sit where the
captured ones sat), variables set later with uuid_setvar (placed after the last variable the channel
had when they were set, as FreeSWITCH appends them), recording and RTP statistics variables.

Wire encoding follows FreeSWITCH too: plain values are URL-encoded with SWITCH_URL_UNSAFE
(so ',', '/', '(' stay, ':' '@' ' ' are escaped), JSON is compact with duplicate keys kept and
the body under "_body" after a string "Content-Length", and the outer frame is
'Content-Length: N\\nContent-Type: text/event-...\\n\\n' (Content-Length FIRST, unlike replies).
"""
import json
import re
import time
import xml.sax.saxutils
from types import SimpleNamespace
from urllib.parse import unquote

from tests.esl_sim import transcripts as tr

# ----------------------------------------------------------------------------- wire encoding
_URL_UNSAFE = set(b"\r\n #%&+:;<=>?@[\\]^`{|}\"")
_HEX = b"0123456789ABCDEF"
_ENCODE_TABLE = {}
for _b in range(256):
    if _b < 0x20 or _b > 0x7E or _b in _URL_UNSAFE:
        _ENCODE_TABLE[_b] = "%" + chr(_HEX[_b >> 4]) + chr(_HEX[_b & 15])
    else:
        _ENCODE_TABLE[_b] = chr(_b)
_SAFE_RE = re.compile(r"^[A-Za-z0-9_.,/()!*$'~\-]*$")
_ESCAPED_PCT = re.compile(rb"%[0-9A-F]{2}")


def url_encode(value):
    """switch_url_encode(): SWITCH_URL_UNSAFE, controls and non-ASCII bytes become %XX (upper hex);
    an existing %XX (upper-case hex) is not encoded twice."""
    if _SAFE_RE.match(value):
        return value
    data = value.encode("utf-8")
    out, i, n = [], 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x25 and _ESCAPED_PCT.match(data, i):
            out.append(data[i:i + 3].decode("ascii"))
            i += 3
            continue
        out.append(_ENCODE_TABLE[b])
        i += 1
    return "".join(out)


def _json_str(value):
    return json.dumps(value, ensure_ascii=False)


def serialize_plain(headers, body=None):
    """Event body for text/event-plain (bytes)."""
    parts = [f"{k}: {url_encode(v)}\n" for k, v in headers]
    if body is not None:
        data = body.encode("utf-8")
        return ("".join(parts) + f"Content-Length: {len(data)}\n\n").encode("utf-8") + data
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def serialize_json(headers, body=None):
    """Event body for text/event-json (bytes): compact, duplicate keys kept, no trailing newline."""
    items = [f"{_json_str(k)}:{_json_str(v)}" for k, v in headers]
    if body is not None:
        items.append(f'"Content-Length":"{len(body.encode("utf-8"))}"')
        items.append(f'"_body":{_json_str(body)}')
    return ("{" + ",".join(items) + "}").encode("utf-8")


def serialize_xml(headers, body=None):
    """Event body for text/event-xml (switch_event_xmlize layout; not covered by a transcript)."""
    esc = xml.sax.saxutils.escape
    lines = ["<event>", "  <headers>"]
    for k, v in headers:
        lines.append(f"    <{k}>{esc(url_encode(v))}</{k}>")
    if body:
        lines.append(f"    <Content-Length>{len(body.encode('utf-8'))}</Content-Length>")
    lines.append("  </headers>")
    if body:
        lines.append(f"  <body>{esc(body)}</body>")
    lines.append("</event>")
    return "\n".join(lines).encode("utf-8")


SERIALIZERS = {"plain": serialize_plain, "json": serialize_json, "xml": serialize_xml}
CONTENT_TYPES = {"plain": "text/event-plain", "json": "text/event-json", "xml": "text/event-xml"}


def frame_event(fmt, payload):
    """Outer ESL frame of an event: Content-Length comes BEFORE Content-Type (as captured)."""
    return b"Content-Length: %d\nContent-Type: %s\n\n" % (len(payload), CONTENT_TYPES[fmt].encode()) + payload


def frame_reply(reply_text, extra_headers=()):
    """command/reply: no Content-Length, Reply-Text, optional headers (bgapi adds Job-UUID)."""
    lines = ["Content-Type: command/reply", f"Reply-Text: {reply_text}"]
    lines += [f"{k}: {v}" for k, v in extra_headers]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def frame_with_body(content_type, body):
    """api/response, text/disconnect-notice: Content-Type FIRST, then Content-Length."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    return b"Content-Type: %s\nContent-Length: %d\n\n" % (content_type.encode(), len(data)) + data


AUTH_REQUEST = b"Content-Type: auth/request\n\n"
DISCONNECT_GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
DISCONNECT_SHUTDOWN = "The system is being shut down.\n"


# ----------------------------------------------------------------------------- times
def event_dates(now):
    """Event-Date-Local, Event-Date-GMT, Event-Date-Timestamp for a time.time() value."""
    sec = int(now)
    return (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sec)),
            time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(sec)),
            str(int(now * 1_000_000)))


def stamp(us):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(us // 1_000_000))


# ----------------------------------------------------------------------------- causes
Q850 = {
    "UNSPECIFIED": 0, "UNALLOCATED_NUMBER": 1, "NO_ROUTE_TRANSIT_NET": 2, "NO_ROUTE_DESTINATION": 3,
    "CHANNEL_UNACCEPTABLE": 6, "CALL_AWARDED_DELIVERED": 7, "NORMAL_CLEARING": 16, "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20, "CALL_REJECTED": 21,
    "NUMBER_CHANGED": 22, "REDIRECTION_TO_NEW_DESTINATION": 23, "EXCHANGE_ROUTING_ERROR": 25,
    "DESTINATION_OUT_OF_ORDER": 27, "INVALID_NUMBER_FORMAT": 28, "FACILITY_REJECTED": 29,
    "RESPONSE_TO_STATUS_ENQUIRY": 30, "NORMAL_UNSPECIFIED": 31, "NORMAL_CIRCUIT_CONGESTION": 34,
    "NETWORK_OUT_OF_ORDER": 38, "NORMAL_TEMPORARY_FAILURE": 41, "SWITCH_CONGESTION": 42,
    "ACCESS_INFO_DISCARDED": 43, "REQUESTED_CHAN_UNAVAIL": 44, "PRE_EMPTED": 45,
    "FACILITY_NOT_SUBSCRIBED": 50, "OUTGOING_CALL_BARRED": 52, "INCOMING_CALL_BARRED": 54,
    "BEARERCAPABILITY_NOTAUTH": 57, "BEARERCAPABILITY_NOTAVAIL": 58, "SERVICE_UNAVAILABLE": 63,
    "BEARERCAPABILITY_NOTIMPL": 65, "CHAN_NOT_IMPLEMENTED": 66, "FACILITY_NOT_IMPLEMENTED": 69,
    "SERVICE_NOT_IMPLEMENTED": 79, "INVALID_CALL_REFERENCE": 81, "INCOMPATIBLE_DESTINATION": 88,
    "INVALID_MSG_UNSPECIFIED": 95, "MANDATORY_IE_MISSING": 96, "MESSAGE_TYPE_NONEXIST": 97,
    "WRONG_MESSAGE": 98, "IE_NONEXIST": 99, "INVALID_IE_CONTENTS": 100, "WRONG_CALL_STATE": 101,
    "RECOVERY_ON_TIMER_EXPIRE": 102, "MANDATORY_IE_LENGTH_ERROR": 103, "PROTOCOL_ERROR": 111,
    "INTERWORKING": 127, "SUCCESS": 142, "ORIGINATOR_CANCEL": 487, "CRASH": 700,
    "SYSTEM_SHUTDOWN": 701, "LOSE_RACE": 502, "MANAGER_REQUEST": 503, "BLIND_TRANSFER": 600,
    "ATTENDED_TRANSFER": 601, "ALLOTTED_TIMEOUT": 602, "USER_CHALLENGE": 603, "MEDIA_TIMEOUT": 604,
    "PICKED_OFF": 605, "USER_NOT_REGISTERED": 606, "PROGRESS_TIMEOUT": 607, "INVALID_GATEWAY": 608,
    "GATEWAY_DOWN": 609, "INVALID_URL": 610, "INVALID_PROFILE": 611, "NO_PICKUP": 612,
    "SRTP_READ_ERROR": 613,
}


def q850(cause):
    code = Q850.get(cause, 31)
    return str(code if code <= 127 else 31)


# ----------------------------------------------------------------------------- templates
class Template:
    """One captured event: name, headers (decoded values, wire order, no body Content-Length),
    body, and the tokens of the call it came from (used to substitute values)."""

    def __init__(self, event, source, index, tokens=None):
        headers = []
        for key, value in event.headers:
            if key in ("Content-Length", "_body") and event.body is not None:
                continue
            headers.append((key, value))
        self.headers = tuple(headers)
        self.body = event.body
        self.name = event.get("Event-Name")
        self.subclass = event.get("Event-Subclass")
        self.source = source
        self.index = index
        self.tokens = tokens
        self._compiled = None

    @property
    def header_names(self):
        return [k for k, _ in self.headers]

    def get(self, name, default=None):
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def __repr__(self):
        return f"<Template {self.name} {self.source}#{self.index}>"


def _source_tokens(originate_arg, uuid, setvar_names=()):
    """Tokens of the captured call: uuid, destination, caller id, host:port, channel name, dial vars."""
    dial_vars = []
    rest = originate_arg
    if rest.startswith("{"):
        inner, _, rest = rest[1:].partition("}")
        for item in inner.split(","):
            name, _, _value = item.partition("=")
            dial_vars.append(name)
    dialstring = rest.split(" ")[0]
    parts = dialstring.split("/")
    userhost = parts[-1]
    user, _, hostport = userhost.partition("@")
    port = hostport.rpartition(":")[2] if ":" in hostport else ""
    cid = "1000" if "origination_caller_id_number" in dial_vars else "0000000000"
    return SimpleNamespace(uuid=uuid, dest=user, cid=cid, hostport=hostport, port=port,
                           userhost=userhost, channel_name=f"sofia/{parts[1]}/{userhost}",
                           dial_vars=dial_vars, profile=parts[1], setvar_names=list(setvar_names))


def call_templates(name):
    """(templates of the events of the originated channel in order, tokens, all templates)."""
    records = tr.load_raw(name)
    originate = None
    setvars = []
    for data in tr.client_messages(records):
        text = data.decode()
        if text.startswith("api uuid_setvar "):
            setvars.append(text.split(" ")[3].strip())
        for prefix in ("bgapi originate ", "api originate "):
            if text.startswith(prefix):
                originate = text[len(prefix):].split("\n")[0]
    events = []
    for raw in tr.server_messages(records):
        msg = tr.parse_message(raw)
        if msg.content_type in ("text/event-plain", "text/event-json"):
            events.append(tr.decode_event(msg))
    uuid = None
    for ev in events:
        if ev.get("Event-Name") == "BACKGROUND_JOB" and ev.body.startswith("+OK "):
            uuid = ev.body[4:].strip()
    if uuid is None:
        for ev in events:
            if ev.get("Unique-ID"):
                uuid = ev.get("Unique-ID")
                break
    tokens = _source_tokens(originate, uuid, setvars) if originate else None
    out = [Template(ev, name, i, tokens) for i, ev in enumerate(events)]
    return out, tokens


def _first(templates, name, **match):
    for t in templates:
        if t.name == name and all(t.get(k) == v for k, v in match.items()):
            return t
    raise LookupError(f"no {name} {match} in {templates[0].source if templates else '?'}")


def api_body(name, command):
    """Body of the api/response to `command` in a transcript (str)."""
    records = tr.load_raw(name)
    waiting = False
    for rec in records:
        if rec.direction == tr.CLIENT:
            waiting = rec.data.decode().startswith(command)
        elif waiting and rec.data is not None:
            msg = tr.parse_message(rec.data)
            if msg.content_type == "api/response":
                return msg.body.decode("utf-8")
    raise LookupError(f"no api/response to {command!r} in {name}")


def decode_plain_lines(text):
    pairs = []
    for line in text.split("\n"):
        if line:
            k, _, v = line.partition(": ")
            pairs.append((k, unquote(v)))
    return pairs


# ----- the captured calls ------------------------------------------------------------------
_ANSWERED, ANSWERED_TOKENS = call_templates("03_call_events_plain")
_ANSWERED_JSON, _ = call_templates("03_call_events_json")
_BUSY, BUSY_TOKENS = call_templates("04_originate_fail_busy486_plain")
_NOANSWER, NOANSWER_TOKENS = call_templates("04_originate_fail_no_answer_timeout_plain")
_NOLISTENER, NOLISTENER_TOKENS = call_templates("04_originate_fail_no_listener_plain")
_BADPROFILE, BADPROFILE_TOKENS = call_templates("04_originate_fail_bad_profile_plain")
_CONTROL, CONTROL_TOKENS = call_templates("09_call_control_sendmsg_getvar")


def _channel_only(templates, uuid):
    return [t for t in templates if t.get("Unique-ID") == uuid]


def _split_answered():
    chan = _channel_only(_ANSWERED, ANSWERED_TOKENS.uuid)
    names = [t.name for t in chan]
    first_codec = names.index("CODEC")
    park = names.index("CHANNEL_PARK")
    rec_start = names.index("RECORD_START")
    rec_stop = names.index("RECORD_STOP")
    hangup = names.index("CHANNEL_HANGUP")
    return {
        "ring": chan[:first_codec],
        "answer": chan[first_codec:park + 1],
        "record_start": chan[rec_start:rec_start + 2],
        "record_stop": chan[rec_stop:rec_stop + 2],
        "hangup": chan[hangup:],
    }


ANSWERED_PHASES = _split_answered()

# Where the BACKGROUND_JOB (and the API event of the originate) falls inside the answer phase:
# right after CALL_UPDATE, before the channel goes to CS_EXECUTE (03_call_events_plain).
ANSWER_JOB_AFTER = "CALL_UPDATE"

RING_EXTRAS = {t.name for t in ANSWERED_PHASES["ring"]} - {"CHANNEL_CREATE", "CHANNEL_PROGRESS"}


def _failure_flow(templates, tokens, with_progress):
    """Ring phase (captured extras from 03 around the 04 CHANNEL_CREATE) then the 04 hangup events,
    with a 'BACKGROUND_JOB' marker where the job result was delivered."""
    chan = _channel_only(templates, tokens.uuid)
    ring = []
    for t in ANSWERED_PHASES["ring"]:
        if t.name == "CHANNEL_CREATE":
            ring.append(_first(chan, "CHANNEL_CREATE"))
        elif t.name == "CHANNEL_PROGRESS":
            if with_progress:
                ring.append(_first(chan, "CHANNEL_PROGRESS"))
        elif t.name == "CHANNEL_CALLSTATE":
            if with_progress:
                ring.append(t)
        else:
            ring.append(t)
    fail = []
    seen_job = False
    for t in templates:
        if t.name == "BACKGROUND_JOB":
            fail.append("BACKGROUND_JOB")
            seen_job = True
        elif t.get("Unique-ID") == tokens.uuid and t.name in (
                "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"):
            fail.append(t)
    assert seen_job
    return {"ring": ring, "fail": fail}


BUSY_FLOW = _failure_flow(_BUSY, BUSY_TOKENS, with_progress=False)
NOANSWER_FLOW = _failure_flow(_NOANSWER, NOANSWER_TOKENS, with_progress=True)
NOLISTENER_FLOW = _failure_flow(_NOLISTENER, NOLISTENER_TOKENS, with_progress=False)
BAD_PROFILE_DESTROY = _first(_BADPROFILE, "CHANNEL_DESTROY")

BACKGROUND_JOB_WITH_ARG = _first(_ANSWERED, "BACKGROUND_JOB")
_BG = [Template(e, "02_bgapi_status_with_background_job", i)
       for i, e in enumerate(tr.transcript_events("02_bgapi_status_with_background_job"))]
BACKGROUND_JOB_NO_ARG = _BG[0]
API_EVENT = _first(_ANSWERED, "API")

# sendmsg / uuid_broadcast playback events (09, JSON capture): the n-th playback of a channel uses
# the n-th captured one (FreeSWITCH leaves playback_* variables behind), and a channel that played
# something ends with the 09 CHANNEL_EXECUTE_COMPLETE (park) / CHANNEL_HANGUP_COMPLETE.
_control_chan = _channel_only(_CONTROL, CONTROL_TOKENS.uuid)
PLAYBACK_EXECUTE = [t for t in _control_chan if t.name == "CHANNEL_EXECUTE" and t.get("Application") == "playback"]
PLAYBACK_COMPLETE = [t for t in _control_chan
                     if t.name == "CHANNEL_EXECUTE_COMPLETE" and t.get("Application") == "playback"]
CHANNEL_EXECUTE_PLAYBACK = PLAYBACK_EXECUTE[0]
CHANNEL_EXECUTE_COMPLETE_PLAYBACK = PLAYBACK_COMPLETE[0]
AFTER_PLAYBACK_HANGUP = {
    "CHANNEL_EXECUTE_COMPLETE": [t for t in _control_chan if t.name == "CHANNEL_EXECUTE_COMPLETE"
                                 and t.get("Application") == "park"][-1],
    "CHANNEL_HANGUP_COMPLETE": _first(_control_chan, "CHANNEL_HANGUP_COMPLETE"),
}

# ----- uuid_dump (CHANNEL_DATA) and show channels/calls rows ------------------------------
_dump_plain = api_body("03_call_events_plain", f"api uuid_dump {ANSWERED_TOKENS.uuid}\n")
CHANNEL_DATA = Template(tr.Event("text/event-plain", tuple(decode_plain_lines(_dump_plain)), None),
                        "03_call_events_plain", -1, ANSWERED_TOKENS)
SHOW_CHANNELS_KEYS = list(json.loads(api_body("03_call_events_plain", "api show channels as json"))
                          ["rows"][0].keys())
SHOW_CALLS_KEYS = list(json.loads(api_body("03_call_events_plain", "api show calls as json"))
                       ["rows"][0].keys())
SHOW_IDLE_JSON = api_body("02_api_show_channels_as_json_idle", "api show channels as json")
SHOW_IDLE_PLAIN = api_body("02_api_show_channels_idle_plain", "api show channels")

# ----- static api bodies --------------------------------------------------------------------
VERSION_BODY = api_body("02_api_version", "api version")
HOSTNAME_BODY = api_body("02_api_hostname", "api hostname")
STATUS_BODY = api_body("02_api_status", "api status")
SOFIA_PROFILE_EXTERNAL_BODY = api_body("02_api_sofia_status_profile_external",
                                        "api sofia status profile external")
RELOADXML_BODY = api_body("02_api_reloadxml", "api reloadxml")
RESCAN_BODY = api_body("02_api_sofia_profile_external_rescan", "api sofia profile external rescan")
NO_REPLY_BODY = api_body("02_api_global_getvar_switch_serial", "api global_getvar")

# ----- gateway (CUSTOM sofia::*) events ------------------------------------------------------
_GW_PLAIN = [Template(e, "06_gateway_state_events_plain", i)
             for i, e in enumerate(tr.transcript_events("06_gateway_state_events_plain"))]
_GW_JSON = [Template(e, "06_gateway_state_events_json", i)
            for i, e in enumerate(tr.transcript_events("06_gateway_state_events_json"))]
GATEWAY_STATE = next(t for t in _GW_PLAIN if t.subclass == "sofia::gateway_state" and t.get("Status") is None)
GATEWAY_STATE_WITH_STATUS = next(t for t in _GW_PLAIN if t.subclass == "sofia::gateway_state"
                                 and t.get("Status") is not None)
GATEWAY_ADD = next(t for t in _GW_PLAIN if t.subclass == "sofia::gateway_add")
GATEWAY_DELETE = next(t for t in _GW_PLAIN if t.subclass == "sofia::gateway_delete")

# ----- shutdown sequence (05) ----------------------------------------------------------------
SHUTDOWN_EVENTS = [Template(e, "05_shutdown_fsctl", i)
                   for i, e in enumerate(tr.transcript_events("05_shutdown_fsctl"))
                   if e.get("Event-Name") != "API"]

# CHANNEL_HANGUP_COMPLETE header names as documented in 07_*
HANGUP_COMPLETE_NAMES_07 = [line for line in (tr.FIXTURE_DIR / "07_channel_hangup_complete_headers_plain.txt")
                            .read_text().split("\n") if line and not line.startswith("#")]

TEMPLATES = {
    # the answered outbound call of 03 (plain capture), by event name (first occurrence)
    name: next(t for phase in ANSWERED_PHASES.values() for t in phase if t.name == name)
    for name in ("CHANNEL_OUTGOING", "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS",
                 "CHANNEL_CALLSTATE", "CODEC", "CHANNEL_ANSWER", "CALL_UPDATE", "CHANNEL_EXECUTE",
                 "CHANNEL_PARK", "RECORD_START", "MEDIA_BUG_START", "RECORD_STOP", "MEDIA_BUG_STOP",
                 "CHANNEL_HANGUP", "CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE",
                 "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY")
}
# CHANNEL_PROGRESS_MEDIA never occurs in the captures (the UAS answered without 183): the simulator
# derives it from CHANNEL_PROGRESS (same headers; only Event-Name and the calling function differ).
TEMPLATES["CHANNEL_PROGRESS_MEDIA"] = TEMPLATES["CHANNEL_PROGRESS"]
TEMPLATES["BACKGROUND_JOB"] = BACKGROUND_JOB_WITH_ARG
TEMPLATES["API"] = API_EVENT
TEMPLATES["CUSTOM sofia::gateway_state"] = GATEWAY_STATE
TEMPLATES["CUSTOM sofia::gateway_add"] = GATEWAY_ADD
TEMPLATES["CUSTOM sofia::gateway_delete"] = GATEWAY_DELETE


def template_headers(name):
    """Header dict (wire order) of a template, e.g. template_headers('CHANNEL_CREATE')."""
    return dict(TEMPLATES[name].headers)


# ----------------------------------------------------------------------------- rendering
RECORD_VARS = {"record_file_size", "record_samples", "record_seconds", "record_ms",
               "record_completion_cause"}
INBOUND_DROP = {"variable_is_outbound", "variable_channel_cid_flipped",
                "variable_pre_transfer_caller_id_number", "variable_originate_early_media",
                "variable_originate_endpoint", "Caller-Callee-ID-Name"}


def _num_key(key):
    if key.startswith("Caller-"):
        return not (key.endswith("-Time") or key in ("Caller-Profile-Index", "Caller-Channel-Hold-Accum",
                                                     "Caller-Channel-Last-Hold"))
    return (key.startswith("variable_sip_") or key in (
        "variable_caller_id", "variable_pre_transfer_caller_id_number", "variable_effective_caller_id_number",
        "variable_origination_caller_id_number", "variable_callee_id_number"))


def _ch_time(attr):
    def get(ch, ev):
        value = getattr(ch, attr)
        return str(value) if value else "0"
    return get


def _var_stamp(attr):
    def get(ch, ev):
        value = getattr(ch, attr)
        return stamp(value) if value else ev.template_value
    return get


def _var_epoch(attr, micro):
    def get(ch, ev):
        value = getattr(ch, attr)
        if not value:
            return "0"
        return str(value if micro else value // 1_000_000)
    return get


def _span(start_attr, end_attr, unit):
    def get(ch, ev):
        start, end = getattr(ch, start_attr), getattr(ch, end_attr)
        if not start or not end:
            return "0"
        return str(max(0, end - start) // unit)
    return get


def _dur(start_attr, unit):
    """duration-like: from channel start to start_attr (answersec...), or end-start for 'end'."""
    def get(ch, ev):
        point = getattr(ch, start_attr)
        if not point:
            return "0"
        return str(max(0, point - ch.created_us) // unit)
    return get


def _billing(unit):
    def get(ch, ev):
        if not ch.answered_us or not ch.hangup_us:
            return "0"
        return str(max(0, ch.hangup_us - ch.answered_us) // unit)
    return get


def _total(unit, answered_only=False):
    def get(ch, ev):
        if not ch.hangup_us or (answered_only and not ch.answered_us):
            return "0"
        return str(max(0, ch.hangup_us - ch.created_us) // unit)
    return get


def _direction(ch, ev):
    return ch.direction


def _cause(ch, ev):
    return ch.hangup_cause or ev.template_value


def _q850(ch, ev):
    return q850(ch.hangup_cause) if ch.hangup_cause else ev.template_value


def _disposition(ch, ev):
    return ch.disposition or ev.template_value


def _profile(ch, ev):
    return ch.profile


def _record(key):
    def get(ch, ev):
        info = ch.record_info or {}
        return str(info.get(key, ev.template_value))
    return get


def _rtp(key):
    def get(ch, ev):
        return str(ch.rtp_stats.get(key, ev.template_value))
    return get


def _app(ch, ev):
    return ch.application or ev.template_value


FUNCS = {
    "Core-UUID": lambda ch, ev: ev.core_uuid,
    "FreeSWITCH-Hostname": lambda ch, ev: ev.hostname,
    "FreeSWITCH-Switchname": lambda ch, ev: ev.hostname,
    "Event-Date-Local": lambda ch, ev: ev.dates[0],
    "Event-Date-GMT": lambda ch, ev: ev.dates[1],
    "Event-Date-Timestamp": lambda ch, ev: ev.dates[2],
    "Event-Sequence": lambda ch, ev: str(ev.sequence),
}
CHANNEL_FUNCS = {
    "Unique-ID": lambda ch, ev: ch.uuid,
    "Channel-Call-UUID": lambda ch, ev: ch.uuid,
    "Caller-Unique-ID": lambda ch, ev: ch.uuid,
    "variable_uuid": lambda ch, ev: ch.uuid,
    "variable_call_uuid": lambda ch, ev: ch.uuid,
    "variable_session_id": lambda ch, ev: str(ch.session_id),
    "variable_sip_call_id": lambda ch, ev: ch.sip_call_id,
    "Call-Direction": _direction, "Presence-Call-Direction": _direction,
    "Caller-Direction": _direction, "Caller-Logical-Direction": _direction,
    "variable_direction": _direction,
    "Hangup-Cause": _cause, "variable_hangup_cause": _cause, "variable_hangup_cause_q850": _q850,
    "variable_sip_hangup_disposition": _disposition,
    "variable_sip_profile_name": _profile, "variable_sofia_profile_name": _profile,
    "variable_recovery_profile_name": _profile,
    "variable_sofia_profile_url": lambda ch, ev: ev.profile_urls.get(ch.profile, ev.template_value),
    "Caller-Profile-Created-Time": _ch_time("created_us"),
    "Caller-Channel-Created-Time": _ch_time("created_us"),
    "Caller-Channel-Answered-Time": _ch_time("answered_us"),
    "Caller-Channel-Progress-Time": _ch_time("progress_us"),
    "Caller-Channel-Progress-Media-Time": _ch_time("progress_media_us"),
    "Caller-Channel-Hangup-Time": _ch_time("hangup_us"),
    "variable_start_stamp": _var_stamp("created_us"),
    "variable_profile_start_stamp": _var_stamp("created_us"),
    "variable_answer_stamp": _var_stamp("answered_us"),
    "variable_progress_stamp": _var_stamp("progress_us"),
    "variable_progress_media_stamp": _var_stamp("progress_media_us"),
    "variable_end_stamp": _var_stamp("hangup_us"),
    "variable_start_epoch": _var_epoch("created_us", False),
    "variable_start_uepoch": _var_epoch("created_us", True),
    "variable_profile_start_epoch": _var_epoch("created_us", False),
    "variable_profile_start_uepoch": _var_epoch("created_us", True),
    "variable_answer_epoch": _var_epoch("answered_us", False),
    "variable_answer_uepoch": _var_epoch("answered_us", True),
    "variable_progress_epoch": _var_epoch("progress_us", False),
    "variable_progress_uepoch": _var_epoch("progress_us", True),
    "variable_progress_media_epoch": _var_epoch("progress_media_us", False),
    "variable_progress_media_uepoch": _var_epoch("progress_media_us", True),
    "variable_end_epoch": _var_epoch("hangup_us", False),
    "variable_end_uepoch": _var_epoch("hangup_us", True),
    "variable_duration": _total(1_000_000), "variable_mduration": _total(1000),
    "variable_uduration": _total(1),
    "variable_billsec": _billing(1_000_000), "variable_billmsec": _billing(1000),
    "variable_billusec": _billing(1),
    "variable_flow_billsec": _total(1_000_000, True), "variable_flow_billmsec": _total(1000, True),
    "variable_flow_billusec": _total(1, True),
    "variable_progresssec": _dur("progress_us", 1_000_000), "variable_progressmsec": _dur("progress_us", 1000),
    "variable_progressusec": _dur("progress_us", 1),
    "variable_answersec": _dur("answered_us", 1_000_000), "variable_answermsec": _dur("answered_us", 1000),
    "variable_answerusec": _dur("answered_us", 1),
    "variable_progress_mediasec": _dur("progress_media_us", 1_000_000),
    "variable_progress_mediamsec": _dur("progress_media_us", 1000),
    "variable_progress_mediausec": _dur("progress_media_us", 1),
    "variable_current_application": _app, "variable_last_app": _app,
}
for _k in RECORD_VARS:
    CHANNEL_FUNCS["variable_" + _k] = _record(_k)
for _k in ("in_raw_bytes", "in_media_bytes", "in_packet_count", "in_media_packet_count",
           "in_skip_packet_count", "in_jitter_packet_count", "in_dtmf_packet_count", "in_cng_packet_count",
           "in_flush_packet_count", "in_largest_jb_size", "in_jitter_min_variance", "in_jitter_max_variance",
           "in_jitter_loss_rate", "in_jitter_burst_rate", "in_mean_interval", "in_flaw_total",
           "in_quality_percentage", "in_mos", "out_raw_bytes", "out_media_bytes", "out_packet_count",
           "out_media_packet_count", "out_skip_packet_count", "out_dtmf_packet_count", "out_cng_packet_count",
           "rtcp_packet_count", "rtcp_octet_count"):
    CHANNEL_FUNCS["variable_rtp_audio_" + _k] = _rtp("rtp_audio_" + _k)

STATIC, FUNC, SUBST, DIALVAR, SKIP = 0, 1, 2, 3, 4


def _compile(template):
    """Per header: how to compute it. Cached on the template."""
    if template._compiled is not None:
        return template._compiled
    tok = template.tokens
    long_map, num_map = {}, {}
    if tok is not None:
        long_map = {tok.channel_name: "channel_name", tok.userhost: "userhost", tok.uuid: "uuid"}
        if tok.hostport:
            long_map[tok.hostport] = "hostport"
        num_map = {tok.dest: "dest", tok.cid: "cid"}
        if tok.port:
            num_map[tok.port] = "port"
    long_alt = "|".join(re.escape(k) for k in sorted(long_map, key=len, reverse=True))
    num_alt = "|".join(re.escape(k) for k in sorted(num_map, key=len, reverse=True))
    long_re = re.compile(long_alt) if long_alt else None
    both_re = re.compile(f"{long_alt}|(?<![0-9A-Za-z])(?:{num_alt})(?![0-9A-Za-z])") if long_alt else None
    lookup = dict(long_map)
    lookup.update(num_map)
    dial = set(tok.dial_vars) if tok else set()
    captured_setvars = set(tok.setvar_names) if tok else set()
    compiled = []
    for key, value in template.headers:
        if key in FUNCS:
            compiled.append((key, FUNC, FUNCS[key], value))
        elif tok is not None and key.startswith("variable_") and key[9:] in dial:
            compiled.append((key, DIALVAR, None, value))
        elif tok is not None and key.startswith("variable_") and key[9:] in captured_setvars:
            compiled.append((key, SKIP, None, value))
        elif tok is not None and key in CHANNEL_FUNCS:
            compiled.append((key, FUNC, CHANNEL_FUNCS[key], value))
        elif tok is not None:
            regex = both_re if _num_key(key) else long_re
            if regex is not None and regex.search(value):
                compiled.append((key, SUBST, regex, value))
            else:
                compiled.append((key, STATIC, None, value))
        else:
            compiled.append((key, STATIC, None, value))
    # where originate {vars} go: where the captured ones were, else after sip_destination_url
    names = [c[0] for c in compiled]
    setvar_at = next((i for i, c in enumerate(compiled) if c[1] == SKIP), None)
    insert_at = None
    for i, c in enumerate(compiled):
        if c[1] == DIALVAR:
            insert_at = i
            break
    if insert_at is None and "variable_sip_destination_url" in names:
        insert_at = names.index("variable_sip_destination_url") + 1
    has_vars = any(n.startswith("variable_") for n in names)
    if insert_at is None and has_vars:
        last = max(i for i, n in enumerate(names) if n.startswith("variable_"))
        insert_at = last + 1
    template._compiled = (compiled, lookup, insert_at, has_vars, setvar_at)
    return template._compiled


class EventContext:
    """Per-event values shared by every header: time, sequence, core uuid."""
    __slots__ = ("core_uuid", "dates", "hostname", "profile_urls", "sequence", "template_value")

    def __init__(self, core_uuid, sequence, now=None, hostname="vm", profile_urls=None):
        self.core_uuid = core_uuid
        self.hostname = hostname
        self.dates = event_dates(time.time() if now is None else now)
        self.sequence = sequence
        self.profile_urls = profile_urls or {}
        self.template_value = None


def render(template, ctx, ch=None, overrides=None, drop=(), append=()):
    """Header list of `template` for channel `ch` (or a non-channel event when ch is None).

    overrides: {header: value} applied to every occurrence; drop: header names left out;
    append: extra (name, value) pairs added at the end.
    """
    compiled, lookup, insert_at, has_vars, setvar_at = _compile(template)
    out = []
    values = None
    if ch is not None:
        values = {"channel_name": ch.channel_name, "userhost": ch.userhost, "uuid": ch.uuid,
                  "hostport": ch.hostport, "dest": ch.dest, "cid": ch.cid, "port": ch.port}
        if ch.direction == "inbound":
            drop = set(drop) | INBOUND_DROP
        set_vars = ch.set_vars if has_vars else {}
        dial_vars = ch.dial_vars if has_vars else {}
        pending = {}
        for name, (value, anchor) in set_vars.items():
            # a template that captured a uuid_setvar variable gives its slot to the channel's own
            pending.setdefault(anchor if setvar_at is None else "\0slot", []).append((name, value))
    overrides = overrides or {}

    def sub(match):
        return values[lookup[match.group(0)]]

    for i, (key, kind, data, value) in enumerate(compiled):
        if ch is not None and i == insert_at:
            for name, val in dial_vars.items():
                if name not in set_vars:
                    out.append(("variable_" + name, val))
        if key in drop:
            continue
        if ch is not None and kind == SKIP and i == setvar_at:
            out.extend(("variable_" + n, v) for n, v in pending.pop("\0slot", ()))
        if ch is not None and kind in (DIALVAR, SKIP):
            continue
        if ch is not None and key.startswith("variable_"):
            var = key[9:]
            if var in dial_vars or var in set_vars:
                continue
            if var in RECORD_VARS and not ch.record_info:
                continue
        if key in overrides:
            out.append((key, overrides[key]))
        elif kind == STATIC:
            out.append((key, value))
        elif kind == FUNC:
            ctx.template_value = value
            out.append((key, data(ch, ctx)))
        elif kind == SUBST:
            out.append((key, data.sub(sub, value) if ch is not None else value))
        if ch is not None and key.startswith("variable_") and key[9:] in pending:
            for name, val in pending.pop(key[9:]):
                out.append(("variable_" + name, val))
    if ch is not None:
        if has_vars and insert_at is not None and insert_at >= len(compiled):
            for name, val in dial_vars.items():
                if name not in set_vars:
                    out.append(("variable_" + name, val))
        for items in pending.values():
            for name, val in items:
                out.append(("variable_" + name, val))
        if ch.direction == "inbound":
            out = [(k, ch.inbound_overrides.get(k, v)) for k, v in out]
        if has_vars:
            last = None
            for k, _ in out:
                if k.startswith("variable_"):
                    last = k[9:]
            ch.last_var = last
    out.extend(append)
    return out


def channel_variables(template, ctx, ch):
    """{name: value} of the channel variables as `template` would carry them (uuid_getvar, dump)."""
    return {k[9:]: v for k, v in render(template, ctx, ch) if k.startswith("variable_")}


__all__ = [
    "ANSWERED_PHASES",
    "API_EVENT",
    "AUTH_REQUEST",
    "BACKGROUND_JOB_NO_ARG",
    "BACKGROUND_JOB_WITH_ARG",
    "BAD_PROFILE_DESTROY",
    "BUSY_FLOW",
    "CHANNEL_DATA",
    "CONTENT_TYPES",
    "DISCONNECT_GOODBYE",
    "DISCONNECT_SHUTDOWN",
    "GATEWAY_ADD",
    "GATEWAY_DELETE",
    "GATEWAY_STATE",
    "GATEWAY_STATE_WITH_STATUS",
    "NOANSWER_FLOW",
    "NOLISTENER_FLOW",
    "SERIALIZERS",
    "SHOW_CALLS_KEYS",
    "SHOW_CHANNELS_KEYS",
    "SHUTDOWN_EVENTS",
    "TEMPLATES",
    "EventContext",
    "Template",
    "channel_variables",
    "event_dates",
    "frame_event",
    "frame_reply",
    "frame_with_body",
    "q850",
    "render",
    "serialize_json",
    "serialize_plain",
    "serialize_xml",
    "stamp",
    "template_headers",
    "url_encode",
]
