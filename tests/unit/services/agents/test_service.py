"""AgentService and AgentNotifier in process: a real database (SQLite, and PostgreSQL when
reachable), Redis and the ESL simulator answering `show registrations as json`; what the
`agents` channel carried is read back from its stream."""
import datetime
import json

import gevent
import pytest

from freeswitch.esl.commands import FreeSwitchCommands
from models.agent import Agent, AgentStateChange
from models.db import utcnow
from services.agents.service import AgentService
from services.errors import Conflict, NotFound
from services.outbox import Outbox
from services.publisher import Publisher
from services.redis_client import stream_key


@pytest.fixture
def agents(bound_db, redis_client, sim):
    AgentStateChange.delete().execute()
    Agent.delete().execute()
    sim.phones.clear()
    sim.phones.update({"1001": "127.0.0.1", "1002": "127.0.0.1", "1003": "127.0.0.1"})
    commands = FreeSwitchCommands("127.0.0.1", sim.port, "ClueCon")
    yield AgentService(Publisher(redis_client), commands=commands, config={})
    commands.close()


def news(redis_client):
    return [(m["type"], m["data"]) for m in
            (json.loads(f[b"m"]) for _, f in redis_client.xrange(stream_key("agents")))]


def make(agents, agent_id="a1", endpoint="user/1001", **extra):
    return agents.create({"id": agent_id, "name": "Ann", "endpoint": endpoint, **extra})


def states(agent_id):
    return [(c.from_state, c.to_state, c.reason, c.source) for c in AgentStateChange.select()
            .where(AgentStateChange.agent == agent_id).order_by(AgentStateChange.id)]


def test_login_makes_a_registered_agent_available_and_tells_the_channel(agents, redis_client):
    make(agents)
    agent = agents.login("a1")
    assert agent.state == "available" and agent.phone_registered is True
    assert states("a1") == [("logged-out", "available", None, "api")]
    assert [(t, d["state"]) for t, d in news(redis_client)] == [
        ("agent.created", "logged-out"), ("agent.available", "available")]


def test_an_agent_whose_phone_is_not_registered_cannot_become_available(agents, sim):
    make(agents, endpoint="user/1010")
    with pytest.raises(Conflict) as exc:
        agents.login("a1")
    assert exc.value.error_id == "agent_phone_not_registered"
    assert "user/1010" in exc.value.message
    assert Agent.get_by_id("a1").state == "logged-out" and states("a1") == []
    sim.phones["1010"] = "127.0.0.1"  # the phone registers: now it may
    assert agents.login("a1").state == "available"


def test_a_phone_registered_in_another_domain_does_not_count(agents):
    make(agents, endpoint="user/1001@other.example.com")
    with pytest.raises(Conflict):
        agents.login("a1")


def test_sip_and_gateway_endpoints_have_nothing_to_register(agents):
    make(agents, "s1", endpoint="sip:bob@10.0.0.7:5070")
    make(agents, "g1", endpoint="gateway/carrier/5551234")
    assert agents.login("s1").state == "available" and agents.login("g1").state == "available"
    assert agents.get_with_phone("s1").phone_registered is None


def test_the_state_machine_refuses_with_the_reason(agents):
    make(agents)
    with pytest.raises(Conflict) as exc:
        agents.ready("a1")
    assert exc.value.error_id == "invalid_agent_transition"
    assert "logged-out" in exc.value.message


def test_pause_resume_and_the_trail_between_dates(agents):
    make(agents)
    agents.login("a1")
    before_pause = utcnow()
    assert (agents.pause("a1", "lunch").state_reason) == "lunch"
    agents.pause("a1", "lunch")  # the same again: nothing new
    agents.pause("a1", "training")
    agents.resume("a1")
    assert [(c.to_state, c.reason) for c in agents.trail("a1")] == [
        ("available", None), ("paused", "lunch"), ("paused", "training"), ("available", None)]
    later = agents.trail("a1", date_from=before_pause)
    assert [c.to_state for c in later] == ["paused", "paused", "available"]
    assert agents.trail("a1", date_to=before_pause)[0].to_state == "available"
    assert agents.trail("a1", date_from=utcnow() + datetime.timedelta(seconds=5)) == []
    with pytest.raises(NotFound):
        agents.trail("nobody")


