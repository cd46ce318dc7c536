"""Reconciliation through reconnects, against the real FreeSWITCH and the simulator (issue 11).

The Procfile's web and events processes run against a switch; many calls are placed
while the events process is killed (SIGKILL: its Event Socket connection cut, no
goodbye) and restarted several times, so that calls ring and answer while nobody
listens and reconciliation must catch them up. Then `show channels` is compared with
the database: no live channel belongs to an ended call, no answered call is marked
failed, and every call ended through the API ends with the right status and leaves
no channel behind. On the simulator, `show channels` lags as it does on the switch.
"""
import os
import re
import signal
import time
from datetime import datetime

import gevent
import pytest

from services.calls.state import GONE_REASON
from tests.conftest import wait_until
from tests.integration.conftest import RealFreeSwitch

CALLS = 30
RESTART_AT = (4, 11, 18, 25)  # kill the events process before these calls
LIVE = {"initiated", "ringing", "in-progress"}
LIFE = 4  # seconds a far end that hangs up by itself stays up (longer: too many RTP ports)


class SwitchView:
    """What the switch has now, asked directly (not through the service)."""

    def __init__(self, channels, exists, numbers, remote_hangup):
        self.channels = channels          # () -> set of channel uuids (`show channels`)
        self.exists = exists              # (uuid) -> bool (uuid_exists)
        self.numbers = numbers            # (n) -> destination of call n
        self.remote_hangup = remote_hangup  # (destination) -> the far end hangs up by itself
        self.placed_at = {}               # call id -> (wall-clock time, outage number or None)
        self.outage_ended = []            # outage number -> when its events process connected


def real_view(switch: RealFreeSwitch):
    # Half hang up by themselves: each call up holds two RTP sessions (our leg and
    # the far end's) of the switch's 100 RTP ports; past that it answers
    # DESTINATION_OUT_OF_ORDER.
    kinds = ("answer-after-1-{}", f"hangup-after-{LIFE}-{{}}", "answer-{}",
             f"hangup-after-{LIFE}-{{}}")
    return SwitchView(switch.channels,
                      switch.exists,
                      lambda n: kinds[n % 4].format(n),
                      lambda number: number.startswith("hangup-after-"))


def sim_view(sim):
    # The simulator's far end hangs up (777...) 0.5 s after answering: a call that short
    # can live and die wholly inside an outage, so none is placed here.
    kinds = ("1555200{:04d}", "1555300{:04d}")
    return SwitchView(lambda: {u for u, ch in sim.channels.items() if not ch.ended},
                      lambda u: sim.api("uuid_exists", u) == "true",
                      lambda n: kinds[n % 2].format(n),
                      lambda number: False)


@pytest.fixture(params=["real", "sim"])
def switch_stack(request, stack_factory, db_url):
    """(stack, SwitchView): web + events against the real switch or the simulator."""
    quick = {"RECONCILE_INTERVAL": "2", "FREESWITCH_TIMEOUT": "2"}
    sim = None
    if request.param == "real":
        switch = request.getfixturevalue("real_freeswitch")
        stack = stack_factory(db_url, None, **switch.env, **quick)
        view = real_view(switch)
    else:
        sim = request.getfixturevalue("sim")
        sim.show_channels_lag = 0.15  # as measured on the real switch (20_show_channels_lag)
        stack, view = stack_factory(db_url, sim, **quick), sim_view(sim)
    try:
        yield stack, view
    finally:
        # Stopped now, not at the module's end: an events process left running against
        # the other switch would reconcile this database too (and close its calls).
        stack.stop()
        if sim is not None:
            sim.show_channels_lag = 0.0


def connections_made(stack):
    return stack.log("events").count("connected to FreeSWITCH at")


def connection_times(stack):
    """Wall-clock times at which each events process connected, in order."""
    stamps = re.findall(r"^(\S+ \S+) INFO \S+: connected to FreeSWITCH at",
                        stack.log("events"), re.M)
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f").timestamp() for s in stamps]


def lived_and_died_unheard(view, call_id):
    """True when the call may have been placed, answered and hung up wholly inside an
    outage of the events process: then nothing is left to learn about it (no channel,
    no event), and the service must say so (failed, GONE_REASON) rather than guess."""
    placed_at, outage = view.placed_at.get(call_id, (None, None))
    if outage is None or outage >= len(view.outage_ended):
        return False
    return placed_at + LIFE < view.outage_ended[outage]


def kill_and_restart_events(stack, started):
    """Cut the events process's ESL connection the hard way, and start a new one.

    The one killed has connected first: an outage longer than a call's life would leave
    nothing to learn about the call (its answer neither seen nor in any channel).
    """
    wait_until(lambda: connections_made(stack) >= started, 20, 0.05,
               "the events process to connect before it is cut")
    gevent.sleep(0.5)  # and to reconcile what it missed
    proc, log = stack.procs.pop("events")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    log.close()
    stack.start_events()


