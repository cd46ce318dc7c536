"""Live channels: Redis pub/sub fanned out to WebSocket clients; metrics; performance alerts.

Web processes: one `LiveHub` per process holds ONE Redis subscription (every
channel of services.publisher.CHANNELS) and fans each message out to its own
WebSocket clients (`LiveClient`), each behind a bounded queue. Clients resume
after a disconnect from the capped stream `cc:stream:<channel>`.

Events process: `MetricsPublisher.run` (a services.background_tasks entry)
publishes the `metrics` channel every METRICS_INTERVAL under a Redis leader
lock, so a deployment publishes once whatever the number of events processes.

Everywhere: `PerformanceAlerts` publishes the `performance` channel (slow
requests, memory, job backlog); `install_request_timing(app)` hooks the web app.

The protocol is documented in docs/websocket.md.
"""
import collections
import datetime
import json
import logging
import os
import socket
import struct
import time
import uuid

import gevent
import gevent.event
import peewee
import psutil
import redis
from flask import g, request
from redis.backoff import NoBackoff
from redis.retry import Retry
from wsproto.events import CloseConnection
from wsproto.utilities import LocalProtocolError

from models import Call, db, utcnow
from services import redis_client
from services.errors import Unavailable
from services.health import EVENTS_STATE_KEY
from services.publisher import CHANNELS

logger = logging.getLogger(__name__)

CLIENTS_KEY = redis_client.KEY_PREFIX + "ws:clients"
METRICS_LAST_KEY = redis_client.KEY_PREFIX + "metrics:last"
METRICS_LEADER_KEY = redis_client.KEY_PREFIX + "metrics:leader"

# WebSocket close codes (4000-4999 are the application's own, RFC 6455 7.4.2).
CLOSE_HEARTBEAT_TIMEOUT = 4001
CLOSE_TOO_SLOW = 4008

PING_FRAME = b"\x89\x00"
MAX_BATCH = 256               # pub/sub messages fanned out in one pass
CLIENT_REPORT_INTERVAL = 2.0  # how often a web process writes its client count
CLIENT_REPORT_STALE = 15.0    # a count older than this belongs to a dead process
DROP_GRACE = 5.0              # a dropped client may read its close frame for this long
REPLAY_FLOOR_SECONDS = 5.0    # how long late live copies of replayed messages are looked for
FLUSH_TIMEOUT = 2.0           # how long a closing connection may take to flush
RESUBSCRIBE_BACKOFF = (0.25, 5.0)


def process_id():
    return f"{socket.gethostname()}:{os.getpid()}"


def now_iso():
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def rss_mb(process=None):
    return round((process or psutil.Process()).memory_info().rss / (1024 * 1024), 1)


# ----- access control -------------------------------------------------------
def can_receive(principal, envelope):
    """Whether the client authenticated as `principal` may see this channel message.

    The one place that decides, delegating to the access-control rules
    (an agent sees only its own calls and their recordings, no `sip`).
    """
    from services import auth
    return auth.can_receive(principal, envelope)


# ----- frames and messages --------------------------------------------------
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


def entry_seq(entry_id):
    """Stream entry id b'<seq>-1' -> seq."""
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    return int(entry_id.split("-", 1)[0])


class LiveMessage(collections.namedtuple("LiveMessage", "channel id envelope frame")):
    """A channel message as received once from Redis and written to many clients."""

    @classmethod
    def decode(cls, channel, raw):
        try:
            envelope = json.loads(raw)
            return cls(channel, int(envelope["id"]), envelope, text_frame(bytes(raw)))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed message on %s: %.200r", channel, raw)
            return None


class ChannelHistory(collections.namedtuple("ChannelHistory", "last_id oldest_id entries")):
    """A consistent snapshot of one channel: last id, oldest kept id, the entries asked for."""

    def gap_after(self, since):
        """Why the messages after id `since` cannot be replayed, or None when they can."""
        if since == self.last_id:
            return None
        if since > self.last_id:
            return "unknown_id"  # ids restarted: Redis lost its data
        if not self.entries or entry_seq(self.entries[0][0]) != since + 1:
            return "history_trimmed"
        return None

    def messages(self, channel):
        found = (LiveMessage.decode(channel, fields.get(b"m", b"")) for _, fields in self.entries)
        return [m for m in found if m is not None]


