"""Queue and agent KPI rollups: whole 15-minute buckets recomputed from the trails.

refresh(start, end) recomputes every queue and agent row of the UTC quarter
hours in [start, end) from:

- the queue entries that entered in them (offered, answered, abandoned, waits),
  with their calls (talk_seconds, hold_seconds: AHT) and the call trail
  (transfers: `api.transfer` and `api.transfer_complete`, whose data names
  the agent who gave the call away in `from_agent_id`);
- the agent trail: each answered call's wrap-up (from the agent's change to
  wrap-up with that call_id to the agent's next change), and every agent's
  time in each state, split at bucket edges (occupancy);

and replaces the rows in one transaction, so running it twice writes the same
rows (the periodic job re-runs the last hours; `rebuild` runs it over all days).
"""
import collections
import datetime
import json
import logging

from peewee import JOIN, fn

from models import Call, CallEvent, db, is_sqlite, utcnow
from models import agent as ag
from models import queue as qm
from models.agent import Agent, AgentStateChange
from models.queue import Queue, QueueEntry
from models.queue_stats import AgentQuarterStat, QueueQuarterStat, QueueStatMeasures
from services.quality.rollups import bulk_insert

logger = logging.getLogger(__name__)

QUARTER = 900
DAY = 86400
EPOCH = datetime.datetime(1970, 1, 1)
SHORT_ABANDON_SECONDS = 5  # an abandon within this many seconds is a short abandon
TRANSFER_EVENTS = ("api.transfer", "api.transfer_complete")
TERMINAL_CALL = ("completed", "busy", "no-answer", "failed", "canceled")
MEASURES = QueueStatMeasures.MEASURES
STATE_COLUMNS = {ag.PAUSED: "paused_seconds", ag.AVAILABLE: "available_seconds",
                 ag.RINGING: "ringing_seconds", ag.ON_CALL: "on_call_seconds",
                 ag.WRAP_UP: "wrap_up_seconds"}
CHUNK = 500
ADVISORY_LOCK = 13013  # PostgreSQL: one refresh at a time (delete + insert of the same rows)


def epoch_of(naive_utc):
    return (naive_utc - EPOCH).total_seconds()


def utc_of(epoch):
    return EPOCH + datetime.timedelta(seconds=epoch)


def quarter_of(epoch):
    return int(epoch // QUARTER * QUARTER)


def as_datetime(value):
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value))  # SQLite subqueries return text


# ----- one bucket's sums (pure) ------------------------------------------------------
class Sums:
    """The measures of one queue or agent bucket, and its answered waits' histogram."""

    def __init__(self):
        self.values = collections.Counter()
        self.waits = collections.Counter()

    def add_entry(self, entry, threshold, handling=None):
        """Count one queue entry: entry has status and wait (seconds or None); handling is
        (talk, hold, wrap-up, transfers) once the answered call has ended."""
        v, wait = self.values, entry["wait"]
        if entry["status"] == qm.CLOSED:
            v["closed"] += 1
            return
        v["offered"] += 1
        if wait is not None:
            v["wait_sum"] += wait
            v["waited"] += 1
            v["wait_max"] = max(v["wait_max"], wait)
        status = entry["status"]
        if status == qm.ANSWERED:
            wait = wait or 0
            v["answered"] += 1
            v["answered_in_sl"] += 1 if wait <= threshold else 0
            v["answer_wait_sum"] += wait
            self.waits[wait] += 1
            if handling is not None:
                talk, hold, wrapup, transfers = handling
                v["handled"] += 1
                v["talk_sum"] += talk
                v["hold_sum"] += hold
                v["wrapup_sum"] += wrapup
                v["transfers"] += transfers
        elif status == qm.ABANDONED:
            v["abandoned"] += 1
            if wait is not None and wait < SHORT_ABANDON_SECONDS:
                v["short_abandoned"] += 1
        elif status == qm.OVERFLOWED:
            v["overflowed"] += 1
        elif status == qm.TIMED_OUT:
            v["timed_out"] += 1

    def row(self):
        values = self.values
        row = {name: int(values[name]) for name in MEASURES}
        row["answer_waits"] = (json.dumps({str(k): n for k, n in sorted(self.waits.items())},
                                          separators=(",", ":")) if self.waits else None)
        return row


