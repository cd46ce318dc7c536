"""The routing engine's pure rules: which agents a queue rings, in which order; which caller
goes first; how an entry's status may move; the estimated wait."""
import datetime
from types import SimpleNamespace

from services.queues.selection import (
    Candidate,
    caller_order_key,
    can_move,
    estimated_wait,
    meets,
    order_candidates,
    pick,
    waited_too_long,
)

T0 = datetime.datetime(2026, 3, 2, 9, 0, 0)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def cand(agent_id, idle_since=0, tier=1, last=None, skills=None):
    return Candidate(agent_id, tier=tier, state_since=at(idle_since),
                     last_offered_at=None if last is None else at(last), skills=skills or {})


def test_longest_idle_rings_the_agent_available_longest():
    pool = [cand("a", 30), cand("b", 10), cand("c", 20)]
    assert pick("longest-idle-agent", pool) == ["b"]
    assert [c.agent_id for c in order_candidates("longest-idle-agent", pool)] == ["b", "c", "a"]


def test_agents_taken_by_an_older_caller_are_skipped():
    pool = [cand("a", 30), cand("b", 10)]
    assert pick("longest-idle-agent", pool, taken={"b"}) == ["a"]
    assert pick("longest-idle-agent", pool, taken={"a", "b"}) == []


def test_round_robin_rings_the_agent_offered_least_recently_never_offered_first():
    pool = [cand("a", last=50), cand("b", last=10), cand("c")]
    assert [c.agent_id for c in order_candidates("round-robin", pool)] == ["c", "b", "a"]


def test_ring_all_rings_every_available_member_of_the_best_tier():
    pool = [cand("a", tier=1), cand("b", tier=1), cand("c", tier=2)]
    assert sorted(pick("ring-all", pool)) == ["a", "b"]
    assert pick("ring-all", pool, taken={"a", "b"}) == ["c"]


def test_higher_tier_only_when_the_lower_tier_has_nobody_available():
    pool = [cand("senior", idle_since=0, tier=2), cand("junior", idle_since=100, tier=1)]
    assert pick("longest-idle-agent", pool) == ["junior"]
    assert pick("longest-idle-agent", pool, taken={"junior"}) == ["senior"]


def test_skills_best_level_first_then_longest_idle_and_unqualified_never():
    required = {"billing": 5, "french": 3}
    pool = [cand("weak", 0, skills={"billing": 4, "french": 9}),       # billing too low
            cand("good", 50, skills={"billing": 6, "french": 3}),
            cand("best", 90, skills={"billing": 9, "french": 5}),
            cand("good-idle", 10, skills={"billing": 6, "french": 3})]
    order = [c.agent_id for c in order_candidates("skills", pool, required)]
    assert order == ["best", "good-idle", "good"]
    assert pick("skills", pool, required_skills=required) == ["best"]
    assert pick("skills", [pool[0]], required_skills=required) == []


def test_meets_needs_every_required_skill():
    assert meets({"a": 3, "b": 1}, {"a": 3})
    assert not meets({"a": 3}, {"a": 3, "b": 1})
    assert meets({}, None)


def test_callers_by_priority_then_oldest():
    entries = [SimpleNamespace(id="late", priority=0, entered_at=at(20)),
               SimpleNamespace(id="vip", priority=5, entered_at=at(30)),
               SimpleNamespace(id="early", priority=0, entered_at=at(10))]
    assert [e.id for e in sorted(entries, key=caller_order_key)] == ["vip", "early", "late"]


def test_entry_status_moves():
    assert can_move("waiting", "offering") and can_move("offering", "waiting")
    assert can_move("offering", "answered") and can_move("offering", "abandoned")
    assert can_move("waiting", "overflowed") and can_move("waiting", "timed-out")
    assert not can_move("waiting", "answered")   # only an offer is answered
    assert not can_move("answered", "abandoned")  # an ended stay never moves again
    assert not can_move("abandoned", "waiting")


def test_max_wait_and_estimated_wait():
    entry = SimpleNamespace(entered_at=at(0))
    assert waited_too_long(entry, 30, at(30)) and not waited_too_long(entry, 30, at(29))
    assert not waited_too_long(entry, None, at(10_000))
    assert estimated_wait(0, 2, 100) == 0           # an agent is free for it
    assert estimated_wait(1, 2, 100) == 100
    assert estimated_wait(3, 2, 100) == 200          # two rounds of two agents
    assert estimated_wait(1, 0, 100) == 100          # nobody staffed: counted as one