def calls_by_id(stack):
    resp = stack.get("/api/calls/history", params={"page_size": 500})
    assert resp.status_code == 200, resp.text[:300]
    return {c["id"]: c for c in resp.json()}


def leaked(stack, view):
    """Calls the database has ended while the switch still has their channel."""
    ended = {c["fs_uuid"]: c for c in calls_by_id(stack).values()
             if c["fs_uuid"] and c["status"] not in LIVE}
    # `show channels` lags: a channel it lists may be gone already; uuid_exists knows.
    return [ended[u] for u in view.channels() if u in ended and view.exists(u)]


def mismatches(stack, view, placed):
    """Calls placed that are not where the switch says they are (up and answered, or
    hung up by the far end), and leaked ones; empty when the two agree."""
    calls = calls_by_id(stack)
    wrong = []
    for call_id, number in placed.items():
        expected = "completed" if view.remote_hangup(number) else "in-progress"
        call = calls[call_id]
        if (expected == "completed" and call["status"] == "failed"
                and call["status_reason"] == GONE_REASON
                and lived_and_died_unheard(view, call_id)):
            continue
        if call["status"] != expected:
            trail = [(e["source"], e["event_name"], e["to_status"]) for e in
                     stack.get(f"/api/calls/{call_id}/events").json()]
            wrong.append(f"{number}: {call['status']} ({call['status_reason']}, "
                         f"{call['hangup_cause']}), expected {expected}; channel "
                         f"{'up' if view.exists(call['fs_uuid']) else 'gone'}; trail {trail}")
    return wrong + [f"leaked: {c['to_number']} {c['status']}" for c in leaked(stack, view)]


def wait_for_agreement(stack, view, placed, timeout):
    try:
        wait_until(lambda: not mismatches(stack, view, placed), timeout, 0.25,
                   "the database to agree with the switch")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {mismatches(stack, view, placed)}\nevents log:\n"
                             f"{stack.log('events')[-4000:]}") from None


def test_calls_placed_through_reconnects_end_up_where_the_switch_has_them(switch_stack):
    stack, view = switch_stack
    placed, processes = {}, 1
    for n in range(CALLS):
        if n in RESTART_AT:
            kill_and_restart_events(stack, processes)
            processes += 1
        number = view.numbers(n)
        # Placed while the events process `processes` has not connected yet: in outage
        # number processes - 2 (0-based), if it is still out.
        outage = processes - 2 if connections_made(stack) < processes else None
        at = time.time()
        resp = stack.post("/api/calls/start", {"to": number, "gateway": "farend"})
        assert resp.status_code == 201, resp.text[:300]
        placed[resp.json()["id"]] = number
        view.placed_at[resp.json()["id"]] = (at, outage)
        gevent.sleep(0.15)
    wait_until(lambda: connections_made(stack) >= processes, 20, 0.1,
               "the last events process to connect")
    view.outage_ended = connection_times(stack)[1:]

    # Once the last events process has caught up: the switch and the database agree.
    wait_for_agreement(stack, view, placed, 20)
    calls = calls_by_id(stack)
    assert not [c for c in calls.values() if c["status"] == "failed" and c["answered_at"]]

    # A call still ringing when it is ended is rightly `canceled`; the far ends answer within
    # a second, later on a loaded machine: end the calls once none rings any more.
    wait_until(lambda: not [i for i, c in calls_by_id(stack).items()
                            if i in placed and c["status"] in ("initiated", "ringing")],
               20, 0.2, "every call answered (or ended by its far end)")
    for call_id in placed:
        assert stack.post(f"/api/calls/{call_id}/end").status_code == 200
    try:
        wait_until(lambda: all(calls_by_id(stack)[i]["status"] == "completed" for i in placed),
                   20, 0.2, "every call ended through the API to be completed")
    except AssertionError:
        calls = calls_by_id(stack)
        raise AssertionError({i: (calls[i]["status"], calls[i]["status_reason"], placed[i])
                              for i in placed if calls[i]["status"] != "completed"}) from None
    ours = {calls_by_id(stack)[i]["fs_uuid"] for i in placed}
    wait_until(lambda: not [u for u in ours if view.exists(u)], 10, 0.2,
               "the switch to have hung up every call ended")
    # The far ends' legs (adopted by the service) end with them: nothing live is left.
    wait_until(lambda: not [c for c in calls_by_id(stack).values() if c["status"] in LIVE],
               10, 0.2, "no call left live in the database")
    assert not leaked(stack, view)
    events_log = stack.log("events")
    assert "Traceback" not in events_log, events_log[-3000:]
