"""The simulator runs attended transfers and eavesdrop as the real switch does (issue 12).

Checked against tests/fixtures/esl/23_consult_transfer_complete.capture and
23_monitor_eavesdrop.capture (the real FreeSWITCH of ../shared/freeswitch): the same commands
(uuid_setvar park_after_bridge, uuid_transfer to a consult leg, uuid_broadcast hold music,
uuid_bridge, originate &eavesdrop, uuid_recv_dtmf) get the same replies and the same events of
our legs, in the same order, with the same header names, Channel-Call-UUID, Other-Leg,
Bridge-A/B and hangup causes. (The far end's and the phones' own channels are not ours.)
"""
import uuid

import pytest

from tests.esl_sim import ESLSimulator
from tests.esl_sim import transcripts as tr
from tests.integration.test_esl_simulator import RawClient

CONSULT = "23_consult_transfer_complete"
MONITOR = "23_monitor_eavesdrop"
KEYS = ("Channel-Call-UUID", "Other-Leg-Unique-ID", "Bridge-A-Unique-ID", "Bridge-B-Unique-ID",
        "variable_cc_leg", "Hangup-Cause", "Application", "DTMF-Digit")
REAL = {"A": "aaaaaaaa-0000-0000-0000-000000000011", "C": "cccccccc-0000-0000-0000-000000000011",
        "X": "dddddddd-0000-0000-0000-000000000011", "M": "eeeeeeee-0000-0000-0000-000000000011"}


@pytest.fixture
def sim():
    simulator = ESLSimulator(port=0, speed=4.0)
    simulator.start()
    yield simulator
    simulator.stop()


def connect(sim, source):
    """A client subscribed as the capture's client was."""
    client = RawClient(sim.port).auth()
    line = next(c.data.decode().strip() for c in _client_chunks(source)
                if c.data.startswith(b"event "))
    client.command(line)
    return client


def _client_chunks(source):
    return [c for c in tr.parse_capture(tr.fixture_path(source + ".capture").read_bytes())
            if c.direction == tr.CLIENT]


def captured_replies(source):
    chunks = tr.parse_capture(tr.fixture_path(source + ".capture").read_bytes())
    out = []
    for c in chunks:
        if c.direction != tr.CLIENT and c.data.startswith(b"Content-Type: api/response"):
            head, _, rest = c.data.partition(b"\n\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\n")[0])
            out.append(rest[:length].decode())
    return out


def ours(events, names):
    """(event, leg letter) of the events of our legs (and background jobs)."""
    return [(e, names.get(e.get("Unique-ID"))) for e in events
            if e.name == "BACKGROUND_JOB" or e.get("Unique-ID") in names]


def compare(mine, real, mapping):
    """Same names, legs, header names and key values (real uuids mapped to ours)."""
    assert [(e.name, leg) for e, leg in mine] == [(e.name, leg) for e, leg in real]
    for (m, _), (r, _) in zip(mine, real):
        assert m.header_names == r.header_names, (m.name, set(m.header_names) ^ set(r.header_names))
        for key in KEYS:
            assert m.get(key) == mapping.get(r.get(key), r.get(key)), (m.name, key)
        if m.name == "BACKGROUND_JOB":
            word, _, rest = r.body.strip().partition(" ")
            assert m.body.strip() == f"{word} {mapping.get(rest, rest)}"


def collect(client, until, timeout=5.0):
    got = []
    while not until(got):
        got.append(client.wait_event(lambda e: True, timeout))
    return got


def count(name, uid=None):
    return lambda got: any(e.name == name and (uid is None or e.get("Unique-ID") == uid)
                           for e in got)


def bridged(sim, client, a, c, number, call_id):
    """api originate the agent (1001) with &bridge to the customer; wait for their bridge."""
    tag = f"cc_call_id={call_id}," if call_id else ""  # the captures' originates had none
    reply = client.api(f"originate {{origination_uuid={a},{tag}cc_leg=agent}}"
                       f"user/1001 &bridge({{origination_uuid={c},{tag}"
                       f"cc_leg=customer}}sofia/gateway/farend/{number})")
    assert reply == f"+OK {a}\n"
    return collect(client, count("CHANNEL_BRIDGE", a))


