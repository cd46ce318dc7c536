"""Quality through the running web, events and worker processes, against the ESL simulator.

A client pushes samples on a live call with PUT /api/calls/<id>/update; the
`calls` channel carries call.quality_degraded once, then call.quality_recovered;
after hangup the worker's job writes the summary and announces it, and the
statistics endpoints count the call.
"""
import datetime

import pytest

from tests.conftest import wait_until

GOOD = {"latency_ms": 60, "jitter_ms": 4, "packet_loss_pct": 0}
BAD = {"latency_ms": 120, "jitter_ms": 55, "packet_loss_pct": 0.2}


@pytest.fixture(scope="module")
def live_stack(stack_factory, db_url, sim):
    stack = stack_factory(db_url, sim, worker=True)
    yield stack
    # stack_factory outlives the database parameter: stop this worker so the
    # next database's jobs are not taken by a worker bound to this one.
    stack.stop()


def live_call(stack, agent="agent-q"):
    call = stack.post("/api/calls/start", {"to": "15557770001", "gateway": "gw1",
                                           "agent_id": agent, "campaign_id": "quality"}).json()

    def answered():
        return stack.get(f"/api/calls/{call['id']}").json()["status"] == "in-progress"
    wait_until(answered, 10, message="the call to be answered")
    return call


def end_and_settle(stack, call_id):
    """End the call and wait for its quality summary, then (briefly) for the job that
    FreeSWITCH's hangup figures trigger, so that this call's jobs do not commit while
    the next test's call events are being written."""
    stack.post(f"/api/calls/{call_id}/end")

    def quality():
        return stack.get(f"/api/calls/{call_id}").json()["quality"] or {}
    wait_until(lambda: "sources" in quality(), 15, message="the quality summary")
    try:
        wait_until(lambda: quality().get("freeswitch") is not None, 3)
    except AssertionError:
        pass  # the hangup event may come without media figures; the summary is what matters


def push(stack, call_id, sample):
    resp = stack.put(f"/api/calls/{call_id}/update", {"quality": sample})
    assert resp.status_code == 200, resp.text
    return resp.json()


def types_for(channel, call_id, wanted):
    return [m["type"] for m in channel.for_call(call_id) if m["type"] in wanted]


ALERTS = ("call.quality_degraded", "call.quality_recovered")


def test_degraded_once_then_recovered_then_summarized(live_stack, calls_channel):
    stack = live_stack
    call = live_call(stack)
    for sample in [GOOD, GOOD, BAD, BAD]:
        push(stack, call["id"], sample)
    assert types_for(calls_channel, call["id"], ALERTS) == []
    after = push(stack, call["id"], BAD)
    assert after["quality"]["live"]["alert"]["thresholds"]["jitter_ms"]["samples"] == 3
    degraded = wait_until(lambda: [m for m in calls_channel.for_call(call["id"])
                                   if m["type"] == "call.quality_degraded"], 5,
                          message="call.quality_degraded")
    data = degraded[0]["data"]
    assert data["status"] == "in-progress" and data["agent_id"] == "agent-q"
    assert data["alert"]["thresholds"] == {
        "jitter_ms": {"threshold": 30.0, "samples": 3, "worst": 55.0}}
    for _ in range(3):
        push(stack, call["id"], BAD)  # still degraded: nothing new is announced
    for _ in range(4):
        push(stack, call["id"], GOOD)
    wait_until(lambda: "call.quality_recovered" in types_for(calls_channel, call["id"], ALERTS),
               5, message="call.quality_recovered")
    assert types_for(calls_channel, call["id"], ALERTS) == list(ALERTS)

    ended = stack.post(f"/api/calls/{call['id']}/end", {"outcome": "sale"})
    assert ended.status_code == 200, ended.text
    summary_msg = wait_until(lambda: [m for m in calls_channel.for_call(call["id"])
                                      if m["type"] == "call.quality_summary"], 15,
                             message="the worker's call.quality_summary")
    summary = summary_msg[-1]["data"]["quality"]
    assert summary["samples"] == 12 and summary["alerts"] == 1
    assert summary["sources"]["mos"] == "samples" and summary["jitter_max_ms"] == 55.0
    stored = stack.get(f"/api/calls/{call['id']}").json()["quality"]
    assert stored["mos_min"] == summary["mos_min"]

    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    stats = stack.get("/api/calls/statistics", params={
        "date_from": today, "date_to": today, "group_by": "agent"}).json()
    mine = [g for g in stats["groups"] if g["agent_id"] == "agent-q"]
    assert mine and mine[0]["conversions"] >= 1 and mine[0]["mos_calls"] >= 1
    end_and_settle(stack, call["id"])


def test_the_client_mos_is_kept_and_ended_calls_refuse_samples(live_stack):
    stack = live_stack
    call = live_call(stack, agent="agent-r")
    live = push(stack, call["id"], dict(GOOD, mos=3.9))["quality"]["live"]
    assert live["last"]["mos"] == 3.9 and live["last"]["mos_source"] == "client"
    computed = push(stack, call["id"], GOOD)["quality"]["live"]["last"]
    assert computed["mos_source"] == "e-model" and 4.3 < computed["mos"] <= 4.5
    end_and_settle(stack, call["id"])
    late = stack.put(f"/api/calls/{call['id']}/update", {"quality": GOOD})
    assert late.status_code == 409 and "live" in late.json()["message"]


@pytest.mark.parametrize("sample,field", [
    ({"latency_ms": 50, "jitter_ms": 3, "packet_loss_pct": 150}, "packet_loss_pct"),
    ({"latency_ms": 50, "packet_loss_pct": 0}, "jitter_ms"),
    ({"latency_ms": -1, "jitter_ms": 3, "packet_loss_pct": 0}, "latency_ms"),
    ({"latency_ms": 50, "jitter_ms": 3, "packet_loss_pct": 0, "mos": 7}, "mos"),
])
def test_bad_samples_are_422(live_stack, sample, field):
    call = live_call(live_stack, agent="agent-s")
    resp = live_stack.put(f"/api/calls/{call['id']}/update", {"quality": sample})
    assert resp.status_code == 422
    assert field in resp.json()["errors"]["json"]["quality"]
    end_and_settle(live_stack, call["id"])


@pytest.mark.parametrize("params,field", [
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"time_zone": "../../etc/passwd"}, "time_zone"),
    ({"date_from": "2024-02-10", "date_to": "2024-02-01"}, "date_to"),
    ({"period": "year"}, "period"),
    ({"group_by": "gateway"}, "group_by"),
    ({"date_from": "2024-13-01"}, "date_from"),
    ({"date_from": "1900-01-01", "date_to": "1900-01-02"}, "date_from"),
])
def test_bad_statistics_queries_are_422(live_stack, params, field):
    for path in ("/api/calls/statistics", "/api/calls/quality"):
        resp = live_stack.get(path, params=params)
        if field in ("group_by",) and path.endswith("quality"):
            continue  # the quality trends take no grouping
        assert resp.status_code == 422, (path, resp.text)
        body = resp.json()
        assert body["code"] == 422 and field in body["errors"]["query"]


def test_quality_trends_over_http(live_stack):
    resp = live_stack.get("/api/calls/quality", params={"time_zone": "Asia/Kolkata",
                                                        "period": "week", "limit": 3})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["mos_threshold"] == 3.5 and body["series"]
    assert body["series"][-1]["start"].endswith("+05:30")
    assert len(body["worst_gateways"]) <= 3