def split_seconds(intervals, start, end):
    """{bucket: {state: seconds}} of (state, from, to) intervals clipped to [start, end)."""
    result = collections.defaultdict(collections.Counter)
    for state, lo, hi in intervals:
        lo, hi = max(lo, start), min(hi, end)
        while lo < hi:
            bucket = quarter_of(lo)
            upto = min(hi, bucket + QUARTER)
            result[bucket][state] += upto - lo
            lo = upto
    return result


def state_intervals(initial, changes, start, end):
    """(state, from, to) from the state at `start` and the sorted (at, to_state) changes."""
    intervals, state, cursor = [], initial, start
    for at, to_state in changes:
        if at > cursor:
            intervals.append((state, cursor, at))
        state, cursor = to_state, max(cursor, at)
    if end > cursor:
        intervals.append((state, cursor, end))
    return intervals


def state_columns(seconds_by_state):
    """An agent bucket's time columns from {state: seconds}."""
    row = {column: 0 for column in STATE_COLUMNS.values()}
    logged_in = 0.0
    for state, seconds in seconds_by_state.items():
        if state in STATE_COLUMNS:
            row[STATE_COLUMNS[state]] = int(round(seconds))
        if state != ag.LOGGED_OUT:
            logged_in += seconds
    row["logged_in_seconds"] = int(round(logged_in))
    return row


# ----- reading the trails -------------------------------------------------------------
def _entries(start, end):
    e = QueueEntry
    return list(e.select(e.queue_id, e.call_id, e.status, e.entered_at, e.answered_at,
                         e.left_at, e.agent_id, e.wait_seconds, Call.talk_seconds,
                         Call.hold_seconds, Call.status.alias("call_status"))
                .join(Call, on=(Call.id == e.call_id), join_type=JOIN.LEFT_OUTER)
                .where(e.entered_at >= utc_of(start), e.entered_at < utc_of(end))
                .dicts())


def entry_wait(row):
    """Seconds the caller waited (entered -> answered or left); None while waiting."""
    if row["wait_seconds"] is not None:
        return max(0, int(row["wait_seconds"]))
    done = row["answered_at"] or row["left_at"]
    if done is None:
        return None
    return max(0, int(round((done - row["entered_at"]).total_seconds())))


def _chunks(values):
    values = list(values)
    for i in range(0, len(values), CHUNK):
        yield values[i:i + CHUNK]


def wrapups(call_ids, agent_ids, start, end, now):
    """{(call_id, agent_id): wrap-up seconds} of the answered calls of entries that entered
    in [start, end), from the agent trail (a running wrap-up counts up to now). Read per
    agent over [start, end + 1 day) (the trail's (agent, at) index): a wrap-up that starts
    more than a day after its window is not counted."""
    result = collections.Counter()
    if not call_ids:
        return result
    a, nxt = AgentStateChange, AgentStateChange.alias()
    until = (nxt.select(fn.MIN(nxt.at))
             .where((nxt.agent == a.agent) & (nxt.at > a.at)))
    query = (a.select(a.call_id, a.agent, a.at, until.alias("until"))
             .where(a.agent.in_(sorted(agent_ids)), a.at >= utc_of(start),
                    a.at < utc_of(end + DAY), a.to_state == ag.WRAP_UP).tuples())
    for call_id, agent_id, at, finished in query:
        if call_id in call_ids:
            finished = as_datetime(finished) or now
            result[(call_id, agent_id)] += max(0.0, (finished - at).total_seconds())
    return result


def transfers(call_ids):
    """{call_id: [from_agent_id, ...]}: one item per transfer of the call."""
    result = collections.defaultdict(list)
    for chunk in _chunks(call_ids):
        query = (CallEvent.select(CallEvent.call, CallEvent.data)
                 .where(CallEvent.call.in_(chunk), CallEvent.event_name.in_(TRANSFER_EVENTS))
                 .tuples())
        for call_id, data in query:
            result[call_id].append((data or {}).get("from_agent_id"))
    return result