def test_consult_and_complete_like_the_switch(sim):
    client = connect(sim, CONSULT)
    a, c, x, call = (str(uuid.uuid4()) for _ in range(4))
    bridged(sim, client, a, c, "answer-cap1", None)
    replies = [client.api(f"uuid_setvar {c} park_after_bridge true")]
    replies.append(client.api(
        f"uuid_transfer {a} '^^;set:hangup_after_bridge=false;set:continue_on_fail=true;"
        f"bridge:{{origination_uuid={x},cc_leg=agent,originate_timeout=4}}"
        "user/1002;park' inline"))
    got = collect(client, lambda g: any(e.name == "CHANNEL_BRIDGE" and
                                        e.get("Other-Leg-Unique-ID") == x for e in g))
    replies.append(client.api(f"uuid_broadcast {c} endless_playback::${{hold_music}} aleg"))
    assert sim.channels[c].hold_music == "${hold_music}"
    replies.append(client.api(f"uuid_bridge {c} {x}"))
    got += collect(client, count("CHANNEL_BRIDGE", c))
    assert sim.channels[c].bridge is sim.channels[x].bridge
    assert a in sim.channels and sim.channels[a].bridge is None  # the agent's leg parks
    replies.append(client.api(f"uuid_kill {a} NORMAL_CLEARING"))
    got += collect(client, count("CHANNEL_HANGUP_COMPLETE", a))
    replies.append(client.api(f"uuid_kill {c}"))
    got += collect(client, count("CHANNEL_HANGUP_COMPLETE", c))
    mapping = {REAL["A"]: a, REAL["C"]: c, REAL["X"]: x}
    assert replies == [r.replace(REAL["X"], x) for r in captured_replies(CONSULT)[1:]]
    real = [e for _, e in tr.capture_events(CONSULT)]
    first_bridge = next(i for i, e in enumerate(real) if e.name == "CHANNEL_BRIDGE")
    names = {a: "A", c: "C", x: "X"}
    compare(ours(got, names), ours(real[first_bridge + 1:], {v: k for k, v in REAL.items()}),
            mapping)
    assert not sim.channels
    client.close()


def test_consult_cancel_brings_the_agent_back(sim):
    """No capture of cancel: the consult leg's hangup parks the agent, uuid_bridge rejoins."""
    client = connect(sim, CONSULT)
    a, c, x, call = (str(uuid.uuid4()) for _ in range(4))
    bridged(sim, client, a, c, "answer-cap3", call)
    client.api(f"uuid_setvar {c} park_after_bridge true")
    client.api(f"uuid_transfer {a} '^^;set:hangup_after_bridge=false;set:continue_on_fail=true;"
               f"bridge:{{origination_uuid={x},cc_leg=agent}}user/1002;park' inline")
    collect(client, lambda g: any(e.name == "CHANNEL_BRIDGE" and
                                  e.get("Other-Leg-Unique-ID") == x for e in g))
    assert client.api(f"uuid_kill {x} NORMAL_CLEARING") == "+OK\n"
    got = collect(client, count("CHANNEL_PARK", a))
    assert [(e.name, e.get("Unique-ID")) for e in got] == [
        ("CHANNEL_HANGUP_COMPLETE", x), ("CHANNEL_UNBRIDGE", a), ("CHANNEL_PARK", a)]
    assert {a, c} <= set(sim.channels) and x not in sim.channels
    assert client.api(f"uuid_bridge {a} {c}") == f"+OK {c}\n"
    bridge = client.wait_event(lambda e: e.name == "CHANNEL_BRIDGE")
    assert (bridge.get("Unique-ID"), bridge.get("Bridge-A-Unique-ID"),
            bridge.get("Bridge-B-Unique-ID")) == (a, a, c)
    assert client.api(f"uuid_kill {c}") == "+OK\n"
    ends = collect(client, lambda g: sum(e.name == "CHANNEL_HANGUP_COMPLETE" for e in g) >= 1
                   and count("CHANNEL_UNBRIDGE")(g))
    assert ends[0].get("Unique-ID") in (a, c)
    # The agent's leg parks (hangup_after_bridge=false, `park`): production hangs it up.
    if a in sim.channels:
        assert client.api(f"uuid_kill {a}") == "+OK\n"
    sim.wait_for(lambda: not sim.channels)
    client.close()


