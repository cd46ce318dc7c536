"""The simulator plays a queue's caller, offer and bridge as the real switch did (issue 13).

Checked against tests/fixtures/esl/24_queue_offer_bridge.capture (the real FreeSWITCH of
../shared/freeswitch): music on the parked inbound caller, an agent leg originated to park,
uuid_break and uuid_bridge of the caller to it, the caller hanging up; and a tone then
sched_hangup. The same commands get the same replies, and the events of our two channels
(caller and agent leg) come in the same order with the same Bridge-A/B and leg tags. Not
compared: CHANNEL_PARK (the simulator does not send it; the engine does not listen to it)
and the far end's and the phone's own channels, which the real rig also runs.
"""
import uuid

import pytest

from tests.esl_sim import ESLSimulator
from tests.esl_sim import transcripts as tr
from tests.integration.test_esl_simulator import RawClient

CAPTURE = "24_queue_offer_bridge.capture"
SUBSCRIBE = ("event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_PARK CHANNEL_BRIDGE "
             "CHANNEL_UNBRIDGE CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
MUSIC = "tone_stream://%(400,200,400,450);%(400,2000,400,450);loops=-1"


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


def real_sequence():
    """The capture's events of the caller and the agent leg, from the agent's originate
    to the end of both: (name, role, Bridge-A role, Bridge-B role, cc_leg)."""
    events = [e for _, e in tr.capture_events(CAPTURE)]
    leg = next(e for e in events if e.name == "CHANNEL_CREATE" and
               e.get("variable_cc_leg") == "agent").get("Unique-ID")
    bridge = next(e for e in events if e.name == "CHANNEL_BRIDGE")
    caller = bridge.get("Bridge-A-Unique-ID")
    start = next(i for i, e in enumerate(events) if e.get("Unique-ID") == leg)
    return _roles(events[start:], caller, leg, stop_after={caller, leg})


def _roles(events, caller, leg, stop_after):
    names = {caller: "caller", leg: "leg"}
    seq, ended = [], set()
    for e in events:
        who = names.get(e.get("Unique-ID"))
        if e.name == "BACKGROUND_JOB" and leg in (e.body or ""):
            who = "job"
        if who is None or e.name == "CHANNEL_PARK":
            continue
        seq.append((e.name, who, names.get(e.get("Bridge-A-Unique-ID")),
                    names.get(e.get("Bridge-B-Unique-ID")), e.get("variable_cc_leg")))
        if e.name == "CHANNEL_HANGUP_COMPLETE":
            ended.add(e.get("Unique-ID"))
            if ended >= stop_after:
                break
    return seq


def test_queue_offer_bridge_and_caller_hangup_like_the_switch(sim, client):
    caller = sim.inbound_call("15550009999", "5551234", answer_after=0.01)
    client.wait_event(lambda e: e.name == "CHANNEL_ANSWER" and e.get("Unique-ID") == caller)
    assert client.api(f"uuid_broadcast {caller} {MUSIC} aleg").startswith("+OK Message sent")
    assert sim.channels[caller].music == MUSIC
    leg, call_id, entry = (str(uuid.uuid4()) for _ in range(3))
    client.command(f"bgapi originate {{cc_queue_entry={entry},hangup_after_bridge=true,"
                   f"origination_uuid={leg},cc_call_id={call_id},cc_leg=agent,"
                   f"originate_timeout=10}}user/1001 &park()")
    got = [client.wait_event(lambda e: e.name == "CHANNEL_CREATE" and e.get("Unique-ID") == leg)]
    got.append(client.wait_event(lambda e: e.name == "CHANNEL_ANSWER"
                                 and e.get("Unique-ID") == leg))
    got.append(client.wait_event(lambda e: e.name == "BACKGROUND_JOB"))
    assert client.api(f"uuid_break {caller} all").startswith("+OK")
    assert sim.channels[caller].music is None
    assert client.api(f"uuid_bridge {caller} {leg}").strip() == f"+OK {leg}"
    got.append(client.wait_event(lambda e: e.name == "CHANNEL_BRIDGE"))
    sim.hangup(caller)
    while sum(e.name == "CHANNEL_HANGUP_COMPLETE" for e in got) < 2:
        got.append(client.wait_event(lambda e: e.name in ("CHANNEL_UNBRIDGE",
                                                          "CHANNEL_HANGUP_COMPLETE")))
    assert _roles(got, caller, leg, {caller, leg}) == real_sequence()
    assert not sim.channels


def test_tone_then_sched_hangup(sim, client):
    caller = sim.inbound_call("15550009998", "5551235", answer_after=0.01)
    client.wait_event(lambda e: e.name == "CHANNEL_ANSWER" and e.get("Unique-ID") == caller)
    assert client.api(f"uuid_break {caller} all").startswith("+OK")
    tone = "tone_stream://%(200,200,480,620);loops=3"
    assert client.api(f"uuid_broadcast {caller} {tone} aleg").startswith("+OK Message sent")
    assert client.api(f"sched_hangup +2 {caller} NORMAL_CLEARING").startswith("+OK")
    assert caller in sim.channels  # not at once
    hangup = client.wait_event(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE", timeout=5)
    assert hangup.get("Unique-ID") == caller and hangup.get("Hangup-Cause") == "NORMAL_CLEARING"
    real = [e for _, e in tr.capture_events(CAPTURE) if e.name == "CHANNEL_HANGUP_COMPLETE"]
    assert real[-2].get("Hangup-Cause") == "NORMAL_CLEARING"  # the second caller's, as here
