"""Schema migrations keep every row of an existing database, run twice harmlessly, and
build exactly the schema the models declare."""
import datetime

import peewee
import pytest

from models import ALL_MODELS
from models.db import make_database
from models.migrate import main as migrate_command
from models.migrations import (
    LATEST,
    STEPS,
    SchemaOutdated,
    applied_steps,
    check_schema_current,
    current_version,
    upgrade,
)
from models.migrations import m0001_baseline as v1
from tests.conftest import drop_postgres_db, make_postgres_db, postgres_available


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A fresh, empty database for one test: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL not reachable")
    url = make_postgres_db()
    yield url
    drop_postgres_db(url)


@pytest.fixture
def database(database_url):
    database = make_database(database_url)
    database.connect()
    yield database
    database.close()
    if hasattr(database, "close_all"):
        database.close_all()


# ----- what a database holds ------------------------------------------------
def describe_schema(database):
    """{table: (columns, indexes, foreign keys)} as the database itself reports them."""
    lengths = {}
    if isinstance(database, peewee.PostgresqlDatabase):
        # information_schema's data_type omits VARCHAR lengths; they matter.
        lengths = {(t, c): n for t, c, n in database.execute_sql(
            "SELECT table_name, column_name, character_maximum_length "
            "FROM information_schema.columns WHERE table_schema = 'public'")}
    schema = {}
    for table in database.get_tables():
        if table == "schema_version":
            continue
        columns = {(c.name, c.data_type.lower(), lengths.get((table, c.name)), c.null,
                    c.primary_key) for c in database.get_columns(table)}
        indexes = {(i.name, tuple(i.columns), i.unique) for i in database.get_indexes(table)}
        keys = {(k.column, k.dest_table, k.dest_column)
                for k in database.get_foreign_keys(table)}
        schema[table] = (columns, indexes, keys)
    return schema


def snapshot_rows(database, tables, models=None):
    """Every row of every table, in primary-key order, exactly as the driver returns it.

    With models (frozen ones), only the columns those declare: later steps may add columns.
    """
    columns = {model._meta.table_name: ", ".join(
        f'"{field.column_name}"' for field in model._meta.sorted_fields)
        for model in models or ()}
    return {table: database.execute_sql(
        f'SELECT {columns.get(table, "*")} FROM "{table}" ORDER BY 1').fetchall()
        for table in tables}


BASELINE_TABLES = [model._meta.table_name for model in v1.MODELS]
BIG = 2**62 + 12345  # beyond 32 bits, within BIGINT
WHEN = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456)
UNICODE = "Zoë Ñúñez – 日本語 📞 \"quoted\" 'single'"
JSON = '{"tags":["vip","ünïcode"],"nested":{"n":null,"big":9007199254740993,"f":1.5}}'


def fill_baseline(database):
    """Rows in every table of migration 0001, with varied values (through its frozen models)."""
    with database.bind_ctx(v1.MODELS):
        full = v1.Call.create(
            id="c-full", fs_uuid="fs-1", fs_job_uuid="job-1", direction="inbound",
            from_number="+15551230000", to_number="+33 1 23 45 67 89", caller_id=UNICODE,
            agent_id="A17", campaign_id="spring", gateway="carrier-1", status="completed",
            hangup_cause="NORMAL_CLEARING", status_reason=UNICODE[:40], created_at=WHEN,
            ringing_at=WHEN, answered_at=WHEN, ended_at=WHEN, updated_at=WHEN,
            duration=2**31 - 1, billsec=0, outcome="sale", notes=UNICODE * 20, metadata=JSON,
            idempotency_key="k" * 255, record=True, record_format="mp3", rtp_stats=JSON,
            quality='{"mos":4.2}')
        bare = v1.Call.create(id="c-bare", status="failed", created_at=WHEN, updated_at=WHEN)
        v1.CallEvent.create(call=full, created_at=WHEN, source="freeswitch",
                            event_name="CHANNEL_ANSWER", from_status="ringing",
                            to_status="in-progress", data=JSON)
        v1.CallEvent.create(call=bare, created_at=WHEN, source="api", event_name="x",
                            from_status=None, to_status=None, data=None)
        v1.Recording.create(id="r-1", call=full, status="ready", format="mp3", fs_uuid=None,
                            source_path="2024/02/29/c-full.wav", files=JSON, duration=1.25,
                            sample_rate=8000, channels=2, size=BIG, sha256="a" * 64,
                            limit_seconds=None, truncated=True, error=UNICODE[:50],
                            fs_record_ms=BIG, fs_completion_cause=None, created_at=WHEN,
                            updated_at=WHEN)
        v1.SipGateway.create(id="g-1", name="carrier-ü", host="sip.example.com", port=5061,
                             transport="tls", username=None, password_encrypted="gAAAA" * 30,
                             register=False, codecs='["PCMU","OPUS"]', enabled=False,
                             version=7, apply_state="failed", apply_detail=UNICODE[:60],
                             created_at=WHEN, updated_at=WHEN)
        v1.SipGatewayState.create(name="carrier-ü", state="REGED", status_code=None,
                                  changed_at=WHEN, event_at=WHEN, core_uuid="core",
                                  event_seq=BIG)
        v1.QualitySample.create(call=full, created_at=WHEN, latency_ms=0.0, jitter_ms=12.5,
                                packet_loss_pct=100.0, mos=1.0, r_factor=None,
                                mos_source="e-model", crossed=True, alert_active=False)
        v1.CallFact.create(call_id="c-full", created_epoch=BIG, bucket=BIG - 900, day=19782,
                           agent_id="A17", outcome=UNICODE[:64], status="completed",
                           billsec=BIG, mos_milli=4200, calls=1)
        v1.QuarterHourRollup.create(bucket=BIG - 900, calls=3, handle_seconds=BIG)
        v1.DailyRollup.create(dim="agent", key="", day=19782, calls=2, mos_below=1)
        v1.QuarterHourOutcome.create(bucket=BIG - 900, outcome="sale", calls=2**31 - 1)
        v1.DailyOutcome.create(dim="campaign", key="spring", day=19782, outcome="", calls=0)
        v1.ApiKey.create(id="k-1", name="ops", prefix="cck_abcd", key_hash="f" * 64,
                         role="admin", agent_id=None, created_at=WHEN, revoked_at=WHEN)


