"""One inbound queue and one agent pool shared by two FreeSWITCH nodes (issue 13): callers
arrive on both nodes, Redis and the database coordinate the processes (one events process
per node, two web processes), and the pool rules hold across nodes: no agent is offered
two callers at once, no caller two agents at once, the oldest caller is served first,
and each caller's agent leg is originated on the caller's own node (where it is bridged).

First against two ESL simulators (SQLite and PostgreSQL), then against two real
FreeSWITCH instances of ../shared/freeswitch, each with its own phones 1001-1003
(skipped, with the reason, when absent; SQLite only).

The callers all wait before the agents join the queue, so that "oldest first" is exact:
every caller is in the database before the first offer.
"""
import json
import os
import uuid

import gevent
import gevent.event
import pytest

from models import Call, utcnow
from models.agent import Agent
from models.queue import QueueEntry, QueueMember
from tests.conftest import wait_until
from tests.integration.agent_helpers import agent_state, make_agent
from tests.integration.conftest import start_real_freeswitch, stop_real_freeswitch
from tests.integration.queue_helpers import (
    call_of_channel,
    call_row,
    entries_of,
    entry_status,
    make_queue,
    route_to,
)
from tests.integration.two_node_helpers import (
    LEADER_KEY,
    Sampler,
    check_pool_rules,
    entries_of_queue,
    join_queue,
    kill_events,
    node_up,
    nodes_connected,
    start_node_events,
    stop_stack,
)

PHONES = [str(n) for n in range(1301, 1306)]  # 5 agents
CALLERS = 20


# ----- two simulators ------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_b(tmp_path_factory):
    from tests.esl_sim import ESLSimulator
    root = tmp_path_factory.mktemp("fs-b")
    simulator = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon",
                             recordings_root=str(root / "recordings"), hostname="node-b")
    simulator.gateway_dir = str(root / "gateways")
    os.makedirs(simulator.gateway_dir, exist_ok=True)
    simulator.start()
    yield simulator
    simulator.stop()


# The simulated stack of the module's SQLite run is stopped before the real one starts
# (same database and Redis: two dispatchers with different nodes must not meet).
SIM_STACKS = []


@pytest.fixture(scope="module")
def pool(stack_factory, db_url, sim, sim_b, bound_db, redis_server):
    sims = {"a": sim, "b": sim_b}
    for simulator in sims.values():
        for phone in PHONES:
            simulator.phones[phone] = "127.0.0.1"
    nodes = [{"name": name, "host": "127.0.0.1", "port": s.port, "password": "ClueCon"}
             for name, s in sims.items()]
    stack = stack_factory(db_url, sim, events=False, web=False,
                          FREESWITCH_NODES=json.dumps(nodes), AGENT_WRAPUP_CHECK_INTERVAL="0.2")
    for name, simulator in sims.items():
        start_node_events(stack, name, simulator)
    stack.start_web(workers=2)
    wait_until(lambda: nodes_connected(stack, sims), 20, 0.2, "both nodes reported connected")
    SIM_STACKS.append(stack)
    yield stack
    if stack in SIM_STACKS:
        SIM_STACKS.remove(stack)
    stop_stack(stack, redis_server)


@pytest.fixture(autouse=True)
def _no_channels_left(request):
    """The simulators are shared by the SQLite and PostgreSQL runs: no channel outlives a
    test (a caller still bridged would ring on in the next run)."""
    yield
    if "pool" not in request.fixturenames:
        return
    for simulator in (request.getfixturevalue("sim"), request.getfixturevalue("sim_b")):
        for fs_uuid in list(simulator.channels):
            channel = simulator.channels.get(fs_uuid)
            if channel is not None and channel.direction == "inbound":
                simulator.hangup(fs_uuid)
        for fs_uuid in list(simulator.channels):
            if fs_uuid in simulator.channels:
                simulator.api("uuid_kill", fs_uuid)
        wait_until(lambda: not simulator.channels, 10, message="no channel left")


def hang_up_bridged(sims, stop):
    """Each caller talks a moment once bridged to an agent, then hangs up on its node."""
    done = set()
    while not stop.is_set():
        for call in Call.select().where(Call.bridged_at.is_null(False)
                                        & (Call.direction == "inbound")):
            simulator = sims.get(call.node)
            if call.fs_uuid not in done and simulator and call.fs_uuid in simulator.channels:
                done.add(call.fs_uuid)
                gevent.spawn_later(0.1, _hang_up, simulator, call.fs_uuid)
        gevent.sleep(0.05)


