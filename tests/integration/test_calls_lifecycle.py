"""A call's whole life through the running web and events processes, against the ESL simulator.

Runs once on SQLite and once on PostgreSQL (when reachable): the same tests,
the same assertions.
"""
import uuid

import gevent
import pytest

from tests.conftest import wait_until

GW = "gw1"


def start_call(stack, to, headers=None, **extra):
    body = {"to": to, "gateway": GW, "agent_id": "agent-7", "campaign_id": "spring"}
    body.update(extra)
    return stack.post("/api/calls/start", body, headers=headers)


def wait_status(stack, call_id, status, timeout=10):
    def check():
        call = stack.get(f"/api/calls/{call_id}").json()
        return call if call["status"] == status else None
    return wait_until(check, timeout, message=f"call {call_id} to become {status}")


def trail(stack, call_id):
    return stack.get(f"/api/calls/{call_id}/events").json()


def test_answered_call_goes_initiated_ringing_answered_completed(stack, sim, calls_channel):
    resp = start_call(stack, "15551230001", metadata={"crm_id": "42"})
    assert resp.status_code == 201, resp.text
    call = resp.json()
    assert call["status"] == "initiated" and call["direction"] == "outbound"
    assert call["metadata"] == {"crm_id": "42"} and call["agent_id"] == "agent-7"

    live = wait_status(stack, call["id"], "in-progress")
    assert live["ringing_at"] and live["answered_at"]
    originate = [c for c in sim.commands if "originate" in c and call["id"] in c]
    assert len(originate) == 1
    assert f"origination_uuid={call['fs_uuid']}" in originate[0]
    assert f"sofia/gateway/{GW}/15551230001" in originate[0]

    ended = stack.post(f"/api/calls/{call['id']}/end", {"outcome": "sale", "notes": "ok"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "completed" and ended.json()["outcome"] == "sale"
    # FreeSWITCH's CHANNEL_HANGUP_COMPLETE then fills in its own figures.
    final = wait_until(lambda: (lambda c: c if c.get("rtp_stats") or c["hangup_cause"] else None)(
        stack.get(f"/api/calls/{call['id']}").json()), 10, message="hangup figures")
    assert final["hangup_cause"] == "NORMAL_CLEARING"
    assert final["billsec"] is not None and final["duration"] is not None
    assert final["ended_at"] >= final["answered_at"] >= final["created_at"]

    types = wait_until(lambda: [m["type"] for m in calls_channel.for_call(call["id"])]
                       if len(calls_channel.for_call(call["id"])) >= 4 else None, 10,
                       message="four call messages")
    assert types[:4] == ["call.initiated", "call.ringing", "call.answered", "call.ended"]
    ids = [m["id"] for m in calls_channel.for_call(call["id"])]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert calls_channel.for_call(call["id"])[3]["data"]["status"] == "completed"

    sources = [(e["to_status"], e["source"]) for e in trail(stack, call["id"])]
    assert ("initiated", "api") in sources and ("in-progress", "freeswitch") in sources


@pytest.mark.parametrize("number,status,cause", [
    ("4865550000", "busy", "USER_BUSY"),
    ("4085550000", "no-answer", "NO_ANSWER"),
    ("5035550000", "failed", "NORMAL_TEMPORARY_FAILURE"),
])
def test_failed_originates_end_with_the_right_status_and_cause(stack, number, status, cause):
    call = start_call(stack, number).json()
    final = wait_status(stack, call["id"], status)
    assert final["hangup_cause"] == cause
    assert final["answered_at"] is None and final["billsec"] == 0


def test_remote_hangup_completes_the_call(stack):
    call = start_call(stack, "7775550000").json()
    final = wait_status(stack, call["id"], "completed")
    assert final["answered_at"] is not None
    assert final["hangup_cause"] == "NORMAL_CLEARING"


def test_inbound_call_is_logged_without_the_api(stack, sim):
    fs_uuid = sim.inbound_call(from_number="15550009999", to_number="1000",
                               answer_after=0.05, hangup_after=0.3)

    def find():
        rows = stack.get("/api/calls/history", params={"direction": "inbound",
                                                       "number": "15550009999"}).json()
        return rows[0] if rows and rows[0]["status"] == "completed" else None
    call = wait_until(find, 10, message="the inbound call in the history")
    assert call["fs_uuid"] == fs_uuid
    assert call["from_number"] == "15550009999" and call["to_number"] == "1000"
    assert call["answered_at"] is not None


def test_idempotency_key_returns_the_same_call_and_dials_once(stack, sim):
    key = str(uuid.uuid4())
    first = start_call(stack, "15551230002", headers={"Idempotency-Key": key})
    second = start_call(stack, "15551230002", headers={"Idempotency-Key": key})
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    dialed = [c for c in sim.commands if "originate" in c and first.json()["id"] in c]
    assert len(dialed) == 1
    stack.post(f"/api/calls/{first.json()['id']}/end")


def test_update_goes_through_the_state_machine(stack):
    call = start_call(stack, "15551230003").json()
    wait_status(stack, call["id"], "in-progress")
    bad = stack.put(f"/api/calls/{call['id']}/update", {"status": "ringing"})
    assert bad.status_code == 409
    assert bad.json()["code"] == 409 and "cannot become ringing" in bad.json()["message"]
    ok = stack.put(f"/api/calls/{call['id']}/update",
                   {"notes": "callback tomorrow", "outcome": "callback",
                    "metadata": {"a": 1, "b": 2}})
    assert ok.status_code == 200
    again = stack.put(f"/api/calls/{call['id']}/update", {"metadata": {"a": None, "c": 3}})
    assert again.json()["metadata"] == {"b": 2, "c": 3}
    assert again.json()["notes"] == "callback tomorrow"
    stack.post(f"/api/calls/{call['id']}/end")
    ended = wait_status(stack, call["id"], "completed")
    assert ended["outcome"] == "callback"
    # An ended call stays ended: the API cannot revive it.
    assert stack.put(f"/api/calls/{call['id']}/update",
                     {"status": "in-progress"}).status_code == 409


def test_ending_an_ended_call_is_an_idempotent_200(stack):
    call = start_call(stack, "4865550001").json()
    wait_status(stack, call["id"], "busy")
    again = stack.post(f"/api/calls/{call['id']}/end", {"outcome": "no-contact"})
    assert again.status_code == 200
    assert again.json()["status"] == "busy" and again.json()["outcome"] == "no-contact"


def test_delete_refuses_live_calls_and_removes_ended_ones(stack):
    call = start_call(stack, "15551230004").json()
    wait_status(stack, call["id"], "in-progress")
    assert stack.delete(f"/api/calls/{call['id']}").status_code == 409
    stack.post(f"/api/calls/{call['id']}/end")
    assert stack.delete(f"/api/calls/{call['id']}").status_code == 204
    assert stack.get(f"/api/calls/{call['id']}").status_code == 404
    assert stack.get(f"/api/calls/{call['id']}/events").status_code == 404


@pytest.mark.parametrize("body,field", [
    ({}, "to"),
    ({"to": "1234; rm -rf /"}, "to"),
    ({"to": "1000", "gateway": "gw1}evil{"}, "gateway"),
    ({"to": "1000", "metadata": "not-a-dict"}, "metadata"),
    ({"to": "1000", "record_format": "flac"}, "record_format"),
])
def test_bad_start_bodies_are_422_with_field_errors(stack, body, field):
    resp = stack.post("/api/calls/start", body)
    assert resp.status_code == 422
    assert field in resp.json()["errors"]["json"]


def test_unknown_calls_are_404(stack):
    missing = str(uuid.uuid4())
    assert stack.get(f"/api/calls/{missing}").status_code == 404
    assert stack.post(f"/api/calls/{missing}/end").status_code == 404
    assert stack.put(f"/api/calls/{missing}/update", {"notes": "x"}).status_code == 404
    assert stack.get("/api/calls/not-a-uuid").status_code == 404


def test_history_filters_and_pages_newest_first(stack):
    campaign = "hist-" + uuid.uuid4().hex[:6]
    ids = [start_call(stack, f"486555{i:04d}", campaign_id=campaign).json()["id"]
           for i in range(5)]
    for call_id in ids:
        wait_status(stack, call_id, "busy")
    page1 = stack.get("/api/calls/history", params={"campaign_id": campaign, "page_size": 2})
    assert page1.status_code == 200
    assert [c["id"] for c in page1.json()] == ids[::-1][:2]
    pagination = page1.headers["X-Pagination"]
    assert '"total": 5' in pagination and '"total_pages": 3' in pagination
    page3 = stack.get("/api/calls/history",
                      params={"campaign_id": campaign, "page_size": 2, "page": 3}).json()
    assert [c["id"] for c in page3] == [ids[0]]
    oldest_first = stack.get("/api/calls/history",
                             params={"campaign_id": campaign, "sort": "created_at"}).json()
    assert [c["id"] for c in oldest_first] == ids
    assert stack.get("/api/calls/history", params={"campaign_id": campaign,
                                                   "status": "completed"}).json() == []
    by_number = stack.get("/api/calls/history", params={"number": "4865550003",
                                                        "campaign_id": campaign}).json()
    assert [c["id"] for c in by_number] == [ids[3]]
    future = stack.get("/api/calls/history", params={"campaign_id": campaign,
                                                     "date_from": "2999-01-01T00:00:00Z"}).json()
    assert future == []
    assert stack.get("/api/calls/history", params={"status": "bogus"}).status_code == 422


def test_esl_cut_while_the_call_hangs_up_is_reconciled(stack, sim):
    call = start_call(stack, "9995550000").json()
    # The simulator answers, cuts every ESL connection, and ends the call while
    # nobody listens; after reconnecting, the events process must notice.
    final = wait_until(lambda: (lambda c: c if c["status"] not in ("initiated", "ringing",
                                                                   "in-progress") else None)(
        stack.get(f"/api/calls/{call['id']}").json()), 20, message="reconciliation")
    assert final["status"] == "completed"
    assert "reconcile" in [e["source"] for e in trail(stack, call["id"])]
    assert "reconnecting" in stack.log("events") or "lost the event connection" in stack.log(
        "events")


def test_freeswitch_down_then_up_without_restarting(stack, sim):
    sim.stop()
    try:
        resp = start_call(stack, "15551230005")
        assert resp.status_code == 503
        assert "FreeSWITCH" in resp.json()["message"]
        failed = stack.get("/api/calls/history", params={"number": "15551230005"}).json()[0]
        assert failed["status"] == "failed" and "unreachable" in failed["status_reason"]
        health = stack.get("/api/health").json()
        assert health["freeswitch"]["status"] == "down"
    finally:
        sim.start()
    gevent.sleep(1.5)  # the command link waits retry_after before reconnecting

    def placed():
        resp = start_call(stack, "15551230006")
        return resp if resp.status_code == 201 else None
    resp = wait_until(placed, 15, 0.5, "a call to be placed after FreeSWITCH returned")
    wait_status(stack, resp.json()["id"], "in-progress", timeout=30)
    assert stack.get("/api/health").json()["freeswitch"]["status"] == "ok"
    stack.post(f"/api/calls/{resp.json()['id']}/end")


def test_duplicated_and_reordered_events_change_nothing(stack, sim, calls_channel):
    delivered = []
    original = sim._deliver

    def record(event):
        delivered.append(event)
        original(event)
    sim._deliver = record
    try:
        call = start_call(stack, "7775550001").json()
        final = wait_status(stack, call["id"], "completed")
        wait_until(lambda: len(calls_channel.for_call(call["id"])) >= 4, 10,
                   message="the call's messages")
        gevent.sleep(0.3)
        before_msgs = len(calls_channel.for_call(call["id"]))
        before_trail = trail(stack, call["id"])
        mine = [e for e in delivered if e.get("Unique-ID") == call["fs_uuid"]]
        assert {"CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"} <= {e.name for e in mine}
        # Replay every event of the call twice, newest first: a late ANSWER after
        # the hangup, a second HANGUP_COMPLETE, a PROGRESS after the answer.
        for event in list(reversed(mine)) * 2:
            original(event)
        gevent.sleep(1.0)
    finally:
        sim._deliver = original
    after = stack.get(f"/api/calls/{call['id']}").json()
    for field in ("status", "answered_at", "ended_at", "billsec", "duration", "hangup_cause"):
        assert after[field] == final[field], field
    assert trail(stack, call["id"]) == before_trail
    assert len(calls_channel.for_call(call["id"])) == before_msgs
