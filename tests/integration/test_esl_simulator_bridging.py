"""The simulator bridges an agent and a customer as the real switch does (issue 12).

Checked against tests/fixtures/esl/22_bridge_agent_first_*.capture and
22_call_control_transfer_inline.capture (the real FreeSWITCH of ../shared/freeswitch): the
same originate / uuid_transfer answered by the same events of our two legs, in the same
order, with the same header names, Channel-Call-UUID, Bridge-A/B and BACKGROUND_JOB bodies.
(The far end's and the phone's own channels, which the real rig also runs, are not ours.)
"""
import uuid

import pytest

from tests.esl_sim import ESLSimulator
from tests.esl_sim import transcripts as tr
from tests.integration.test_esl_simulator import RawClient

SUBSCRIBE = ("event plain CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER "
             "CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")


@pytest.fixture
def sim():
    simulator = ESLSimulator(port=0, speed=4.0)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def client(sim):
    c = RawClient(sim.port).auth()
    c.command(SUBSCRIBE)
    yield c
    c.close()


def originate(agent_uuid, customer_uuid, call_id, number, user="1001", cid="5551234"):
    return (f"originate {{origination_uuid={agent_uuid},cc_call_id={call_id},cc_leg=agent,"
            f"originate_timeout=10}}user/{user} &bridge({{origination_uuid={customer_uuid},"
            f"cc_call_id={call_id},cc_leg=customer,"
            + (f"origination_caller_id_number={cid}," if cid else "")
            + f"originate_timeout=10}}sofia/gateway/farend/{number})")


def ours(events, uuids):
    """Events of our legs and the jobs, as (name, leg) with leg 'A'/'B'/None."""
    names = {u: leg for leg, u in zip("AB", uuids)}
    out = []
    for ev in events:
        if ev.name == "BACKGROUND_JOB" or ev.get("Unique-ID") in names:
            out.append((ev, names.get(ev.get("Unique-ID"))))
    return out


def captured_legs(name, n):
    events = [e for _, e in tr.capture_events(name)]
    return ours(events, real_ids(n))


def run(client, command, until, uuids, kill=None, timeout=5.0):
    client.command("bgapi " + command)
    got = []
    while True:
        ev = client.wait_event(lambda e: True, timeout)
        got.append(ev)
        if kill and ev.name == kill[0] and ev.get("Unique-ID") == uuids[0]:
            assert client.api(f"uuid_kill {uuids[kill[1]]}").startswith("+OK")
            kill = None
        if until(got):
            break
    return ours(got, uuids)


def hangups(n):
    return lambda got: (sum(e.name == "CHANNEL_HANGUP_COMPLETE" for e in got) >= n
                        and any(e.name == "BACKGROUND_JOB" for e in got))


def compare(mine, real, uuids, real_uuids):
    assert [(e.name, leg) for e, leg in mine] == [(e.name, leg) for e, leg in real]
    for (m, _), (r, _) in zip(mine, real):
        assert m.header_names == r.header_names, (m.name, set(m.header_names) ^ set(r.header_names))
        real_map = dict(zip(real_uuids, uuids))
        for key in ("Channel-Call-UUID", "Other-Leg-Unique-ID", "Bridge-A-Unique-ID",
                    "Bridge-B-Unique-ID", "variable_cc_leg", "Hangup-Cause"):
            assert m.get(key) == real_map.get(r.get(key), r.get(key)), (m.name, key)
        if m.name == "BACKGROUND_JOB":
            word, _, rest = r.body.strip().partition(" ")
            assert m.body.strip() == f"{word} {real_map.get(rest, rest)}"


def legs():
    return str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())


def real_ids(n):
    return [f"aaaaaaaa-0000-4000-8000-00000000000{n}", f"bbbbbbbb-0000-4000-8000-00000000000{n}"]


def test_agent_first_answered_bridged_and_killed_like_the_switch(sim, client):
    a, b, call = legs()
    mine = run(client, originate(a, b, call, "answer-1"), hangups(2), [a, b],
               kill=("CHANNEL_BRIDGE", 1))
    compare(mine, captured_legs("22_bridge_agent_first_answered", 1), [a, b], real_ids(1))
    bridge = next(e for e, _ in mine if e.name == "CHANNEL_BRIDGE")
    assert (bridge.get("Bridge-A-Unique-ID"), bridge.get("Bridge-B-Unique-ID")) == (a, b)
    assert bridge.get("variable_cc_call_id") == call
    assert bridge.get("Channel-Name") == "sofia/internal/gw+phone1001@127.0.0.1:21224"
    assert not sim.channels