def _hang_up(simulator, fs_uuid):
    if fs_uuid in simulator.channels:
        simulator.hangup(fs_uuid)


def test_callers_on_two_simulated_nodes_share_one_agent_pool(pool, sim, sim_b):
    sims = {"a": sim, "b": sim_b}
    agents = [make_agent(pool, f"user/{p}", wrapup_seconds=0, prefix="two") for p in PHONES]
    queue_id = make_queue([], wrapup_seconds=0)
    number = route_to(queue_id)
    arrived_on = {}
    for i in range(CALLERS):
        node = "ab"[i % 2]
        arrived_on[sims[node].inbound_call(f"1555300{i:04d}", number, answer_after=0.01)] = node
        gevent.sleep(0.02)
    wait_until(lambda: len(entries_of_queue(queue_id, "waiting")) == CALLERS, 30, 0.2,
               f"{CALLERS} callers waiting")
    sampler = Sampler(sims)
    stop = gevent.event.Event()
    hanger = gevent.spawn(hang_up_bridged, sims, stop)
    try:
        join_queue(queue_id, agents)
        wait_until(lambda: len(entries_of_queue(queue_id, "answered")) == CALLERS, 120, 0.2,
                   f"all {CALLERS} callers answered")
        wait_until(lambda: all(agent_state(pool, a) == "available" for a in agents), 30, 0.2,
                   "every agent available again")
    finally:
        stop.set()
        hanger.kill()
        sampler.stop()
    entries = entries_of_queue(queue_id)
    calls = {c.id: c for c in Call.select().where(Call.id.in_([e.call_id for e in entries]))}
    # Each caller stayed on the node it arrived on; both nodes had callers.
    assert {calls[e.call_id].fs_uuid: e.node for e in entries} == arrived_on
    check_pool_rules(entries, agents)
    assert {e.agent_id for e in entries} == set(agents)
    # What the simulators saw: each agent leg was originated, rung and bridged on the
    # caller's node only; no phone had two legs and no caller two legs at once.
    for entry in entries:
        leg, own = entry.offer_leg_uuids[entry.agent_id], sims[entry.node]
        other = sims["b" if entry.node == "a" else "a"]
        assert sampler.leg_node.get(leg) == {entry.node}, (entry.call_id, entry.node, leg)
        assert [c for c in own.commands if "originate" in c and leg in c]
        assert not [c for c in other.commands if leg in c]
        assert [c for c in own.commands if f"uuid_bridge {calls[entry.call_id].fs_uuid} {leg}"
                in c]
    assert sampler.max_per_phone == 1, ("a phone rang for two callers", sampler.doubles[:3])
    assert sampler.max_per_caller == 1, "a caller rang two phones at once"


def test_a_late_offer_leg_is_hung_up_on_the_node_it_rings_on(pool, sim, sim_b):
    queue_id = make_queue([])
    caller = sim_b.inbound_call("15553009999", route_to(queue_id), answer_after=0.01)
    call = call_of_channel(caller)
    wait_until(lambda: entry_status(call.id) == "waiting", 10, message="the caller waiting")
    entry = entries_of(call.id)[-1]
    assert entry.node == "b"
    # An offer of this caller was taken back (its agent went to another caller), but its
    # leg was sent late: it rings on the caller's node, b, and is answered there.
    leg = str(uuid.uuid4())
    QueueEntry.update(offer_leg_uuids={"gone-agent": leg}).where(
        QueueEntry.id == entry.id).execute()
    late = gevent.spawn(sim_b.api, "originate", f"{{origination_uuid={leg},cc_leg=agent,"
                        f"cc_call_id={call.id},cc_queue_entry={entry.id}}}user/{PHONES[0]}"
                        " &park()")
    assert late.get(timeout=15).startswith(f"+OK {leg}")  # answered on b
    wait_until(lambda: [c for c in sim_b.commands if f"uuid_kill {leg}" in c], 15,
               message="the late leg hung up on b")
    wait_until(lambda: leg not in sim_b.channels, 10, message="the late leg gone from b")
    assert not [c for c in sim.commands if leg in c]
    assert entry_status(call.id) == "waiting" and leg not in sim.channels
    sim_b.hangup(caller)
    wait_until(lambda: entry_status(call.id) == "abandoned", 10)


