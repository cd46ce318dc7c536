"""Benchmark: the wallboard in headless Chromium with 500 live calls and 200 agents changing
state, the switch played by the ESL simulator.

Starts its own redis-server, the ESL simulator (in this process), `events` and `web` (as
the Procfile runs them), places --calls calls (answered and parked by the simulator),
creates --agents agents and logs them in, then opens /wallboard as a supervisor in
headless Chromium. Measured in the browser:

- main-thread busy time per second: Chromium's own TaskDuration (CDP Performance.getMetrics),
  sampled every second;
- update latency: a `/ws` message received by the page -> its row updated in the DOM
  (window.ccStats, recorded by web/js/wallboard.js for every message).

First a reference of --reference seconds with the same rows and no updates (only the
ticking durations), then --seconds of load: agents toggling available <-> paused at
--agent-rate changes/s, and --churn calls/s ended and replaced by new ones.
Prints figures; asserts nothing about speed (the goal: p99 <= 100 ms, busy <= 30 %).

    .venv/bin/python bench/bench_wallboard.py [--calls 500] [--agents 200] [--seconds 30]
                                              [--agent-rate 20] [--churn 5] [--reference 10]
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import psutil  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from services.auth import create_key  # noqa: E402
from tests.browser.conftest import Browser, _missing  # noqa: E402
from tests.conftest import RedisServer, Stack, stack_env, wait_until  # noqa: E402
from tests.esl_sim import ESLSimulator  # noqa: E402

FIRST_PHONE = 3000


def start_stack(workdir, sim):
    redis_server = RedisServer(workdir).start()
    db_url = "sqlite:///" + os.path.join(workdir, "bench.db")
    env = stack_env(db_url, redis_server.url, sim.port, workdir, DEFAULT_GATEWAY="gw1",
                    LOG_LEVEL="WARNING", SLOW_REQUEST_SECONDS="10")
    stack = Stack(env, workdir)
    stack.authenticate()
    stack.start_events()
    wait_until(lambda: any(c.authenticated and c.events_enabled for c in sim.connections), 30,
               message="the events process to subscribe")
    stack.start_web()
    return redis_server, stack


def live_count(stack):
    return sum(len(stack.get("/api/calls/history", params={"status": s, "page_size": 500})
                   .json()) for s in ("initiated", "ringing", "in-progress"))


def populate(stack, sim, n_calls, n_agents):
    pool = gevent.pool.Pool(20)
    agents = [f"bench-{i:03d}" for i in range(n_agents)]
    for i in range(n_agents):
        sim.phones[str(FIRST_PHONE + i)] = "127.0.0.1"

    def agent(i):
        stack.post("/api/agents", {"id": agents[i], "name": f"Agent {i}",
                                   "endpoint": f"user/{FIRST_PHONE + i}"})
        stack.post(f"/api/agents/{agents[i]}/login")

    pool.map(agent, range(n_agents))
    calls = pool.map(lambda i: stack.post("/api/calls/start", {"to": f"1555{i:07d}"}).json()["id"],
                     range(n_calls))
    wait_until(lambda: live_count(stack) >= n_calls, 120, 1, f"{n_calls} live calls")
    return agents, calls


def open_wallboard(stack, n_calls, n_agents):
    key = create_key("supervisor", "bench-board", database_url=stack.env["DATABASE_URL"])
    browser = Browser(stack.base_url)
    browser.open("/wallboard")
    browser.sign_in(key)
    wait_until(lambda: browser.js("return document.querySelectorAll('#calls-body tr').length")
               >= n_calls and browser.js("return document.querySelectorAll('#agents-body tr')"
                                         ".length") >= n_agents, 120, 0.5, "every row shown")
    browser.driver.execute_cdp_cmd("Performance.enable", {})
    return browser


def task_seconds(browser):
    metrics = browser.driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    return next(m["value"] for m in metrics if m["name"] == "TaskDuration")


def renderers(browser):
    """The page's renderer processes (children of chromedriver's chromium)."""
    driver = psutil.Process(browser.driver.service.process.pid)
    return [p for p in driver.children(recursive=True)
            if "--type=renderer" in " ".join(p.cmdline())]


def cpu_seconds(processes):
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def sample_busy(browser, seconds):
    """Per second of the next `seconds`: the main thread's task time (TaskDuration) and the
    renderer processes' CPU time, each as a share of the second."""
    shares, cpu = [], []
    procs = renderers(browser)
    last = (task_seconds(browser), cpu_seconds(procs), time.monotonic())
    for _ in range(int(seconds)):
        gevent.sleep(1.0)
        now = (task_seconds(browser), cpu_seconds(procs), time.monotonic())
        shares.append((now[0] - last[0]) / (now[2] - last[2]))
        cpu.append((now[1] - last[1]) / (now[2] - last[2]))
        last = now
    return shares, cpu


