"""HealthService: checks of the database, Redis, FreeSWITCH, the events process, queues,
workers, disk and memory."""
import datetime
import os
import shutil
import time

import peewee
import psutil
import redis
from rq import Queue, Worker
from rq.registry import FailedJobRegistry

from models import db, is_sqlite
from services import nodes as node_registry
from services.jobs import ALL_QUEUES

VERSION = "1.0.0"
MB = 1024 * 1024
# Below these, recordings soon stop being written: warn early, alarm late.
DISK_DEGRADED_FREE_PCT = 10.0
DISK_DOWN_FREE_BYTES = 200 * MB
SYSTEM_MEMORY_DEGRADED_PCT = 90.0


def _component(status, detail=None, **figures):
    return {"status": status, "detail": detail, **figures}


def _elapsed_ms(started):
    return round((time.perf_counter() - started) * 1000, 2)


def _per_node(nodes, what):
    """One component from each node's: the single node's own, else ok when all are,
    down when none is up, degraded otherwise (the detail names the nodes not ok)."""
    if len(nodes) == 1:
        only = next(iter(nodes.values()))
        return _component(only["status"], only["detail"], nodes=nodes)
    bad = sorted(name for name, part in nodes.items() if part["status"] != "ok")
    if not bad:
        return _component("ok", None, nodes=nodes)
    if all(nodes[name]["status"] == "down" for name in nodes):
        return _component("down", f"no {what} is up", nodes=nodes)
    return _component("degraded", f"{what} not ok on: {', '.join(bad)}", nodes=nodes)


def overall_status(parts):
    """down when the database is (nothing works without it); degraded when anything else is."""
    if parts["database"]["status"] == "down":
        return "down"
    return "ok" if all(p["status"] == "ok" for p in parts.values()) else "degraded"


def _now_iso():
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


