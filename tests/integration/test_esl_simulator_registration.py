"""The simulator refreshes registrations as the real switch does (issue 11, item 2).

Checked against tests/fixtures/esl/21_gateway_refresh_expire10.capture (the real
FreeSWITCH, a gateway with expire-seconds 10 registering to its own internal
profile): the same gateway_state sequence on registration and on each refresh
(TRYING, REGISTER 200 OK, REGED, then UNREGED, TRYING, REGISTER 200 OK, REGED),
the same header names, and the same timing scaled by the simulator's speed. A
registrar that starts refusing is met at the next refresh, as on the switch.
"""
import os
import time

import pytest

from tests.esl_sim import ESLSimulator
from tests.esl_sim import transcripts as tr
from tests.esl_sim.server import refresh_delay
from tests.integration.test_esl_simulator import RawClient

CAPTURE = "21_gateway_refresh_expire10"
SPEED = 4.0
CYCLE = ["TRYING", "REGISTER", "REGED", "UNREGED", "TRYING", "REGISTER", "REGED"]


@pytest.fixture
def sim(tmp_path):
    simulator = ESLSimulator(port=0, recordings_root=str(tmp_path / "rec"), speed=SPEED)
    simulator.gateway_dir = str(tmp_path / "gateways")
    os.makedirs(simulator.gateway_dir)
    simulator.start()
    yield simulator
    simulator.stop()


def write_gateway(sim, name="reg_gw", expire=10):
    with open(os.path.join(sim.gateway_dir, f"{name}.xml"), "w") as fh:
        fh.write(f'<include><gateway name="{name}"><param name="username" value="1010"/>'
                 '<param name="password" value="1010"/><param name="realm" value="127.0.0.1:5060"/>'
                 '<param name="register" value="true"/>'
                 f'<param name="expire-seconds" value="{expire}"/>'
                 '<param name="retry-seconds" value="30"/></gateway></include>')


def timed_states(client, count, timeout):
    """[(seconds since the first, Event)] of the next `count` gateway_state events."""
    out, deadline = [], time.monotonic() + timeout
    while len(out) < count:
        msg = client.next_message(max(0.05, deadline - time.monotonic()))
        event = tr.decode_event(msg)
        if event.subclass == "sofia::gateway_state":
            out.append((time.monotonic(), event))
    start = out[0][0]
    return [(at - start, event) for at, event in out]


def captured_cycle():
    events = [(at, e) for at, e in tr.capture_events(CAPTURE)
              if e.subclass == "sofia::gateway_state"][:len(CYCLE)]
    start = events[0][0]
    return [(at - start, event) for at, event in events]


def test_the_capture_shows_the_switchs_own_refresh():
    captured = captured_cycle()
    assert [e.get("State") for _, e in captured] == CYCLE
    gaps = [round(b[0] - a[0], 1) for a, b in zip(captured, captured[1:])]
    # REGED lasts freq / 2 (freq <= 30), then one gateway-loop tick per step.
    assert gaps == [0.0, 1.0, refresh_delay(10), 1.0, 0.0, 1.0]


def test_registration_and_refresh_match_the_real_switch(sim):
    write_gateway(sim)
    client = RawClient(sim.port).auth()
    client.command("event plain CUSTOM sofia::gateway_state")
    assert "+OK" in client.api("sofia profile external rescan")

    got = timed_states(client, len(CYCLE), timeout=15)
    captured = captured_cycle()

    assert [e.get("State") for _, e in got] == CYCLE
    for (_, mine), (_, real) in zip(got, captured):
        assert mine.header_names == real.header_names
        assert (mine.get("Status"), mine.get("Phrase")) == (real.get("Status"), real.get("Phrase"))
        assert mine.get("Ping-Status") == real.get("Ping-Status")
    # The refresh itself (UNREGED onwards) is timed like the switch's, at the sim's speed.
    refresh = [at for at, _ in got[2:]]
    real = [at for at, _ in captured[2:]]
    for mine_gap, real_gap in zip(
            [b - a for a, b in zip(refresh, refresh[1:])], [b - a for a, b in zip(real, real[1:])]):
        assert abs(mine_gap * SPEED - real_gap) < 0.5, (mine_gap * SPEED, real_gap)
    client.close()


def test_a_registrar_that_starts_refusing_fails_the_next_refresh(sim):
    write_gateway(sim)
    client = RawClient(sim.port).auth()
    client.command("event plain CUSTOM sofia::gateway_state")
    client.api("sofia profile external rescan")
    timed_states(client, 3, timeout=5)  # TRYING, REGISTER, REGED
    sim.registration_results["reg_gw"] = ("FAILED", 403, "Forbidden")

    got = [e for _, e in timed_states(client, 4, timeout=10)]

    assert [e.get("State") for e in got] == ["UNREGED", "TRYING", "FAILED", "FAIL_WAIT"]
    assert (got[2].get("Status"), got[2].get("Phrase")) == ("403", "Forbidden")
    real = [e for _, e in tr.capture_events("21_gateway_register_403")
            if e.get("State") == "FAILED"][0]
    assert got[2].header_names == real.header_names
    assert "<state>FAIL_WAIT</state>" in client.api("sofia xmlstatus gateway reg_gw")
    client.close()
