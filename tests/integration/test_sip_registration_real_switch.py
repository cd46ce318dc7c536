"""A registered gateway stays registered through its refreshes (issue 11, item 2).

The Procfile's web and events processes run against the real FreeSWITCH of
../shared/freeswitch (a gateway of its external profile registering as user 1010
to its own internal profile) and against the simulator, which refreshes
registrations as the switch does (tests/fixtures/esl/21_gateway_refresh_*).
Through a refresh the `sip` channel says nothing and GET /api/sip/status stays
registered; a real failure (403) is still reported at once.

The expiry is 60 s, the least the API accepts: the real switch refreshes it
within 45 s (sofia-sip refreshes early, FreeSWITCH's own timer at expiry - 15 s),
so the test takes under a minute there.
"""
import time

import gevent
import pytest

from tests.conftest import ChannelRecorder, wait_until
from tests.esl_sim import ESLSimulator

EXPIRY = 60
SIM_SPEED = 15.0  # the simulator refreshes at (60 - 15) / 15 = 3 s
REFRESH_WAIT = {"real": 75, "sim": 15}
NAME = "reg-refresh"
NOT_ROUTINE = {"sip.unregistered", "sip.trying", "sip.failed", "sip.fail_wait", "sip.down"}


@pytest.fixture
def sip_channel(redis_server):
    recorder = ChannelRecorder(redis_server.url, ("sip",))
    gevent.sleep(0.1)
    yield recorder
    recorder.close()


@pytest.fixture(params=["real", "sim"])
def registrar(request, stack_factory, db_url, tmp_path):
    """(kind, stack, SIP port of a registrar taking user 1010 / password 1010, refuse()).

    refuse() makes the registrar answer the next REGISTER with 403: the switch's
    internal profile does so for a wrong password by itself; the simulator is told.
    """
    if request.param == "real":
        if not db_url.startswith("sqlite"):
            # Registration state does not depend on the database, and a real refresh takes
            # ~30 s: the real switch is waited for once, on SQLite.
            pytest.skip("the real-switch refresh runs once, on SQLite")
        switch = request.getfixturevalue("real_freeswitch")
        stack = stack_factory(db_url, None, **switch.env)
        yield "real", stack, switch.info["internal_sip_port"], lambda: None
        stack.http.delete(stack.url(f"/api/sip/gateways/{NAME}"), timeout=15)
        return
    sim = ESLSimulator(port=0, recordings_root=str(tmp_path / "rec"), speed=SIM_SPEED)
    sim.gateway_dir = str(tmp_path / "gateways")
    sim.start()

    def refuse():
        sim.registration_results[NAME] = ("FAILED", 403, "Forbidden")
    try:
        yield "sim", stack_factory(db_url, sim), 5060, refuse
    finally:
        sim.stop()


def status_of(stack):
    body = stack.get("/api/sip/status").json()
    return next((g for g in body["gateways"] if g["name"] == NAME), None)


def test_a_refresh_is_silent_and_a_real_failure_is_reported_at_once(registrar, sip_channel):
    kind, stack, port, refuse = registrar
    response = stack.post("/api/sip/configure", {
        "name": NAME, "provider": "asterisk", "host": "127.0.0.1", "port": port,
        "username": "1010", "password": "1010", "register": True, "expiry": EXPIRY})
    assert response.status_code in (200, 201), response.text
    wait_until(lambda: any(m["type"] == "sip.registered" for m in sip_channel.messages), 20,
               0.1, "sip.registered")
    entry = status_of(stack)
    assert entry["registered"] is True and entry["failure_reason"] is None
    registered_at, told = entry["last_event_at"], len(sip_channel.messages)

    # Through at least one refresh (a newer event applied), and a few seconds after it.
    deadline, refreshed_at, polls = time.monotonic() + REFRESH_WAIT[kind], None, []
    while time.monotonic() < deadline:
        entry = status_of(stack)
        polls.append((entry["state"], entry["registered"], entry["failure_reason"]))
        if refreshed_at is None and entry["last_event_at"] != registered_at:
            refreshed_at = time.monotonic()
        if refreshed_at is not None and time.monotonic() > refreshed_at + 3:
            break
        gevent.sleep(0.25)
    assert refreshed_at is not None, f"no refresh within {REFRESH_WAIT[kind]} s"
    assert set(polls) == {("REGED", True, None)}
    during = [m["type"] for m in sip_channel.messages[told:]]
    assert not NOT_ROUTINE & set(during), during
    assert not any(m["data"].get("failure_reason") for m in sip_channel.messages)

    # Broken: the registrar refuses (wrong password on the switch) -> reported at once.
    broken_at = len(sip_channel.messages)
    refuse()
    response = stack.put("/api/sip/credentials", {"name": NAME, "password": "wrong-1010"})
    assert response.status_code == 200, response.text
    failed = wait_until(lambda: next((m for m in sip_channel.messages[broken_at:]
                                      if m["type"] == "sip.failed"), None), 15, 0.1,
                        "sip.failed after the password was broken")
    assert failed["data"]["failure_reason"] == "403 Forbidden"
    entry = status_of(stack)
    assert entry["registered"] is False and entry["failure_reason"] == "403 Forbidden"

