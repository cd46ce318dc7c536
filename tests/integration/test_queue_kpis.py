"""Queue and agent KPIs on a scripted day counted by hand, through the HTTP API, after the
rollup job (`python -m workers.queue_rollups rebuild`) ran; SQLite and PostgreSQL.

Queue `support` (service level threshold 20 s), Monday 2026-06-15, Paris = UTC+2.

    entry call entered(UTC) outcome     wait agent talk hold wrap  notes
    E1    C1   08:00:00     answered     15  a1     180    0   30  in SL
    E2    C2   08:10:00     answered     30  a2     240   60   60  a2 transfers it once
    E3    C3   08:20:00     abandoned     3                        short abandon (< 5 s)
    E4    C4   08:25:00     abandoned    40                        a1 rang 10 s, missed
    E5    C5   08:40:00     answered      5  a1     120    0   30  in SL
    E6    C6   12:00:00     answered     20  a2      60    0   60  in SL (= threshold)
    E7    C7   12:30:00     overflowed   90
    E8    C8   19:00:00     abandoned    10
    E9    C9   22:30:00     abandoned     8                        00:30 on the 16th in Paris

Paris day 15 (E1-E8): offered 8, answered 4, abandoned 3 (1 short), overflowed 1;
    service level = in SL / (offered - short) = 3 / 7; ASA = (15+30+5+20)/4 = 17.5;
    ASA p90 (nearest rank 4 of 4) = 30; wait avg = (15+30+3+40+5+20+90+10)/8 = 26.6,
    max 90; AHT = (210 + 360 + 150 + 120) / 4 = 210; transfers 1.
Paris 10:00-11:00 (E1-E5): offered 5, answered 3, abandoned 2 (1 short), SL 2/4.
UTC day 15 (E1-E9): offered 9, abandoned 4.

Agents (trail in UTC):
    a1 logged in 07:30-09:00 (5400 s), paused 08:30-08:35 (300 s), on call 180 + 120,
       wrap-up 30 + 30, rang 3 times (C1, C4 missed, C5): occupancy (300 + 60) / 5100
    a2 logged in 08:00-13:00 (18000 s), on call 300 + 60 (talk + hold), wrap-up 60 + 60:
       occupancy 480 / 18000; AHT (360 + 120) / 2 = 240; transfers 1

Half a year (2025-09-01 to 2026-03-31, both summer-time changes): random rollup rows for
queue `busy` and agent `a9`; every bucket's figures by week, month and day in several zones
equal a plain computation from the rows (sums, nearest-rank p90 of the expanded waits).
"""
import collections
import datetime
import json
import math
import os
import random
import subprocess
import sys
import types
import zoneinfo

import gevent
import pytest

from models import Call, CallEvent, utcnow
from models.agent import Agent, AgentStateChange
from models.queue import Queue, QueueEntry, QueueMember
from models.queue_stats import AgentQuarterStat, QueueQuarterStat
from services.publisher import Publisher
from services.queues import kpi_rollups
from services.queues.snapshot import SnapshotPublisher
from tests.conftest import ROOT, ChannelRecorder, wait_until

DAY = datetime.datetime(2026, 6, 15)


def at(hms):
    h, m, s = (int(x) for x in hms.split(":"))
    return DAY + datetime.timedelta(hours=h, minutes=m, seconds=s)


# name: (entered, status, wait, agent, talk, hold)
ENTRIES = {
    "C1": ("08:00:00", "answered", 15, "a1", 180, 0),
    "C2": ("08:10:00", "answered", 30, "a2", 240, 60),
    "C3": ("08:20:00", "abandoned", 3, None, None, None),
    "C4": ("08:25:00", "abandoned", 40, None, None, None),
    "C5": ("08:40:00", "answered", 5, "a1", 120, 0),
    "C6": ("12:00:00", "answered", 20, "a2", 60, 0),
    "C7": ("12:30:00", "overflowed", 90, None, None, None),
    "C8": ("19:00:00", "abandoned", 10, None, None, None),
    "C9": ("22:30:00", "abandoned", 8, None, None, None),
}

