"""The `sip` channel: news of a gateway goes out after its commit, never with its password."""
import json

import pytest

from models.sip import SipGateway
from services.outbox import Outbox
from services.publisher import Publisher
from services.redis_client import stream_key
from services.sip.notifier import SipNotifier


@pytest.fixture
def notifier(bound_db, redis_client):
    SipGateway.delete().execute()
    redis_client.delete(stream_key("sip"))
    return SipNotifier(Publisher(redis_client))


def sip_messages(redis_client):
    return [json.loads(fields[b"m"]) for _, fields in redis_client.xrange(stream_key("sip"))]


def test_a_saved_gateway_is_announced_without_its_password(notifier, redis_client):
    outbox = Outbox()
    with outbox.atomic():
        gateway = SipGateway.create(name="gw1", host="pbx.example.com", port=5060,
                                    transport="udp", password_encrypted="secret-token")
        notifier.gateway_changed(gateway, "sip.gateway_saved", outbox)
        assert sip_messages(redis_client) == []  # nothing before the commit

    [message] = sip_messages(redis_client)
    assert (message["channel"], message["type"]) == ("sip", "sip.gateway_saved")
    assert message["data"]["name"] == "gw1" and message["data"]["password_set"] is True
    assert "secret-token" not in json.dumps(message)


def test_news_of_a_rolled_back_change_is_never_sent(notifier, redis_client):
    outbox = Outbox()
    with pytest.raises(RuntimeError), outbox.atomic():
        notifier.gateway_deleted("gw1", outbox)
        raise RuntimeError("the change failed")
    outbox.flush()
    assert sip_messages(redis_client) == []


@pytest.mark.parametrize("state, event_type", [("REGED", "sip.registered"),
                                                ("FAIL_WAIT", "sip.fail_wait"),
                                                ("SOMETHING_NEW", "sip.state")])
def test_a_registration_state_is_named_by_its_message_type(notifier, redis_client, state,
                                                           event_type):
    outbox = Outbox()
    with outbox.atomic():
        notifier.gateway_state({"name": "gw1", "state": state, "registered": False}, outbox)
    [message] = sip_messages(redis_client)
    assert message["type"] == event_type and message["data"]["state"] == state
