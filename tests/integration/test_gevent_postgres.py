"""PostgreSQL under gevent: a query waits for its socket through the hub, so the rest of
the process (the ESL reader, the web's other requests) runs while the database works."""

import pytest

from gevent_setup import make_db_cooperative
from tests.conftest import PG_URL, postgres_available, ticks_while


@pytest.fixture
def pg():
    if not postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    import psycopg2
    import psycopg2.extensions
    make_db_cooperative()
    conn = psycopg2.connect(PG_URL)
    yield conn
    conn.close()


def test_other_greenlets_run_while_a_query_waits(pg):
    def query():
        with pg.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.4), 42")
            return cursor.fetchone()[1]

    answer, took, ticks = ticks_while(query, interval=0.02)
    assert answer == 42 and took >= 0.4
    assert ticks >= 3, f"only {ticks} ticks while the query ran: it blocked"


def test_a_failed_query_raises_and_the_connection_goes_on(pg):
    import psycopg2
    with pytest.raises(psycopg2.errors.DivisionByZero):
        with pg.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
    pg.rollback()
    with pg.cursor() as cursor:
        cursor.execute("SELECT 'still here'")
        assert cursor.fetchone() == ("still here",)
