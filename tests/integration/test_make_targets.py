"""`make run`, `make simulator` and `make run-real` run for real, as a new developer runs them.

Each target runs in its own session (as in a terminal) on free ports with a tmp SQLite;
Ctrl-C is SIGINT to that process group, a supervisor's stop is SIGTERM to make alone.
Whatever a test started (make, honcho's children, the Redis and FreeSWITCH it started)
is killed at teardown, even when an assertion failed.
"""
import json
import os
import signal
import socket
import subprocess

import gevent
import pytest
import redis
import requests

from config import load_config
from models.call import IN_PROGRESS
from tests.conftest import ROOT, Stack, free_port, wait_until
from tests.integration.conftest import FS_LAUNCHER, NO_REAL_SWITCH

GATEWAY = {"name": "demo-pbx", "provider": "asterisk", "host": "127.0.0.1", "port": 5090,
           "username": "agent1000", "password": "Demo-Secret-42", "caller_id": "+15551230000"}


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def descendants(root):
    """Every live process below root (honcho puts its children in sessions of their own)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


class Make:
    """One `make <target>` in its own session (a terminal of its own), output in a log."""

    def __init__(self, args, env, log_path):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(["make", "--no-print-directory", *args], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.seen = set()

    def output(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def remember_children(self):
        self.seen |= descendants(self.proc.pid)

    def wait(self, timeout):
        """make's exit status, or None if it is still running after timeout seconds."""
        deadline = timeout
        while self.proc.poll() is None and deadline > 0:
            gevent.sleep(0.1)
            deadline -= 0.1
        return self.proc.poll()

    def kill(self):
        """Stop make, everything below it and everything it was seen to have started."""
        self.remember_children()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait(15) is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for pid in self.seen:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()


@pytest.fixture
def launched(tmp_path):
    """launch(args, env) -> Make; at teardown every launched make and what it started is killed,
    with the redis-servers it started on the ports the test chose (daemonized: not below make)."""
    makes, redis_ports, rundirs = [], [], []

    def launch(args, env):
        make = Make(args, env, tmp_path / f"make-{len(makes)}.log")
        makes.append(make)
        redis_ports.append(redis.Redis.from_url(env["REDIS_URL"]).connection_pool
                           .connection_kwargs["port"])
        if env.get("FREESWITCH_RUNDIR"):
            rundirs.append(env["FREESWITCH_RUNDIR"])
        return make

    yield launch
    for make in makes:
        make.kill()
    for port in redis_ports:
        pid = read_pid(os.path.join(ROOT, ".run", f"redis-{port}.pid"))
        if pid and alive(pid) and "redis" in cmdline(pid):
            os.kill(pid, signal.SIGKILL)
    for rundir in rundirs:
        if os.path.exists(os.path.join(rundir, "run", "freeswitch.pid")):
            subprocess.run([FS_LAUNCHER, "stop", rundir, "--timeout", "0"], capture_output=True,
                           timeout=30)


