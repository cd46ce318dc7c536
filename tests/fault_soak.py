"""The fault soak: many simulated calls while the Event Socket is cut, the events process is
killed and Redis is stopped; then every call, trail, live message and process is checked.

Used by tests/integration/test_fault_soak.py (a bounded run inside `make test`) and by
bench/bench_fault_soak.py (2,000 calls, Redis down for 30 s). It drives the real Procfile
processes (gunicorn web, `python -m freeswitch`, `python -m workers`) against the ESL
simulator, a Redis that keeps its data across the stop (as a production Redis with an
append-only file does), and SQLite or PostgreSQL.
"""
import collections
import dataclasses
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import time

import gevent
import redis
import websocket

from services.redis_client import seq_key
from tests.conftest import Stack, free_port, stack_env, wait_until

# kind -> (destination prefix or None for inbound, exact final status)
KINDS = {
    "answered": ("1555", "completed"),       # parked, ended through the API
    "remote-hangup": ("777", "completed"),   # far end hangs up after ~0.5 s
    "busy": ("486", "busy"),
    "no-answer": ("408", "no-answer"),
    "failed": ("503", "failed"),
    "inbound": (None, "completed"),          # adopted by the events process
}
MIX = ("answered", "answered", "remote-hangup", "busy", "no-answer", "failed", "inbound",
       "inbound", "answered", "remote-hangup")
# What a call may end as when its events fell into a window where nobody listened
# (FreeSWITCH does not keep events for a listener that is gone): reconciliation can
# only tell whether it had been answered.
EXPLAINED = {
    "answered": {"completed", "canceled"},
    "remote-hangup": {"completed", "failed", "canceled"},
    "busy": {"busy", "failed"},
    "no-answer": {"no-answer", "failed"},
    "failed": {"failed"},
    "inbound": {"completed", "failed"},
}
# News a commit stored goes out right after it, or within the relay's round (1 s) plus a
# dead sender's lock (3 s): a row still there after this is left unsent.
OUTBOX_GRACE = 10.0
ORDER = {"call.initiated": 0, "call.ringing": 1, "call.answered": 2, "call.ended": 3}


@dataclasses.dataclass
class Plan:
    calls: int = 300
    rate: float = 15.0            # new calls per second
    esl_cuts: int = 5
    events_kills: int = 2
    redis_down_seconds: float = 8.0
    settle_seconds: float = 90.0
    seed: int = 7