def declared_schema(database_url, tmp_path):
    """The schema the live models declare, made by peewee in a second fresh database."""
    url = (f"sqlite:///{tmp_path / 'declared.db'}" if database_url.startswith("sqlite")
           else make_postgres_db())
    other = make_database(url)
    try:
        with other.connection_context(), other.bind_ctx(ALL_MODELS):
            other.create_tables(ALL_MODELS)
            return describe_schema(other)
    finally:
        if hasattr(other, "close_all"):
            other.close_all()
        if not url.startswith("sqlite"):
            drop_postgres_db(url)


# ----- tests -----------------------------------------------------------------
def test_the_steps_are_numbered_one_by_one():
    assert [step.VERSION for step in STEPS] == list(range(1, len(STEPS) + 1))
    assert LATEST == len(STEPS) and all(step.NAME for step in STEPS)


@pytest.mark.parametrize("made_by", ["migration 0001", "create_tables before migrations"])
def test_an_upgrade_keeps_every_row_and_value(database, made_by):
    if made_by == "migration 0001":
        assert upgrade(database, target=1) == [1]
    else:  # what every process's create_tables(safe=True) left: no version table
        with database.bind_ctx(v1.MODELS):
            database.create_tables(v1.MODELS, safe=True)
        assert "schema_version" not in database.get_tables()
    assert current_version(database) == 1
    fill_baseline(database)
    before = snapshot_rows(database, BASELINE_TABLES, v1.MODELS)
    assert all(before.values()), "every baseline table has rows"

    # A pre-migration database gets its baseline recorded (creating nothing) first.
    first = 2 if made_by == "migration 0001" else 1
    assert upgrade(database) == list(range(first, LATEST + 1))
    assert current_version(database) == LATEST
    assert snapshot_rows(database, BASELINE_TABLES, v1.MODELS) == before
    # spot checks of the values most likely to be mangled
    call = database.execute_sql(
        'SELECT caller_id, metadata, duration, record FROM "call" WHERE id = %s'
        % database.param, ("c-full",)).fetchone()
    assert call[0] == UNICODE and call[1] == JSON and call[2] == 2**31 - 1 and call[3]
    size = database.execute_sql('SELECT size, fs_record_ms FROM "recording"').fetchone()
    assert tuple(size) == (BIG, BIG)


def test_upgrading_twice_changes_nothing(database):
    assert upgrade(database) == list(range(1, LATEST + 1))
    fill_baseline(database)
    tables = database.get_tables()
    state = (describe_schema(database), snapshot_rows(database, tables),
             applied_steps(database))
    assert upgrade(database) == []
    assert (describe_schema(database), snapshot_rows(database, database.get_tables()),
            applied_steps(database)) == state
    assert [version for version, _ in applied_steps(database)] == list(range(1, LATEST + 1))