def read_pid(path):
    try:
        with open(path) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def make_env(tmp_path, redis_url, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FREESWITCH_", "MAKE", "MFLAGS")) and k != "DEFAULT_GATEWAY"}
    env.update({
        "PORT": str(free_port()), "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp_path}/callcenter.db",
        "FREESWITCH_GATEWAY_DIR": str(tmp_path / "gateways"),
        "FREESWITCH_TIMEOUT": "3", "SIP_RECORDING_PATH": str(tmp_path / "recordings"),
        "SECRET_KEY": "test-secret-key-0123456789", "RATELIMIT_ENABLED": "false",
        "WEB_CONCURRENCY": "1", "PYTHONUNBUFFERED": "1", "RECONCILE_INTERVAL": "60",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def health(env):
    try:
        response = requests.get(f"http://127.0.0.1:{env['PORT']}/api/health", timeout=1)
    except requests.RequestException:
        return None
    return response.json() if response.status_code in (200, 503) else None


def wait_for_service(make, env, timeout=60, connected=False):
    """Until /api/health answers (with connected: FreeSWITCH reached and events subscribed)."""
    def ready():
        if make.proc.poll() is not None:
            raise AssertionError(f"make exited ({make.proc.returncode}):\n{make.output()[-3000:]}")
        body = health(env)
        if body and connected:
            return body["freeswitch"]["status"] == "ok" and body["events"]["status"] == "ok"
        return body
    wait_until(ready, timeout, 0.2, "the service started by make to answer /api/health")
    make.remember_children()


def listening(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm-to-make"])
def test_make_run_serves_and_stops_the_redis_it_started(tmp_path, launched, how):
    redis_port = free_port()
    env = make_env(tmp_path, f"redis://127.0.0.1:{redis_port}/0", FREESWITCH_PORT=free_port())
    make = launched(["run"], env)
    wait_for_service(make, env)
    assert health(env)["redis"]["status"] == "ok"
    redis_pid = read_pid(os.path.join(ROOT, ".run", f"redis-{redis_port}.pid"))
    assert redis_pid and alive(redis_pid), "make run should have started a redis-server"

    if how == "ctrl-c":
        os.killpg(make.proc.pid, signal.SIGINT)
    else:
        make.proc.send_signal(signal.SIGTERM)
    assert make.wait(30) is not None, "make run did not stop:\n" + make.output()[-3000:]

    wait_until(lambda: not alive(redis_pid), 10, 0.1, "the redis-server make run started to stop")
    assert not listening(redis_port)
    left = sorted(pid for pid in make.seen if alive(pid))
    assert not left, f"processes of make run still running: {[cmdline(p) for p in left]}"
    assert not listening(int(env["PORT"])), "the web process still serves after make run stopped"


def test_make_simulator_reads_the_gateway_folder_the_service_writes(tmp_path, launched,
                                                                    redis_server):
    env = make_env(tmp_path, redis_server.url, FREESWITCH_PORT=free_port())
    simulator = launched(["simulator"], env)
    wait_until(lambda: listening(int(env["FREESWITCH_PORT"])) or simulator.proc.poll() is not None,
               60, 0.1, "make simulator to listen")
    assert simulator.proc.poll() is None, simulator.output()[-3000:]
    service = launched(["run"], env)
    wait_for_service(service, env, connected=True)
    stack = Stack(env, str(tmp_path))
    stack.authenticate()

    response = stack.post("/api/sip/configure", GATEWAY)
    assert response.status_code in (200, 201), response.text
    assert response.json()["apply_state"] == "applied"
    assert os.listdir(tmp_path / "gateways")

    # The README's first call, as written (no DEFAULT_GATEWAY in a fresh checkout).
    response = stack.post("/api/calls/start", {"to": "1000", "gateway": "gw1"})
    assert response.status_code == 201, response.text
    call_id = response.json()["id"]
    wait_until(lambda: stack.get(f"/api/calls/{call_id}").json()["status"] == IN_PROGRESS, 20, 0.2,
               "the first call to be answered by the simulator")

    os.killpg(service.proc.pid, signal.SIGINT)
    assert service.wait(30) is not None, service.output()[-3000:]
    assert redis.Redis.from_url(redis_server.url).ping(), \
        "a Redis that make run did not start was stopped"


def test_make_simulator_defaults_to_the_services_gateway_folder():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FREESWITCH_", "MAKE", "MFLAGS"))}
    done = subprocess.run(["make", "--no-print-directory", "-n", "simulator"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    default = load_config({})["FREESWITCH_GATEWAY_DIR"]
    assert f'--gateway-dir "{default}"' in done.stdout, done.stdout + done.stderr


def test_make_run_real_places_a_real_call_and_stops_the_switch(tmp_path, launched, redis_server):
    if not os.path.exists(FS_LAUNCHER):
        pytest.skip(NO_REAL_SWITCH)
    rundir = tmp_path / "freeswitch"
    env = make_env(tmp_path, redis_server.url, FREESWITCH_RUNDIR=rundir, FS_QUIET="1",
                   FREESWITCH_DIST=os.path.dirname(FS_LAUNCHER))
    del env["FREESWITCH_GATEWAY_DIR"]  # the switch's own folder, from `fs start`
    make = launched(["run-real"], env)
    wait_for_service(make, env, timeout=90, connected=True)
    info = json.loads((rundir / "fs.json").read_text().strip().splitlines()[-1])
    assert alive(info["pid"])
    stack = Stack(env, str(tmp_path))
    stack.authenticate()

    response = stack.post("/api/calls/start", {"to": "answer-1"})  # DEFAULT_GATEWAY=farend
    assert response.status_code == 201, response.text
    call_id = response.json()["id"]
    wait_until(lambda: stack.get(f"/api/calls/{call_id}").json()["status"] == IN_PROGRESS, 30, 0.2,
               "the real call to answer-1 to be in progress")

    os.killpg(make.proc.pid, signal.SIGINT)
    assert make.wait(40) is not None, make.output()[-3000:]
    wait_until(lambda: not alive(info["pid"]), 20, 0.2,
               "the FreeSWITCH that make run-real started to stop")
    assert not listening(int(info["esl_port"]))