def read_history(redis_conn, since_by_channel):
    """{channel: since or None} -> {channel: ChannelHistory}, read in one MULTI so it is consistent.

    The notifier's script INCRs, XADDs and PUBLISHes atomically, so inside one
    transaction the stream holds exactly the messages up to the sequence read.
    """
    pipe = redis_conn.pipeline(transaction=True)
    for channel, since in since_by_channel.items():
        pipe.get(redis_client.seq_key(channel))
        pipe.xrange(redis_client.stream_key(channel), min="-", max="+", count=1)
        if since is not None:
            pipe.xrange(redis_client.stream_key(channel), min=f"{since + 1}-0", max="+")
    results = iter(pipe.execute())
    histories = {}
    for channel, since in since_by_channel.items():
        last_id = int(next(results) or 0)
        head = next(results)
        entries = next(results) if since is not None else []
        histories[channel] = ChannelHistory(last_id, entry_seq(head[0][0]) if head else None,
                                            entries)
    return histories


# ----- one WebSocket connection --------------------------------------------
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


# ----- the per-process hub ---------------------------------------------------
class LiveHub:
    """ONE Redis subscription per web process, fanned out to this process's WebSocket clients."""

    def __init__(self, redis_conn, config):
        self.redis = redis_conn
        self.redis_url = config.get("REDIS_URL")
        self.queue_size = int(config.get("WEBSOCKET_QUEUE_SIZE", 1000))
        self.heartbeat = int(config.get("WEBSOCKET_HEARTBEAT", 30000)) / 1000.0
        self.max_message = int(config.get("WEBSOCKET_MAX_MESSAGE", 64 * 1024))
        self.can_receive = can_receive
        self.clients = set()
        self.by_channel = {channel: set() for channel in CHANNELS}
        self.connected = False       # the Redis subscription is live
        self.ever_connected = False
        self.degraded_since = None
        self.last_seen = {}          # channel -> id of the last message this hub received
        self.fill_upto = {}          # channel -> ids up to here arrived by gap fill: skip repeats
        self.process = None
        self._greenlets = []
        self._ready = gevent.event.Event()

    # lifecycle
    def start(self, wait=3.0):
        """Start the subscription, heartbeat and client-count greenlets (once, when serving)."""
        if not self._greenlets:
            self.process = process_id()
            self._greenlets = [gevent.spawn(self._subscription_loop),
                               gevent.spawn(self._heartbeat_loop),
                               gevent.spawn(self._report_loop)]
        self._ready.wait(wait)
        return self

    def stop(self):
        gevent.killall(self._greenlets, timeout=2)
        self._greenlets = []

    def connect(self, ws, principal=None):
        self.start()
        client = LiveClient(ws, self.queue_size, principal)
        self.clients.add(client)
        client.send_control("welcome", {
            "channels": list(CHANNELS), "heartbeat_ms": int(self.heartbeat * 1000),
            "max_message_bytes": self.max_message, "queue_size": self.queue_size,
            "degraded": not self.connected, "server": self.process})
        return client

    def disconnect(self, client):
        self.clients.discard(client)
        for channel in client.channels:
            self.by_channel[channel].discard(client)
        client.finish()

    # client requests
    def subscribe(self, client, channels, since, ref=None):
        """Add channels; replay what was missed after `since`, then go live: no gap, no repeat."""
        held = [c for c in channels if c not in client.channels or c in since]
        for channel in channels:
            client.channels.add(channel)
            self.by_channel[channel].add(client)
        if not self.connected:
            self._subscribe_degraded(client, channels, since, ref)
            return
        for channel in held:
            client.catching_up[channel] = []
        try:
            histories = read_history(self.redis, {c: since.get(c) for c in held}) if held else {}
        except redis.RedisError as exc:
            logger.warning("could not read channel history: %s", exc)
            self._release_held(client, held)
            self._subscribe_degraded(client, channels, since, ref)
            return
        client.send_control("subscribed", {
            "channels": channels, "last_id": {c: h.last_id for c, h in histories.items()},
            "degraded": False}, ref)
        # From here to the end nothing yields, so the live messages held during
        # the read join the replay exactly where it ends.
        for channel in held:
            self._catch_up(client, channel, histories[channel], since.get(channel))

    def _catch_up(self, client, channel, history, since):
        if since is not None:
            reason = history.gap_after(since)
            if reason:
                client.send_control("resync_required", {
                    "channel": channel, "since": since, "reason": reason,
                    "oldest_id": history.oldest_id, "last_id": history.last_id})
            else:
                replay = [m.frame for m in history.messages(channel)
                          if self.can_receive(client.principal, m.envelope)]
                if replay:
                    client.write_control(b"".join(replay))
        # The snapshot holds every id up to last_id; copies of those may still be
        # on their way to this hub (another socket, another greenlet): skip them.
        client.floors[channel] = (history.last_id, time.monotonic() + REPLAY_FLOOR_SECONDS)
        client.deliver(client.catching_up.pop(channel, []), self.can_receive)

    def _release_held(self, client, channels):
        for channel in channels:
            client.deliver(client.catching_up.pop(channel, []), self.can_receive)

    def _subscribe_degraded(self, client, channels, since, ref):
        client.send_control("subscribed", {"channels": channels, "last_id": {}, "degraded": True},
                            ref)
        for channel, since_id in since.items():
            client.send_control("resync_required", {
                "channel": channel, "since": since_id, "reason": "degraded",
                "oldest_id": None, "last_id": None})

    def unsubscribe(self, client, channels, ref=None):
        for channel in channels:
            client.channels.discard(channel)
            client.catching_up.pop(channel, None)
            client.floors.pop(channel, None)
            self.by_channel[channel].discard(client)
        client.send_control("unsubscribed", {"channels": channels,
                                             "subscribed": sorted(client.channels)}, ref)

    # the subscription
    def _subscriber(self):
        """A client of its own for the subscription, with no silent reconnects.

        redis-py would otherwise reconnect and resubscribe inside get_message,
        and the hub would never learn that it missed messages meanwhile.
        """
        return redis_client.make_redis(self.redis_url, retry=Retry(NoBackoff(), 0),
                                       health_check_interval=10, socket_keepalive=True)

    def _subscription_loop(self):
        backoff = RESUBSCRIBE_BACKOFF[0]
        subscriber = self._subscriber()
        while True:
            pubsub = subscriber.pubsub()
            try:
                pubsub.subscribe(*[redis_client.pubsub_channel(c) for c in CHANNELS])
                self._await_confirmations(pubsub)
                self._on_subscribed()
                backoff = RESUBSCRIBE_BACKOFF[0]
                self._listen(pubsub)
            except (redis.RedisError, OSError) as exc:
                self._on_lost(exc)
            except Exception as exc:  # never let the feed die silently
                logger.exception("live hub failed; resubscribing")
                self._on_lost(exc)
            finally:
                self._close_quietly(pubsub)
            gevent.sleep(backoff)
            backoff = min(backoff * 2, RESUBSCRIBE_BACKOFF[1])

    @staticmethod
    def _close_quietly(pubsub):
        try:
            pubsub.reset()
        except (redis.RedisError, OSError) as exc:  # a dead connection may fail to close
            logger.debug("closing the subscription: %s", exc)

    @staticmethod
    def _await_confirmations(pubsub):
        """Messages published after this returns reach the hub: Redis has confirmed each channel."""
        confirmed = 0
        deadline = time.monotonic() + 5
        while confirmed < len(CHANNELS):
            if time.monotonic() > deadline:
                raise redis.TimeoutError("no subscription confirmation from Redis")
            message = pubsub.get_message(timeout=1.0)
            if message and message["type"] == "subscribe":
                confirmed += 1

    def _listen(self, pubsub):
        prefix_length = len(redis_client.pubsub_channel(""))
        while True:
            first = pubsub.get_message(timeout=1.0)
            if first is None:
                continue
            batch = [first]
            while len(batch) < MAX_BATCH:
                more = pubsub.get_message(timeout=0)
                if more is None:
                    break
                batch.append(more)
            messages = []
            for raw in batch:
                if raw["type"] != "message":
                    continue
                message = LiveMessage.decode(raw["channel"][prefix_length:].decode(), raw["data"])
                if message is not None and self._is_new(message):
                    messages.append(message)
            self._fan_out(messages)
            gevent.sleep(0)  # writers, heartbeats and HTTP requests run between batches

    def _is_new(self, message):
        upto = self.fill_upto.get(message.channel)
        if upto is not None:
            if message.id <= upto:
                return False  # already delivered by the gap fill
            del self.fill_upto[message.channel]
        self.last_seen[message.channel] = message.id
        return True

    def _fan_out(self, messages):
        if not messages:
            return
        channels = {m.channel for m in messages}
        targets = set().union(*(self.by_channel[c] for c in channels))
        for client in targets:
            client.deliver(messages, self.can_receive)

    def _on_subscribed(self):
        histories = read_history(self.redis, {c: self.last_seen.get(c) for c in CHANNELS})
        if not self.ever_connected:
            self.last_seen = {c: h.last_id for c, h in histories.items()}
            self.ever_connected = True
        else:
            self._recover(histories)
        self.connected = True
        self.degraded_since = None
        self._ready.set()
        logger.info("live hub subscribed to %d channels", len(CHANNELS))

    def _recover(self, histories):
        """After a lost subscription: tell clients, then deliver what was published meanwhile."""
        lost, missed = [], []
        for channel, history in histories.items():
            since = self.last_seen.get(channel, history.last_id)
            if history.gap_after(since):
                lost.append(channel)
            else:
                missed.extend(history.messages(channel))
            self.last_seen[channel] = history.last_id
            self.fill_upto[channel] = history.last_id
        last_ids = {c: h.last_id for c, h in histories.items()}
        for client in list(self.clients):
            client.send_control("recovered", {
                "last_id": {c: last_ids[c] for c in sorted(client.channels)},
                "resync": [c for c in lost if c in client.channels]})
        self._fan_out(missed)

    def _on_lost(self, exc):
        self._ready.set()  # start() must not wait for a Redis that is down
        if not self.connected:
            logger.debug("live hub still cannot subscribe: %s", exc)
            return
        self.connected = False
        self.degraded_since = now_iso()
        logger.warning("live feed degraded: Redis subscription lost: %s", exc)
        for client in list(self.clients):
            client.send_control("degraded", {"reason": "redis_unavailable",
                                             "since": self.degraded_since})

    # housekeeping
    def _heartbeat_loop(self):
        while True:
            gevent.sleep(self.heartbeat)
            for client in list(self.clients):
                client.check_heartbeat()

    def _report_loop(self):
        """Keep this process's client count in Redis, where the metrics publisher adds them up."""
        while True:
            report = json.dumps({"clients": len(self.clients), "at": time.time()})
            try:
                self.redis.hset(CLIENTS_KEY, self.process, report)
            except redis.RedisError as exc:
                logger.debug("could not report WebSocket clients: %s", exc)
            gevent.sleep(CLIENT_REPORT_INTERVAL)


