"""Phone registrations over several FreeSWITCH nodes (in process, a real Redis for the
nodes' reported states): every connected node is asked, a phone counts where any lists it,
a node that cannot answer is skipped, and only when none answers is it a 503 / 502."""
import json

import pytest

from freeswitch.esl.connection import FreeSwitchUnavailable
from services import nodes as node_registry
from services.agents.registration import PhoneRegistry
from services.calls.nodes import CallNodes
from services.errors import BadGateway, Unavailable


class Node:
    """A node's command link answering `show registrations as json` (or failing)."""

    def __init__(self, *users, reply=None, down=False):
        self.users, self.reply, self.down, self.asked = users, reply, down, 0

    def api(self, command, timeout=None):
        assert command == "show registrations as json"
        self.asked += 1
        if self.down:
            raise FreeSwitchUnavailable("connection refused")
        if self.reply is not None:
            return self.reply
        rows = [{"reg_user": user, "realm": "127.0.0.1"} for user in self.users]
        return json.dumps({"row_count": len(rows), "rows": rows})


def registry(redis_client, connected=("a", "b"), **nodes):
    for name in connected:
        node_registry.report_state(redis_client, name, {"state": node_registry.CONNECTED}, 60)
    return PhoneRegistry(CallNodes(nodes, redis_client))


def test_a_phone_counts_on_any_connected_node_and_the_nodes_are_named(redis_client):
    phones = registry(redis_client, a=Node("1001"), b=Node("1001", "1002"))
    assert phones.is_registered("user/1002") is True
    assert phones.is_registered("user/1003") is False
    assert phones.is_registered("sip:bob@10.0.0.7") is None
    assert phones.nodes_with("user/1001") == ["a", "b"]
    assert phones.nodes_with("user/1002") == ["b"]
    assert phones.nodes_with("user/1002@elsewhere") == []
    assert phones.nodes_with("gateway/carrier/+15551234") is None


def test_a_node_whose_events_process_is_not_connected_is_not_asked(redis_client):
    b = Node("1002")
    phones = registry(redis_client, connected=("a",), a=Node("1001"), b=b)
    assert phones.is_registered("user/1002") is False  # no call would be placed on b
    assert b.asked == 0


def test_a_node_that_cannot_answer_is_skipped_and_none_answering_is_503_or_502(redis_client):
    phones = registry(redis_client, a=Node(down=True), b=Node("1002"))
    assert phones.is_registered("user/1002") is True
    assert phones.nodes_with("user/1002") == ["b"]

    phones = registry(redis_client, a=Node(down=True), b=Node(reply="-ERR no reply"))
    with pytest.raises(Unavailable) as down:
        phones.registered_users()
    assert down.value.error_id == "freeswitch_unavailable"
    assert phones.nodes_with("user/1002") is None  # cannot tell: the call goes by load

    phones = registry(redis_client, a=Node(reply="-ERR no reply"))
    with pytest.raises(BadGateway):
        phones.registered_users()


def test_one_node_is_asked_as_before(redis_client):
    only = Node("1001")
    phones = PhoneRegistry(only)  # a plain command link: the one node
    assert phones.is_registered("user/1001") is True and only.asked == 1
    assert phones.nodes_with("user/1001") == [node_registry.DEFAULT_NODE]
