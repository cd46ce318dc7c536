"""QueueConfig on a real database (SQLite, and PostgreSQL when reachable): queues with their
members, the checks that need the database (members, action and route targets exist), and
the deletes it refuses while callers wait or something points at the queue."""
import pytest

from models.agent import Agent
from models.db import utcnow
from models.queue import InboundRoute, Queue, QueueEntry, QueueMember
from services.errors import Conflict, NotFound, Unprocessable
from services.queues.config import QueueConfig


@pytest.fixture
def config(bound_db):
    for model in (QueueEntry, InboundRoute, QueueMember, Queue, Agent):
        model.delete().execute()
    for agent_id in ("ann", "bob", "cid"):
        Agent.create(id=agent_id, name=agent_id.title(), endpoint="user/1001")
    yield QueueConfig({"INBOUND_DEFAULT_QUEUE": "support"})
    for model in (QueueEntry, InboundRoute, QueueMember, Queue, Agent):
        model.delete().execute()


def members(queue):
    return [(m.agent_id, m.tier) for m in sorted(queue.member_rows, key=lambda m: m.agent_id)]


def test_create_get_update_members(config):
    queue = config.create({"id": "support", "name": "Support", "strategy": "ring-all",
                           "members": [{"agent_id": "ann", "tier": 1},
                                       {"agent_id": "bob", "tier": 2}]})
    assert (queue.strategy, queue.ring_timeout, queue.service_level_seconds,
            queue.max_missed_offers) == ("ring-all", 15, 20, 3)
    assert members(config.get("support")) == [("ann", 1), ("bob", 2)]
    offered = utcnow().replace(microsecond=0)
    QueueMember.update(last_offered_at=offered).where(QueueMember.agent == "bob").execute()
    changed = config.update("support", {"members": [{"agent_id": "bob", "tier": 1},
                                                    {"agent_id": "cid", "tier": 3}],
                                        "ring_timeout": 30})
    assert members(changed) == [("bob", 1), ("cid", 3)] and changed.ring_timeout == 30
    # a kept member keeps its round-robin history
    assert QueueMember.get(QueueMember.agent == "bob").last_offered_at == offered
    # leaving members out keeps them
    assert members(config.update("support", {"name": "Help"})) == [("bob", 1), ("cid", 3)]
    assert [q.id for q in config.list()] == ["support"]
    # deleting an agent takes it out of the queue
    Agent.delete().where(Agent.id == "cid").execute()
    assert members(config.get("support")) == [("bob", 1)]


def test_unknown_members_and_targets_are_refused_and_nothing_is_kept(config):
    with pytest.raises(Unprocessable, match="no agent zed") as err:
        config.create({"id": "support", "name": "S", "members": [{"agent_id": "zed"}]})
    assert err.value.error_id == "queue_member_unknown"
    with pytest.raises(NotFound):
        config.get("support")
    for action, words in (({"action": "queue", "target": "nope"}, "no queue nope"),
                          ({"action": "queue", "target": "support"}, "to itself"),
                          ({"action": "agent", "target": "zed"}, "no agent zed")):
        with pytest.raises(Unprocessable, match=words) as err:
            config.create({"id": "support", "name": "S", "max_wait_action": action})
        assert err.value.error_id == "queue_action_target_invalid"
    config.create({"id": "support", "name": "S"})
    with pytest.raises(Unprocessable, match="to itself"):
        config.update("support", {"closed_action": {"action": "queue", "target": "support"}})
    with pytest.raises(Conflict) as err:
        config.create({"id": "support", "name": "again"})
    assert err.value.error_id == "queue_exists"


def test_delete_is_refused_while_callers_wait_or_something_points_at_it(config):
    config.create({"id": "support", "name": "S", "members": [{"agent_id": "ann"}]})
    config.create({"id": "overflow", "name": "O"})
    config.update("support", {"max_wait_seconds": 60,
                              "max_wait_action": {"action": "queue", "target": "overflow"}})
    with pytest.raises(Conflict, match="support's max_wait_action") as err:
        config.delete("overflow")
    assert err.value.error_id == "queue_in_use"
    config.update("support", {"max_wait_action": None})

    route = config.create_route({"match": "exact", "number": "1000", "target_type": "queue",
                                 "target": "overflow"})
    with pytest.raises(Conflict, match="inbound route 1000") as err:
        config.delete("overflow")
    assert err.value.error_id == "queue_in_use"
    config.delete_route(route.id)
    config.delete("overflow")

    entry = QueueEntry.create(queue_id="support", call_id="c-1", status="offering")
    with pytest.raises(Conflict, match="1 caller") as err:
        config.delete("support")
    assert err.value.error_id == "queue_has_callers"
    QueueEntry.update(status="answered").where(QueueEntry.id == entry.id).execute()
    config.delete("support")
    assert QueueMember.select().count() == 0
    assert QueueEntry.select().count() == 1  # the stay stays, for the statistics
    with pytest.raises(NotFound) as err:
        config.delete("support")
    assert err.value.error_id == "queue_not_found"


def test_routes_crud_their_targets_and_twins(config):
    config.create({"id": "support", "name": "S"})
    route = config.create_route({"match": "prefix", "number": "+331", "target_type": "queue",
                                 "target": "support", "name": "Paris"})
    with pytest.raises(Conflict) as err:
        config.create_route({"match": "prefix", "number": "+331", "target_type": "agent",
                             "target": "ann"})
    assert err.value.error_id == "inbound_route_exists"
    same_number_exact = config.create_route({"match": "exact", "number": "+331",
                                             "target_type": "agent", "target": "ann"})
    with pytest.raises(Conflict):
        config.update_route(same_number_exact.id, {"match": "prefix"})
    for target_type, target in (("queue", "nope"), ("agent", "zed"), ("number", "support")):
        with pytest.raises(Unprocessable) as err:
            config.create_route({"match": "exact", "number": "2000", "target_type": target_type,
                                 "target": target})
        assert err.value.error_id == "inbound_route_target_unknown"
    # changing the type alone checks the kept target against it
    with pytest.raises(Unprocessable):
        config.update_route(route.id, {"target_type": "number"})
    changed = config.update_route(route.id, {"target_type": "number", "target": "+15550001"})
    assert (changed.target_type, changed.target, changed.name) == ("number", "+15550001", "Paris")
    assert [r.id for r in config.list_routes({"target_type": "number"})] == [route.id]
    assert config.resolve("+33199").id == route.id
    assert config.resolve("+3319").id == route.id
    default = config.resolve("+4420")
    assert (default.id, default.target) == (None, "support")
    config.delete_route(route.id)
    with pytest.raises(NotFound) as err:
        config.get_route(route.id)
    assert err.value.error_id == "inbound_route_not_found"