def test_callers_of_a_node_that_is_away_do_not_hold_the_agents(pool, sim, sim_b):
    if "sqlite" not in pool.env["DATABASE_URL"]:
        pytest.skip("the node logic is the same on PostgreSQL")
    agents = [make_agent(pool, f"user/{p}", wrapup_seconds=0, prefix="away") for p in PHONES[:2]]
    queue_id = make_queue([], wrapup_seconds=0)
    number = route_to(queue_id)
    on_b = [sim_b.inbound_call(f"1555310{i:04d}", number, answer_after=0.01) for i in range(2)]
    wait_until(lambda: len(entries_of_queue(queue_id, "waiting")) == 2, 15,
               message="two callers of node b waiting")
    sim_b.stop()  # node b dies with its callers (and tells nobody)
    try:
        wait_until(lambda: not node_up(pool, "b"), 30, 0.2, "health to see node b away")
        call = call_of_channel(sim.inbound_call("15553109999", number, answer_after=0.01))
        wait_until(lambda: entry_status(call.id) == "waiting", 10, message="a caller of a waits")
        join_queue(queue_id, agents)
        # The older callers of b cannot be offered (no leg can be sent there, no answer
        # seen): the caller of node a is served meanwhile.
        wait_until(lambda: entry_status(call.id) == "answered", 20, 0.2,
                   "the caller of node a served while node b is away")
        assert all(e.offers == 0 for e in entries_of_queue(queue_id) if e.node == "b")
    finally:
        sim_b.start()
    wait_until(lambda: node_up(pool, "b"), 30, 0.2, "node b back")
    for fs_uuid in on_b:  # b's callers went with it: its reconciliation says so
        wait_until(lambda: entry_status(call_of_channel(fs_uuid).id) == "abandoned", 30, 0.2,
                   "a caller of node b abandoned")
    sim.hangup(call.fs_uuid)


def test_a_new_dispatcher_rebuilds_the_callers_of_the_node_that_is_up(pool, sim, sim_b,
                                                                       redis_server):
    if "sqlite" not in pool.env["DATABASE_URL"]:
        pytest.skip("the node logic is the same on PostgreSQL")
    agent_id = make_agent(pool, f"user/{PHONES[2]}", wrapup_seconds=0, prefix="lead")
    queue_id = make_queue([], wrapup_seconds=0)
    call = call_of_channel(sim.inbound_call("15553209999", route_to(queue_id), answer_after=0.01))
    wait_until(lambda: entry_status(call.id) == "waiting", 10, message="the caller of a waits")
    sim_b.stop()  # node b is away ...
    try:
        wait_until(lambda: not node_up(pool, "b"), 30, 0.2, "health to see node b away")
        for node in ("a", "b"):  # ... and the dispatcher dies with both events processes,
            kill_events(pool, node)
        redis_server.client().delete(LEADER_KEY)
        # ... having committed an offer of the caller to the agent, never sent (no leg).
        Agent.update(state="ringing", call_id=call.id, state_since=utcnow()).where(
            Agent.id == agent_id).execute()
        QueueEntry.update(status="offering", offering_agents=[agent_id], offers=1,
                          offer_leg_uuids={agent_id: str(uuid.uuid4())}, offered_at=utcnow()
                          ).where(QueueEntry.call_id == call.id).execute()
        QueueMember.create(queue=queue_id, agent=agent_id)
        start_node_events(pool, "a", sim)  # the new dispatcher, while b is still away
        wait_until(lambda: entry_status(call.id) == "answered", 30, 0.2,
                   "the caller of a served once the new dispatcher rebuilt the queue")
        entry = entries_of(call.id)[-1]
        assert entry.agent_id == agent_id and entry.offers == 2
        assert call_row(call.id).agent_leg_uuid in sim.channels
    finally:
        sim_b.start()
        if "events-b" not in pool.procs:
            start_node_events(pool, "b", sim_b)
    wait_until(lambda: node_up(pool, "b"), 30, 0.2, "node b back")
    sim.hangup(call.fs_uuid)


# ----- two real FreeSWITCH instances -----------------------------------------------------
@pytest.fixture(scope="module")
def switches(tmp_path_factory):
    """Two real switches, each with its own auto-answering phones 1001-1003."""
    a = start_real_freeswitch(tmp_path_factory.mktemp("fs-qa"))
    try:
        b = start_real_freeswitch(tmp_path_factory.mktemp("fs-qb"))
    except BaseException:
        stop_real_freeswitch(a)
        raise
    yield {"a": a, "b": b}
    stop_real_freeswitch(a)
    stop_real_freeswitch(b)