class PersistentRedis:
    """A redis-server whose data survive a stop and start (append-only file)."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--protected-mode", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _ping(client), 15, message="redis-server to start")
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None


def _ping(client):
    try:
        return client.ping()
    except redis.RedisError:
        return False


class LiveFeed:
    """A /ws client on `calls` that resumes with `since` after every drop, as a browser does."""

    def __init__(self, stack):
        self.stack = stack
        self.last_id = None
        self.messages = []
        self.resyncs = []
        self.reconnects = 0
        self._greenlet = gevent.spawn(self._run)

    def _connect(self):
        url = self.stack.url(f"/ws?api_key={self.stack.api_key}").replace("http://", "ws://")
        ws = websocket.create_connection(url, timeout=5)
        ws.settimeout(5)
        request = {"type": "subscribe", "channels": ["calls"]}
        if self.last_id is not None:
            request["since"] = {"calls": self.last_id}
        ws.send(json.dumps(request))
        return ws

    def _run(self):
        while True:
            try:
                ws = self._connect()
            except (OSError, websocket.WebSocketException):
                gevent.sleep(0.5)
                continue
            try:
                while True:
                    try:
                        message = json.loads(ws.recv())
                    except websocket.WebSocketTimeoutException:
                        continue
                    self._take(message)
            except (OSError, websocket.WebSocketException, ValueError):
                self.reconnects += 1
                gevent.sleep(0.2)
            finally:
                ws.close()

    def _take(self, message):
        if message.get("type") in ("resync_required",):
            self.resyncs.append(message)
        elif message.get("type") == "recovered" and message["data"].get("resync"):
            self.resyncs.append(message)
        if message.get("channel") == "calls" and "id" in message:
            self.messages.append(message)
            self.last_id = message["id"]

    def close(self):
        self._greenlet.kill()


class Soak:
    """Runs a Plan against a fresh stack and returns the figures (see check())."""

    def __init__(self, plan, db_url, sim, workdir, log=print):
        self.plan = plan
        self.db_url = db_url
        self.sim = sim
        self.workdir = workdir
        self.log = log
        self.rng = random.Random(plan.seed)
        self.calls = {}            # call id -> kind
        self.inbound = {}          # fs uuid -> kind
        self.responses = collections.Counter()
        self.refused_starts = 0    # 503 on start: stored as failed, placed again
        self.bad_responses = []
        self.gaps = []             # (start, end) UTC windows with no events subscriber
        self.redis = PersistentRedis(workdir).start()
        env = stack_env(db_url, self.redis.url, sim.port, workdir, STREAM_HISTORY="100000",
                        RECONCILE_INTERVAL="5", LOG_LEVEL="WARNING",
                        FREESWITCH_GATEWAY_DIR=getattr(sim, "gateway_dir", "") or workdir)
        self.stack = Stack(env, workdir)
        self.stack.authenticate()

    # ----- processes ---------------------------------------------------------
    def subscribed(self):
        return sum(1 for c in self.sim.connections if c.authenticated and c.events_enabled)

    def start(self):
        self.stack.start_events()
        wait_until(lambda: self.subscribed() > 0, 30, message="events to subscribe")
        self.stack.start_worker()
        self.stack.start_web(workers=2)
        self.feed = LiveFeed(self.stack)

    def processes_alive(self):
        return {name: proc.poll() is None for name, (proc, _) in self.stack.procs.items()}

    # ----- the load ----------------------------------------------------------
    def _record(self, resp):
        self.responses[resp.status_code] += 1
        ok = 200 <= resp.status_code < 300 or (
            resp.status_code == 503 and resp.headers.get("Retry-After")
            and resp.headers.get("Content-Type", "").startswith("application/json"))
        if not ok:
            self.bad_responses.append((resp.status_code, resp.request.method, resp.url,
                                       resp.text[:200]))
        return resp

    def _one_call(self, index):
        kind = MIX[index % len(MIX)]
        prefix, _ = KINDS[kind]
        if prefix is None:
            # Longer than any listening gap: a call that starts and ends while no events
            # process listens leaves no trace FreeSWITCH could give back (no CDR here).
            uuid = self.sim.inbound_call(f"1555{index:07d}", "1000", answer_after=0.1,
                                         hangup_after=self.rng.uniform(5.0, 8.0))
            self.inbound[uuid] = kind
            return
        for attempt in range(3):
            resp = self._start(f"soak-{index}-{attempt}", {
                "to": f"{prefix}{index:07d}", "gateway": "gw1", "agent_id": "soak"})
            if resp is None or resp.status_code != 503:
                break
            # FreeSWITCH could not be reached: the call is kept as `failed` (documented);
            # an integrator places it again after Retry-After (a new call: a new key).
            self.refused_starts += 1
            gevent.sleep(min(float(resp.headers.get("Retry-After", 1)), 1.0))
        if resp is None or resp.status_code not in (200, 201):
            return
        call_id = resp.json()["id"]
        self.calls[call_id] = kind
        if kind == "answered":
            gevent.sleep(self.rng.uniform(0.3, 2.0))
            self._end(call_id)

    def _start(self, key, body):
        """POST /api/calls/start as an integrator does: with an Idempotency-Key, so that
        sending it again (Stack does, once, when a kept-alive connection closed as it went
        out) can never place two calls."""
        try:
            return self._record(self.stack.post("/api/calls/start", body,
                                                headers={"Idempotency-Key": key}))
        except Exception as exc:  # the web process must always answer
            self.bad_responses.append(("no answer", "POST", "/api/calls/start", repr(exc)))
            return None

    def _end(self, call_id, attempts=5):
        """Hang up as an integrator would: a 503 says when to try again."""
        for _ in range(attempts):
            try:
                resp = self._record(self.stack.post(f"/api/calls/{call_id}/end"))
            except Exception as exc:
                self.bad_responses.append(("no answer", "POST", "end", repr(exc)))
                return
            if resp.status_code != 503:
                return
            gevent.sleep(min(float(resp.headers.get("Retry-After", 1)), 1.0))

    def _faults(self, duration):
        """Spread the faults over the run: ESL cuts, events SIGKILLs, one Redis stop."""
        plan = self.plan
        steps = ([("cut", None)] * plan.esl_cuts + [("kill", None)] * plan.events_kills
                 + [("redis", None)])
        self.rng.shuffle(steps)
        every = duration / (len(steps) + 1)
        for what, _ in steps:
            gevent.sleep(every)
            gap_start = utc_now()
            if what == "cut":
                self.log(f"  fault: ESL connections cut ({self.sim.drop_connections()})")
            elif what == "kill":
                proc, _log = self.stack.procs["events"]
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                self.stack.procs.pop("events")[1].close()
                self.log("  fault: events process killed (SIGKILL); restarting")
                gevent.sleep(0.5)
                self.stack.start_events()
            else:
                self.log(f"  fault: Redis stopped for {plan.redis_down_seconds:.0f} s")
                self.redis.stop()
                gevent.sleep(plan.redis_down_seconds)
                self.redis.start()
                self.log("  fault: Redis back")
                continue
            try:
                wait_until(lambda: self.subscribed() > 0, 30, message="events to resubscribe")
            finally:
                self.gaps.append((gap_start, utc_now() + datetime.timedelta(seconds=1)))

    def run(self):
        self.start()
        started = time.monotonic()
        duration = self.plan.calls / self.plan.rate
        faults = gevent.spawn(self._faults, duration)
        workers = []
        for index in range(self.plan.calls):
            workers.append(gevent.spawn(self._one_call, index))
            gevent.sleep(1.0 / self.plan.rate)
        gevent.joinall(workers)
        faults.join()
        self.load_seconds = time.monotonic() - started
        self.settle()
        return self.check()

    # ----- after the load ----------------------------------------------------
    def _database(self):
        from models.db import make_database
        return make_database(self.db_url)

    def settle(self):
        """Wait until FreeSWITCH has no channel, the database no live call and the outbox
        no unsent news (a sender killed while holding the send lock delays it a little)."""
        deadline = time.monotonic() + self.plan.settle_seconds
        database = self._database()
        while time.monotonic() < deadline:
            with database.connection_context():
                live = database.execute_sql(
                    "SELECT count(*) FROM call WHERE status IN "
                    "('initiated', 'ringing', 'in-progress')").fetchone()[0]
                unsent = database.execute_sql(
                    "SELECT count(*) FROM outbox_message").fetchone()[0]
            if live == 0 and unsent == 0 and not self.sim.channels:
                break
            gevent.sleep(1.0)
        database.close()
        # The live feed has every message once it read the channel's last id (a web
        # process may still be reconnecting to Redis after the outage).
        published = redis.Redis.from_url(self.redis.url)
        wait_until(lambda: self.feed.last_id is not None and self.feed.last_id >= int(
            published.get(seq_key("calls")) or 0), max(5.0, deadline - time.monotonic()),
            0.2, "the live feed to read the last message published on calls")
        published.close()

    def check(self):
        database = self._database()
        with database.connection_context():
            rows = database.execute_sql(
                "SELECT id, fs_uuid, direction, status, answered_at, ended_at, created_at FROM call"
            ).fetchall()
            trail = database.execute_sql(
                "SELECT call_id, source, event_name, from_status, to_status FROM call_event"
                " ORDER BY id").fetchall()
        # A commit's news sits in the outbox for the moment between its commit and its send
        # (a periodic task may commit right now): news is left unsent when it stays there.
        left = self._outbox_rows(database)
        if left:
            self.log(f"  news in the outbox at the check: {left[:5]}")
        deadline = time.monotonic() + OUTBOX_GRACE
        while left and time.monotonic() < deadline:
            gevent.sleep(0.2)
            still = {row[0] for row in self._outbox_rows(database)}
            left = [row for row in left if row[0] in still]
        database.close()
        figures = Figures.of(self, rows, trail)
        figures.outbox_left = len(left)
        figures.outbox_rows = left[:10]
        return figures

    @staticmethod
    def _outbox_rows(database):
        with database.connection_context():
            return database.execute_sql(
                "SELECT id, kind, target, name, created_at FROM outbox_message ORDER BY id"
            ).fetchall()

    def stop(self):
        if getattr(self, "feed", None) is not None:
            self.feed.close()
        self.stack.stop()
        self.redis.stop()


@dataclasses.dataclass
class Figures:
    started: int = 0
    refused_starts: int = 0
    stored: int = 0
    exact: int = 0
    explained: int = 0
    wrong: list = dataclasses.field(default_factory=list)
    lost: int = 0
    lost_calls: list = dataclasses.field(default_factory=list)
    duplicated: int = 0
    trail_duplicates: int = 0
    duplicated_moves: list = dataclasses.field(default_factory=list)
    still_live: int = 0
    leaked_channels: int = 0
    feed_messages: int = 0
    feed_gaps: list = dataclasses.field(default_factory=list)
    feed_out_of_order: list = dataclasses.field(default_factory=list)
    feed_redelivered: int = 0
    feed_missing_final: list = dataclasses.field(default_factory=list)
    resyncs: int = 0
    outbox_left: int = 0
    outbox_rows: list = dataclasses.field(default_factory=list)
    responses: dict = dataclasses.field(default_factory=dict)
    bad_responses: list = dataclasses.field(default_factory=list)
    processes: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, soak, rows, trail):
        f = cls(started=len(soak.calls) + len(soak.inbound), stored=len(rows),
                refused_starts=soak.refused_starts)
        by_id = {row[0]: row for row in rows}
        by_uuid = collections.Counter(row[1] for row in rows)
        f.lost_calls = [cid for cid in soak.calls if cid not in by_id] + [
            uuid for uuid in soak.inbound if by_uuid[uuid] == 0]
        f.lost = len(f.lost_calls)
        f.duplicated = sum(n - 1 for uuid, n in by_uuid.items() if uuid in soak.inbound and n > 1)
        f.duplicated_moves = _trail_duplicates(trail)
        f.trail_duplicates = len(f.duplicated_moves)
        reconciled = {row[0] for row in trail if row[1] == "reconcile"}
        kinds = dict(soak.calls)
        kinds.update({row[0]: soak.inbound[row[1]] for row in rows if row[1] in soak.inbound})
        for call_id, kind in kinds.items():
            row = by_id.get(call_id)
            if row is None:
                continue
            status = row[3]
            if status in ("initiated", "ringing", "in-progress"):
                f.still_live += 1
            elif status == KINDS[kind][1]:
                f.exact += 1
            elif status in EXPLAINED[kind] and (call_id in reconciled
                                                or _overlaps(row, soak.gaps)):
                f.explained += 1
            else:
                f.wrong.append((call_id, kind, status))
        live_channels = set(soak.sim.channels)
        ended_uuids = {row[1] for row in rows if row[3] not in ("initiated", "ringing",
                                                                "in-progress")}
        f.leaked_channels = len(live_channels & ended_uuids)
        trails = collections.defaultdict(list)
        for row in trail:
            trails[row[0]].append(row)
        f._check_feed(soak.feed, by_id, trails)
        f.resyncs = len(soak.feed.resyncs)
        f.responses = dict(soak.responses)
        f.bad_responses = soak.bad_responses[:20]
        f.processes = soak.processes_alive()
        return f

    def _check_feed(self, feed, by_id, trails):
        messages = list(feed.messages)
        self.feed_messages = len(messages)
        ids = [m["id"] for m in messages]
        self.feed_gaps = [(a, b) for a, b in zip(ids, ids[1:]) if b != a + 1][:20]
        last, seen = {}, set()
        for message in messages:
            call_id = message["data"].get("id")
            rank = ORDER.get(message["type"])
            if call_id is None or rank is None:
                continue
            # Redis closing a connection after it ran a pipeline of publishes (it is being
            # stopped) fails the sender, which sends those messages again once Redis is
            # back: the same message, a later id (at least once, docs/websocket.md).
            # Counted apart; anything else arriving after a later state is out of order.
            same = (message["type"], json.dumps(message["data"], sort_keys=True))
            if (call_id, same) in seen:
                self.feed_redelivered += 1
                continue
            seen.add((call_id, same))
            if rank < last.get(call_id, (-1, None))[0]:
                self.feed_out_of_order.append((call_id, last[call_id][1], message["type"]))
            last[call_id] = (max(rank, last.get(call_id, (-1, None))[0]), message["type"])
        ended_news = {m["data"]["id"]: m["data"]["status"] for m in messages
                      if m["type"] in ("call.ended", "call.updated") and m["data"].get("id")}
        for call_id, row in by_id.items():
            if row[3] in ("initiated", "ringing", "in-progress"):
                continue
            if ended_news.get(call_id) != row[3]:
                self.feed_missing_final.append((call_id, row[3], ended_news.get(call_id),
                                                [t[1:] for t in trails.get(call_id, ())]))
        self.feed_missing_final = self.feed_missing_final[:20]

    def report(self):
        return "\n".join([
            f"calls started {self.started} (+{self.refused_starts} refused with 503 and kept as "
            f"failed), stored {self.stored}, lost {self.lost}, "
            f"duplicated {self.duplicated}, trail duplicates {self.trail_duplicates}",
            f"final status exact {self.exact}, explained by a listening gap {self.explained}, "
            f"wrong {len(self.wrong)}, still live {self.still_live}, "
            f"leaked channels {self.leaked_channels}",
            f"live feed: {self.feed_messages} messages, gaps {len(self.feed_gaps)}, "
            f"out of order {len(self.feed_out_of_order)}, sent again after a Redis failure "
            f"{self.feed_redelivered}, final status not announced "
            f"{len(self.feed_missing_final)}, resyncs {self.resyncs}, "
            f"news left unsent in the outbox {self.outbox_left} {self.outbox_rows}",
            f"API answers {self.responses}, unclean {len(self.bad_responses)}",
            f"processes alive {self.processes}",
        ])


def utc_now():
    """Naive UTC, as the database stores times."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _overlaps(row, gaps):
    """Whether a call's life (created..ended) overlaps a window with no events listener."""
    created, ended = _as_time(row[6]), _as_time(row[5]) or utc_now()
    return any(created is None or (created <= end and ended >= start) for start, end in gaps)


def _as_time(value):
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value))


def _trail_duplicates(trail):
    """Status changes recorded twice for one call (the same move, from anywhere)."""
    seen = collections.Counter((row[0], row[3], row[4]) for row in trail if row[3] != row[4])
    return [key for key, n in seen.items() if n > 1]