def test_a_consult_phone_that_does_not_answer_parks_the_agent(sim):
    client = connect(sim, CONSULT)
    a, c, x, call = (str(uuid.uuid4()) for _ in range(4))
    bridged(sim, client, a, c, "answer-cap4", call)
    sim.global_vars["farend_phone_1002"] = "busy"
    client.api(f"uuid_setvar {c} park_after_bridge true")
    client.api(f"uuid_transfer {a} '^^;set:hangup_after_bridge=false;"
               f"bridge:{{origination_uuid={x},cc_leg=agent}}user/1002;park' inline")
    got = collect(client, count("CHANNEL_PARK", a))
    hangup = next(e for e in got if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert (hangup.get("Unique-ID"), hangup.get("Hangup-Cause")) == (x, "USER_BUSY")
    assert {a, c} <= set(sim.channels)
    client.api(f"uuid_kill {a}")
    client.api(f"uuid_kill {c}")
    sim.wait_for(lambda: not sim.channels)
    client.close()


def test_eavesdrop_listen_whisper_barge_like_the_switch(sim):
    client = connect(sim, MONITOR)
    a, c, m, call = (str(uuid.uuid4()) for _ in range(4))
    bridged(sim, client, a, c, "answer-cap2", None)
    client.command(f"bgapi originate {{origination_uuid={m},cc_leg=agent,"
                   f"originate_timeout=4}}user/1003 &eavesdrop({a})")
    got = collect(client, count("CHANNEL_EXECUTE", m))
    assert sim.channels[m].eavesdrop_target == a
    assert sim.channels[m].eavesdrop_mode == "listen"
    replies = []
    for digit, mode in (("2", "whisper"), ("3", "barge"), ("0", "listen")):
        replies.append(client.api(f"uuid_recv_dtmf {m} {digit}"))
        got += collect(client, count("DTMF", m))
        assert sim.channels[m].eavesdrop_mode == mode
    replies.append(client.api(f"uuid_kill {m}"))
    got += collect(client, count("CHANNEL_HANGUP_COMPLETE", m))
    replies.append(client.api(f"uuid_kill {a}"))
    got += collect(client, count("CHANNEL_HANGUP_COMPLETE", c))
    assert replies == [r.replace(REAL["M"], m) for r in captured_replies(MONITOR)[1:]]
    real = [e for _, e in tr.capture_events(MONITOR)]
    first_bridge = next(i for i, e in enumerate(real) if e.name == "CHANNEL_BRIDGE")
    mapping = {REAL["A"]: a, REAL["C"]: c, REAL["M"]: m}
    real_names = {REAL["A"]: "A", REAL["C"]: "C", REAL["M"]: "M"}
    compare(ours(got, {a: "A", c: "C", m: "M"}), ours(real[first_bridge + 1:], real_names),
            mapping)
    assert not sim.channels
    client.close()


@pytest.mark.parametrize("start_vars,mode", [("", "listen"),
                                             ("eavesdrop_whisper_aleg=true,", "whisper"),
                                             ("eavesdrop_whisper_aleg=true,"
                                              "eavesdrop_whisper_bleg=true,", "barge")])
def test_eavesdrop_starts_in_the_mode_asked_and_ends_with_its_target(sim, start_vars, mode):
    client = connect(sim, MONITOR)
    a, c, m, call = (str(uuid.uuid4()) for _ in range(4))
    bridged(sim, client, a, c, "answer-cap5", call)
    client.command(f"bgapi originate {{origination_uuid={m},{start_vars}cc_leg=agent}}"
                   f"user/1003 &eavesdrop({a})")
    collect(client, count("CHANNEL_EXECUTE", m))
    assert sim.channels[m].eavesdrop_mode == mode
    client.api(f"uuid_kill {a}")
    sim.wait_for(lambda: not sim.channels)  # the monitor leg went with the agent's
    client.close()
