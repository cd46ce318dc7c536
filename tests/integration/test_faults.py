"""The service under failure: Redis stopped, FreeSWITCH gone, the database read-only or down.

Whatever breaks, the API answers in JSON: reads and writes that do not need the
broken part keep working, the others are a clean 503 with Retry-After, and
nothing is ever a 500.
"""
import os
import shutil
import socket
import subprocess
import uuid

import gevent
import pytest
from gevent.server import StreamServer

from gevent_setup import make_db_cooperative
from services.auth import create_key
from tests.conftest import (
    PG_URL,
    drop_postgres_db,
    make_postgres_db,
    postgres_available,
    wait_until,
)


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def start_call(stack, number="15553330000"):
    return stack.post("/api/calls/start", {"to": number, "gateway": "gw1", "agent_id": "A1"})


def assert_clean(resp, allowed):
    """A status from allowed, a JSON body, and on a 503 the error format with Retry-After."""
    assert resp.status_code in allowed, f"{resp.status_code}: {resp.text[:300]}"
    assert resp.headers["Content-Type"].startswith("application/json")
    if resp.status_code == 503 and not resp.url.endswith("/api/health"):
        assert int(resp.headers["Retry-After"]) > 0 and resp.json()["code"] == 503


# ----- Redis ----------------------------------------------------------------------
def test_without_redis_the_api_serves_from_the_database(stack_factory, db_url, sim,
                                                         redis_server):
    # rate limiting on: without Redis it counts in memory instead ("fails open")
    stack = stack_factory(db_url, sim, events=False,
                          RATELIMIT_ENABLED="true", RATELIMIT_DEFAULT="1000 per minute")
    before = start_call(stack)
    assert before.status_code == 201
    call_id = before.json()["id"]
    redis_server.stop()
    try:
        assert_clean(stack.get("/api/calls/history"), {200})
        assert_clean(stack.get(f"/api/calls/{call_id}"), {200})
        updated = stack.put(f"/api/calls/{call_id}/update", {"notes": "written without Redis"})
        assert_clean(updated, {200})
        assert updated.json()["notes"] == "written without Redis"
        fresh = start_call(stack, "15553330001")
        assert_clean(fresh, {201})
        assert_clean(stack.post(f"/api/calls/{fresh.json()['id']}/end"), {200})
        health = stack.get("/api/health")
        assert_clean(health, {200})
        assert health.json()["redis"]["status"] == "down"
        detailed = stack.get("/api/health/detailed").json()
        assert detailed["redis"]["status"] == "down" and detailed["status"] == "degraded"
        assert detailed["queues"]["status"] == "down"
        for _ in range(30):  # the limiter, in memory now, lets ordinary traffic through
            assert_clean(stack.get("/api/calls/history?status=completed"), {200})
        assert_clean(stack.get("/api/calls/recordings"), {200})
        assert "falling back to in-memory storage" in stack.log("web")
    finally:
        redis_server.start()
    wait_until(lambda: stack.get("/api/health").json()["redis"]["status"] == "ok", 10,
               message="Redis to be seen again")


# ----- FreeSWITCH -------------------------------------------------------------------
@pytest.fixture
def own_sim(tmp_path):
    from tests.esl_sim import ESLSimulator
    simulator = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon",
                             recordings_root=str(tmp_path / "recordings"))
    simulator.gateway_dir = str(tmp_path / "gateways")
    os.makedirs(simulator.gateway_dir, exist_ok=True)
    simulator.start()
    yield simulator
    simulator.stop()


def test_without_freeswitch_commands_are_503_and_health_says_why(stack_factory, db_url,
                                                                  own_sim):
    stack = stack_factory(db_url, own_sim)
    live = start_call(stack).json()
    wait_until(lambda: stack.get(f"/api/calls/{live['id']}").json()["status"] == "in-progress",
               10, message="the call to be answered")
    own_sim.stop(hangup_calls=False)

    refused = start_call(stack, "15553330002")
    assert_clean(refused, {503})
    assert "FreeSWITCH" in refused.json()["message"]
    assert_clean(stack.post(f"/api/calls/{live['id']}/end"), {503})
    assert stack.get(f"/api/calls/{live['id']}").json()["status"] == "in-progress"
    assert_clean(stack.get("/api/calls/history"), {200})
    health = stack.get("/api/health").json()
    assert health["freeswitch"]["status"] == "down" and health["status"] == "degraded"
    assert stack.get("/api/health/detailed").json()["freeswitch"]["status"] == "down"


