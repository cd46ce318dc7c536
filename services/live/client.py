"""LiveClient: one WebSocket connection, its bounded outgoing queue, and the frames it is sent."""
import collections
import json
import logging
import os
import socket
import struct
import time

import gevent
import gevent.event
from wsproto.events import CloseConnection
from wsproto.utilities import LocalProtocolError

logger = logging.getLogger(__name__)

# WebSocket close codes (4000-4999 are the application's own, RFC 6455 7.4.2).
CLOSE_HEARTBEAT_TIMEOUT = 4001
CLOSE_TOO_SLOW = 4008

PING_FRAME = b"\x89\x00"
DROP_GRACE = 5.0              # a dropped client may read its close frame for this long
FLUSH_TIMEOUT = 2.0           # how long a closing connection may take to flush


def text_frame(payload):
    """One unmasked, unfragmented, uncompressed WebSocket text frame (server to client).

    Built once per message and written to every client as is: frames from a
    server are never masked, and RSV1 unset means "not compressed", which is
    valid whether or not the client negotiated permessage-deflate (RFC 7692).
    """
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload


def control_frame(event_type, data=None, ref=None):
    """A protocol message (welcome, subscribed, error, ...): no channel, no id."""
    message = {"type": event_type, "data": data if data is not None else {}}
    if ref is not None:
        message["ref"] = ref
    return text_frame(json.dumps(message, separators=(",", ":"), default=str).encode())



class _ReaderSocket:
    """The socket as simple-websocket's reader sees it.

    Its writes (pong replies, close replies, "message too big") join the
    client's ordered queue so frames never interleave; its close() only says
    that reading has ended: the connection's owner closes the real socket.
    """

    def __init__(self, client):
        self._client = client
        self._sock = client.sock

    def recv(self, size):
        return self._sock.recv(size)

    def send(self, data):
        self._client.write_control(data)
        return len(data)

    def fileno(self):
        return self._sock.fileno()

    def close(self):
        self._client.reader_done.set()


class LiveClient:
    """One WebSocket connection: its principal, its channels and its bounded outgoing queue.

    A frame is written straight to the (non-blocking) socket when the socket
    has room, so fanning a message out to a thousand clients costs a thousand
    writes and no greenlet switch. What the socket cannot take waits in
    `pending` for a writer greenlet; a client with more than `queue_size` live
    messages waiting is too slow and is disconnected with a reason, so that it
    neither holds memory nor delays anyone.
    """

    def __init__(self, ws, queue_size, principal=None):
        self.ws = ws
        self.sock = ws.sock
        self.fd = self.sock.fileno()
        # A blocking fd (no gevent) would stall the whole process on a write.
        self._direct = not os.get_blocking(self.fd)
        self.queue_size = queue_size
        self.principal = principal
        self.channels = set()
        self.catching_up = {}  # channel -> live messages held while its history is replayed
        self.floors = {}  # channel -> (id, deadline): live copies of replayed ids to skip
        self.pending = collections.deque()  # (bytes, live message count)
        self.backlog = 0  # live messages queued or in flight
        self.writer = None
        self.closing = False
        self.close_sent = False  # after our close frame nothing else may be written
        self.broken = False
        self.close_reason = None
        self.reader_done = gevent.event.Event()
        ws.sock = _ReaderSocket(self)

    # writing, in order
    def send_control(self, event_type, data=None, ref=None):
        self.write_control(control_frame(event_type, data, ref))

    def write_control(self, frame):
        if not self.broken and not self.close_sent:
            self._send(frame, 0)

    def deliver(self, messages, allow):
        """Queue the messages of this client's channels that `allow` lets it see."""
        if self.closing:
            return
        frames = []
        for message in messages:
            if message.channel not in self.channels or not allow(self.principal, message.envelope):
                continue
            if message.channel in self.floors and self._below_floor(message):
                continue
            held = self.catching_up.get(message.channel)
            if held is not None:
                held.append(message)
            else:
                frames.append(message.frame)
        if not frames:
            return
        if self.backlog + len(frames) > self.queue_size:
            self.drop(CLOSE_TOO_SLOW, f"too slow: more than {self.queue_size} messages waiting")
            return
        self._send(frames[0] if len(frames) == 1 else b"".join(frames), len(frames))

    def _below_floor(self, message):
        """True for a live copy of a message already replayed; the floor goes once passed."""
        floor, deadline = self.floors[message.channel]
        if message.id <= floor and time.monotonic() < deadline:
            return True
        del self.floors[message.channel]
        return False

    def _send(self, data, count):
        if self.writer is None and self._direct:
            try:
                sent = os.write(self.fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._break()
                return
            if sent == len(data):
                return
            self.backlog += count
            self.writer = gevent.spawn(self._drain, data[sent:], count)
            return
        self.pending.append((data, count))
        self.backlog += count
        if self.writer is None:
            self.writer = gevent.spawn(self._drain, b"", 0)

    def _drain(self, first, first_count):
        try:
            if first:
                self.sock.sendall(first)
                self.backlog -= first_count
            while self.pending:
                items = list(self.pending)
                self.pending.clear()
                self.sock.sendall(b"".join(data for data, _ in items))
                self.backlog -= sum(count for _, count in items)
        except OSError:
            self._break()
        finally:
            self.writer = None

    # closing
    def drop(self, code, reason):
        """Disconnect with a close frame saying why; the backlog it never read is discarded."""
        if self.closing:
            return
        self.closing = True
        self.close_reason = reason
        logger.info("dropping a WebSocket client: %s", reason)
        self.backlog -= sum(count for _, count in self.pending)
        self.pending.clear()
        try:
            frame = self.ws.ws.send(CloseConnection(code=code, reason=reason))
        except LocalProtocolError:  # already closing
            frame = None
        if frame:
            self._send(frame, 0)
            self.close_sent = True
        gevent.spawn(self._abort_unless_closed, DROP_GRACE)

    def _abort_unless_closed(self, grace):
        if not self.reader_done.wait(grace):
            self._shutdown()

    def _break(self):
        self.broken = self.closing = True
        self.pending.clear()
        self._shutdown()

    def _shutdown(self, how=socket.SHUT_RDWR):
        try:
            self.sock.shutdown(how)
        except OSError:
            pass

    def finish(self):
        """Flush what is queued (a close reply), then close without losing it to a reset."""
        self.closing = True
        writer = self.writer
        if writer is not None:
            writer.join(timeout=FLUSH_TIMEOUT)
            if self.writer is not None:
                self._shutdown()
        if not self.reader_done.is_set():
            self._shutdown()
            self.reader_done.wait(FLUSH_TIMEOUT)
            return
        # Lingering close: unread input (say the rest of an oversized message)
        # would make close() send a reset that can destroy our close frame.
        self._shutdown(socket.SHUT_WR)
        with gevent.Timeout(1.0, False):
            try:
                while self.sock.recv(65536):
                    pass
            except OSError:
                pass

    def check_heartbeat(self):
        """Drop the client if it left the last ping unanswered; otherwise ping again."""
        if self.closing:
            return
        if not self.ws.pong_received:
            self.drop(CLOSE_HEARTBEAT_TIMEOUT, "heartbeat timeout: no pong to the last ping")
            return
        self.ws.pong_received = False
        self._send(PING_FRAME, 0)
