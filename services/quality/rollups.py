"""Call facts and rollups: what one ended call adds to the statistics, kept exact and rebuildable.

The quality job calls `apply_fact(call_id, fact_from_call(call))` inside its
transaction, with the call's row locked: the call's previous fact (if any) is
subtracted from the rollups and the new one added, so a job that runs twice,
or again after a late FreeSWITCH hangup or an outcome change, moves the
rollups once. The deleting hook calls `apply_fact(call_id, None)`.

    python -m workers.rollups rebuild [--database-url URL] [--summarize-missing]

(workers/rollups.py) recomputes every fact from the calls and then every rollup from the facts
(the same functions the job uses), which is also how the tests prove that the
incremental rollups equal a full recomputation.
"""
import datetime
import logging
import time

import peewee
from peewee import EXCLUDED, fn
from psycopg2.extras import execute_values

from models import Call, db, is_sqlite
from models.quality import (
    CallFact,
    DailyOutcome,
    DailyRollup,
    HalfHourOutcome,
    HalfHourRollup,
    QuarterHourOutcome,
    QuarterHourRollup,
    RollupMeasures,
)
from services.calls import state as cs

logger = logging.getLogger(__name__)

QUARTER_HOUR = 900
HALF_HOUR = 1800
DAY = 86400
EPOCH = datetime.datetime(1970, 1, 1)
DIMENSIONS = {"agent": "agent_id", "campaign": "campaign_id", "gateway": "gateway"}
MEASURES = RollupMeasures.MEASURES
STATUS_FLAGS = {cs.COMPLETED: "completed", cs.BUSY: "busy", cs.NO_ANSWER: "no_answer",
                cs.FAILED: "failed", cs.CANCELED: "canceled"}
REBUILD_CHUNK = 5000


