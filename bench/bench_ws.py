"""Benchmark: /ws publish-to-receive latency under fan-out; idle connections one web process holds.

Starts its own redis-server and --webs web processes (default 1; each gunicorn with one
gevent worker, as the Procfile runs `web` on a dyno, with --worker-connections raised) on
free loopback ports; the WebSocket clients are gevent sockets in this process, spread
evenly over the web processes (--clients is the number per web process).

1. Latency: N clients (default 1,000) subscribe to `calls`; messages are
   published through the real Publisher at R/s (default 200) for D seconds.
   Every client reads every message; latency (publish call -> frame parsed)
   is recorded at P probe clients (default 50) spread among them, which parse
   every frame. The other clients drain their sockets every 50 ms, so this
   process can keep up with 200,000 frames/s; the server does the same work
   for every client either way.
2. Idle connections: more clients connect (and subscribe) in batches until
   --max-connections or the first failure; the web worker's RSS is printed
   at each step.

Prints figures; asserts nothing about speed. Bounded in time (< 3 minutes).

    .venv/bin/python bench/bench_ws.py [--clients 1000] [--rate 200] [--seconds 10]
                                       [--max-connections 10000] [--webs 4]

Issue 18's layout: `--webs 4 --clients 1000 --rate 200` (4,000 clients, 1,000 on each web
process, 200 messages/s). The idle-connections phase runs with one web process only.
"""
from gevent import monkey

monkey.patch_all()

import argparse
import base64
import json
import os
import platform
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import gevent
import gevent.pool
import psutil
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from services.publisher import Publisher
from tests.conftest import RedisServer, free_port, stack_env, wait_until

DEADLINE = time.monotonic() + 170  # the whole run stays under 3 minutes


def raise_fd_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


