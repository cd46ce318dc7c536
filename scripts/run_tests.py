"""Run the test suite as several pytest processes at once (what `make test` does).

pytest-xdist cannot be used: the suite patches the interpreter with gevent
(tests/conftest.py), which breaks xdist's worker threads. Instead the test files
are split into TEST_JOBS shards (default 3) balanced by how long each file took
last time (tests/durations.json, refreshed locally in .run/test_durations.json),
longest first; each shard is a plain pytest process with its own Redis, database
and FreeSWITCH instances (every fixture binds free loopback ports).

    python scripts/run_tests.py [-j N] [pytest args...]

Paths among the arguments (or TEST_JOBS=1) run one plain pytest process instead.
Each shard's output is printed whole when it ends, then a summary; the exit code
is non-zero when any shard failed.
"""
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "tests", "durations.json")
LOCAL = os.path.join(ROOT, ".run", "test_durations.json")
UNKNOWN_FILE_SECONDS = 10.0
NO_TESTS_COLLECTED = 5


def _load(path):
    try:
        with open(path, encoding="utf-8") as source:
            return json.load(source)
    except (OSError, ValueError):
        return {}


def test_files():
    found = glob.glob(os.path.join(ROOT, "tests", "**", "test_*.py"), recursive=True)
    return sorted(os.path.relpath(path, ROOT) for path in found)


def shards(files, jobs, durations):
    """Longest-processing-time-first: each file to the shard with the least work so far."""
    buckets = [[0.0, []] for _ in range(jobs)]
    weight = {name: float(durations.get(name, UNKNOWN_FILE_SECONDS)) for name in files}
    for name in sorted(files, key=lambda n: (-weight[n], n)):
        bucket = min(buckets, key=lambda b: b[0])
        bucket[0] += weight[name]
        bucket[1].append(name)
    return [(seconds, names) for seconds, names in buckets if names]


def _start(index, names, extra):
    os.makedirs(os.path.join(ROOT, ".run"), exist_ok=True)
    log_path = os.path.join(ROOT, ".run", f"test-shard-{index}.log")
    times_path = os.path.join(ROOT, ".run", f"test-times-{index}.json")
    env = dict(os.environ, CC_TEST_TIMES=times_path, CC_TEST_SHARD=str(index))
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-p", "tests.timing_plugin", *extra, *names]
    log = open(log_path, "w", encoding="utf-8")
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return {"index": index, "proc": proc, "log": log, "log_path": log_path,
            "times": times_path, "started": time.monotonic(), "files": len(names)}


def _finish(shard):
    shard["log"].close()
    seconds = time.monotonic() - shard["started"]
    code = shard["proc"].returncode
    with open(shard["log_path"], encoding="utf-8", errors="replace") as log:
        print(f"\n===== shard {shard['index']} ({shard['files']} files, {seconds:.0f} s, "
              f"exit {code}) =====", flush=True)
        sys.stdout.write(log.read())
    return code in (0, NO_TESTS_COLLECTED), _load(shard["times"])


def run_sharded(jobs, extra):
    durations = {**_load(BASELINE), **_load(LOCAL)}
    plan = shards(test_files(), jobs, durations)
    for index, (seconds, names) in enumerate(plan):
        print(f"shard {index}: {len(names)} files, about {seconds:.0f} s", flush=True)
    started = time.monotonic()
    running = [_start(index, names, extra) for index, (_, names) in enumerate(plan)]
    ok, measured = True, {}
    while running:
        for shard in list(running):
            if shard["proc"].poll() is not None:
                running.remove(shard)
                shard_ok, times = _finish(shard)
                ok &= shard_ok
                measured.update(times)
        time.sleep(0.5)
    if measured:
        with open(LOCAL, "w", encoding="utf-8") as out:
            json.dump({**durations, **measured}, out, indent=0, sort_keys=True)
    verdict = "passed" if ok else "FAILED"
    print(f"\n===== {len(plan)} shards {verdict} in {time.monotonic() - started:.0f} s "
          f"(logs: .run/test-shard-*.log) =====", flush=True)
    return 0 if ok else 1


def main(argv):
    jobs = int(os.environ.get("TEST_JOBS", "3"))
    if len(argv) >= 2 and argv[0] == "-j":
        jobs, argv = int(argv[1]), argv[2:]
    if jobs <= 1 or any(os.path.exists(arg.split("::")[0]) for arg in argv):
        return subprocess.call([sys.executable, "-m", "pytest", "-q", *argv], cwd=ROOT)
    return run_sharded(jobs, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