# agent: [(at, to_state, call)]
TRAIL = {
    "a1": [("07:30:00", "available", None), ("08:00:00", "ringing", "C1"),
           ("08:00:15", "on-call", "C1"), ("08:03:15", "wrap-up", "C1"),
           ("08:03:45", "available", None), ("08:25:00", "ringing", "C4"),
           ("08:25:10", "available", None), ("08:30:00", "paused", None),
           ("08:35:00", "available", None), ("08:40:00", "ringing", "C5"),
           ("08:40:05", "on-call", "C5"), ("08:42:05", "wrap-up", "C5"),
           ("08:42:35", "available", None), ("09:00:00", "logged-out", None)],
    "a2": [("08:00:00", "available", None), ("08:10:00", "ringing", "C2"),
           ("08:10:30", "on-call", "C2"), ("08:15:30", "wrap-up", "C2"),
           ("08:16:30", "available", None), ("12:00:00", "ringing", "C6"),
           ("12:00:20", "on-call", "C6"), ("12:01:20", "wrap-up", "C6"),
           ("12:02:20", "available", None), ("13:00:00", "logged-out", None)],
}


def _call(name, entered, status, wait, agent, talk, hold):
    start = at(entered)
    ended = start + datetime.timedelta(seconds=wait + (talk or 0) + (hold or 0))
    return Call.create(direction="inbound", from_number="+3360000000" + name[-1],
                       to_number="+33100000000", status="completed", created_at=start,
                       answered_at=start, ended_at=ended, updated_at=ended, agent_id=agent,
                       talk_seconds=talk, hold_seconds=hold or 0,
                       bridged_at=start + datetime.timedelta(seconds=wait) if agent else None)


@pytest.fixture(scope="module")
def scripted_day(bound_db):
    Queue.create(id="support", name="Support", service_level_seconds=20)
    for agent_id in TRAIL:
        Agent.create(id=agent_id, name=agent_id.upper(), endpoint=f"user/{agent_id}")
    calls = {}
    for name, (entered, status, wait, agent, talk, hold) in ENTRIES.items():
        call = calls[name] = _call(name, entered, status, wait, agent, talk, hold)
        done = at(entered) + datetime.timedelta(seconds=wait)
        QueueEntry.create(queue_id="support", call_id=call.id, status=status,
                          entered_at=at(entered), offered_at=at(entered) if agent else None,
                          answered_at=done if status == "answered" else None,
                          left_at=None if status == "answered" else done, agent_id=agent,
                          offers=1 if agent else 0, wait_seconds=wait)
    CallEvent.create(call=calls["C2"], source="api", event_name="api.transfer",
                     created_at=at("08:14:00"),
                     data={"to": "+33100000001", "from_agent_id": "a2"})
    for agent_id, changes in TRAIL.items():
        state = "logged-out"
        for when, to_state, call in changes:
            AgentStateChange.create(agent=agent_id, from_state=state, to_state=to_state,
                                    at=at(when), source="call" if call else "api",
                                    call_id=calls[call].id if call else None)
            state = to_state
    return calls