def epoch_seconds(naive_utc):
    return int((naive_utc - EPOCH).total_seconds() // 1)


def _key(value):
    return (value or "")[:64]


def call_mos(quality):
    """The MOS a call counts with in the statistics: its summary's average, if it has one."""
    if not isinstance(quality, dict):
        return None
    mos = quality.get("mos_avg")
    return float(mos) if isinstance(mos, (int, float)) else None


def fact_from_call(call, mos_threshold):
    """The statistics row of an ended call (None for a live one): flags and its own figures."""
    if call.status not in cs.TERMINAL or call.created_at is None:
        return None
    created = epoch_seconds(call.created_at)
    answered = 1 if call.answered_at else 0
    fact = {"call_id": call.id, "created_epoch": created,
            "bucket": created - created % QUARTER_HOUR, "day": created // DAY,
            "agent_id": _key(call.agent_id), "campaign_id": _key(call.campaign_id),
            "gateway": _key(call.gateway), "outcome": _key(call.outcome), "status": call.status}
    fact.update({name: 0 for name in MEASURES})
    fact.update(calls=1, answered=answered, billsec=max(0, call.billsec or 0),
                handle_seconds=max(0, call.duration or 0) if answered else 0)
    flag = STATUS_FLAGS.get(call.status)
    fact[flag] = 1
    mos = call_mos(call.quality)
    if mos is not None:
        fact.update(mos_milli=round(mos * 1000), mos_calls=1,
                    mos_below=1 if mos < mos_threshold else 0)
    return fact


def _fact_dict(row):
    return {name: getattr(row, name) for name in row._meta.sorted_field_names}


def rollup_rows(fact):
    """(model, key columns and values, measure names) of every rollup row a fact counts in."""
    half_hour = fact["bucket"] - fact["bucket"] % HALF_HOUR
    yield QuarterHourRollup, {"bucket": fact["bucket"]}, MEASURES
    for dim, column in DIMENSIONS.items():
        yield DailyRollup, {"dim": dim, "key": fact[column], "day": fact["day"]}, MEASURES
        yield HalfHourRollup, {"dim": dim, "key": fact[column], "bucket": half_hour}, MEASURES
    if fact["outcome"]:
        yield QuarterHourOutcome, {"bucket": fact["bucket"], "outcome": fact["outcome"]}, (
            "calls",)
        for dim, column in DIMENSIONS.items():
            yield DailyOutcome, {"dim": dim, "key": fact[column], "day": fact["day"],
                                 "outcome": fact["outcome"]}, ("calls",)
            yield HalfHourOutcome, {"dim": dim, "key": fact[column], "bucket": half_hour,
                                    "outcome": fact["outcome"]}, ("calls",)


def _upsert_add(model, keys, measures, fact, sign):
    values = dict(keys)
    values.update({name: sign * fact[name] for name in measures})
    update = {getattr(model, name): getattr(model, name) + getattr(EXCLUDED, name)
              for name in measures}
    target = [getattr(model, k) for k in keys]
    model.insert(**values).on_conflict(conflict_target=target, update=update).execute()
    if sign < 0:
        # A row whose last call left holds nothing; a recomputation would not have it.
        model.delete().where(*[getattr(model, k) == v for k, v in keys.items()],
                             model.calls == 0).execute()


def add_to_rollups(fact, sign):
    """Add (sign=1) or take away (sign=-1) one fact from every rollup row it belongs to."""
    for model, keys, measures in rollup_rows(fact):
        _upsert_add(model, keys, measures, fact, sign)


def apply_fact(call_id, fact):
    """Make the rollups count call_id as fact (None: not at all); call inside a transaction."""
    old_row = CallFact.get_or_none(CallFact.call_id == call_id)
    old = _fact_dict(old_row) if old_row is not None else None
    if old == fact:
        return False
    if old is not None:
        add_to_rollups(old, -1)
    if fact is None:
        CallFact.delete().where(CallFact.call_id == call_id).execute()
        return True
    add_to_rollups(fact, 1)
    _upsert_facts([fact])
    return True


def _upsert_facts(facts):
    fields = [f for f in CallFact._meta.sorted_fields if f.name != "call_id"]
    update = {f: getattr(EXCLUDED, f.column_name) for f in fields}
    (CallFact.insert_many(facts)
     .on_conflict(conflict_target=[CallFact.call_id], update=update).execute())


def bulk_insert(model, fields, rows, conflict_sql=""):
    """INSERT many tuples (in `fields` order) with one prepared statement.

    peewee builds SQL value by value (about 13 us each), which dominates bulk
    loads of a million rows; this converts values with each field's db_value
    and hands the rows to the driver in one batch (sqlite3 executemany,
    psycopg2 execute_values). conflict_sql is appended as is (ON CONFLICT ...).
    """
    if not rows:
        return
    table = model._meta.table_name
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    converters = [f.db_value for f in fields]
    values = [tuple(conv(v) for conv, v in zip(converters, row)) for row in rows]
    cursor = db.cursor()
    if is_sqlite():
        marks = ", ".join("?" for _ in fields)
        cursor.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks}) {conflict_sql}',
                           values)
    else:
        execute_values(cursor, f'INSERT INTO "{table}" ({columns}) VALUES %s {conflict_sql}',
                       values, page_size=1000)


FACT_FIELDS = CallFact._meta.sorted_fields
FACT_UPSERT_SQL = 'ON CONFLICT ("call_id") DO UPDATE SET ' + ", ".join(
    f'"{f.column_name}" = excluded."{f.column_name}"' for f in FACT_FIELDS
    if f.name != "call_id")


# ----- full recomputation ---------------------------------------------------
FACT_SOURCE_FIELDS = (Call.id, Call.status, Call.created_at, Call.answered_at, Call.agent_id,
                      Call.campaign_id, Call.gateway, Call.outcome, Call.billsec, Call.duration,
                      Call.quality)


def rebuild_facts(mos_threshold, chunk=REBUILD_CHUNK):
    """Recompute every ended call's fact, a chunk per transaction; drop facts of gone calls."""
    last_id, written = "", 0
    names = [f.name for f in FACT_FIELDS]
    while True:
        with db.atomic():
            # Walk the primary key only: with a status condition the planner
            # prefers the status index and sorts every remaining call per chunk.
            query = (Call.select(*FACT_SOURCE_FIELDS).where(Call.id > last_id)
                     .order_by(Call.id).limit(chunk))
            if not is_sqlite():
                query = query.for_update()  # a quality job for one of these waits its turn
            calls = list(query.namedtuples())
            if not calls:
                break
            facts = [fact_from_call(call, mos_threshold) for call in calls]
            rows = [tuple(fact[n] for n in names) for fact in facts if fact is not None]
            bulk_insert(CallFact, FACT_FIELDS, rows, FACT_UPSERT_SQL)
            last_id, written = calls[-1].id, written + len(rows)
    with db.atomic():
        gone = _delete_orphan_facts()
    return written, gone


