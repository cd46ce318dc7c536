"""Benchmark: recording transcoding speed (x real time) and ranged-download throughput.

1. Transcodes a 10-minute call (8 kHz mono 16-bit WAV, as FreeSWITCH records
   it) with the worker's own function, in this one process (= one worker):
   MP3, Ogg/Opus, WAV, and the whole job (its format + the kept WAV + SHA-256).
2. Starts its own redis-server and a real `web` process (gunicorn + gevent, as
   the Procfile runs it), stores that recording as ready, and downloads it:
   whole files, then many concurrent 64 KiB and 1 MiB ranges at random offsets
   (what an audio player seeking does).

Prints figures; asserts nothing about speed (the goal: MP3 >= 100x real time).

    .venv/bin/python bench/bench_recordings.py [--seconds 600] [--clients 16] [--ranges 2000]
"""
from gevent import monkey

monkey.patch_all()

import argparse
import datetime
import hashlib
import os
import platform
import random
import statistics
import sys
import tempfile
import time

import gevent
import gevent.pool
import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from services.recordings.audio import file_digest, transcode
from tests.conftest import RedisServer, Stack, stack_env
from tests.esl_sim.server import write_wav


def timed(fn, repeat):
    """Median wall time of fn() over repeat runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_transcoding(workdir, seconds, repeat):
    source = os.path.join(workdir, "call.wav")
    write_wav(source, seconds)
    print(f"== transcoding a {seconds / 60:.0f}-minute call "
          f"({os.path.getsize(source) / 1e6:.1f} MB WAV, 8 kHz mono), one process, "
          f"median of {repeat}")
    for fmt in ("mp3", "ogg", "wav"):
        target = os.path.join(workdir, f"out.{fmt}")
        elapsed = timed(lambda fmt=fmt, target=target: transcode(source, target, fmt), repeat)
        print(f"  {fmt:4s} {elapsed:6.2f} s  = {seconds / elapsed:7.0f}x real time   "
              f"({os.path.getsize(target) / 1e6:.2f} MB)")

    def whole_job():
        for fmt in ("mp3", "wav"):
            target = os.path.join(workdir, f"job.{fmt}")
            transcode(source, target, fmt)
            file_digest(target)
    elapsed = timed(whole_job, repeat)
    print(f"  job  {elapsed:6.2f} s  = {seconds / elapsed:7.0f}x real time   "
          "(mp3 + kept WAV + SHA-256 of both: what one worker does per recording)")
    return source


def store_ready_recording(db_url, root, source):
    """The recording as the worker leaves it: mp3 + wav under the root, a ready row."""
    from models import Call, create_tables, db, init_db
    from models.recording import Recording
    from services.recordings.storage import RecordingStorage
    init_db(db_url)
    with db.connection_context():
        create_tables()
        call = Call.create(status="completed")
        relpath = RecordingStorage.source_relpath(call.id, datetime.datetime.now(datetime.UTC))
        os.makedirs(os.path.dirname(os.path.join(root, relpath)), exist_ok=True)
        files = {}
        for fmt in ("mp3", "wav"):
            out = relpath[:-4] + "." + fmt
            transcode(source, os.path.join(root, out), fmt)
            size, sha256 = file_digest(os.path.join(root, out))
            files[fmt] = {"path": out, "size": size, "sha256": sha256}
        Recording.create(call=call.id, status="ready", format="mp3", source_path=relpath,
                         files=files, size=files["mp3"]["size"], sha256=files["mp3"]["sha256"])
    return f"/api/calls/{call.id}/recording", files


def bench_whole_downloads(stack, url, fmt, count):
    session = requests.Session()
    started = time.perf_counter()
    total = 0
    for _ in range(count):
        response = session.get(stack.url(url), params={"format": fmt}, timeout=60)
        response.raise_for_status()
        total += len(response.content)
    elapsed = time.perf_counter() - started
    print(f"  whole {fmt}: {count} downloads of {total / count / 1e6:.2f} MB, one client: "
          f"{total / elapsed / 1e6:7.1f} MB/s")


def bench_ranges(stack, url, fmt, size, sha256, clients, requests_total, chunk):
    latencies, moved = [], [0]
    rnd = random.Random(7)
    offsets = [rnd.randrange(0, max(1, size - chunk)) for _ in range(requests_total)]
    sessions = [requests.Session() for _ in range(clients)]

    def fetch(index):
        start = offsets[index]
        headers = {"Range": f"bytes={start}-{start + chunk - 1}", "If-Range": f'"{sha256}"'}
        began = time.perf_counter()
        response = sessions[index % clients].get(stack.url(url), params={"format": fmt},
                                                 headers=headers, timeout=60)
        latencies.append(time.perf_counter() - began)
        assert response.status_code == 206, response.status_code
        moved[0] += len(response.content)

    pool = gevent.pool.Pool(clients)
    started = time.perf_counter()
    pool.map(fetch, range(requests_total))
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(f"  ranges {fmt}: {requests_total} x {chunk // 1024} KiB at random offsets, "
          f"{clients} clients: "
          f"{requests_total / elapsed:6.0f} req/s, {moved[0] / elapsed / 1e6:6.1f} MB/s, "
          f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="call length to transcode")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--ranges", type=int, default=2000)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    workdir = tempfile.mkdtemp(prefix="bench-recordings-")
    source = bench_transcoding(workdir, args.seconds, args.repeat)

    redis_server = RedisServer(workdir).start()
    root = os.path.join(workdir, "recordings")
    db_url = "sqlite:///" + os.path.join(workdir, "bench.db")
    env = stack_env(db_url, redis_server.url, 1, workdir, SIP_RECORDING_PATH=root,
                    AUTH_ENABLED="false", RATELIMIT_ENABLED="false", LOG_LEVEL="WARNING")
    stack = Stack(env, workdir)
    try:
        url, files = store_ready_recording(db_url, root, source)
        stack.start_web(workers=args.web_workers)
        print(f"== downloads from a running web process (gunicorn gevent, "
              f"{args.web_workers} workers), loopback")
        for fmt in ("mp3", "wav"):
            bench_whole_downloads(stack, url, fmt, count=20)
        for fmt, chunk, count in (("mp3", 64 * 1024, args.ranges), ("wav", 64 * 1024, args.ranges),
                                  ("wav", 1024 * 1024, args.ranges // 4)):
            bench_ranges(stack, url, fmt, files[fmt]["size"], files[fmt]["sha256"], args.clients,
                         count, chunk)
        check = requests.get(stack.url(url), timeout=60).content
        assert hashlib.sha256(check).hexdigest() == files["mp3"]["sha256"]
    finally:
        stack.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
