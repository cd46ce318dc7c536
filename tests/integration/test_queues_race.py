"""The agent pool rules under concurrency, against the ESL simulator: 50 callers race for
10 agents with two `events` processes and two web processes sharing one pool: no agent is
ever rung for two callers at once, no caller rings two agents at once, and callers are
offered oldest first. Then `events` is killed while 10 callers wait: a new one serves
them all, in order.

A sampler watches the simulator's channels every few milliseconds (what the phones and
callers really had), and the database's queue entries say who was offered when.
"""
import os
import signal
import sys

import gevent
import pytest

from models import Call
from models.queue import QueueEntry, QueueMember
from tests.conftest import wait_until
from tests.integration.agent_helpers import make_agent
from tests.integration.queue_helpers import make_queue, route_to

PHONES = [str(n) for n in range(1101, 1111)]


@pytest.fixture(scope="module")
def race_stack(stack_factory, db_url, sim, bound_db):
    for phone in PHONES:
        sim.phones[phone] = "127.0.0.1"
    stack = stack_factory(db_url, sim, web=False, AGENT_WRAPUP_CHECK_INTERVAL="0.2")
    subscribed = sum(1 for c in sim.connections if c.authenticated and c.events_enabled)
    stack._spawn("events2", [sys.executable, "-m", "freeswitch"])
    wait_until(lambda: sum(1 for c in sim.connections if c.authenticated and c.events_enabled)
               > subscribed, 30, message="the second events process")
    stack.start_web(workers=2)
    return stack


@pytest.fixture(autouse=True)
def _no_channels_left(sim):
    """The simulator is shared by the SQLite and PostgreSQL runs: every test starts and ends
    with no channel up (a caller still bridged at the end would ring on in the next run)."""
    yield
    for fs_uuid in list(sim.channels):
        if fs_uuid in sim.channels and sim.channels[fs_uuid].direction == "inbound":
            sim.hangup(fs_uuid)
    for fs_uuid in list(sim.channels):
        if fs_uuid in sim.channels:
            sim.api("uuid_kill", fs_uuid)
    wait_until(lambda: not sim.channels, 10, message="no channel left in the simulator")


class Sampler:
    """Every few ms: the live agent legs per phone and per caller (cc_call_id)."""

    def __init__(self, sim):
        self.sim = sim
        self.max_per_phone = 0
        self.max_per_caller = 0
        self.doubles = set()
        self.phone_doubles = []
        self._greenlet = gevent.spawn(self._run)

    def _run(self):
        while True:
            per_phone, per_caller, legs = {}, {}, {}
            for ch in list(self.sim.channels.values()):
                if ch.ended or ch.dial_vars.get("cc_leg") != "agent":
                    continue
                per_phone[ch.phone_user] = per_phone.get(ch.phone_user, 0) + 1
                legs.setdefault(ch.phone_user, []).append(
                    (ch.uuid, ch.dial_vars.get("cc_call_id"), ch.answered, ch.bridge is not None))
                call_id = ch.dial_vars.get("cc_call_id")
                per_caller[call_id] = per_caller.get(call_id, 0) + 1
            self.max_per_phone = max([self.max_per_phone, *per_phone.values()])
            self.max_per_caller = max([self.max_per_caller, *per_caller.values()])
            self.doubles.update(c for c, n in per_caller.items() if n > 1)
            self.phone_doubles.extend(legs[p] for p, n in per_phone.items() if n > 1)
            gevent.sleep(0.003)

    def stop(self):
        self._greenlet.kill()


def hang_up_answered(sim, stop):
    """Callers hang up a moment after they are bridged to an agent (the agent is free again)."""
    done = set()
    while not stop.is_set():
        for call in Call.select().where(Call.bridged_at.is_null(False) & (Call.direction ==
                                                                           "inbound")):
            if call.fs_uuid not in done and call.fs_uuid in sim.channels:
                done.add(call.fs_uuid)
                gevent.spawn_later(0.1, _hang_up, sim, call.fs_uuid)
        gevent.sleep(0.05)


def _hang_up(sim, fs_uuid):
    if fs_uuid in sim.channels:
        sim.hangup(fs_uuid)


def _trails(sampler):
    """The agent state changes of the calls a double was seen for (to tell what happened)."""
    from models.agent import AgentStateChange
    calls = {leg[1] for legs in sampler.phone_doubles[:1] for leg in legs}
    return [(c.agent_id, c.from_state, c.to_state, c.source, c.call_id[:8], str(c.at))
            for c in AgentStateChange.select().where(AgentStateChange.call_id.in_(list(calls)))
            .order_by(AgentStateChange.at, AgentStateChange.id)]