# ----- a minimal WebSocket client over a gevent socket ------------------------
class WsClient:
    """Handshake, masked text frames out, unmasked frames in: just what the bench needs."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buffer = b""
        self.queued = []
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        self.sock.settimeout(None)
        self.queued.extend(self.frames())  # the welcome may have come with the 101

    def send_json(self, message):
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        length = len(payload)
        header = (struct.pack("!BB", 0x81, 0x80 | length) if length < 126
                  else struct.pack("!BBH", 0x81, 0x80 | 126, length))
        self.sock.sendall(header + mask + masked)

    def frames(self):
        """Complete (opcode, payload) frames in the buffer, consumed."""
        out = []
        buf = self.buffer
        while len(buf) >= 2:
            opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
            start = 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, start = struct.unpack("!H", buf[2:4])[0], 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, start = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < start + length:
                break
            out.append((opcode, buf[start:start + length]))
            buf = buf[start + length:]
        self.buffer = buf
        return out

    def read_json(self):
        """Block until the next text frame; return it parsed (later frames stay queued)."""
        while True:
            while self.queued:
                opcode, payload = self.queued.pop(0)
                if opcode == 1:
                    return json.loads(payload)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
            self.queued.extend(self.frames())

    def subscribe(self, channels):
        self.send_json({"type": "subscribe", "channels": channels})
        while self.read_json()["type"] != "subscribed":
            pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_client(port, channels=("calls",)):
    with gevent.Timeout(30, TimeoutError("no welcome or subscribed within 30 s")):
        client = WsClient(port)
        assert client.read_json()["type"] == "welcome"
        client.subscribe(list(channels))
    return client


def open_many(port, count, concurrency=100):
    pool = gevent.pool.Pool(concurrency)
    jobs = [pool.spawn(open_client, port) for _ in range(count)]
    gevent.joinall(jobs)
    clients = [job.value for job in jobs if job.successful()]
    errors = [job.exception for job in jobs if not job.successful()]
    return clients, errors


# ----- the server -----------------------------------------------------------
def start_web(redis_url, workdir, heartbeat_ms):
    env = stack_env("sqlite:///" + os.path.join(workdir, "bench.db"), redis_url, free_port(),
                    workdir, AUTH_ENABLED="false", RATELIMIT_ENABLED="false",
                    LOG_LEVEL="WARNING", WEBSOCKET_HEARTBEAT=heartbeat_ms,
                    METRICS_INTERVAL=3600)
    port = int(env["PORT"])
    with open(os.path.join(workdir, "web.log"), "ab") as log:  # the child keeps its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--worker-class", "gevent", "--workers", "1",
             "--worker-connections", "20000", "--backlog", "4096",
             "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2", "wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def up():
        try:
            return requests.get(f"http://127.0.0.1:{port}/api/health", timeout=1).ok
        except requests.RequestException:
            return False
    wait_until(up, 30, 0.1, "the web process")
    worker = psutil.Process(proc.pid).children()[0]
    return proc, port, worker


def stop_web(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# ----- phase 1: latency -------------------------------------------------------
def probe_reader(client, latencies, expected):
    """Parse every frame; record publish-to-receive latency of each bench message."""
    while len(latencies) < expected:
        chunk = client.sock.recv(65536)
        if not chunk:
            return
        now = time.time()
        client.buffer += chunk
        for opcode, payload in client.frames():
            if opcode == 1:
                sent = json.loads(payload).get("data", {}).get("sent")
                if sent is not None:
                    latencies.append(now - sent)


def sink_reader(client, received):
    """Drain the socket four times a second (cheap), counting bytes; the kernel buffers between."""
    while True:
        gevent.sleep(0.25)
        try:
            chunk = client.sock.recv(1 << 20)
        except OSError:
            return
        if not chunk:
            return
        received[0] += len(chunk)


def publish_steadily(notifier, rate, seconds, padding):
    interval = 1.0 / rate
    count = int(rate * seconds)
    start = time.perf_counter()
    late = 0
    for n in range(count):
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            gevent.sleep(delay)
        else:
            late += 1
        notifier.publish("calls", "call.updated", {"n": n, "sent": time.time(), "pad": padding})
    return count, time.perf_counter() - start, late


def probe_and_publish(ports, redis_url, probes, rate, seconds):
    """The --probe mode: P probe clients (spread over the web processes' ports) and the
    publisher, in a process of their own.

    Kept apart from the 1,000-client process so that neither the publisher's
    pacing nor the probes' wake-ups wait behind the other clients' reads.
    """
    import redis
    clients = []
    for index, port in enumerate(ports):
        share = probes // len(ports) + (1 if index < probes % len(ports) else 0)
        opened, errors = open_many(port, share)
        if errors:
            raise errors[0]
        clients += opened
    count = int(rate * seconds)
    latencies = [[] for _ in clients]
    readers = [gevent.spawn(probe_reader, c, lat, count) for c, lat in zip(clients, latencies)]
    print("ready", flush=True)
    sys.stdin.readline()
    notifier = Publisher(redis.Redis.from_url(redis_url))
    # ~600-byte envelopes, about the size of a call.updated message.
    published, took, late = publish_steadily(notifier, rate, seconds, "x" * 450)
    gevent.joinall(readers, timeout=10)
    warm = int(rate)  # leave out the first second
    samples = sorted(v for lat in latencies for v in lat[warm:])
    print(json.dumps({"published": published, "took": took, "late": late,
                      "lost": sum(count - len(lat) for lat in latencies),
                      "probes": len(clients), "n": len(samples),
                      "p50": percentile(samples, 50), "p90": percentile(samples, 90),
                      "p99": percentile(samples, 99), "max": samples[-1]}), flush=True)


def percentile(ordered, pct):
    return ordered[min(len(ordered) - 1, round(pct / 100.0 * (len(ordered) - 1)))]


def bench_latency(webs, redis_url, clients_per_web, probes_wanted, rate, seconds):
    """webs: [(proc, port, worker)]; clients_per_web clients on each (the probes included)."""
    ports = [port for _, port, _ in webs]
    helper = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--probe", redis_url,
         "--ports", ",".join(map(str, ports)), "--probes", str(probes_wanted),
         "--rate", str(rate), "--seconds", str(seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    # The other clients stand in for browsers on other machines: on this shared
    # box they must not starve the server or the measuring process of CPU.
    os.nice(10)
    t0 = time.perf_counter()
    sinks, errors = [], []
    for index, port in enumerate(ports):
        probes_here = probes_wanted // len(ports) + (1 if index < probes_wanted % len(ports)
                                                     else 0)
        opened, failed = open_many(port, clients_per_web - probes_here)
        sinks += opened
        errors += failed
    print(f"  connected {len(sinks)} clients in {time.perf_counter() - t0:.1f}s "
          f"({len(errors)} failed{': ' + repr(errors[0]) if errors else ''}); "
          "this process runs at nice 10")
    drained = [0]
    readers = [gevent.spawn(sink_reader, c, drained) for c in sinks]
    assert helper.stdout.readline().strip() == b"ready", "the probe process did not start"
    for _, _, worker in webs:
        worker.cpu_percent(None)
    helper.stdin.write(b"go\n")
    helper.stdin.flush()
    result = json.loads(helper.stdout.readline())
    cpus = [worker.cpu_percent(None) for _, _, worker in webs]
    helper.wait(30)
    gevent.sleep(0.5)
    for reader in readers:
        reader.kill()
    total = len(sinks) + result["probes"]
    print(f"  published {result['published']} messages in {result['took']:.1f}s "
          f"({result['published'] / result['took']:.0f}/s, {result['late']} sent late); "
          "web worker CPU " + " / ".join(f"{cpu:.0f}%" for cpu in cpus))
    print(f"  {result['probes']} probes x {result['published']} messages: lost {result['lost']}; "
          f"{len(sinks)} other clients drained {drained[0] / 1e6:.0f} MB")
    print("  latency publish -> received (ms): "
          + "  ".join(f"{k} {result[k] * 1000:.1f}" for k in ("p50", "p90", "p99", "max"))
          + f"  (n={result['n']}, first second left out)")
    print(f"  deliveries: {result['published'] * total / result['took']:,.0f} frames/s "
          f"written by {len(webs)} web process(es) to {total} clients")
    return sinks


# ----- phase 2: idle connections ------------------------------------------
def bench_idle(port, worker, clients, max_connections, step):
    rss_before = worker.memory_info().rss / 2**20
    count_before = len(clients)
    print(f"  {len(clients)} connections: web worker RSS {rss_before:.0f} MB")
    failure = None
    while len(clients) < max_connections and time.monotonic() < DEADLINE - 20:
        t0 = time.perf_counter()
        batch, errors = open_many(port, min(step, max_connections - len(clients)), 200)
        clients.extend(batch)
        gevent.sleep(0.5)
        rss = worker.memory_info().rss / 2**20
        print(f"  {len(clients)} connections: web worker RSS {rss:.0f} MB "
              f"(+{len(batch)} in {time.perf_counter() - t0:.1f}s)")
        if errors:
            failure = errors[0]
            print(f"  stopped: {len(errors)} connections failed, first: {failure!r}")
            break
    alive = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10).status_code
    rss = worker.memory_info().rss / 2**20
    per_connection = (rss - rss_before) * 1024 / max(1, len(clients) - count_before)
    print(f"  held {len(clients)} idle subscribed connections in one process: RSS {rss:.0f} MB "
          f"(~{per_connection:.0f} KB per connection); /api/health still answers {alive}")
    return clients


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--max-connections", type=int, default=10000)
    parser.add_argument("--step", type=int, default=1000)
    parser.add_argument("--probe", metavar="REDIS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--webs", type=int, default=1,
                        help="web processes (--clients on each)")
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe_and_publish([int(p) for p in args.ports.split(",")], args.probe, args.probes,
                          args.rate, args.seconds)
        return
    fds = raise_fd_limit()
    workdir = tempfile.mkdtemp(prefix="bench-ws-")
    redis_server = RedisServer(workdir).start()
    # The web processes refuse a database behind the code: migrate it first (the release step).
    from models.db import make_database
    from models.migrations import upgrade
    database = make_database("sqlite:///" + os.path.join(workdir, "bench.db"))
    with database.connection_context():
        upgrade(database)
    # No heartbeat during the run: the idle clients here do not answer pings.
    webs = [start_web(redis_server.url, workdir, heartbeat_ms=3_600_000)
            for _ in range(args.webs)]
    print(f"bench_ws: {platform.python_implementation()} {platform.python_version()}, "
          f"{psutil.cpu_count()} CPUs, fd limit {fds}, load {os.getloadavg()[0]:.2f}")
    print(f"process layout: redis-server (pid {redis_server.proc.pid}); "
          + "; ".join(f"web {n + 1}: gunicorn pid {proc.pid}, one gevent worker pid "
                      f"{worker.pid}, port {port}" for n, (proc, port, worker) in enumerate(webs))
          + "; this process: the other clients (nice 10); a helper process: the probes and "
          "the publisher")
    clients = []
    try:
        print(f"latency: {args.clients} clients on `calls` on each of {args.webs} web "
              f"process(es), {args.rate} messages/s for {args.seconds:.0f}s")
        clients = bench_latency(webs, redis_server.url, args.clients, args.probes,
                                args.rate, args.seconds)
        if args.webs == 1:
            print(f"idle connections: up to {args.max_connections}")
            clients = bench_idle(webs[0][1], webs[0][2], clients, args.max_connections,
                                 args.step)
    finally:
        for client in clients:
            client.close()
        for proc, _, _ in webs:
            stop_web(proc)
        redis_server.stop()


if __name__ == "__main__":
    main()
