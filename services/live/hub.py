"""LiveHub: ONE Redis subscription per web process, fanned out to its WebSocket clients.

Each client (services.live.client.LiveClient) sits behind a bounded queue;
clients resume after a disconnect from the capped stream `cc:stream:<channel>`
(services.live.history). The protocol is documented in docs/websocket.md.
"""
import logging
import time

import gevent
import gevent.event
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from models import db
from services import auth, redis_client
from services.live.client import LiveClient
from services.live.history import LiveMessage, read_history
from services.live.metrics import report_websocket_clients
from services.live.process import now_iso, process_id
from services.publisher import CHANNELS

logger = logging.getLogger(__name__)

MAX_BATCH = 256               # pub/sub messages fanned out in one pass
CLIENT_REPORT_INTERVAL = 2.0  # how often a web process writes its client count
REPLAY_FLOOR_SECONDS = 5.0    # how long late live copies of replayed messages are looked for
RESUBSCRIBE_BACKOFF = (0.25, 5.0)


def can_receive(principal, envelope):
    """Whether the client authenticated as `principal` may see this channel message.

    The one place that decides, delegating to the access-control rules
    (an agent sees only its own calls and their recordings, no `sip`).
    """
    return auth.can_receive(principal, envelope)


def release_database_connection():
    """Hand back the connection the request opened: a WebSocket lives for hours, never querying."""
    if not db.is_closed():
        db.close()


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

    def pong(self, client, ref=None):
        client.send_control("pong", {"ts": now_iso()}, ref)

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
            try:
                report_websocket_clients(self.redis, self.process, len(self.clients))
            except redis.RedisError as exc:
                logger.debug("could not report WebSocket clients: %s", exc)
            gevent.sleep(CLIENT_REPORT_INTERVAL)