def _delete_orphan_facts():
    """Drop facts whose call is gone or no longer ended (an anti-join: PostgreSQL runs
    NOT IN over a million-row subquery as a nested loop)."""
    fact, call = CallFact._meta.table_name, Call._meta.table_name
    marks = ", ".join(db.param for _ in cs.TERMINAL)
    cursor = db.execute_sql(
        f'DELETE FROM "{fact}" WHERE NOT EXISTS (SELECT 1 FROM "{call}" '
        f'WHERE "{call}"."id" = "{fact}"."call_id" AND "{call}"."status" IN ({marks}))',
        list(cs.TERMINAL))
    return cursor.rowcount


ROLLUP_MODELS = (QuarterHourRollup, DailyRollup, QuarterHourOutcome, DailyOutcome,
                 HalfHourRollup, HalfHourOutcome)


def _rebuild_queries():
    """(target model, target columns, SELECT over the facts) for every rollup table."""
    sums = [fn.SUM(getattr(CallFact, name)) for name in MEASURES]
    measures = list(MEASURES)
    yield (QuarterHourRollup, ["bucket", *measures],
           CallFact.select(CallFact.bucket, *sums).group_by(CallFact.bucket))
    with_outcome = CallFact.outcome != ""
    yield (QuarterHourOutcome, ["bucket", "outcome", "calls"],
           CallFact.select(CallFact.bucket, CallFact.outcome, fn.SUM(CallFact.calls))
           .where(with_outcome).group_by(CallFact.bucket, CallFact.outcome))
    for dim, column in DIMENSIONS.items():
        key = getattr(CallFact, column)
        yield (DailyRollup, ["dim", "key", "day", *measures],
               CallFact.select(peewee.Value(dim), key, CallFact.day, *sums)
               .group_by(key, CallFact.day))
        yield (DailyOutcome, ["dim", "key", "day", "outcome", "calls"],
               CallFact.select(peewee.Value(dim), key, CallFact.day, CallFact.outcome,
                               fn.SUM(CallFact.calls))
               .where(with_outcome).group_by(key, CallFact.day, CallFact.outcome))
        half_hour = CallFact.bucket / HALF_HOUR * HALF_HOUR  # integer division (both engines)
        yield (HalfHourRollup, ["dim", "key", "bucket", *measures],
               CallFact.select(peewee.Value(dim), key, half_hour, *sums)
               .group_by(key, half_hour))
        yield (HalfHourOutcome, ["dim", "key", "bucket", "outcome", "calls"],
               CallFact.select(peewee.Value(dim), key, half_hour, CallFact.outcome,
                               fn.SUM(CallFact.calls))
               .where(with_outcome).group_by(key, half_hour, CallFact.outcome))


def rebuild_rollups():
    """Replace every rollup row with sums of the facts, in one transaction."""
    with db.atomic():
        if not is_sqlite():
            # Quality jobs that already wrote their fact wait here and then add
            # their delta on top of the rebuilt rows, so nothing is lost or doubled.
            tables = ", ".join(m._meta.table_name for m in ROLLUP_MODELS)
            db.execute_sql(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
        for model in ROLLUP_MODELS:
            model.delete().execute()
        for model, columns, query in _rebuild_queries():
            model.insert_from(query, [getattr(model, c) for c in columns]).execute()
    return {model._meta.table_name: model.select().count() for model in ROLLUP_MODELS}


def rebuild(mos_threshold, summarize_missing=None, echo=print):
    """Recompute facts from the calls, then rollups from the facts; returns a report dict."""
    t0 = time.perf_counter()
    summarized = 0
    if summarize_missing is not None:
        summarized = summarize_missing()
    facts, gone = rebuild_facts(mos_threshold)
    t1 = time.perf_counter()
    echo(f"facts: {facts} written, {gone} removed in {t1 - t0:.1f}s")
    rows = rebuild_rollups()
    echo("rollups: " + ", ".join(f"{table} {n}" for table, n in rows.items())
         + f" rows in {time.perf_counter() - t1:.1f}s")
    return {"facts": facts, "removed": gone, "summarized": summarized, "rollup_rows": rows}


def snapshot():
    """Every rollup row as comparable tuples (for checks and tests)."""
    result = {}
    for model in ROLLUP_MODELS:
        columns = [f for f in model._meta.sorted_fields if f.name != "id"]
        result[model._meta.table_name] = sorted(model.select(*columns).tuples())
    return result