def count_websocket_clients(redis_conn, now=None):
    """(clients, web processes) across every web process that reported recently."""
    now = now or time.time()
    clients = processes = 0
    stale = []
    for field, raw in redis_conn.hgetall(CLIENTS_KEY).items():
        try:
            report = json.loads(raw)
        except ValueError:
            report = {"at": 0}
        if report.get("at", 0) < now - CLIENT_REPORT_STALE:
            stale.append(field)
            continue
        clients += int(report.get("clients", 0))
        processes += 1
    if stale:
        redis_conn.hdel(CLIENTS_KEY, *stale)
    return clients, processes


# ----- performance alerts ----------------------------------------------------
class PerformanceAlerts:
    """The `performance` channel: slow requests, memory, job backlog; throttled, never a flood."""

    SLOW_REQUEST_EVERY = 10.0   # seconds between alerts for one route in one process
    MEMORY_EVERY = 300.0
    BACKLOG_EVERY = 60.0
    MEMORY_CHECK_EVERY = 30.0   # how often a web process looks at its own memory

    def __init__(self, notifier, config, role):
        self.notifier = notifier
        self.role = role
        self.slow_seconds = float(config.get("SLOW_REQUEST_SECONDS", 1.0))
        self.memory_mb = float(config.get("MEMORY_ALERT_MB", 1024))
        self.backlog = int(config.get("QUEUE_BACKLOG_ALERT", 1000))
        self._last = {}        # key -> monotonic time of the last alert
        self._suppressed = collections.Counter()
        self._memory_checked = 0.0
        self._process = None

    def _allow(self, key, every):
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < every:
            self._suppressed[key] += 1
            return None
        self._last[key] = now
        return self._suppressed.pop(key, 0)

    def _origin(self):
        return {"role": self.role, "process": process_id()}

    def slow_request(self, method, route, status, seconds):
        suppressed = self._allow(("slow", method, route), self.SLOW_REQUEST_EVERY)
        if suppressed is None:
            return None
        return self.notifier.publish("performance", "performance.slow_request", {
            "method": method, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "threshold_ms": round(self.slow_seconds * 1000, 1),
            "suppressed": suppressed, **self._origin()})

    def memory(self, rss):
        if rss <= self.memory_mb:
            return None
        suppressed = self._allow(("memory",), self.MEMORY_EVERY)
        if suppressed is None:
            return None
        return self.notifier.publish("performance", "performance.memory_high", {
            "rss_mb": rss, "threshold_mb": self.memory_mb, **self._origin()})

    def memory_check_due(self):
        """True at most once every MEMORY_CHECK_EVERY seconds (the first call included)."""
        now = time.monotonic()
        if self._memory_checked and now - self._memory_checked < self.MEMORY_CHECK_EVERY:
            return False
        self._memory_checked = now
        return True

    def check_own_memory(self):
        """Alert if this process is over the memory threshold."""
        self._process = self._process or psutil.Process()
        return self.memory(rss_mb(self._process))

    def queue_backlog(self, depths):
        for queue_name, depth in depths.items():
            if depth is None or depth <= self.backlog:
                continue
            if self._allow(("backlog", queue_name), self.BACKLOG_EVERY) is None:
                continue
            self.notifier.publish("performance", "performance.queue_backlog", {
                "queue": queue_name, "depth": depth, "threshold": self.backlog,
                **self._origin()})