def drive(stack, agents, calls, agent_rate, churn, stop):
    paused = set()
    counter = [len(calls)]

    def toggle():
        while not stop.is_set():
            agent = random.choice(agents)
            action = "resume" if agent in paused else "pause"
            if stack.post(f"/api/agents/{agent}/{action}", {"reason": "break"}).ok:
                paused.symmetric_difference_update({agent})
            gevent.sleep(1.0 / agent_rate)

    def replace_calls():
        while not stop.is_set():
            stack.post(f"/api/calls/{calls.pop(random.randrange(len(calls)))}/end")
            counter[0] += 1
            new = stack.post("/api/calls/start", {"to": f"1556{counter[0]:07d}"})
            if new.ok:
                calls.append(new.json()["id"])
            gevent.sleep(1.0 / churn)

    workers = [gevent.spawn(toggle) for _ in range(2)] + [gevent.spawn(replace_calls)]
    return workers


def share_text(label, shares):
    shares = sorted(shares)
    return (f"{label} mean {statistics.mean(shares) * 100:5.1f} % "
            f"p95 {shares[int(0.95 * (len(shares) - 1))] * 100:5.1f} % "
            f"max {shares[-1] * 100:5.1f} %")


def report(name, busy, latencies):
    shares, cpu = busy
    line = f"  {name:10s} {share_text('main-thread tasks/s', shares)} | {share_text('CPU', cpu)}"
    if latencies:
        ordered = sorted(latencies)
        p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        line += (f" | updates {len(ordered):6d}  latency p50 {p(0.5):6.1f} ms  "
                 f"p99 {p(0.99):6.1f} ms  max {ordered[-1]:6.1f} ms")
    print(line)


def top_processes(before, n):
    """The n processes of this machine that used the most CPU since `before` (pid -> times):
    the machine is shared with the stack, this script and whatever else runs."""
    used = []
    for process in psutil.process_iter(["cmdline", "name"]):
        if process.pid not in before:
            continue
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        spent = times.user + times.system - before[process.pid].user - before[process.pid].system
        name = " ".join(process.info["cmdline"] or [process.info["name"] or "?"])
        used.append((round(spent, 1), name[:60]))
    return sorted(used, reverse=True)[:n]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--agent-rate", type=float, default=20.0, help="state changes per second")
    parser.add_argument("--churn", type=float, default=5.0, help="calls replaced per second")
    parser.add_argument("--reference", type=int, default=10)
    args = parser.parse_args()
    if _missing():
        print(f"skipped: {_missing()}")
        return
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{platform.platform()}")
    workdir = tempfile.mkdtemp(prefix="bench-wallboard-")
    sim = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon", recordings_root=None)
    sim.start()
    redis_server, stack = start_stack(workdir, sim)
    browser = None
    try:
        agents, calls = populate(stack, sim, args.calls, args.agents)
        browser = open_wallboard(stack, args.calls, args.agents)
        print(f"== wallboard with {args.calls} live calls and {args.agents} agents "
              f"(headless Chromium {browser.driver.capabilities.get('browserVersion')})")
        browser.js("window.ccStats.latencies = []; window.ccStats.endToEnd = []")
        report("reference", sample_busy(browser, args.reference), [])
        browser.js("window.ccStats.latencies = []; window.ccStats.endToEnd = []")
        browser.js("window.ccLong = []; new PerformanceObserver(l => window.ccLong.push("
                   "...l.getEntries().map(e => Math.round(e.duration))))"
                   ".observe({type: 'longtask'})")
        cpu = {p.pid: p.cpu_times() for p in psutil.process_iter()}
        stop = gevent.event.Event()
        workers = drive(stack, agents, calls, args.agent_rate, args.churn, stop)
        busy = sample_busy(browser, args.seconds)
        stop.set()
        gevent.joinall(workers, timeout=10)
        latencies = browser.js("return window.ccStats.latencies")
        print(f"  load: {args.agent_rate:g} agent state changes/s, {args.churn:g} calls "
              f"replaced/s for {args.seconds} s")
        print("  updates: received -> row updated; then the server's publication -> row updated")
        report("under load", busy, latencies)
        report("end to end", busy, browser.js("return window.ccStats.endToEnd"))
        rows = browser.js("return document.querySelectorAll('#calls-body tr').length")
        print("  busiest processes during the load (CPU s):", top_processes(cpu, 5))
        print("  long tasks (ms):", browser.js("return window.ccLong.slice(0, 30)"))
        print("  last tick (ms):", browser.js("return window.ccStats.tickMs"))
        print(f"  rows at the end: {rows} calls (REST: {live_count(stack)} live)")
    finally:
        if browser is not None:
            browser.quit()
        stack.stop()
        redis_server.stop()
        sim.stop()


if __name__ == "__main__":
    main()
