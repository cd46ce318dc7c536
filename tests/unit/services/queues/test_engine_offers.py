"""The engine's entry rules on a real database (SQLite) with a switch that only records
commands: an offer reserves the agent and rings its phone, the first answer wins, a miss
puts the caller back and pauses the agent after the queue's misses in a row, a caller who
leaves takes back the offer, and the dispatcher serves the oldest caller first."""
import datetime
import uuid

import pytest

from models import Call, db, init_db, migrate_database, utcnow
from models.agent import Agent
from models.queue import InboundRoute, Queue, QueueEntry, QueueMember
from services.container import build_services
from services.outbox import Outbox
from services.queues.dispatcher import Dispatcher


class RecordingSwitch:
    def __init__(self):
        self.sent = []

    def api(self, command, timeout=None):
        self.sent.append(command)
        return "+OK\n"

    def bgapi(self, command, job_uuid=None):
        self.sent.append(command)
        return job_uuid

    def dialstring(self, number, gateway=None):
        return f"sofia/gateway/{gateway}/{number}"


@pytest.fixture
def engine(tmp_path, redis_client):
    init_db(f"sqlite:///{tmp_path}/q.db")
    db.connect(reuse_if_open=True)
    migrate_database()
    switch = RecordingSwitch()
    services = build_services({"DEFAULT_GATEWAY": "gw", "SECRET_KEY": "unit-secret-0123456789"},
                              redis_client, switch)
    services.queue_engine.switch = switch
    yield services.queue_engine
    db.close()


def agent(agent_id, idle_seconds=0, **fields):
    since = utcnow() - datetime.timedelta(seconds=idle_seconds)
    return Agent.create(id=agent_id, name=agent_id, endpoint=f"user/{1000 + len(agent_id)}",
                        state="available", state_since=since, **fields)


def caller(queue_id, seconds_ago=0):
    call = Call.create(direction="inbound", fs_uuid=str(uuid.uuid4()), to_number="800",
                       status="in-progress")
    return QueueEntry.create(queue_id=queue_id, call_id=call.id,
                             entered_at=utcnow() - datetime.timedelta(seconds=seconds_ago))


def queue(agent_ids, **fields):
    Queue.create(id="q1", name="q1", **fields)
    for agent_id in agent_ids:
        QueueMember.create(queue="q1", agent=agent_id)
    return Queue.get_by_id("q1")


def fresh(entry):
    return QueueEntry.get_by_id(entry.id)


def test_dispatcher_offers_the_oldest_caller_to_the_longest_idle_agent(engine):
    agent("a", idle_seconds=10)
    agent("b", idle_seconds=99)
    queue(["a", "b"])
    young, old = caller("q1", 5), caller("q1", 50)
    assert Dispatcher(engine).round() == 2
    assert fresh(old).offering_agents == ["b"] and fresh(young).offering_agents == ["a"]
    assert Agent.get_by_id("b").state == "ringing" and Agent.get_by_id("b").call_id == old.call_id
    rung = [c for c in engine.switch.sent if c.startswith("originate")]
    assert len(rung) == 2 and "user/" in rung[0] and "cc_leg=agent" in rung[0]


def test_first_answer_wins_and_the_others_stop_ringing(engine):
    agent("a")
    agent("b")
    q = queue(["a", "b"], strategy="ring-all")
    entry = caller("q1")
    assert sorted(engine.offers.offer(entry, q, ["a", "b"])) == ["a", "b"]
    entry = fresh(entry)
    legs = entry.offer_leg_uuids
    with Outbox().atomic() as outbox:
        assert engine.offers.answered(entry, "b", legs["b"], outbox)
        assert not engine.offers.answered(fresh(entry), "a", legs["a"], outbox)
    won = fresh(entry)
    assert won.status == "answered" and won.agent_id == "b" and won.wait_seconds is not None
    assert Agent.get_by_id("a").state == "available"
    assert Call.get_by_id(entry.call_id).agent_leg_uuid == legs["b"]
    assert any(c == f"uuid_kill {legs['a']} ORIGINATOR_CANCEL" for c in engine.switch.sent)
    assert any(c.startswith("uuid_bridge ") and legs["b"] in c for c in engine.switch.sent)


def test_missed_offers_put_the_caller_back_and_pause_after_n(engine):
    agent("a")
    q = queue(["a"], max_missed_offers=2)
    entry = caller("q1")
    for miss in (1, 2):
        engine.offers.offer(fresh(entry), q, ["a"])
        with Outbox().atomic() as outbox:
            assert engine.offers.failed(fresh(entry), "a", outbox)
        assert fresh(entry).status == "waiting" and fresh(entry).offers == miss
    paused = Agent.get_by_id("a")
    assert paused.state == "paused" and paused.state_reason == "no-answer"
    assert paused.missed_offers == 0  # counting starts again after the pause


