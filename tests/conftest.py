"""Shared fixtures: a real redis-server, SQLite/PostgreSQL, the ESL simulator, the running stack.

The pytest process is gevent-patched so that the in-process ESL simulator, the
Redis subscribers and blocking HTTP clients all cooperate on one hub. The web
(gunicorn + gevent) and events processes run as real subprocesses, as the
Procfile runs them.
"""
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402
import pytest  # noqa: E402
import redis  # noqa: E402
import requests  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ticks_while(run, interval=0.01):
    """Run run() with a greenlet ticking every interval beside it; returns (run's result,
    seconds it took, how many ticks happened meanwhile): 0 ticks means it blocked the process."""
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(interval)

    beat = gevent.spawn(ticker)
    gevent.sleep(0)
    started = time.monotonic()
    try:
        result = run()
    finally:
        ended = time.monotonic()
        beat.kill()
    return result, ended - started, len([t for t in ticks if started < t < ended])


def wait_until(predicate, timeout=10.0, interval=0.05, message="condition"):
    """Poll predicate until it returns a truthy value; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        gevent.sleep(interval)


# ----- Redis ---------------------------------------------------------------
class RedisServer:
    """A private redis-server on a free loopback port that tests may stop and restart."""

    def __init__(self, tmpdir):
        self.port = free_port()
        self.dir = tmpdir
        self.proc = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        exe = shutil.which("redis-server")
        if not exe:
            pytest.exit("redis-server is not installed (make test installs it)", 2)
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _ping(client), 10, message="redis-server to start")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def client(self, **kw):
        return redis.Redis.from_url(self.url, **kw)


def _ping(client):
    try:
        return client.ping()
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    if redis_server.proc is None:
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    return client


# ----- databases -----------------------------------------------------------
def postgres_available():
    try:
        import psycopg2
        psycopg2.connect(PG_URL, connect_timeout=2).close()
        return True
    except Exception:
        return False


def make_postgres_db():
    import psycopg2
    name = f"cc_test_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {name}")
    conn.close()
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def drop_postgres_db(url):
    import psycopg2
    name = url.rsplit("/", 1)[1]
    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


def _db_params():
    return ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=_db_params())
def db_url(request, tmp_path_factory):
    """A fresh, empty database URL: SQLite file, and PostgreSQL when one is reachable."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "calls.db")
        return
    if not postgres_available():
        if os.environ.get("CI") and os.environ.get("REQUIRE_POSTGRES", "1") == "1":
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL} (CI must provide it)")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    url = make_postgres_db()
    yield url
    drop_postgres_db(url)


@pytest.fixture(scope="module")
def bound_db(db_url):
    """The peewee proxy bound to db_url in the test process, its schema made by the migrations."""
    from models import db, init_db, migrate_database
    init_db(db_url)
    db.connect(reuse_if_open=True)
    migrate_database()
    yield db
    if not db.is_closed():
        db.close()


# ----- the ESL simulator ---------------------------------------------------
@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from tests.esl_sim import ESLSimulator
    root = tmp_path_factory.mktemp("fs")
    simulator = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon",
                             recordings_root=str(root / "recordings"))
    simulator.gateway_dir = str(root / "gateways")
    os.makedirs(simulator.gateway_dir, exist_ok=True)
    simulator.start()
    yield simulator
    simulator.stop()