def test_a_call_rings_connects_and_ends_in_wrap_up_then_the_timer_makes_it_available(agents):
    make(agents, wrapup_seconds=20)
    agents.login("a1")
    assert agents.reserve("a1", "call-1").state == "ringing"
    assert agents.connected("a1", "call-other") is None  # not this agent's call
    assert agents.connected("a1", "call-1").state == "on-call"
    agent = agents.released("a1", "call-1")
    assert agent.state == "wrap-up" and agent.call_id == "call-1"
    assert agent.wrapup_until >= utcnow() + datetime.timedelta(seconds=19)
    assert agents.finish_wrapups() == 0  # not due yet
    assert agents.finish_wrapups(now=utcnow() + datetime.timedelta(seconds=21)) == 1
    assert Agent.get_by_id("a1").state == "available" and Agent.get_by_id("a1").call_id is None
    assert [(s[1], s[3]) for s in states("a1")] == [
        ("available", "api"), ("ringing", "call"), ("on-call", "call"), ("wrap-up", "call"),
        ("available", "timer")]


def test_ready_ends_wrap_up_early_and_an_unanswered_offer_pauses_the_agent(agents):
    make(agents)
    agents.login("a1")
    agents.reserve("a1", "c1")
    agents.connected("a1", "c1")
    agents.released("a1", "c1")
    assert agents.ready("a1").state == "available"
    agents.reserve("a1", "c2")
    agent = agents.missed("a1", "c2")
    assert (agent.state, agent.state_reason) == ("paused", "no-answer")


def test_an_offer_to_an_agent_who_is_not_available_is_refused(agents):
    make(agents)
    with pytest.raises(Conflict) as exc:
        agents.reserve("a1", "c1")
    assert exc.value.error_id == "agent_not_available"
    with pytest.raises(NotFound):
        agents.reserve("ghost", "c1")


def test_of_many_racing_offers_exactly_one_wins(agents):
    make(agents)
    agents.login("a1")
    results = {}

    def offer(call_id):
        try:
            agents.reserve("a1", call_id)
            results[call_id] = "won"
        except Conflict as exc:
            results[call_id] = exc.error_id

    gevent.joinall([gevent.spawn(offer, f"call-{n}") for n in range(8)], timeout=30)
    assert sorted(results.values()) == ["agent_not_available"] * 7 + ["won"]
    winner = next(c for c, r in results.items() if r == "won")
    assert Agent.get_by_id("a1").call_id == winner
    assert [s[1] for s in states("a1")] == ["available", "ringing"]


def test_a_writer_that_read_the_agent_before_another_won_changes_nothing(agents, redis_client):
    """The interleaving a race makes: both read `available`, the second UPDATE finds none."""
    make(agents)
    agents.login("a1")
    first, second = Agent.get_by_id("a1"), Agent.get_by_id("a1")
    with Outbox().atomic() as outbox:
        assert agents._move(first, "ringing", None, "call", outbox, call_id="c1") is True
    with Outbox().atomic() as outbox:
        assert agents._move(second, "ringing", None, "call", outbox, call_id="c2") is False
    assert Agent.get_by_id("a1").call_id == "c1"
    assert [t for t, _ in news(redis_client)].count("agent.ringing") == 1


def test_crud_conflicts(agents):
    make(agents)
    with pytest.raises(Conflict) as exc:
        make(agents)
    assert exc.value.error_id == "agent_exists"
    agents.login("a1")
    for action in (lambda: agents.delete("a1"), lambda: agents.update("a1", {"enabled": False})):
        with pytest.raises(Conflict) as exc:
            action()
        assert exc.value.error_id == "agent_logged_in"
    agents.logout("a1")
    agents.update("a1", {"enabled": False, "skills": {"billing": 3}})
    with pytest.raises(Conflict) as exc:
        agents.login("a1")
    assert exc.value.error_id == "agent_disabled"
    agents.delete("a1")
    with pytest.raises(NotFound):
        agents.get("a1")
    assert AgentStateChange.select().count() == 0