class HealthService:
    def __init__(self, services):
        self.services = services
        self.config = getattr(services, "config", {}) or {}

    def database(self):
        started = time.perf_counter()
        try:
            db.execute_sql("SELECT 1")
        except peewee.PeeweeException as exc:  # any driver error means the same thing here
            return _component("down", type(exc).__name__)
        return _component("ok", None, engine="sqlite" if is_sqlite() else "postgresql",
                          latency_ms=_elapsed_ms(started))

    def redis(self):
        started = time.perf_counter()
        try:
            self.services.redis.ping()
        except redis.RedisError as exc:
            return _component("down", str(exc)[:200])
        return _component("ok", None, latency_ms=_elapsed_ms(started))

    def _node_commands(self):
        commands = self.services.commands
        items = getattr(commands, "items", None)
        return dict(items()) if items else {node_registry.DEFAULT_NODE: commands}

    def freeswitch(self):
        """The command connection of each FreeSWITCH node: down when none answers,
        degraded when some do not."""
        nodes = {}
        for name, commands in self._node_commands().items():
            up = commands.ping()
            nodes[name] = {"status": "ok" if up else "down",
                           "detail": "command connection up" if up
                           else (commands._last_error or "unreachable")}
        return _per_node(nodes, "FreeSWITCH node")

    def events(self):
        """Each node's events process writes its connection state to Redis every few seconds."""
        names = list(self._node_commands())
        try:
            states = node_registry.read_states(self.services.redis, names)
        except redis.RedisError:
            return _component("degraded", "unknown (Redis down)")
        nodes = {}
        for name in names:
            state = states.get(name)
            if state is None:
                nodes[name] = {"status": "down", "detail": "no events process has reported"}
                continue
            nodes[name] = {"status": "ok" if state.get("state") == node_registry.CONNECTED
                           else "degraded", "detail": state.get("state"),
                           "since": state.get("since"), "queue": state.get("queue"),
                           "events_applied": state.get("events_applied")}
        return _per_node(nodes, "events process")

    def basic(self):
        parts = {"database": self.database(), "redis": self.redis(),
                 "freeswitch": self.freeswitch(), "events": self.events()}
        return {"status": overall_status(parts), "version": VERSION, "time": _now_iso(), **parts}

    # ----- the operator's view -------------------------------------------------
    def queues(self, redis_up=True):
        if not redis_up:
            return _component("down", "unknown (Redis down)", queues=[])
        try:
            figures = [{"name": name, "queued": Queue(name, connection=self.services.redis).count,
                        "failed": FailedJobRegistry(name, connection=self.services.redis).count}
                       for name in ALL_QUEUES]
        except redis.RedisError as exc:
            return _component("down", str(exc)[:200], queues=[])
        backlog = sum(q["queued"] for q in figures)
        limit = self.config.get("QUEUE_BACKLOG_ALERT", 1000)
        if backlog > limit:
            return _component("degraded", f"{backlog} jobs waiting (alert above {limit})",
                              queues=figures)
        return _component("ok", None, queues=figures)

    def workers(self, redis_up=True):
        if not redis_up:
            return _component("down", "unknown (Redis down)", count=0)
        try:
            workers = Worker.all(connection=self.services.redis)
            served = {name for worker in workers for name in worker.queue_names()}
        except redis.RedisError as exc:
            return _component("down", str(exc)[:200], count=0)
        if not workers:
            return _component("degraded", "no RQ worker is running: recording and quality "
                                          "jobs wait", count=0)
        unserved = [name for name in ALL_QUEUES if name not in served]
        if unserved:  # e.g. workers started with an older release's list of queues
            return _component("degraded", f"no RQ worker serves {', '.join(unserved)}: "
                                          "jobs there wait", count=len(workers), unserved=unserved)
        return _component("ok", None, count=len(workers))

    def disk(self):
        """Free space where recordings go (the nearest existing parent if not created yet)."""
        path = self.config.get("SIP_RECORDING_PATH") or "."
        probe = path
        while not os.path.exists(probe) and os.path.dirname(probe) != probe:
            probe = os.path.dirname(probe)
        try:
            usage = shutil.disk_usage(probe)
        except OSError as exc:
            return _component("down", f"cannot read {path}: {exc.strerror}", path=path)
        free_pct = round(100.0 * usage.free / usage.total, 1) if usage.total else 0.0
        figures = {"path": path, "free_mb": usage.free // MB, "total_mb": usage.total // MB,
                   "free_percent": free_pct}
        if usage.free < DISK_DOWN_FREE_BYTES:
            return _component("down", "recording disk nearly full", **figures)
        if free_pct < DISK_DEGRADED_FREE_PCT:
            return _component("degraded", f"less than {DISK_DEGRADED_FREE_PCT:g}% free", **figures)
        return _component("ok", None, **figures)

    def memory(self):
        rss_mb = psutil.Process().memory_info().rss // MB
        system = psutil.virtual_memory()
        figures = {"process_rss_mb": rss_mb, "system_available_mb": system.available // MB,
                   "system_used_percent": system.percent}
        limit = self.config.get("MEMORY_ALERT_MB", 1024)
        if rss_mb > limit:
            return _component("degraded", f"this process uses {rss_mb} MB (alert above {limit})",
                              **figures)
        if system.percent > SYSTEM_MEMORY_DEGRADED_PCT:
            return _component("degraded", f"system memory {system.percent}% used", **figures)
        return _component("ok", None, **figures)

    def detailed(self):
        """Everything an operator checks first, with an overall status."""
        parts = {"database": self.database(), "redis": self.redis(),
                 "freeswitch": self.freeswitch()}
        redis_up = parts["redis"]["status"] == "ok"
        parts.update(events=self.events() if redis_up else _component(
            "degraded", "unknown (Redis down)"), queues=self.queues(redis_up),
            workers=self.workers(redis_up), disk=self.disk(), memory=self.memory())
        return {"status": overall_status(parts), "version": VERSION, "time": _now_iso(),
                "pid": os.getpid(), **parts}
