"""Loader for the byte-exact FreeSWITCH ESL transcripts (*.raw) and helpers to split ESL byte streams.

A .raw file is a sequence of records: b'<<< N\\n' or b'>>> N\\n', then exactly N bytes (one ESL
message), then b'\\n'; b'<<< EOF\\n' marks FreeSWITCH closing the socket. '<<<' is what
FreeSWITCH sent, '>>>' what the client sent.
"""
import json
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "esl"

SERVER = "<<<"  # FreeSWITCH -> client
CLIENT = ">>>"  # client -> FreeSWITCH


class Record(NamedTuple):
    direction: str          # SERVER or CLIENT
    data: bytes | None   # one ESL message; None for the EOF marker


def fixture_path(name):
    """Path of a fixture; 'name', 'name.raw' and absolute paths are accepted."""
    path = Path(name)
    if not path.is_absolute():
        path = FIXTURE_DIR / name
    if not path.suffix:
        path = path.with_suffix(".raw")
    return path


def parse_raw(data):
    """Parse the bytes of a .raw transcript into a list of Record."""
    records, pos = [], 0
    while pos < len(data):
        eol = data.index(b"\n", pos)
        marker = data[pos:eol].decode("ascii")
        pos = eol + 1
        if marker == "<<< EOF":
            records.append(Record(SERVER, None))
            continue
        direction, size = marker.split(" ")
        if direction not in (SERVER, CLIENT):
            raise ValueError(f"bad record marker {marker!r}")
        size = int(size)
        records.append(Record(direction, data[pos:pos + size]))
        pos += size
        if data[pos:pos + 1] != b"\n":
            raise ValueError(f"record at {pos - size} is not followed by a newline")
        pos += 1
    return records


def load_raw(name):
    """Records of a fixture transcript, e.g. load_raw('01_auth_ok_and_exit')."""
    return parse_raw(fixture_path(name).read_bytes())


def list_fixtures(pattern="*.raw"):
    return sorted(p.name for p in FIXTURE_DIR.glob(pattern))


def server_messages(records):
    """The messages FreeSWITCH sent (EOF markers dropped)."""
    return [r.data for r in records if r.direction == SERVER and r.data is not None]


def client_messages(records):
    return [r.data for r in records if r.direction == CLIENT]


def ends_with_eof(records):
    return bool(records) and records[-1].direction == SERVER and records[-1].data is None


# ---------------------------------------------------------------- ESL messages
class Message(NamedTuple):
    """One ESL message: its header block as (name, value) pairs in wire order and its body."""
    raw: bytes
    headers: tuple
    body: bytes

    def get(self, name, default=None):
        for key, value in self.headers:
            if key == name:
                return value
        return default

    @property
    def content_type(self):
        return self.get("Content-Type")

    @property
    def header_names(self):
        return [k for k, _ in self.headers]


def parse_header_block(block):
    """b'A: 1\\nB: 2' -> (('A', '1'), ('B', '2')); values are not URL-decoded."""
    pairs = []
    for line in block.decode("utf-8").split("\n"):
        if not line:
            continue
        name, _, value = line.partition(": ")
        pairs.append((name, value))
    return tuple(pairs)


def split_messages(buf):
    """Split a FreeSWITCH->client byte stream into complete messages.

    Returns (messages, rest) where rest is an incomplete trailing part (b'' when none).
    A message is a header block ending in a blank line, followed by Content-Length bytes.
    """
    messages, pos = [], 0
    while True:
        end = buf.find(b"\n\n", pos)
        if end < 0:
            break
        headers = parse_header_block(buf[pos:end])
        length = 0
        for key, value in headers:
            if key == "Content-Length":
                length = int(value)
                break
        body_start = end + 2
        if len(buf) < body_start + length:
            break
        body = buf[body_start:body_start + length]
        messages.append(Message(buf[pos:body_start + length], headers, body))
        pos = body_start + length
    return messages, buf[pos:]


def parse_message(raw):
    messages, rest = split_messages(raw)
    if len(messages) != 1 or rest:
        raise ValueError(f"not exactly one ESL message: {raw[:80]!r}")
    return messages[0]


def split_commands(buf):
    """Split a client->FreeSWITCH byte stream into command blocks (text up to a blank line).

    Returns (commands, rest); each command is the list of its lines (first line is the command).
    CR characters are ignored, as FreeSWITCH does.
    """
    commands, pos = [], 0
    buf = buf.replace(b"\r", b"")
    while True:
        end = buf.find(b"\n\n", pos)
        if end < 0:
            break
        block = buf[pos:end].decode("utf-8", "replace")
        commands.append(block.split("\n"))
        pos = end + 2
    return commands, buf[pos:]


