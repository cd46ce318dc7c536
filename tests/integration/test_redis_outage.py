"""Redis stops while calls end: the running stack keeps every final status in the outbox,
announces it in order once Redis is back, and the worker resumes without a restart."""
import json

from services.redis_client import stream_key
from tests.conftest import wait_until

LIVE = ("initiated", "ringing", "in-progress")


def start_call(stack, n):
    resp = stack.post("/api/calls/start", {"to": f"1555444{n:04d}", "gateway": "gw1",
                                           "agent_id": "A1"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def status_of(stack, call_id):
    return stack.get(f"/api/calls/{call_id}").json()["status"]


def stream_messages(client):
    return [json.loads(fields[b"m"]) for _, fields in client.xrange(stream_key("calls"))]


def test_final_statuses_written_while_redis_is_down_are_announced_once_it_is_back(
        stack_factory, db_url, sim, redis_server):
    stack = stack_factory(db_url, sim, worker=True)
    ids = [start_call(stack, n) for n in range(6)]
    for call_id in ids:
        wait_until(lambda: status_of(stack, call_id) == "in-progress", 15,
                   message=f"call {call_id} to be answered")
    redis_server.stop()
    try:
        for call_id in ids:
            assert stack.post(f"/api/calls/{call_id}/end").status_code == 200
        for call_id in ids:
            wait_until(lambda: status_of(stack, call_id) not in LIVE, 15,
                       message=f"call {call_id} to end while Redis is down")
        final = {call_id: status_of(stack, call_id) for call_id in ids}
    finally:
        redis_server.start()
    client = redis_server.client()  # the restarted server kept nothing: only what waited

    def ended_everywhere():
        messages = stream_messages(client)
        ended = {m["data"]["id"] for m in messages if m["type"] == "call.ended"}
        return messages if ended >= set(ids) else None
    messages = wait_until(ended_everywhere, 30, 0.2, "every final status to be announced")

    seqs = [m["id"] for m in messages]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for call_id in ids:
        mine = [m for m in messages if m["data"].get("id") == call_id]
        ended_at = next(i for i, m in enumerate(mine) if m["type"] == "call.ended")
        # the final status as stored, and nothing after it that says the call is live
        assert mine[ended_at]["data"]["status"] == final[call_id]
        assert all(m["data"]["status"] not in LIVE for m in mine[ended_at:])
        assert [m for m in mine if m["type"] == "call.ended"] == [mine[ended_at]]

    # The worker rode out the outage: still running, and it ran the jobs queued meanwhile.
    worker, _ = stack.procs["worker"]
    assert worker.poll() is None
    wait_until(lambda: all(f"quality summary of call {call_id}" in stack.log("worker")
                           for call_id in ids), 30, 0.5, "the worker to run the queued jobs")
    # ... and takes new work as before
    fresh = start_call(stack, 99)
    wait_until(lambda: status_of(stack, fresh) == "in-progress", 15, message="a new call")
    stack.post(f"/api/calls/{fresh}/end")
    wait_until(lambda: f"quality summary of call {fresh}" in stack.log("worker"), 30, 0.5,
               "the worker to take a job after the outage")