def thresholds():
    return dict(Queue.select(Queue.id, Queue.service_level_seconds).tuples())


def _handling(row, waits_by_call, moved_by_call):
    """(talk, hold, wrap-up, transfers) of an answered entry whose call has ended."""
    if row["call_status"] not in TERMINAL_CALL:
        return None
    moved = moved_by_call.get(row["call_id"], [])
    wrapup = waits_by_call.get((row["call_id"], row["agent_id"]), 0.0)
    return (max(0, row["talk_seconds"] or 0), max(0, row["hold_seconds"] or 0),
            int(round(wrapup)), len(moved))


def entry_sums(rows, limits, wrapup_seconds, moved_by_call, default_threshold=20):
    """({(queue_id, bucket): Sums}, {(agent_id, bucket): Sums}) of queue entries."""
    queues = collections.defaultdict(Sums)
    agents = collections.defaultdict(Sums)
    for row in rows:
        bucket = quarter_of(epoch_of(row["entered_at"]))
        threshold = limits.get(row["queue_id"], default_threshold)
        entry = {"status": row["status"], "wait": entry_wait(row)}
        handling = None
        if row["status"] == qm.ANSWERED:
            handling = _handling(row, wrapup_seconds, moved_by_call)
        queues[(row["queue_id"], bucket)].add_entry(entry, threshold, handling)
        if row["status"] == qm.ANSWERED and row["agent_id"]:
            if handling is not None:  # the agent's own transfers of the call
                own = sum(1 for who in moved_by_call.get(row["call_id"], [])
                          if who == row["agent_id"])
                handling = handling[:3] + (own,)
            agents[(row["agent_id"], bucket)].add_entry(entry, threshold, handling)
    return queues, agents


def agent_state_rows(start, end, now):
    """{(agent_id, bucket): {offers, *_seconds}} from the agent trail over [start, end)."""
    a, prev = AgentStateChange, AgentStateChange.alias()
    lo, hi = utc_of(start), utc_of(end)
    before = (prev.select(prev.to_state).where((prev.agent == Agent.id) & (prev.at < lo))
              .order_by(prev.at.desc(), prev.id.desc()).limit(1))
    initial = dict(Agent.select(Agent.id, before.alias("state")).tuples())
    changes = collections.defaultdict(list)
    offers = collections.Counter()
    # agent IN (...): the trail's (agent, at) index answers the time range per agent
    in_window = (a.agent.in_(list(initial)), a.at >= lo, a.at < hi)
    queued = QueueEntry.select(QueueEntry.id).where(QueueEntry.call_id == a.call_id)
    for agent_id, at, to_state, call_id in (a.select(a.agent, a.at, a.to_state, a.call_id)
                                            .where(*in_window)
                                            .order_by(a.agent, a.at, a.id).tuples()):
        changes[agent_id].append((epoch_of(at), to_state))
    offer_query = a.select(a.agent, a.at).where(*in_window, a.to_state == ag.RINGING,
                                                fn.EXISTS(queued))
    for agent_id, at in offer_query.tuples():
        offers[(agent_id, quarter_of(epoch_of(at)))] += 1
    stop = min(end, epoch_of(now))
    rows = {}
    for agent_id in set(initial) | set(changes):
        state = initial.get(agent_id) or ag.LOGGED_OUT
        intervals = state_intervals(state, changes.get(agent_id, []), start, max(start, stop))
        for bucket, seconds in split_seconds(intervals, start, end).items():
            row = state_columns(seconds)
            if row["logged_in_seconds"] or offers.get((agent_id, bucket)):
                rows[(agent_id, bucket)] = row
    for key, count in offers.items():
        rows.setdefault(key, state_columns({}))["offers"] = count
    return rows


