"""The call history as CSV or NDJSON, streamed in keyset batches (constant memory).

The same filters and order as GET /api/calls/history (history.history_query);
each batch is one query `WHERE (created_at, id) < (last row's)` LIMIT BATCH,
so a million rows never sit in memory and no OFFSET grows. Values are written
as the history's JSON shows them (ISO 8601 UTC times with Z). CSV follows
RFC 4180 (the csv module's quoting, CRLF) and, for spreadsheet users, a text
cell starting with =, +, -, @, a tab or a carriage return is prefixed with a
single quote (a phone number "+1555..." reads "'+1555...").
"""
import csv
import datetime
import io
import json

from models import Call, db
from models.db import db_session
from services.calls.history import history_query

COLUMNS = ("id", "created_at", "direction", "status", "from_number", "to_number", "caller_id",
           "agent_id", "campaign_id", "gateway", "mode", "hangup_cause", "status_reason",
           "ringing_at", "answered_at", "bridged_at", "ended_at", "duration", "billsec",
           "ring_seconds", "talk_seconds", "hold_seconds", "outcome", "notes", "record",
           "metadata")
BATCH = 1000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _iso(value):
    """A stored time as the history shows it: ISO 8601, milliseconds, Z. SQLite hands back
    text ("2026-03-01 12:00:00.123456"), PostgreSQL datetimes; both naive UTC."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    text = str(value)
    return f"{text[:10]}T{text[11:19]}.{(text[20:23] + '000')[:3]}Z"


def _bool(value):
    return None if value is None else bool(value)


def _json(value):
    if value is None or isinstance(value, (dict, list)):
        return value
    return json.loads(value)


def _same(value):
    return value


CONVERTERS = tuple(_iso if name.endswith("_at") else _bool if name == "record"
                   else _json if name == "metadata" else _same for name in COLUMNS)


def csv_cell(value):
    """A CSV cell: empty for null, JSON for metadata, escaped when a spreadsheet would
    take it for a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    return str(value)


def rows(filters, batch=BATCH):
    """Yield the matching calls as tuples of COLUMNS' wire values, in the history's order."""
    ascending = filters.get("sort", "-created_at") == "created_at"
    base = history_query(filters).select(*[getattr(Call, name) for name in COLUMNS])
    created, ident = COLUMNS.index("created_at"), COLUMNS.index("id")
    last = None
    while True:
        query = base
        if last is not None:
            query = query.where(_after(last, ascending))
        with db_session():
            # Plain rows (no per-field conversion by peewee): the converters do it.
            page = db.execute_sql(*query.limit(batch).sql()).fetchall()
        for row in page:
            yield tuple(convert(value) for convert, value in zip(CONVERTERS, row))
        if len(page) < batch:
            return
        last = (page[-1][created], page[-1][ident])


def _after(last, ascending):
    """Rows after (created_at, id) in the history's order; the created_at part alone can
    use the index (a row-value comparison does not, on SQLite)."""
    created, ident = last
    if ascending:
        return (Call.created_at >= created) & ((Call.created_at > created) | (Call.id > ident))
    return (Call.created_at <= created) & ((Call.created_at < created) | (Call.id < ident))


def as_csv(filters, batch=BATCH):
    """The CSV text, a header row then one chunk per batch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: minimal quoting, doubled quotes, CRLF
    writer.writerow(COLUMNS)
    count = 0
    for row in rows(filters, batch):
        writer.writerow([csv_cell(value) for value in row])
        count += 1
        if count % batch == 0:
            yield _take(buffer)
    yield _take(buffer)


def as_ndjson(filters, batch=BATCH):
    """One JSON object per line, one chunk per batch."""
    lines = []
    for row in rows(filters, batch):
        lines.append(json.dumps(dict(zip(COLUMNS, row)), separators=(",", ":")))
        if len(lines) >= batch:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def _take(buffer):
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