def install_request_timing(app):
    """Time every HTTP request of `app`; publish slow ones (and high memory) on `performance`."""
    alerts = PerformanceAlerts(app.extensions["services"].publisher, app.config, role="web")

    @app.before_request
    def _start_request_timer():
        g.live_request_started = time.perf_counter()

    @app.after_request
    def _report_slow_request(response):
        started = g.pop("live_request_started", None)
        # A WebSocket "request" lasts as long as the connection: not a slow request.
        if started is None or request.headers.get("Upgrade", "").lower() == "websocket":
            return response
        elapsed = time.perf_counter() - started
        if elapsed >= alerts.slow_seconds:
            # The route's pattern, never the raw URL: query strings may carry secrets.
            route = request.url_rule.rule if request.url_rule else "(no route)"
            gevent.spawn(alerts.slow_request, request.method, route, response.status_code,
                         elapsed)
        if alerts.memory_check_due():
            gevent.spawn(alerts.check_own_memory)
        return response

    return alerts


# ----- the metrics channel ---------------------------------------------------
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaderLock:
    """A Redis lock (SET NX PX) one process holds and renews; another takes over when it lapses."""

    def __init__(self, redis_conn, key, ttl):
        self.redis = redis_conn
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.token = f"{process_id()}:{uuid.uuid4().hex}"
        self._renew = redis_conn.register_script(_RENEW_LUA)
        self._release = redis_conn.register_script(_RELEASE_LUA)
        self.held = False

    def hold(self):
        """Renew the lock if this process holds it, else try to take it; True if held."""
        try:
            if self.held and self._renew(keys=[self.key], args=[self.token, self.ttl_ms]):
                return True
            self.held = bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except redis.RedisError as exc:
            logger.debug("leader lock %s unavailable: %s", self.key, exc)
            self.held = False
        return self.held

    def release(self):
        if not self.held:
            return
        try:
            self._release(keys=[self.key], args=[self.token])
        except redis.RedisError:
            pass
        self.held = False


