"""What the two-node queue tests share: the agent pool rules checked after the fact, from
the database (the agents' state trails, the queue entries, the call rows), a sampler of
the agent legs several ESL simulators really had, and the processes of a stack with one
events process per node.

The rules (issue 13): no agent is ever offered two callers at once, no caller is offered
to two agents at once (outside ring-all), and the oldest caller is served first.
"""
import os
import signal
import sys

import gevent

from models import Call
from models.agent import AVAILABLE, LOGGED_OUT, PAUSED, RINGING, AgentStateChange
from models.queue import QueueEntry, QueueMember
from tests.conftest import wait_until

IDLE = (AVAILABLE, PAUSED, LOGGED_OUT)  # an agent in one of these has no caller
LEADER_KEY = "cc:queues:leader"  # services/queues/dispatcher.py


def trail(agent_ids):
    """The state changes of agent_ids, in the order they were made."""
    return list(AgentStateChange.select()
                .where(AgentStateChange.agent.in_(list(agent_ids)))
                .order_by(AgentStateChange.at, AgentStateChange.id))


def busy_spells(agent_ids):
    """([(agent, call, rang at, free at or None)], [problems]) from the agents' trails.

    A spell starts when the agent starts ringing for a caller and ends when it is
    available (paused, logged out) again; every change in between must be about the same
    caller and follow on from the previous change (a second offer would break the chain
    or name another caller)."""
    rows = trail(agent_ids)
    spells, problems = [], []
    for agent_id in agent_ids:
        previous, current = None, None
        for row in (r for r in rows if r.agent_id == agent_id):
            where = f"agent {agent_id} at {row.at}"
            if previous is not None and row.from_state != previous.to_state:
                problems.append(f"{where}: {row.from_state}->{row.to_state} after "
                                f"{previous.to_state} (two writers at once)")
            if row.to_state == RINGING:
                if current is not None or row.from_state != AVAILABLE:
                    problems.append(f"{where}: rung for {row.call_id} while "
                                    f"{row.from_state} for {current and current[1]}")
                current = [agent_id, row.call_id, row.at, None]
            elif current is not None:
                if row.call_id != current[1]:
                    problems.append(f"{where}: {row.to_state} for {row.call_id} while busy "
                                    f"with {current[1]}")
                if row.to_state in IDLE:
                    current[3] = row.at
                    spells.append(tuple(current))
                    current = None
            previous = row
        if current is not None:
            spells.append(tuple(current))
    return spells, problems


def callers_offered_twice_at_once(spells):
    """The callers whose spells with two different agents overlap in time."""
    by_call = {}
    for agent_id, call_id, start, end in spells:
        by_call.setdefault(call_id, []).append((start, end, agent_id))
    doubles = []
    for call_id, found in by_call.items():
        found.sort(key=lambda s: s[0])
        for (_, end, first), (start, _, second) in zip(found, found[1:]):
            if first != second and (end is None or start < end):
                doubles.append((call_id, first, second))
    return doubles


def served_in_order(entries):
    """Each caller's first offer came no later than any younger caller's."""
    by_arrival = sorted(entries, key=lambda e: (e.entered_at, e.id))
    offered = [e.offered_at for e in by_arrival]
    return all(a is not None and b is not None and a <= b for a, b in zip(offered, offered[1:]))


def entries_of_queue(queue_id, status=None):
    query = QueueEntry.select().where(QueueEntry.queue_id == queue_id)
    if status is not None:
        query = query.where(QueueEntry.status == status)
    return list(query)


def leg_problems(entries):
    """Entries whose call row does not show the answering agent's offer leg on its node."""
    calls = {c.id: c for c in Call.select().where(Call.id.in_([e.call_id for e in entries]))}
    problems = []
    for entry in entries:
        call = calls.get(entry.call_id)
        leg = (entry.offer_leg_uuids or {}).get(entry.agent_id)
        if call is None or call.agent_id != entry.agent_id or call.agent_leg_uuid != leg \
                or call.bridged_at is None or call.node != entry.node or leg is None:
            problems.append((entry.call_id, entry.node, entry.agent_id, leg,
                             call and (call.node, call.agent_id, call.agent_leg_uuid,
                                       call.bridged_at)))
    return problems


