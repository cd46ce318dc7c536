"""FREESWITCH_NODES, the choice of a node for a new call, and which calls a node reconciles."""
import pytest

from config import ConfigError
from models import Call, CallEvent
from services import nodes
from services.calls import lookup
from services.calls.nodes import CallNodes

SINGLE = {"FREESWITCH_HOST": "10.0.0.9", "FREESWITCH_PORT": 8022, "FREESWITCH_PASSWORD": "pw",
          "FREESWITCH_GATEWAY_DIR": "/gw"}


def test_the_single_node_settings_make_one_node_named_default():
    assert nodes.parse_nodes(SINGLE) == (nodes.Node("default", "10.0.0.9", 8022, "pw", "/gw"),)


def test_both_forms_of_freeswitch_nodes():
    pairs = dict(SINGLE, FREESWITCH_NODES="a=10.0.0.1:8021:s:e:c, b=10.0.0.2")
    assert nodes.parse_nodes(pairs) == (nodes.Node("a", "10.0.0.1", 8021, "s:e:c", "/gw"),
                                        nodes.Node("b", "10.0.0.2", 8021, "pw", "/gw"))
    as_json = dict(SINGLE, FREESWITCH_NODES='[{"name": "x", "host": "h", "port": 9000, '
                                            '"password": "p,q", "gateway_dir": "/x"}]')
    assert nodes.parse_nodes(as_json) == (nodes.Node("x", "h", 9000, "p,q", "/x"),)


@pytest.mark.parametrize("value", ["a", "a=h:port", "a=h,a=h2", "[{\"host\": \"h\"}]",
                                   "[1]", "bad name=h", "a=:8021", "[{]"])
def test_a_malformed_freeswitch_nodes_is_refused_at_start(value):
    with pytest.raises(ConfigError, match="FREESWITCH_NODES"):
        nodes.parse_nodes(dict(SINGLE, FREESWITCH_NODES=value))


def test_an_events_process_sees_its_own_node_as_freeswitch_host():
    cfg = dict(SINGLE, FREESWITCH_NODES="a=10.0.0.1:8021:s,b=10.0.0.2:8023:t")
    b = nodes.node_config(cfg, "b")
    assert (b["FREESWITCH_NODE"], b["FREESWITCH_HOST"], b["FREESWITCH_PORT"],
            b["FREESWITCH_PASSWORD"]) == ("b", "10.0.0.2", 8023, "t")
    assert nodes.node_config(cfg, None)["FREESWITCH_NODE"] == "a"
    with pytest.raises(ConfigError, match="no FreeSWITCH node 'c'"):
        nodes.node_config(cfg, "c")


@pytest.fixture
def two_nodes(bound_db, redis_client):
    CallEvent.delete().execute()
    Call.delete().execute()
    for name in ("a", "b"):
        nodes.report_state(redis_client, name, {"state": "connected"}, ttl=30)
    return CallNodes({"a": "commands of a", "b": "commands of b"}, redis_client)


def test_a_new_call_goes_to_the_connected_node_with_the_fewest_live_calls(two_nodes,
                                                                          redis_client):
    assert two_nodes.pick() == "a"  # a tie: the first
    Call.create(status="in-progress", node="a")
    Call.create(status="completed", node="b")
    Call.create(status="completed", node="b")
    assert two_nodes.pick() == "b"  # ended calls do not count
    Call.create(status="ringing", node="b")
    Call.create(status="initiated", node=None)  # from before nodes: the first node's
    assert two_nodes.live_calls_by_node() == {"a": 2, "b": 1}
    assert two_nodes.pick() == "b"
    nodes.report_state(redis_client, "b", {"state": "reconnecting"}, ttl=30)
    assert two_nodes.pick() == "a"  # b's ESL is down: it takes none
    redis_client.delete(nodes.state_key("a"))
    redis_client.delete(nodes.state_key("b"))
    assert two_nodes.pick() == "a"  # nobody reports: the first node answers for itself


def test_commands_follow_the_call_and_unknown_nodes_fall_back_to_the_first(two_nodes):
    assert two_nodes.commands_for(Call(node="b")) == "commands of b"
    assert two_nodes.commands_for(Call(node=None)) == "commands of a"
    assert two_nodes.commands_for(Call(node="gone")) == "commands of a"
    assert two_nodes.commands_for(None) == "commands of a"


def test_each_node_reconciles_its_own_calls_the_first_also_the_unassigned(two_nodes):
    own_a = Call.create(status="in-progress", node="a", fs_uuid="ua")
    own_b = Call.create(status="in-progress", node="b", fs_uuid="ub")
    legacy = Call.create(status="in-progress", node=None, fs_uuid="un")
    removed = Call.create(status="in-progress", node="old", fs_uuid="uo")
    of_a = {c.id for c in lookup.live_calls(lookup.of_node("a", ["a", "b"]))}
    of_b = {c.id for c in lookup.live_calls(lookup.of_node("b", ["a", "b"]))}
    assert of_a == {own_a.id, legacy.id, removed.id} and of_b == {own_b.id}
    assert set(lookup.live_channels(lookup.of_node("b", ["a", "b"]))) == {"ub"}
    assert lookup.of_node("default", ["default"]) is None  # one node: every call