# ----- SQLite read-only -----------------------------------------------------------
def set_immutable(paths, on):
    """chattr +i: read-only even for root (plain chmod does not stop root)."""
    flag = "+i" if on else "-i"
    for path in paths:
        if os.path.exists(path):
            subprocess.run(["chattr", flag, path], check=True, capture_output=True)


def can_make_immutable(directory):
    probe = os.path.join(directory, "probe")
    open(probe, "w").close()
    try:
        set_immutable([probe], True)
        set_immutable([probe], False)
        return True
    except (subprocess.CalledProcessError, FileNotFoundError):
        return False
    finally:
        os.remove(probe)


def test_a_read_only_sqlite_file_is_a_clean_503_and_recovers(stack_factory, db_url, sim,
                                                            tmp_path_factory):
    if not db_url.startswith("sqlite"):
        pytest.skip("the SQLite case; PostgreSQL's is test_postgresql_down_...")
    url = "sqlite:///" + str(tmp_path_factory.mktemp("readonly") / "calls.db")
    path = url.removeprefix("sqlite:///")
    directory = os.path.dirname(path)
    if not shutil.which("chattr") or not can_make_immutable(directory):
        pytest.skip("this filesystem cannot make files immutable (chattr +i)")
    stack = stack_factory(url, sim, events=False)
    call_id = start_call(stack).json()["id"]
    # The database file and its directory, as chmod would (root ignores chmod). The
    # -wal/-shm files stay: they are mapped into the running processes, and a mapping
    # made immutable under them is a crash no real read-only disk causes.
    files = [path, directory]
    set_immutable(files, True)
    try:
        assert_clean(stack.get("/api/calls/history"), {200, 503})
        assert_clean(stack.get(f"/api/calls/{call_id}"), {200, 503})
        assert_clean(stack.put(f"/api/calls/{call_id}/update", {"notes": "x"}), {503})
        assert_clean(start_call(stack, "15553330003"), {503})
        assert_clean(stack.get("/api/health"), {200, 503})
    finally:
        set_immutable(files, False)
    recovered = stack.put(f"/api/calls/{call_id}/update", {"notes": "writable again"})
    assert_clean(recovered, {200})


# ----- PostgreSQL down ----------------------------------------------------------------
class TcpProxy:
    """A loopback TCP relay to PostgreSQL that the test can cut and restore."""

    def __init__(self, target):
        self.target = target
        self.port = None
        self.server = None
        self.sockets = []

    def start(self):
        self.server = StreamServer(("127.0.0.1", self.port or 0), self._relay)
        self.server.start()
        self.port = self.server.server_port
        return self

    def stop(self):
        self.server.stop(timeout=1)
        for sock in self.sockets:
            sock.close()
        self.sockets = []

    def _relay(self, client, _address):
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        self.sockets += [client, upstream]
        pipes = [gevent.spawn(self._pipe, client, upstream),
                 gevent.spawn(self._pipe, upstream, client)]
        gevent.joinall(pipes, count=1)
        gevent.killall(pipes)

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                sock.close()


def test_postgresql_down_is_a_clean_503_and_recovers(stack_factory, db_url, sim):
    if not db_url.startswith("postgres"):
        pytest.skip("the PostgreSQL case; SQLite's is test_a_read_only_sqlite_file_...")
    if not postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    # The relay runs in this process's greenlets, so this process's own database
    # calls (creating keys through the relay) must yield to them.
    make_db_cooperative()
    direct = make_postgres_db()
    host_port = direct.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    proxy = TcpProxy((host, int(port))).start()
    url = direct.replace(host_port, f"127.0.0.1:{proxy.port}")
    try:
        stack = stack_factory(url, sim, events=False)
        supervisor = create_key("supervisor", f"pg-{uuid.uuid4().hex[:6]}", database_url=url)
        assert start_call(stack).status_code == 201
        proxy.stop()
        assert_clean(stack.get("/api/calls/history"), {503})
        assert_clean(stack.get("/api/calls/history", headers=bearer(supervisor)), {503})
        assert_clean(start_call(stack, "15553330004"), {503})
        health = stack.get("/api/health")
        assert_clean(health, {503})
        assert "database" in health.text  # the report, or the error, names the database
        proxy.start()
        wait_until(lambda: stack.get("/api/calls/history").status_code == 200, 10,
                   message="PostgreSQL to be reachable again")
        assert stack.get("/api/health").json()["database"]["status"] == "ok"
    finally:
        proxy.stop()
        drop_postgres_db(direct)