# ----- writing ----------------------------------------------------------------------
def compute(start, end, now=None):
    """The queue rows and agent rows of the quarter hours in [start, end)."""
    now = now or utcnow()
    rows = _entries(start, end)
    answered = {r["call_id"] for r in rows if r["status"] == qm.ANSWERED}
    answering = {r["agent_id"] for r in rows if r["status"] == qm.ANSWERED and r["agent_id"]}
    queues, agents = entry_sums(rows, thresholds(), wrapups(answered, answering, start, end, now),
                                transfers(answered))
    queue_rows = [dict(queue_id=q, bucket=b, **sums.row()) for (q, b), sums in queues.items()]
    states = agent_state_rows(start, end, now)
    agent_rows, empty = [], Sums().row()
    for key in set(agents) | set(states):
        row = agents[key].row() if key in agents else dict(empty)
        row.update(states.get(key) or state_columns({}))
        row.setdefault("offers", 0)
        row.update(agent_id=key[0], bucket=key[1])
        agent_rows.append(row)
    return queue_rows, agent_rows


def _write(model, rows):
    """INSERT the rows (dicts) in one prepared statement per chunk (peewee builds SQL value
    by value, which dominates a rebuild's thousands of agent rows)."""
    fields = [f for f in model._meta.sorted_fields if f.name != "id"]
    names = [f.name for f in fields]
    for i in range(0, len(rows), 5000):
        bulk_insert(model, fields, [tuple(row[n] for n in names) for row in rows[i:i + 5000]])


def refresh(start, end, now=None):
    """Recompute and replace the rows of [start, end) (quarter-aligned epochs); returns
    (queue rows, agent rows) written."""
    start, end = quarter_of(start), quarter_of(end + QUARTER - 1)
    with db.atomic():
        if not is_sqlite():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
        queue_rows, agent_rows = compute(start, end, now)
        for model, rows in ((QueueQuarterStat, queue_rows), (AgentQuarterStat, agent_rows)):
            model.delete().where(model.bucket >= start, model.bucket < end).execute()
            _write(model, rows)
    return len(queue_rows), len(agent_rows)


def refresh_recent(lookback_seconds, now=None):
    """The periodic job's work: the buckets of the last lookback_seconds, up to now."""
    now = now or utcnow()
    stop = epoch_of(now)
    return refresh(stop - lookback_seconds, stop, now)


def first_activity():
    """The earliest entry or agent change (epoch seconds), or None for an empty database."""
    firsts = [QueueEntry.select(fn.MIN(QueueEntry.entered_at)).scalar(),
              AgentStateChange.select(fn.MIN(AgentStateChange.at)).scalar()]
    firsts = [epoch_of(as_datetime(f)) for f in firsts if f is not None]
    return min(firsts) if firsts else None


def _activity(start, end):
    """Queue entries plus agent changes in [start, end) (epoch seconds)."""
    lo, hi = utc_of(start), utc_of(end)
    a = AgentStateChange
    agents = [agent_id for (agent_id,) in Agent.select(Agent.id).tuples()]
    return (QueueEntry.select().where(QueueEntry.entered_at >= lo, QueueEntry.entered_at < hi)
            .count() + a.select().where(a.agent.in_(agents), a.at >= lo, a.at < hi).count())


def rebuild(now=None, echo=print, window_days=31, max_rows=50_000):
    """Recompute every bucket from the first activity to now: a transaction per window of
    up to window_days, or per day when a window holds more than max_rows entries + changes."""
    now = now or utcnow()
    first = first_activity()
    if first is None:
        echo("queue KPIs: nothing to roll up")
        return 0, 0
    totals = [0, 0]
    day, stop = int(first // DAY * DAY), epoch_of(now)
    while day < stop:
        span = window_days * DAY
        if _activity(day, day + span) > max_rows:
            span = DAY
        written = refresh(day, min(day + span, stop), now)
        totals = [totals[0] + written[0], totals[1] + written[1]]
        day += span
    # Rows past now (a clock that went back) are stale: drop them.
    for model in (QueueQuarterStat, AgentQuarterStat):
        model.delete().where(model.bucket >= quarter_of(stop) + QUARTER).execute()
    echo(f"queue KPIs: {totals[0]} queue rows, {totals[1]} agent rows")
    return tuple(totals)