class MetricsPublisher:
    """Every METRICS_INTERVAL: gather the figures, publish them on `metrics`, from one process."""

    WINDOW = datetime.timedelta(minutes=5)

    def __init__(self, services, role="events"):
        self.config = services.config
        self.redis = services.redis
        self.notifier = services.publisher
        self.interval = float(self.config.get("METRICS_INTERVAL", 10.0))
        self.lock = LeaderLock(self.redis, METRICS_LEADER_KEY, ttl=max(3 * self.interval, 1.0))
        self.alerts = PerformanceAlerts(self.notifier, self.config, role=role)
        self.process = None

    def run(self):
        """The background task: loop until killed, releasing the lock on the way out."""
        self.process = psutil.Process()
        try:
            while True:
                started = time.monotonic()
                try:
                    self.tick()
                except Exception:  # one bad tick must not end the channel
                    logger.exception("metrics tick failed")
                gevent.sleep(max(0.05, self.interval - (time.monotonic() - started)))
        finally:
            self.lock.release()

    def tick(self):
        """One round; returns the published figures, or None when another process leads."""
        rss = rss_mb(self.process)
        self.alerts.memory(rss)
        if not self.lock.hold():
            return None
        try:
            figures = self.collect(rss)
        except redis.RedisError as exc:
            logger.debug("metrics skipped, Redis unavailable: %s", exc)
            return None
        seq = self.notifier.publish("metrics", "metrics.snapshot", figures)
        if seq is not None:
            self._store_last(figures)
            self.alerts.queue_backlog(figures["queues"])
        return figures

    def collect(self, rss):
        clients, web_processes = count_websocket_clients(self.redis)
        return {
            "generated_at": now_iso(),
            "interval_seconds": self.interval,
            **self._call_figures(),
            "websocket_clients": clients,
            "web_processes": web_processes,
            "freeswitch": self._freeswitch_state(),
            "queues": self._queue_depths(),
            "publisher": {"process": process_id(), "rss_mb": rss},
        }

    def _call_figures(self):
        since = utcnow() - self.WINDOW
        try:
            with db.connection_context():
                live = Call.status.in_(Call.LIVE_STATUSES)
                active = Call.select().where(live).count()
                started = Call.select().where(Call.created_at >= since).count()
                ended = Call.select().where(Call.ended_at >= since).count()
                qualities = [q for (q,) in Call.select(Call.quality)
                             .where(live & Call.quality.is_null(False)).tuples()]
        except peewee.PeeweeException as exc:
            logger.warning("metrics: database unavailable: %s", exc)
            return {"active_calls": None, "calls_started_5m": None, "calls_ended_5m": None,
                    "average_mos": None, "mos_samples": 0}
        mos = [m for m in map(live_mos, qualities) if m is not None]
        return {"active_calls": active, "calls_started_5m": started, "calls_ended_5m": ended,
                "average_mos": round(sum(mos) / len(mos), 2) if mos else None,
                "mos_samples": len(mos)}

    def _freeswitch_state(self):
        raw = self.redis.get(EVENTS_STATE_KEY)
        if not raw:
            return {"state": "unknown", "since": None}
        state = json.loads(raw)
        return {"state": state.get("state", "unknown"), "since": state.get("since")}

    def _queue_depths(self):
        from services.jobs import QUEUES, queue
        return {name: queue(name, self.redis).count for name in QUEUES}

    def _store_last(self, figures):
        ttl = int(max(30, 3 * self.interval))
        self.redis.set(METRICS_LAST_KEY, json.dumps(figures, separators=(",", ":")), ex=ttl)


