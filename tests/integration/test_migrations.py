"""The Procfile's processes refuse to start on a database older than the code, and say
which command brings it up to date; `python -m models.migrate` does."""
import os
import subprocess
import sys

import pytest

from models.db import make_database
from models.migrations import LATEST, current_version, upgrade
from tests.conftest import ROOT, free_port

PROCESSES = {
    "web": [sys.executable, "-m", "gunicorn", "--worker-class", "gevent", "--workers", "1",
            "--bind", "127.0.0.1:{port}", "wsgi:app"],
    "events": [sys.executable, "-m", "freeswitch"],
    "worker": [sys.executable, "-m", "workers"],
}


def process_env(db_url):
    env = dict(os.environ)
    env.update({"DATABASE_URL": db_url, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                "FREESWITCH_PORT": str(free_port()), "SECRET_KEY": "test-secret-key-0123456789",
                "PYTHONUNBUFFERED": "1"})
    return env


def version_of(db_url):
    database = make_database(db_url)
    try:
        with database.connection_context():
            return current_version(database), sorted(database.get_tables())
    finally:
        if hasattr(database, "close_all"):
            database.close_all()


@pytest.fixture(scope="module")
def old_database(db_url):
    """The module's database, one version behind the code (empty when there is one step)."""
    database = make_database(db_url)
    with database.connection_context():
        upgrade(database, target=LATEST - 1)
    if hasattr(database, "close_all"):
        database.close_all()
    return db_url


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_a_process_refuses_an_old_database_and_names_the_command(old_database, name):
    before = version_of(old_database)
    argv = [arg.format(port=free_port()) for arg in PROCESSES[name]]
    try:
        done = subprocess.run(argv, cwd=ROOT, env=process_env(old_database), timeout=60,
                              capture_output=True, text=True, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name} started on a database at schema version {before[0]} < {LATEST}")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"schema version {LATEST - 1}, this code needs version {LATEST}" in output
    assert "python -m models.migrate" in output
    assert version_of(old_database) == before, "the refusing process changed the schema"


def test_the_release_command_upgrades_then_changes_nothing(old_database):
    env = process_env(old_database)
    first = subprocess.run([sys.executable, "-m", "models.migrate"], cwd=ROOT, env=env,
                           timeout=60, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert f"to {LATEST}" in first.stdout
    upgraded = version_of(old_database)
    assert upgraded[0] == LATEST and "outbox_message" in upgraded[1]
    again = subprocess.run([sys.executable, "-m", "models.migrate"], cwd=ROOT, env=env,
                           timeout=60, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert version_of(old_database) == upgraded