def test_the_migrated_schema_is_what_the_models_declare(database, database_url, tmp_path):
    """A model changed without a migration (or a migration without the model) fails here."""
    upgrade(database)
    migrated, declared = describe_schema(database), declared_schema(database_url, tmp_path)
    assert sorted(migrated) == sorted(declared), "tables"
    for table in declared:
        assert migrated[table][0] == declared[table][0], f"columns of {table}"
        assert migrated[table][1] == declared[table][1], f"indexes of {table}"
        assert migrated[table][2] == declared[table][2], f"foreign keys of {table}"


def test_a_database_behind_the_code_is_refused_with_the_command_to_run(database):
    with pytest.raises(SchemaOutdated, match=r"version 0.*python -m models\.migrate"):
        check_schema_current(database)
    upgrade(database, target=LATEST - 1)
    if LATEST > 1:
        with pytest.raises(SchemaOutdated, match=rf"version {LATEST - 1}, this code needs"):
            check_schema_current(database)
    upgrade(database)
    assert check_schema_current(database) == LATEST


def test_the_migrate_command_checks_and_upgrades(database_url, capsys):
    assert migrate_command(["--database-url", database_url, "--check"]) == 1
    assert migrate_command(["--database-url", database_url]) == 0
    assert f"to {LATEST}" in capsys.readouterr().out
    assert migrate_command(["--database-url", database_url]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert migrate_command(["--database-url", database_url, "--check"]) == 0


def test_outbox_rows_waiting_at_the_upgrade_are_kept_and_no_id_comes_back(database):
    """0011: news waiting in the outbox survives the rebuild (ids and all); afterwards an
    emptied outbox does not give its old ids again (SQLite did, and a sender took the new
    rows for its own sent ones)."""
    upgrade(database, target=10)
    for n in (1, 2, 3):
        database.execute_sql(
            "INSERT INTO outbox_message (kind, target, name, payload, created_at) "
            f"VALUES ('publish', 'calls', 'call.ended', '{{\"n\": {n}}}', '2026-12-01 12:00:00')")
    before = database.execute_sql("SELECT id, payload FROM outbox_message ORDER BY id").fetchall()
    upgrade(database)
    assert database.execute_sql(
        "SELECT id, payload FROM outbox_message ORDER BY id").fetchall() == before
    database.execute_sql("DELETE FROM outbox_message")
    database.execute_sql(
        "INSERT INTO outbox_message (kind, target, name, payload, created_at) "
        "VALUES ('publish', 'calls', 'call.ended', '{}', '2026-12-01 12:00:01')")
    new_id = database.execute_sql("SELECT id FROM outbox_message").fetchone()[0]
    assert new_id > before[-1][0]


def test_the_half_hour_rollups_are_filled_from_the_facts_at_the_upgrade(database):
    """0012: a database with statistics gets its per-agent/campaign/gateway half-hour sums
    (what the quality job would have added call by call)."""
    upgrade(database, target=11)
    facts = [("c1", "A", "camp", "gw", 3600, 10, "sale"),  # 01:00 and 01:15: one half hour
             ("c2", "A", "camp", "gw", 4500, 20, "sale"),
             ("c3", "B", "", "gw", 5400, 0, "")]  # 01:30: the next
    with database.bind_ctx([v1.CallFact]):
        for call_id, agent, campaign, gateway, bucket, billsec, outcome in facts:
            v1.CallFact.create(call_id=call_id, created_epoch=bucket + 60, bucket=bucket,
                               day=0, agent_id=agent, campaign_id=campaign, gateway=gateway,
                               outcome=outcome, status="completed", calls=1, completed=1,
                               billsec=billsec)
    upgrade(database)
    rows = database.execute_sql(
        'SELECT dim, "key", bucket, calls, completed, billsec FROM half_hour_rollup '
        'ORDER BY dim, "key", bucket').fetchall()
    assert [tuple(row) for row in rows] == [
        ("agent", "A", 3600, 2, 2, 30), ("agent", "B", 5400, 1, 1, 0),
        ("campaign", "", 5400, 1, 1, 0), ("campaign", "camp", 3600, 2, 2, 30),
        ("gateway", "gw", 3600, 2, 2, 30), ("gateway", "gw", 5400, 1, 1, 0)]
    outcomes = database.execute_sql(
        'SELECT dim, "key", bucket, outcome, calls FROM half_hour_outcome '
        'ORDER BY dim').fetchall()
    assert [tuple(row) for row in outcomes] == [
        ("agent", "A", 3600, "sale", 2), ("campaign", "camp", 3600, "sale", 2),
        ("gateway", "gw", 3600, "sale", 2)]