def _log_lines(stack):
    """What the events processes said about leading, rebuilding and failures."""
    lines = []
    for name in ("events", "events2"):
        for line in stack.log(name).splitlines():
            if "leads" in line or "rebuilt" in line or "ERROR" in line or "failed" in line:
                lines.append(f"{name}: {line[:200]}")
    return lines[-30:]


def served_in_order(entries):
    """Each caller's first offer came no later than any younger caller's."""
    by_arrival = sorted(entries, key=lambda e: e.entered_at)
    offered = [e.offered_at for e in by_arrival]
    return all(a <= b for a, b in zip(offered, offered[1:]))


def test_50_callers_10_agents_no_double_offer_oldest_first(race_stack, sim):
    agents = [make_agent(race_stack, f"user/{p}", wrapup_seconds=0, prefix="race")
              for p in PHONES]
    queue_id = make_queue(agents, wrapup_seconds=0)
    number = route_to(queue_id)
    sampler = Sampler(sim)
    stop = gevent.event.Event()
    hanger = gevent.spawn(hang_up_answered, sim, stop)
    try:
        for i in range(50):
            sim.inbound_call(f"1555100{i:04d}", number, answer_after=0.01)
            gevent.sleep(0.02)
        wait_until(lambda: QueueEntry.select().where(
            (QueueEntry.queue_id == queue_id) & (QueueEntry.status == "answered")).count() == 50,
            90, 0.2, "all 50 callers answered")
    finally:
        stop.set()
        hanger.kill()
        sampler.stop()
    entries = list(QueueEntry.select().where(QueueEntry.queue_id == queue_id))
    assert len(entries) == 50 and {e.status for e in entries} == {"answered"}
    if sampler.max_per_phone != 1:  # what happened, in the captured output of the failure
        print("doubles", sampler.phone_doubles[:3])
        for row in _trails(sampler):
            print("trail", row)
        print("\n".join(_log_lines(race_stack)))
    assert sampler.max_per_phone == 1, ("an agent was rung for two callers at once",
                                        sampler.phone_doubles[:3], _trails(sampler),
                                        _log_lines(race_stack))
    assert sampler.max_per_caller == 1, ("a caller rang two agents at once", sampler.doubles, [
        (e.call_id, e.offers, e.offer_leg_uuids) for e in entries if e.call_id in sampler.doubles])
    assert all(e.offers == 1 for e in entries)
    assert served_in_order(entries)
    assert {e.agent_id for e in entries} == set(agents)


def test_killing_events_while_callers_wait_loses_none(race_stack, sim):
    queue_id = make_queue([], wrapup_seconds=0)
    number = route_to(queue_id)
    for i in range(10):
        sim.inbound_call(f"1555200{i:04d}", number, answer_after=0.01)
        gevent.sleep(0.05)
    wait_until(lambda: QueueEntry.select().where((QueueEntry.queue_id == queue_id)
                                                 & (QueueEntry.status == "waiting")).count()
               == 10, 15, message="10 callers waiting")
    for name in ("events", "events2"):
        proc, _ = race_stack.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        race_stack.stop(name)
    gevent.sleep(0.5)
    subscribed = sum(1 for c in sim.connections if c.authenticated and c.events_enabled)
    race_stack.start_events()
    wait_until(lambda: sum(1 for c in sim.connections if c.authenticated and c.events_enabled)
               > subscribed, 30, message="a new events process")
    for phone in PHONES[:2]:
        agent_id = make_agent(race_stack, f"user/{phone}", wrapup_seconds=0, prefix="kill")
        QueueMember.create(queue=queue_id, agent=agent_id)
    stop = gevent.event.Event()
    hanger = gevent.spawn(hang_up_answered, sim, stop)
    try:
        wait_until(lambda: QueueEntry.select().where(
            (QueueEntry.queue_id == queue_id) & (QueueEntry.status == "answered")).count() == 10,
            60, 0.2, "all 10 callers served after the restart")
    finally:
        stop.set()
        hanger.kill()
    entries = list(QueueEntry.select().where(QueueEntry.queue_id == queue_id))
    assert {e.status for e in entries} == {"answered"}
    assert served_in_order(entries)