def test_an_answer_resets_the_misses(engine):
    agent("a")
    q = queue(["a"], max_missed_offers=3)
    entry = caller("q1")
    engine.offers.offer(entry, q, ["a"])
    with Outbox().atomic() as outbox:
        engine.offers.failed(fresh(entry), "a", outbox)
    assert Agent.get_by_id("a").missed_offers == 1
    engine.offers.offer(fresh(entry), q, ["a"])
    with Outbox().atomic() as outbox:
        engine.offers.answered(fresh(entry), "a", fresh(entry).offer_leg_uuids["a"], outbox)
    assert Agent.get_by_id("a").missed_offers == 0


def test_a_caller_leaving_takes_back_the_offer(engine):
    agent("a")
    q = queue(["a"])
    entry = caller("q1", 3)
    engine.offers.offer(entry, q, ["a"])
    with Outbox().atomic() as outbox:
        assert engine.leave(fresh(entry), "abandoned", outbox)
        assert not engine.leave(fresh(entry), "abandoned", outbox)  # once
    left = fresh(entry)
    assert left.status == "abandoned" and left.wait_seconds >= 3 and left.offering_agents == []
    assert Agent.get_by_id("a").state == "available"


def test_an_offer_of_a_caller_taken_meanwhile_rings_nobody(engine):
    agent("a")
    q = queue(["a"])
    entry = caller("q1")
    QueueEntry.update(status="offering").where(QueueEntry.id == entry.id).execute()
    assert engine.offers.offer(entry, q, ["a"]) == []
    assert Agent.get_by_id("a").state == "available"
    Agent.update(state="on-call").where(Agent.id == "a").execute()
    QueueEntry.update(status="waiting").where(QueueEntry.id == entry.id).execute()
    assert engine.offers.offer(fresh(entry), q, ["a"]) == []
    assert fresh(entry).status == "waiting"  # nobody could be reserved: rolled back


def test_a_listed_offer_leg_no_offer_wants_is_hung_up_and_the_wanted_one_kept(engine):
    """Reconciliation lists the agent's legs: one left over from an originate that timed
    out (its hang-up on answer could not be sent) goes; the one the caller talks to stays."""
    from freeswitch.events.queues import QueueEventHandlers
    agent("a")
    q = queue(["a"])
    entry = caller("q1")
    engine.offers.offer(entry, q, ["a"])
    left_over = fresh(entry).offer_leg_uuids["a"]
    with Outbox().atomic() as outbox:
        engine.offers.failed(fresh(entry), "a", outbox, count_miss=False)  # timed out
    engine.offers.offer(fresh(entry), q, ["a"])
    wanted = fresh(entry).offer_leg_uuids["a"]
    with Outbox().atomic() as outbox:
        assert engine.offers.answered(fresh(entry), "a", wanted, outbox)
    handlers = QueueEventHandlers(engine)
    engine.switch.sent.clear()
    for leg in (left_over, wanted):
        with Outbox().atomic() as outbox:
            handlers.on_listed_leg({"Unique-ID": leg, "variable_cc_leg": "agent",
                                    "variable_cc_call_id": entry.call_id,
                                    "variable_cc_queue_entry": entry.id}, outbox)
    assert engine.switch.sent == [f"uuid_kill {left_over} NORMAL_CLEARING"]
    answered = fresh(entry)  # the caller stays with the agent on the wanted leg
    assert answered.status == "answered" and answered.agent_id == "a"
    assert Call.get_by_id(entry.call_id).agent_leg_uuid == wanted


def test_a_caller_adopted_routed_and_gone_in_one_batch_leaves_the_queue_abandoned(engine):
    """An adopted call has no queue entry (no query asks); once routed it has one, and its
    hang-up in the same transaction finds it: the caller does not wait forever."""
    queue([])
    InboundRoute.create(match="exact", number="800", target_type="queue", target="q1")
    with Outbox().atomic() as outbox:
        call = engine.calls.adopt({"fs_uuid": str(uuid.uuid4()), "direction": "inbound",
                                   "to_number": "800"}, outbox)
        call.status = "in-progress"
        engine.on_call_answered(call, outbox)
        [entry] = QueueEntry.select().where(QueueEntry.call_id == call.id)
        assert entry.status == "waiting"
        call.status = "completed"
        engine.on_call_ended(call, outbox)
    assert fresh(entry).status == "abandoned"