def test_customer_busy_hangs_the_agent_up_like_the_switch(sim, client):
    a, b, call = legs()
    mine = run(client, originate(a, b, call, "486-1", cid=None), hangups(2), [a, b])
    compare(mine, captured_legs("22_bridge_agent_first_customer_busy", 2), [a, b], real_ids(2))
    assert not sim.channels


def test_agent_no_answer_never_creates_the_customer_like_the_switch(sim, client):
    a, b, call = legs()
    assert client.api("global_setvar farend_phone_1001=noanswer") == "+OK\n"
    mine = run(client, originate(a, b, call, "answer-2"), hangups(1), [a, b])
    compare(mine, captured_legs("22_bridge_agent_first_agent_noanswer", 3), [a, b], real_ids(3))
    assert not sim.channels


@pytest.mark.parametrize("behaviour,cause", [("busy", "USER_BUSY"), ("reject", "CALL_REJECTED")])
def test_a_busy_or_rejecting_phone_fails_the_originate(sim, client, behaviour, cause):
    a, b, call = legs()
    client.api(f"global_setvar farend_phone_1002={behaviour}")
    mine = run(client, originate(a, b, call, "answer-3", user="1002"), hangups(1), [a, b])
    names = [(e.name, leg) for e, leg in mine]
    assert ("CHANNEL_CREATE", "B") not in names
    job = next(e for e, _ in mine if e.name == "BACKGROUND_JOB")
    assert job.body.strip() == f"-ERR {cause}"
    hangup = next(e for e, _ in mine if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert hangup.get("Hangup-Cause") == cause


def test_an_unregistered_phone_is_refused(sim, client):
    a, b, call = legs()
    sim.phones.pop("1003")
    client.command("bgapi " + originate(a, b, call, "answer-4", user="1003"))
    job = client.wait_event(lambda e: e.name == "BACKGROUND_JOB")
    assert job.body.strip() == "-ERR USER_NOT_REGISTERED"
    assert not sim.channels


def test_transfer_inline_bridges_a_new_leg_like_the_switch(sim, client):
    held, new = str(uuid.uuid4()), str(uuid.uuid4())
    client.command(f"bgapi originate {{origination_uuid={held},hangup_after_bridge=true}}"
                   "sofia/gateway/farend/answer-t1 &park()")
    client.wait_event(lambda e: e.name == "CHANNEL_ANSWER" and e.get("Unique-ID") == held)
    client.drain()
    assert client.api(f"uuid_transfer {held} bridge:{{origination_uuid={new}}}"
                      "sofia/gateway/farend/answer-t2 inline") == "+OK\n"
    got = [client.wait_event(lambda e: True) for _ in range(3)]
    assert client.api(f"uuid_kill {new}") == "+OK\n"
    got += [client.wait_event(lambda e: True) for _ in range(3)]
    real_held = "21111111-2222-4333-8444-555566667777"
    real_new = "31111111-2222-4333-8444-555566667777"
    real = [e for _, e in tr.capture_events("22_call_control_transfer_inline")]
    real = [e for e in real if e.get("Unique-ID") in (real_held, real_new)][2:]  # after t1 answered
    mine = [(e, {held: "A", new: "B"}.get(e.get("Unique-ID"))) for e in got]
    real = [(e, {real_held: "A", real_new: "B"}.get(e.get("Unique-ID"))) for e in real]
    compare(mine, real, [held, new], [real_held, real_new])
    assert not sim.channels


def test_customer_first_bridges_the_agent_phone_in(sim, client):
    customer, agent, call = legs()
    client.command(f"bgapi originate {{origination_uuid={customer},cc_call_id={call},"
                   "cc_leg=customer}sofia/gateway/farend/answer-5 &park()")
    client.wait_event(lambda e: e.name == "CHANNEL_ANSWER" and e.get("Unique-ID") == customer)
    reply = client.api(f"uuid_transfer {customer} '^^;bridge:{{origination_uuid={agent},"
                       f"cc_call_id={call},cc_leg=agent,originate_timeout=45}}user/1002' inline")
    assert reply == "+OK\n"
    bridge = client.wait_event(lambda e: e.name == "CHANNEL_BRIDGE")
    assert (bridge.get("Bridge-A-Unique-ID"), bridge.get("Bridge-B-Unique-ID")) == (customer, agent)
    assert sim.channels[agent].variables["cc_leg"] == "agent"
    assert client.api(f"uuid_kill {customer}") == "+OK\n"
    ends = [client.wait_event(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE") for _ in range(2)]
    assert {e.get("Unique-ID") for e in ends} == {customer, agent}
    assert not sim.channels