class Sampler:
    """Every few ms: the live agent legs of every simulator (name -> ESLSimulator), per
    phone and per caller (cc_call_id) across all of them, and the node each leg was on."""

    def __init__(self, sims):
        self.sims = sims
        self.max_per_phone = 0
        self.max_per_caller = 0
        self.doubles = []
        self.leg_node = {}  # agent leg uuid -> the simulator (node) it was seen on
        self._greenlet = gevent.spawn(self._run)

    def _run(self):
        while True:
            per_phone, per_caller = {}, {}
            for node, sim in self.sims.items():
                for ch in list(sim.channels.values()):
                    if ch.ended or ch.dial_vars.get("cc_leg") != "agent":
                        continue
                    self.leg_node.setdefault(ch.uuid, set()).add(node)
                    call_id = ch.dial_vars.get("cc_call_id")
                    per_phone.setdefault(ch.phone_user, []).append((node, ch.uuid, call_id))
                    per_caller[call_id] = per_caller.get(call_id, 0) + 1
            self.max_per_phone = max([self.max_per_phone, *map(len, per_phone.values())])
            self.max_per_caller = max([self.max_per_caller, *per_caller.values()])
            self.doubles.extend(legs for legs in per_phone.values() if len(legs) > 1)
            gevent.sleep(0.003)

    def stop(self):
        self._greenlet.kill()


# ----- the stacks of several nodes --------------------------------------------------
def subscribed(simulator):
    return {c for c in simulator.connections if c.authenticated and c.events_enabled}


def start_node_events(stack, node, simulator=None):
    """The events process of node; with a simulator, once it has subscribed there (a new
    connection: those of a stopped stack may still be listed for a moment)."""
    before = subscribed(simulator) if simulator else set()
    stack._spawn(f"events-{node}", [sys.executable, "-m", "freeswitch", "--node", node])
    if simulator is not None:
        wait_until(lambda: subscribed(simulator) - before, 30, 0.05,
                   f"the events process of node {node} to subscribe")


def nodes_connected(stack, names):
    nodes = stack.get("/api/health").json()["events"].get("nodes", {})
    return all(nodes.get(n, {}).get("status") == "ok" for n in names)


def stop_stack(stack, redis_server):
    """Stop a stack's processes; its dispatcher's lead goes with it (the next stack of the
    module, on the same database and Redis, leads at once)."""
    stack.stop()
    redis_server.client().delete(LEADER_KEY)


def join_queue(queue_id, agent_ids):
    """Every agent joins the queue at once (one INSERT): the first round sees them all."""
    QueueMember.insert_many([{"queue": queue_id, "agent": a, "tier": 1}
                             for a in agent_ids]).execute()


def check_pool_rules(entries, agents):
    """The rules read back from the database, after the fact."""
    spells, problems = busy_spells(agents)
    assert not problems, ("an agent was busy with two callers at once", problems[:5])
    assert not callers_offered_twice_at_once(spells), "a caller was offered to two agents at once"
    assert len(spells) == len(entries) and {s[1] for s in spells} == {e.call_id for e in entries}
    assert all(e.offers == 1 and list(e.offer_leg_uuids) == [e.agent_id] for e in entries), [
        (e.call_id, e.offers, e.offer_leg_uuids) for e in entries if e.offers != 1]
    assert served_in_order(entries), sorted(
        [(str(e.entered_at), str(e.offered_at), e.node) for e in entries])
    assert not leg_problems(entries)


def node_up(stack, node):
    return stack.get("/api/health").json()["events"]["nodes"].get(node, {}).get("status") == "ok"


def kill_events(stack, node):
    proc, _ = stack.procs[f"events-{node}"]
    os.killpg(proc.pid, signal.SIGKILL)
    stack.stop(f"events-{node}")
