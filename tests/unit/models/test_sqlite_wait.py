"""SQLite: a transaction that finds another process writing waits for it without stopping
the rest of its process (a web worker's other requests and WebSocket clients), and gives
up with an error after the database's timeout."""
import subprocess
import sys

import peewee
import pytest

from models.db import make_database
from tests.conftest import ticks_while

HOLDER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute('BEGIN IMMEDIATE'); c.execute('INSERT INTO t VALUES (1)')
print('held', flush=True); time.sleep(float(sys.argv[2])); c.execute('COMMIT')
"""


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "wait.db"
    database = make_database(f"sqlite:///{path}")
    with database.connection_context():
        database.execute_sql("CREATE TABLE t (x)")
    yield database, str(path)
    database.close()


def hold_write_lock(path, seconds):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, path, str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_writer_waits_for_another_process_while_the_rest_of_its_process_runs(database):
    database, path = database
    holder = hold_write_lock(path, 0.4)

    def write():
        with database.connection_context(), database.atomic():
            database.execute_sql("INSERT INTO t VALUES (2)")

    _, waited, ticks = ticks_while(write)
    holder.wait(5)
    assert waited >= 0.3
    assert ticks >= 5, "the process stood still while its transaction waited"
    with database.connection_context():
        assert sorted(database.execute_sql("SELECT x FROM t").fetchall()) == [(1,), (2,)]


def test_a_writer_gives_up_after_the_timeout_and_the_connection_goes_on(database):
    database, path = database
    database._timeout = 0.2
    holder = hold_write_lock(path, 1.0)
    database.connect()
    try:
        with pytest.raises(peewee.OperationalError, match="locked"):
            with database.atomic():
                database.execute_sql("INSERT INTO t VALUES (2)")
        holder.wait(5)
        with database.atomic():
            database.execute_sql("INSERT INTO t VALUES (3)")
        assert sorted(database.execute_sql("SELECT x FROM t").fetchall()) == [(1,), (3,)]
    finally:
        database.close()