@pytest.fixture(scope="module")
def kpi_stack(scripted_day, stack_factory, db_url):
    """The rollup CLI run over the database, then a web process answering the API."""
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL="redis://127.0.0.1:1/0")
    done = subprocess.run([sys.executable, "-m", "workers.queue_rollups", "rebuild"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return stack_factory(db_url, None, events=False)


def get(stack, path, **params):
    resp = stack.get(path, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_paris_day_totals(kpi_stack):
    body = get(kpi_stack, "/api/queues/support/statistics", interval="day", tz="Europe/Paris",
               **{"from": "2026-06-15", "to": "2026-06-15"})
    assert body["start"] == "2026-06-15T00:00:00+02:00"
    assert body["end"] == "2026-06-16T00:00:00+02:00"
    t = body["totals"]
    assert (t["offered"], t["answered"], t["abandoned"], t["short_abandoned"],
            t["overflowed"]) == (8, 4, 3, 1, 1)
    assert t["service_level"] == round(3 / 7, 4)
    assert t["asa"] == 17.5 and t["asa_p90"] == 30
    assert t["wait_avg"] == 26.6 and t["wait_max"] == 90
    assert t["handled"] == 4 and t["aht"] == 210.0
    assert t["transfers"] == 1
    assert len(body["series"]) == 1 and body["series"][0]["offered"] == 8


def test_paris_hours(kpi_stack):
    body = get(kpi_stack, "/api/queues/support/statistics", interval="hour",
               tz="Europe/Paris", **{"from": "2026-06-15", "to": "2026-06-15"})
    assert len(body["series"]) == 24
    ten = body["series"][10]
    assert ten["start"] == "2026-06-15T10:00:00+02:00"
    assert (ten["offered"], ten["answered"], ten["abandoned"], ten["short_abandoned"]) == (
        5, 3, 2, 1)
    assert ten["service_level"] == 0.5
    assert body["series"][14]["answered"] == 1 and body["series"][14]["overflowed"] == 1
    assert body["series"][9]["offered"] == 0 and body["series"][9]["service_level"] is None


def test_utc_day_counts_the_late_caller(kpi_stack):
    t = get(kpi_stack, "/api/queues/support/statistics", interval="day", tz="UTC",
            **{"from": "2026-06-15", "to": "2026-06-15"})["totals"]
    assert (t["offered"], t["abandoned"]) == (9, 4)


def test_agent_statistics(kpi_stack):
    a1 = get(kpi_stack, "/api/agents/a1/statistics", interval="day", tz="Europe/Paris",
             **{"from": "2026-06-15", "to": "2026-06-15"})["totals"]
    assert a1["offers"] == 3 and a1["answered"] == 2
    assert a1["logged_in_seconds"] == 5400 and a1["paused_seconds"] == 300
    assert a1["on_call_seconds"] == 300 and a1["wrap_up_seconds"] == 60
    assert a1["ringing_seconds"] == 30
    assert a1["occupancy"] == round(360 / 5100, 4)
    assert a1["asa"] == 10.0 and a1["aht"] == 180.0 and a1["transfers"] == 0
    a2 = get(kpi_stack, "/api/agents/a2/statistics", interval="day", tz="Europe/Paris",
             **{"from": "2026-06-15", "to": "2026-06-15"})["totals"]
    assert a2["occupancy"] == round(480 / 18000, 4)
    assert a2["aht"] == 240.0 and a2["transfers"] == 1


def test_staffing_from_the_measured_hour(kpi_stack):
    # 10:00-11:00 Paris: 5 offered - 1 short = 4 callers per hour; measured AHT = (210 + 360
    # + 150) / 3 = 240 s -> A = 4 x 240 / 3600 = 0.267 erlangs. One agent: C(1, A) = A, so
    # SL = 1 - 0.267 x exp(-(1 - 0.267) x 20 / 240) = 0.749 < 0.8: two agents are needed.
    body = get(kpi_stack, "/api/queues/support/staffing", service_level=0.8, threshold=20,
               interval="hour", tz="Europe/Paris",
               **{"from": "2026-06-15T10:00", "to": "2026-06-15T11:00"})
    assert body["arrival_rate"] == 4 and body["aht"] == 240
    assert body["traffic_erlangs"] == round(4 * 240 / 3600, 3)
    assert body["agents_needed"] == 2
    assert body["around"][0]["agents"] == 1 and body["around"][0]["service_level"] == 0.7491
    assert body["basis"]["arrival_rate_source"] == "measured"
    given = get(kpi_stack, "/api/queues/support/staffing", arrival_rate=100, aht=180,
                interval="hour", service_level=0.8, threshold=20)
    # 100 x 180 s per 3600 s = 5 erlangs; Erlang C tables (A = 5, 20 s of 180 s): 7 agents
    # answer 74.0 % within 20 s, 8 agents 88.0 %.
    assert given["traffic_erlangs"] == 5 and given["agents_needed"] == 8
    assert given["predicted"]["service_level"] == 0.8801
    assert given["predicted"]["service_level"] >= 0.8 > given["around"][1]["service_level"]


def test_rebuild_again_changes_nothing(kpi_stack):
    before = get(kpi_stack, "/api/queues/support/statistics", interval="day",
                 tz="Europe/Paris", **{"from": "2026-06-15", "to": "2026-06-15"})
    kpi_rollups.rebuild(echo=lambda line: None)  # the same job, in the test process
    assert get(kpi_stack, "/api/queues/support/statistics", interval="day",
               tz="Europe/Paris", **{"from": "2026-06-15", "to": "2026-06-15"}) == before


@pytest.mark.parametrize("path,params,status", [
    ("/api/queues/support/statistics", {"interval": "2h"}, 422),
    ("/api/queues/support/statistics", {"tz": "Mars/Olympus"}, 422),
    ("/api/queues/support/statistics", {"from": "yesterday"}, 422),
    ("/api/queues/support/statistics", {"interval": "month", "to": "9999-12-31"}, 422),
    ("/api/queues/support/statistics", {"from": "2026-06-15T09:00+99:00"}, 422),
    ("/api/queues/support/statistics", {"interval": "15m", "from": "2026-01-01",
                                        "to": "2026-06-01"}, 422),
    ("/api/queues/support/statistics", {"from": "2026-06-15", "to": "2026-06-01"}, 422),
    ("/api/queues/support/staffing", {"service_level": "1.5"}, 422),
    ("/api/queues/support/staffing", {"interval": "day"}, 422),
    ("/api/queues/support/staffing", {"aht": "-3"}, 422),
    ("/api/queues/nope/statistics", {}, 404),
    ("/api/queues/nope/staffing", {}, 404),
    ("/api/agents/nobody/statistics", {}, 404),
])
def test_bad_input(kpi_stack, path, params, status):
    resp = kpi_stack.get(path, params=params)
    assert resp.status_code == status, resp.text
    assert resp.json()["error_id"]


# ----- half a year: every figure equals a plain computation from the rollup rows ----------
LONG_FROM, LONG_TO = datetime.date(2025, 9, 1), datetime.date(2026, 3, 31)  # both DST changes
SUMMED = QueueQuarterStat.MEASURES + AgentQuarterStat.STATE_MEASURES


def _random_row(rnd, bucket, agent):
    waits = collections.Counter(int(rnd.expovariate(1 / 25)) for _ in range(rnd.randrange(6)))
    answered, lost = sum(waits.values()), rnd.randrange(3)
    row = {name: 0 for name in SUMMED if agent or name not in AgentQuarterStat.STATE_MEASURES}
    row.update(bucket=bucket, offered=answered + lost, answered=answered,
               answered_in_sl=sum(n for w, n in waits.items() if w <= 20), abandoned=lost,
               short_abandoned=rnd.randrange(lost + 1), closed=rnd.randrange(2),
               overflowed=rnd.randrange(2), timed_out=rnd.randrange(2),
               answer_wait_sum=sum(w * n for w, n in waits.items()), waited=answered + lost,
               wait_sum=sum(w * n for w, n in waits.items()) + lost * rnd.randrange(60),
               wait_max=max([*waits, 0]) + rnd.randrange(30), handled=rnd.randrange(answered + 1),
               talk_sum=rnd.randrange(2000), hold_sum=rnd.randrange(100),
               wrapup_sum=rnd.randrange(300), transfers=rnd.randrange(2),
               answer_waits=json.dumps({str(w): waits[w] for w in sorted(waits)})
               if waits else None)
    if agent:
        row.update(offers=answered + rnd.randrange(2), logged_in_seconds=900,
                   paused_seconds=rnd.randrange(100), available_seconds=rnd.randrange(300),
                   ringing_seconds=rnd.randrange(60), on_call_seconds=rnd.randrange(400),
                   wrap_up_seconds=rnd.randrange(100))
    return row


@pytest.fixture(scope="module")
def long_range(kpi_stack):
    """Rollup rows for queue `busy` and agent `a9` at random quarter hours of seven months
    before the scripted day (the rebuild starts at the first activity, so keeps them)."""
    rnd, rows = random.Random(13), {"queue": [], "agent": []}
    Queue.create(id="busy", name="Busy", service_level_seconds=20)
    first = int(datetime.datetime(2025, 8, 31, tzinfo=datetime.timezone.utc).timestamp())
    for bucket in range(first, first + 215 * 86400, 900):
        for kind, key in (("queue", {"queue_id": "busy"}), ("agent", {"agent_id": "a9"})):
            if rnd.random() < 0.3:
                rows[kind].append(dict(_random_row(rnd, bucket, kind == "agent"), **key))
    for kind, model in (("queue", QueueQuarterStat), ("agent", AgentQuarterStat)):
        for i in range(0, len(rows[kind]), 500):
            model.insert_many(rows[kind][i:i + 500]).execute()
    return rows


def _plain_figures(rows, agent):
    """The figures of one bucket, straight from its rows (no Tally, no SQL grouping)."""
    s = {name: sum(r.get(name, 0) for r in rows) for name in SUMMED}
    waits = sorted(int(w) for r in rows if r["answer_waits"]
                   for w, n in json.loads(r["answer_waits"]).items() for _ in range(n))

    def ratio(part, whole, digits=1):
        return round(part / whole, digits) if whole else None

    counted, done = s["offered"] - s["short_abandoned"], s["handled"]
    figures = dict(
        answered=s["answered"], answered_in_sl=s["answered_in_sl"],
        asa=ratio(s["answer_wait_sum"], s["answered"]),
        asa_p90=waits[math.ceil(0.9 * len(waits)) - 1] if waits else None, handled=done,
        aht=ratio(s["talk_sum"] + s["hold_sum"] + s["wrapup_sum"], done),
        talk_avg=ratio(s["talk_sum"], done), hold_avg=ratio(s["hold_sum"], done),
        wrapup_avg=ratio(s["wrapup_sum"], done), transfers=s["transfers"])
    if agent:
        return dict(figures, occupancy=ratio(s["on_call_seconds"] + s["wrap_up_seconds"],
                                             s["logged_in_seconds"] - s["paused_seconds"], 4),
                    **{name: s[name] for name in AgentQuarterStat.STATE_MEASURES})
    return dict(figures, offered=s["offered"], abandoned=s["abandoned"],
                short_abandoned=s["short_abandoned"], overflowed=s["overflowed"],
                timed_out=s["timed_out"], closed=s["closed"],
                service_level=ratio(s["answered_in_sl"], counted, 4),
                abandon_rate=ratio(s["abandoned"] - s["short_abandoned"], counted, 4),
                wait_avg=ratio(s["wait_sum"], s["waited"]),
                wait_max=max(r["wait_max"] for r in rows) if s["waited"] else None)


def _local_edges(interval, zone, first, last):
    """Bucket edges by hand: local midnights of the days, Mondays or firsts of the month from
    the one at or before `first` to the first one after `last`."""
    day = {"day": first, "week": first - datetime.timedelta(days=first.weekday()),
           "month": first.replace(day=1)}[interval]
    edges = []
    while True:
        edges.append(datetime.datetime.combine(day, datetime.time.min, tzinfo=zone))
        if day > last:
            return edges
        day = ((day + datetime.timedelta(days=32)).replace(day=1) if interval == "month"
               else day + datetime.timedelta(days=7 if interval == "week" else 1))


@pytest.mark.parametrize("kind,interval,tz", [
    ("queue", "week", "UTC"), ("queue", "week", "Europe/Paris"),
    ("queue", "month", "Europe/Paris"), ("queue", "month", "America/New_York"),
    ("queue", "day", "Asia/Kolkata"), ("agent", "week", "Europe/Paris"),
    ("agent", "month", "Australia/Lord_Howe")])
def test_half_a_year_equals_a_plain_computation(long_range, kpi_stack, kind, interval, tz):
    path = "/api/queues/busy/statistics" if kind == "queue" else "/api/agents/a9/statistics"
    body = get(kpi_stack, path, interval=interval, tz=tz,
               **{"from": LONG_FROM.isoformat(), "to": LONG_TO.isoformat()})
    zone = zoneinfo.ZoneInfo(tz)
    edges = _local_edges(interval, zone, LONG_FROM, LONG_TO)
    assert [s["start"] for s in body["series"]] == [s.isoformat() for s in edges[:-1]]
    rows = long_range[kind]
    inside = []
    for bucket, lo, hi in zip(body["series"], edges, edges[1:]):
        mine = [r for r in rows if lo.timestamp() <= r["bucket"] < hi.timestamp()]
        inside += mine
        assert {k: v for k, v in bucket.items() if k not in ("start", "end")} == (
            _plain_figures(mine, kind == "agent")), bucket["start"]
    assert body["totals"] == _plain_figures(inside, kind == "agent")
    assert body["totals"]["asa_p90"] is not None and len(inside) > 1000


# ----- live: the queues channel snapshot and the periodic rollup job ----------------------
def _entry_now(queue_id, status, minutes_ago, wait, agent=None):
    entered = utcnow() - datetime.timedelta(minutes=minutes_ago)
    call = Call.create(direction="inbound", status="completed" if agent else "in-progress",
                       created_at=entered, updated_at=entered, agent_id=agent,
                       talk_seconds=30 if agent else None)
    done = entered + datetime.timedelta(seconds=wait) if wait is not None else None
    return QueueEntry.create(queue_id=queue_id, call_id=call.id, status=status,
                             entered_at=entered, agent_id=agent, wait_seconds=wait,
                             answered_at=done if status == "answered" else None,
                             left_at=done if status not in ("answered", "waiting") else None)


@pytest.fixture(scope="module")
def snapshot_queue(scripted_day):
    """Queue `front` now: two callers waiting (oldest 90 s), one answered in 12 s, one
    abandoned after 2 s (short), one after 30 s; members a1 (logged out) and a2 (logged out)."""
    Queue.create(id="front", name="Front desk", service_level_seconds=20)
    for agent_id in ("a1", "a2"):
        QueueMember.create(queue="front", agent=agent_id)
    _entry_now("front", "waiting", 1.5, None)
    _entry_now("front", "waiting", 0.5, None)
    _entry_now("front", "answered", 5, 12, agent="a1")
    _entry_now("front", "abandoned", 6, 2)
    _entry_now("front", "abandoned", 7, 30)
    return "front"


def test_snapshot_on_the_queues_channel(snapshot_queue, redis_server):
    conn = redis_server.client()
    services = types.SimpleNamespace(config={"QUEUE_SNAPSHOT_INTERVAL": 1.0}, redis=conn,
                                     publisher=Publisher(conn))
    publisher = SnapshotPublisher(services)
    recorder = ChannelRecorder(redis_server.url, ("queues",))
    gevent.sleep(0.1)
    try:
        # (another process's publisher may hold the leader lock a moment longer)
        wait_until(lambda: "front" in publisher.tick(), 10, 0.2, "the snapshot leader lock")
        message = wait_until(lambda: [m for m in recorder.messages
                                      if m["type"] == "queue.snapshot"
                                      and m["data"]["queue_id"] == "front"], 5)[0]
        data = message["data"]
        assert data["callers_waiting"] == 2
        assert 89 <= data["longest_wait_seconds"] <= 120
        assert data["agents"] == {"logged-out": 2}
        today = data["today"]
        # offered 5 (2 still waiting), SL = 1 answered in 20 s / (5 - 1 short) = 0.25
        assert (today["offered"], today["answered"], today["abandoned"],
                today["short_abandoned"]) == (5, 1, 2, 1)
        assert today["service_level"] == 0.25 and today["asa"] == 12.0
        assert "front" not in publisher.tick()  # unchanged within the second: not again
    finally:
        recorder.close()
        publisher.lock.release()


def test_events_and_worker_keep_todays_statistics(snapshot_queue, stack_factory, db_url,
                                                  redis_server):
    """The events process schedules the rollup job, the worker runs it, the API shows today;
    the events process publishes the queue's snapshot (SQLite only: three processes to start,
    and the job's PostgreSQL path is the rebuild's, run above)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the process wiring is checked once, on SQLite")
    recorder = ChannelRecorder(redis_server.url, ("queues",))
    try:
        stack = stack_factory(db_url, None, events=True, worker=True, QUEUE_ROLLUP_INTERVAL=1,
                              QUEUE_SNAPSHOT_INTERVAL=0.2)

        def offered_today():
            resp = stack.get("/api/queues/front/statistics", params={"interval": "day"})
            return resp.status_code == 200 and resp.json()["totals"]["offered"] == 5
        wait_until(offered_today, 60, 0.5, "the rollup job to count today's callers")
        wait_until(lambda: any(m["type"] == "queue.snapshot" and m["data"]["queue_id"] == "front"
                               for m in recorder.messages), 30, 0.2, "a queue.snapshot")
    finally:
        recorder.close()