@pytest.fixture
def real_pool(request, stack_factory, db_url, redis_server):
    if "sqlite" not in db_url:
        pytest.skip("two real switches: on SQLite only (the simulated variant runs on both)")
    request.getfixturevalue("bound_db")
    while SIM_STACKS:
        stop_stack(SIM_STACKS.pop(), redis_server)
    switches = request.getfixturevalue("switches")  # started only when needed
    nodes = [{"name": name, "host": s.env["FREESWITCH_HOST"],
              "port": int(s.env["FREESWITCH_PORT"]), "password": s.env["FREESWITCH_PASSWORD"],
              "gateway_dir": s.env["FREESWITCH_GATEWAY_DIR"]} for name, s in switches.items()]
    stack = stack_factory(db_url, None, events=False, web=False, DEFAULT_GATEWAY="farend",
                          FREESWITCH_NODES=json.dumps(nodes), FREESWITCH_PROFILE="external",
                          FREESWITCH_ORIGINATE_TIMEOUT="4", AGENT_WRAPUP_CHECK_INTERVAL="0.2")
    for name in switches:
        start_node_events(stack, name)
    stack.start_web()
    wait_until(lambda: nodes_connected(stack, switches), 30, 0.2,
               "both events processes connected")
    yield stack
    stop_stack(stack, redis_server)


class Caller:
    """A call from one switch's carrier side to a number routed to the queue."""

    def __init__(self, node, switch, number):
        self.node, self.switch, self.number = node, switch, number
        self.far_uuid = str(uuid.uuid4())
        reply = switch.cli(f"bgapi originate {{origination_uuid={self.far_uuid}}}"
                           f"sofia/gateway/carrier/{number} &echo()")
        assert "+OK" in reply, reply
        self.call = None
        self.served = None  # (agent leg, bridge_uuid on its own switch, leg on the other?)

    def row(self):
        return Call.get_or_none((Call.to_number == self.number) & (Call.direction == "inbound"))

    def hang_up(self):
        self.switch.cli(f"uuid_kill {self.far_uuid}")


def serve_and_hang_up(callers, switches):
    """Once a caller is bridged, note what its own switch (and the other) say about its
    agent leg, then the caller hangs up; True when every caller was served."""
    for caller in callers:
        if caller.served is not None:
            continue
        call = Call.get_by_id(caller.call.id)
        if call.bridged_at is None:
            continue
        other = switches["b" if caller.node == "a" else "a"]
        bridged_to = caller.switch.cli(f"uuid_getvar {call.fs_uuid} bridge_uuid").strip()
        caller.served = (call.agent_leg_uuid, bridged_to,
                         other.cli(f"uuid_exists {call.agent_leg_uuid}").strip())
        caller.hang_up()
    return all(c.served is not None for c in callers)


def test_callers_on_two_real_switches_share_one_agent_pool(real_pool, switches):
    agents = [make_agent(real_pool, f"user/{p}", wrapup_seconds=0, prefix="rtwo")
              for p in ("1001", "1002")]
    queue_id = make_queue([], wrapup_seconds=0)
    callers = []
    try:
        for node in "abab":  # 4 callers, 2 per switch, oldest first a, b, a, b
            callers.append(Caller(node, switches[node], route_to(queue_id)))
            caller = callers[-1]
            caller.call = wait_until(caller.row, 15, message=f"the inbound call on {node}")
            wait_until(lambda: len(entries_of_queue(queue_id, "waiting")) == len(callers), 15,
                       message="the caller waiting")
        join_queue(queue_id, agents)
        wait_until(lambda: serve_and_hang_up(callers, switches), 60, 0.1,
                   "every caller bridged to an agent")
        wait_until(lambda: all(agent_state(real_pool, a) == "available" for a in agents), 20,
                   0.2, "both agents available again")
    finally:
        for caller in callers:
            caller.hang_up()
    entries = entries_of_queue(queue_id)
    assert len(entries) == 4 and {e.status for e in entries} == {"answered"}
    by_call = {e.call_id: e for e in entries}
    for caller in callers:
        entry = by_call[caller.call.id]
        leg, bridged_to, on_other = caller.served
        assert entry.node == caller.node == Call.get_by_id(caller.call.id).node
        # Bridged on its own switch to an agent leg of that same switch; the other
        # switch never had that leg.
        assert leg == entry.offer_leg_uuids[entry.agent_id] and bridged_to == leg, \
            (caller.node, leg, bridged_to)
        assert on_other == "false", (caller.node, leg, on_other)
    check_pool_rules(entries, agents)
    assert {e.agent_id for e in entries} == set(agents)
