"""Channel history for resume: the capped stream behind each channel, read consistently."""
import collections
import json
import logging

from services import redis_client
from services.live.client import text_frame

logger = logging.getLogger(__name__)


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