# ---------------------------------------------------------------- events
class Event(NamedTuple):
    """A decoded event: header (name, value) pairs in wire order (duplicates kept) and its body."""
    content_type: str
    headers: tuple
    body: str | None

    def get(self, name, default=None):
        for key, value in self.headers:
            if key == name:
                return value
        return default

    @property
    def name(self):
        return self.get("Event-Name")

    @property
    def subclass(self):
        return self.get("Event-Subclass")

    @property
    def header_names(self):
        return [k for k, _ in self.headers]


def decode_event(message):
    """Decode a text/event-plain or text/event-json message.

    Plain: 'Name: url-encoded value' lines; an event body follows its own Content-Length
    header (which is kept in headers, as on the wire). JSON: keys in order (duplicate keys kept),
    the body is the '_body' key (kept in headers too, so names compare with the wire order).
    """
    ctype = message.content_type
    text = message.body.decode("utf-8")
    if ctype == "text/event-plain":
        head, _, rest = text.partition("\n\n")
        pairs = []
        for line in head.split("\n"):
            if line:
                name, _, value = line.partition(": ")
                pairs.append((name, unquote(value)))
        body = None
        for key, value in pairs:
            if key == "Content-Length":
                body = rest[:int(value)]
        return Event(ctype, tuple(pairs), body)
    if ctype == "text/event-json":
        pairs = json.loads(text, object_pairs_hook=lambda p: p)
        body = None
        for key, value in pairs:
            if key == "_body":
                body = value
        return Event(ctype, tuple(pairs), body)
    raise ValueError(f"not an event: {ctype}")


def transcript_events(name):
    """All events FreeSWITCH sent in a transcript, decoded, in order."""
    out = []
    for raw in server_messages(load_raw(name)):
        message = parse_message(raw)
        if message.content_type in ("text/event-plain", "text/event-json"):
            out.append(decode_event(message))
    return out


# ---------------------------------------------------------------- timed captures
class Chunk(NamedTuple):
    """One read of a socket in an esl_capture.py transcript: when, which way, the bytes."""
    seconds: float          # since the capture started
    direction: str          # SERVER or CLIENT
    data: bytes


def parse_capture(data):
    """Chunks of a transcript written by ../shared/freeswitch/tools/esl_capture.py.

    Each chunk is b'## <seconds> <conn#> S>C|C>S <N>\n', N bytes, then b'\n\n'.
    """
    chunks, pos = [], 0
    while pos < len(data):
        if data[pos:pos + 1] == b"\n":
            pos += 1
            continue
        eol = data.index(b"\n", pos)
        marker = data[pos:eol].decode("ascii").split()
        if len(marker) != 5 or marker[0] != "##":
            raise ValueError(f"bad chunk marker {data[pos:eol]!r}")
        size = int(marker[4])
        direction = SERVER if marker[3] == "S>C" else CLIENT
        chunks.append(Chunk(float(marker[1]), direction, data[eol + 1:eol + 1 + size]))
        pos = eol + 1 + size
    return chunks


def capture_events(name):
    """[(seconds, Event)] of every event FreeSWITCH sent in a timed capture (*.capture)."""
    path = fixture_path(name if "." in Path(name).name else name + ".capture")
    out, pending, started = [], b"", None
    for chunk in parse_capture(path.read_bytes()):
        if chunk.direction != SERVER:
            continue
        if not pending:
            started = chunk.seconds
        messages, pending = split_messages(pending + chunk.data)
        for message in messages:
            if message.content_type in ("text/event-plain", "text/event-json"):
                out.append((started, decode_event(message)))
    return out


def available():
    """True when the fixture directory is present (a clone without fixtures cannot run the sim)."""
    return FIXTURE_DIR.is_dir() and any(FIXTURE_DIR.glob("*.raw"))


__all__ = [
    "CLIENT",
    "Chunk",
    "FIXTURE_DIR",
    "SERVER",
    "Event",
    "Message",
    "Record",
    "available",
    "capture_events",
    "client_messages",
    "decode_event",
    "ends_with_eof",
    "fixture_path",
    "list_fixtures",
    "load_raw",
    "parse_header_block",
    "parse_capture",
    "parse_message",
    "parse_raw",
    "server_messages",
    "split_commands",
    "split_messages",
    "transcript_events",
]
