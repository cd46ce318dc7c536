"""Resume from channel history: what is replayed after `since`, and when a gap forces resync."""
import json

import pytest

from services.live.history import LiveMessage, read_history
from services.publisher import Publisher
from services.redis_client import stream_key


@pytest.fixture
def publisher(redis_client):
    return Publisher(redis_client, history=1000)


def publish(publisher, channel, count):
    return [publisher.publish(channel, f"{channel}.test", {"n": n}) for n in range(count)]


def test_resume_replays_exactly_the_messages_after_since(redis_client, publisher):
    publish(publisher, "calls", 5)

    history = read_history(redis_client, {"calls": 2})["calls"]

    assert history.last_id == 5 and history.oldest_id == 1
    assert history.gap_after(2) is None
    replayed = history.messages("calls")
    assert [m.id for m in replayed] == [3, 4, 5]
    assert [m.envelope["data"]["n"] for m in replayed] == [2, 3, 4]


def test_a_client_that_saw_everything_gets_nothing_and_no_resync(redis_client, publisher):
    publish(publisher, "calls", 3)

    history = read_history(redis_client, {"calls": 3})["calls"]

    assert history.gap_after(3) is None
    assert history.messages("calls") == []


def test_ids_beyond_the_last_mean_redis_lost_its_data(redis_client, publisher):
    publish(publisher, "calls", 4)
    redis_client.flushall()  # a restart without persistence: ids start again from 1
    publish(publisher, "calls", 1)

    history = read_history(redis_client, {"calls": 4})["calls"]

    assert history.last_id == 1
    assert history.gap_after(4) == "unknown_id"


def test_a_trimmed_history_cannot_be_replayed(redis_client, publisher):
    publish(publisher, "calls", 6)
    redis_client.xtrim(stream_key("calls"), maxlen=2, approximate=False)

    history = read_history(redis_client, {"calls": 1})["calls"]

    assert history.oldest_id == 5
    assert history.gap_after(1) == "history_trimmed"
    # From the oldest kept id on, resume works again.
    assert read_history(redis_client, {"calls": 4})["calls"].gap_after(4) is None


def test_channels_are_read_together_and_only_where_asked(redis_client, publisher):
    publish(publisher, "calls", 2)
    publish(publisher, "sip", 3)

    histories = read_history(redis_client, {"calls": None, "sip": 1, "metrics": None})

    assert histories["calls"].last_id == 2 and histories["calls"].entries == []
    assert [m.id for m in histories["sip"].messages("sip")] == [2, 3]
    assert histories["metrics"].last_id == 0 and histories["metrics"].oldest_id is None


def test_a_malformed_stream_entry_is_skipped_not_fatal(redis_client, publisher):
    publish(publisher, "calls", 1)
    redis_client.xadd(stream_key("calls"), {"m": b"not json"}, id="2-1")
    redis_client.incr("cc:seq:calls")
    publish(publisher, "calls", 1)

    history = read_history(redis_client, {"calls": 0})["calls"]

    assert [m.id for m in history.messages("calls")] == [1, 3]


def test_a_message_carries_its_envelope_as_one_ready_frame():
    raw = json.dumps({"id": 7, "channel": "calls", "type": "call.answered", "data": {}}).encode()

    message = LiveMessage.decode("calls", raw)

    assert message.id == 7 and message.envelope["type"] == "call.answered"
    assert message.frame.endswith(raw) and message.frame[0] == 0x81
    assert LiveMessage.decode("calls", b'{"no": "id"}') is None