def live_mos(quality):
    """A live call's MOS from Call.quality: its summary's mos_avg, else the last live sample's."""
    if not isinstance(quality, dict):
        return None
    mos = quality.get("mos_avg")
    if mos is None:
        last = (quality.get("live") or {}).get("last") or {}
        mos = last.get("mos") if isinstance(last, dict) else None
    return mos if isinstance(mos, (int, float)) and not isinstance(mos, bool) else None


class RealtimeMetrics:
    """Read side of the metrics channel for the REST API: the last figures published."""

    def __init__(self, redis_conn):
        self.redis = redis_conn

    def latest(self):
        try:
            raw = self.redis.get(METRICS_LAST_KEY)
        except redis.RedisError:
            raise Unavailable("metrics are unavailable: Redis is down",
                              headers={"Retry-After": "5"}) from None
        if not raw:
            raise Unavailable("no metrics published recently; is the events process running?",
                              headers={"Retry-After": "10"})
        return json.loads(raw)


# ----- wiring ----------------------------------------------------------------
def register(services):
    """Give the web side its hub and metrics reader; give the events process the metrics task."""
    services.live_hub = LiveHub(services.redis, services.config)
    services.live_metrics = RealtimeMetrics(services.redis)
    services.background_tasks.append(MetricsPublisher(services).run)