# ----- the running stack ---------------------------------------------------
class Stack:
    """The web and events processes of the Procfile, run against test services."""

    def __init__(self, env, workdir):
        self.env = env
        self.workdir = workdir
        self.port = int(env["PORT"])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.procs = {}
        self.http = requests.Session()
        self.http.headers["Content-Type"] = "application/json"

    def authenticate(self, role="admin", agent_id=None):
        """Create an API key in the stack's database and send it with every request."""
        from models import db, make_database, migrate_database
        from services.auth import create_key
        previous = db.obj
        database = make_database(self.env["DATABASE_URL"])
        db.initialize(database)  # the key goes into the stack's database, then unbind
        try:
            with database.connection_context():
                migrate_database()  # as the release step does, before any process starts
                key = create_key(role, f"test-{role}-{uuid.uuid4().hex[:8]}", agent_id=agent_id)
        finally:
            db.initialize(previous)
        self.http.headers["Authorization"] = f"Bearer {key}"
        self.api_key = key
        return key

    def _spawn(self, name, argv):
        log = open(os.path.join(self.workdir, f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = (proc, log)
        return proc

    def start_web(self, workers=1):
        self._spawn("web", [sys.executable, "-m", "gunicorn", "--worker-class", "gevent",
                            "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
                            "--graceful-timeout", "2", "--timeout", "60", "wsgi:app"])
        wait_until(self._web_up, 30, 0.1, "the web process to serve /api/health")
        return self

    def start_events(self):
        self._spawn("events", [sys.executable, "-m", "freeswitch"])
        return self

    def start_worker(self):
        self._spawn("worker", [sys.executable, "-m", "workers"])
        return self

    def _web_up(self):
        try:
            return requests.get(self.base_url + "/api/health", timeout=1).status_code in (200, 503)
        except requests.RequestException:
            return False

    def stop(self, name=None):
        for key in [name] if name else list(self.procs):
            proc, log = self.procs.pop(key, (None, None))
            if proc is None:
                continue
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            log.close()

    def log(self, name):
        with open(os.path.join(self.workdir, f"{name}.log"), encoding="utf-8",
                  errors="replace") as fh:
            return fh.read()

    def url(self, path):
        return self.base_url + path

    def _send(self, method, path, **kw):
        """One request; sent again once when a kept-alive connection was closed as it went
        out: gunicorn closes a connection idle for its keep-alive (2 s) while it waits for
        the next request line, so a request that meets that close was never read (the
        server answers nothing and ran nothing) and a test pausing ~2 s would fail on it.
        The client sees an empty answer, or a reset when the request had already reached
        the closing socket (the kernel answers unread data with RST)."""
        kw.setdefault("timeout", 15)
        try:
            return self.http.request(method, self.url(path), **kw)
        except requests.ConnectionError as exc:
            if not _closed_while_idle(exc):
                raise
            return self.http.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self._send("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self._send("POST", path, data=json.dumps(body if body is not None else {}), **kw)

    def put(self, path, body=None, **kw):
        return self._send("PUT", path, data=json.dumps(body or {}), **kw)

    def delete(self, path, **kw):
        return self._send("DELETE", path, **kw)


def _closed_while_idle(exc):
    text = str(exc)
    return ("Remote end closed connection without response" in text
            or "Connection reset by peer" in text)


def stack_env(db_url, redis_url, sim_port, workdir, **extra):
    env = dict(os.environ)
    env.update({
        "PORT": str(free_port()), "DATABASE_URL": db_url, "REDIS_URL": redis_url,
        "FREESWITCH_HOST": "127.0.0.1", "FREESWITCH_PORT": str(sim_port),
        "FREESWITCH_PASSWORD": "ClueCon", "FREESWITCH_TIMEOUT": "3",
        "SIP_RECORDING_PATH": os.path.join(workdir, "recordings"),
        "FREESWITCH_GATEWAY_DIR": os.path.join(workdir, "gateways"),
        "SECRET_KEY": "test-secret-key-0123456789", "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1", "RECONCILE_INTERVAL": "60", "RATELIMIT_ENABLED": "false",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _subscribed(simulator):
    if simulator is None:
        return 0
    return sum(1 for c in simulator.connections if c.authenticated and c.events_enabled)


@pytest.fixture(scope="module")
def stack_factory(tmp_path_factory, redis_server, db_url):
    """Make stacks on demand: stack_factory(db_url, sim, **env) -> Stack.

    It depends on db_url so that a module's SQLite stacks are stopped before its
    PostgreSQL run starts (a worker bound to one database must not take the
    other's jobs).
    """
    made = []

    def make(db_url, simulator, web=True, events=True, worker=False, **extra):
        workdir = str(tmp_path_factory.mktemp("stack"))
        if redis_server.proc is None:
            redis_server.start()
        env = stack_env(db_url, redis_server.url, simulator.port if simulator else free_port(),
                        workdir, **extra)
        if simulator is not None and getattr(simulator, "gateway_dir", None):
            env["FREESWITCH_GATEWAY_DIR"] = simulator.gateway_dir
        stack = Stack(env, workdir)
        stack.authenticate()
        made.append(stack)
        if events:
            subscribed = _subscribed(simulator)
            stack.start_events()
            if simulator is not None and simulator.running:
                # Calls placed before the events process subscribes would only be
                # caught up by reconciliation: wait for the subscription.
                wait_until(lambda: _subscribed(simulator) > subscribed, 30, 0.05,
                           "the events process to subscribe")
        if worker:
            stack.start_worker()
        if web:
            stack.start_web()
        return stack

    yield make
    for stack in made:
        stack.stop()


@pytest.fixture(scope="module")
def stack(stack_factory, db_url, sim):
    """web + events against the simulator, on the module's database."""
    return stack_factory(db_url, sim)


class ChannelRecorder:
    """Collects messages of Redis live channels in the test process."""

    def __init__(self, redis_url, channels=("calls",)):
        from services.redis_client import pubsub_channel
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(*[pubsub_channel(c) for c in channels])
        self.messages = []
        # Redis has subscribed once it confirmed each channel: a message published
        # after that (from any connection) reaches this recorder.
        confirmed, deadline = 0, time.monotonic() + 10
        while confirmed < len(channels) and time.monotonic() < deadline:
            msg = self.pubsub.get_message(timeout=0.5)
            confirmed += bool(msg and msg["type"] == "subscribe")
        assert confirmed == len(channels), "Redis did not confirm the subscriptions"
        self._greenlet = gevent.spawn(self._run)

    def _run(self):
        while True:
            try:
                msg = self.pubsub.get_message(timeout=0.2)
            except redis.RedisError:
                gevent.sleep(0.2)
                continue
            if msg and msg["type"] == "message":
                self.messages.append(json.loads(msg["data"]))

    def for_call(self, call_id):
        return [m for m in self.messages if m["data"].get("id") == call_id]

    def close(self):
        self._greenlet.kill()
        self.pubsub.close()


@pytest.fixture
def calls_channel(redis_server):
    recorder = ChannelRecorder(redis_server.url, ("calls",))
    gevent.sleep(0.1)
    yield recorder
    recorder.close()
