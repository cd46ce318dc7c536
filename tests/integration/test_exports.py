"""GET /api/calls/export: the history as CSV (read back with the csv module) and NDJSON."""
import csv
import datetime
import io
import json
import uuid

import pytest
import requests

from models import Call, db, make_database
from services.calls.export import COLUMNS

AGENT = "exp-agent-1"
TRICKY = ["=SUM(A1:A9)", "+1 (555) 0100", "-2+3", "@cmd", "\tlead", "\rcr", 'quote " and, comma',
          "line\nbreak", "plain", "", None, "ünïcødé ✓"]


@pytest.fixture(scope="module")
def export_stack(stack_factory, db_url):
    stack = stack_factory(db_url, None, events=False)
    database = make_database(stack.env["DATABASE_URL"])
    previous = db.obj
    db.initialize(database)
    base = datetime.datetime(2026, 3, 1, 12, 0, 0)
    try:
        with database.connection_context(), database.atomic():
            for n in range(1203):  # more than one export batch (1000 rows)
                tricky = TRICKY[n % len(TRICKY)]
                Call.create(
                    id=str(uuid.UUID(int=n + 1)), status=("completed", "busy", "no-answer")[n % 3],
                    to_number=f"+1555{n:07d}", from_number="15550001000",
                    agent_id=AGENT if n % 4 == 0 else f"exp-agent-{n % 7 + 2}",
                    campaign_id="exp", gateway="gw-exp", notes=tricky, outcome=tricky,
                    metadata={"crm": n, "note": tricky} if n % 5 == 0 else None,
                    created_at=base + datetime.timedelta(seconds=n // 2),  # ties: id orders
                    answered_at=base if n % 3 == 0 else None, duration=n, billsec=n // 2)
    finally:
        db.initialize(previous)
    return stack


def history(stack, **filters):
    rows, page = [], 1
    while True:
        resp = stack.get("/api/calls/history", params=dict(filters, page=page, page_size=500))
        assert resp.status_code == 200, resp.text
        rows += resp.json()
        if len(resp.json()) < 500:
            return rows
        page += 1


def as_cell(value):
    """The history's JSON value as the CSV writes it (formula cells escaped)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return str(value)


def read_csv(resp):
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(resp.content.decode("utf-8"), newline="")))


def test_the_csv_read_back_equals_the_history(export_stack):
    table = read_csv(export_stack.get("/api/calls/export", params={"campaign_id": "exp"}))
    assert table[0] == list(COLUMNS)
    expected = [[as_cell(call[column]) for column in COLUMNS]
                for call in history(export_stack, campaign_id="exp")]
    assert len(table) - 1 == len(expected) == 1203
    assert table[1:] == expected


def test_formula_cells_are_escaped_and_quoting_survives(export_stack):
    table = read_csv(export_stack.get("/api/calls/export", params={"campaign_id": "exp"}))
    notes = {row[COLUMNS.index("notes")] for row in table[1:]}
    assert {"'=SUM(A1:A9)", "'+1 (555) 0100", "'-2+3", "'@cmd", "'\tlead", "'\rcr"} <= notes
    assert {'quote " and, comma', "line\nbreak", "plain", "ünïcødé ✓"} <= notes
    assert not any(cell[:1] in ("=", "+", "-", "@") for row in table[1:] for cell in row)
    assert all(row[COLUMNS.index("to_number")].startswith("'+1555") for row in table[1:])


def test_filters_and_order_are_the_historys(export_stack):
    filters = {"status": "busy", "agent_id": AGENT, "sort": "created_at"}
    table = read_csv(export_stack.get("/api/calls/export", params=filters))
    ids = [row[0] for row in table[1:]]
    assert ids and ids == [call["id"] for call in history(export_stack, **filters)]


def test_ndjson_when_asked_for(export_stack):
    resp = export_stack.get("/api/calls/export", params={"campaign_id": "exp"},
                            headers={"Accept": "application/x-ndjson"})
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith(
        "application/x-ndjson")
    lines = [json.loads(line) for line in resp.text.splitlines()]
    expected = [{column: call[column] for column in COLUMNS}
                for call in history(export_stack, campaign_id="exp")]
    assert lines == expected
    same = export_stack.get("/api/calls/export", params={"campaign_id": "exp",
                                                         "format": "ndjson"})
    assert same.text == resp.text


def test_an_agent_exports_only_its_own_calls_and_bad_filters_are_422(export_stack):
    admin = export_stack.http.headers["Authorization"]
    try:
        key = export_stack.authenticate("agent", agent_id=AGENT)
    finally:
        export_stack.http.headers["Authorization"] = admin
    resp = requests.get(export_stack.url("/api/calls/export"), timeout=30,
                        headers={"Authorization": f"Bearer {key}"})
    table = read_csv(resp)
    agents = {row[COLUMNS.index("agent_id")] for row in table[1:]}
    assert agents == {AGENT}
    assert export_stack.get("/api/calls/export", params={"status": "nope"}).status_code == 422
