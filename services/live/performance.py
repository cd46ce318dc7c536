"""PerformanceAlerts: slow requests, memory and job backlog on `performance`, throttled."""
import collections
import time

import psutil

from services.live.process import process_id, rss_mb


class PerformanceAlerts:
    """The `performance` channel: slow requests, memory, job backlog; throttled, never a flood."""

    SLOW_REQUEST_EVERY = 10.0   # seconds between alerts for one route in one process
    MEMORY_EVERY = 300.0
    BACKLOG_EVERY = 60.0
    MEMORY_CHECK_EVERY = 30.0   # how often a web process looks at its own memory

    def __init__(self, notifier, config, role):
        self.notifier = notifier
        self.role = role
        self.slow_seconds = float(config.get("SLOW_REQUEST_SECONDS", 1.0))
        self.memory_mb = float(config.get("MEMORY_ALERT_MB", 1024))
        self.backlog = int(config.get("QUEUE_BACKLOG_ALERT", 1000))
        self._last = {}        # key -> monotonic time of the last alert
        self._suppressed = collections.Counter()
        self._memory_checked = 0.0
        self._process = None

    def _allow(self, key, every):
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < every:
            self._suppressed[key] += 1
            return None
        self._last[key] = now
        return self._suppressed.pop(key, 0)

    def _origin(self):
        return {"role": self.role, "process": process_id()}

    def slow_request(self, method, route, status, seconds):
        suppressed = self._allow(("slow", method, route), self.SLOW_REQUEST_EVERY)
        if suppressed is None:
            return None
        return self.notifier.slow_request({
            "method": method, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "threshold_ms": round(self.slow_seconds * 1000, 1),
            "suppressed": suppressed, **self._origin()})

    def memory(self, rss):
        if rss <= self.memory_mb:
            return None
        suppressed = self._allow(("memory",), self.MEMORY_EVERY)
        if suppressed is None:
            return None
        return self.notifier.memory_high({
            "rss_mb": rss, "threshold_mb": self.memory_mb, **self._origin()})

    def memory_check_due(self):
        """True at most once every MEMORY_CHECK_EVERY seconds (the first call included)."""
        now = time.monotonic()
        if self._memory_checked and now - self._memory_checked < self.MEMORY_CHECK_EVERY:
            return False
        self._memory_checked = now
        return True

    def check_own_memory(self):
        """Alert if this process is over the memory threshold."""
        self._process = self._process or psutil.Process()
        return self.memory(rss_mb(self._process))

    def queue_backlog(self, depths):
        for queue_name, depth in depths.items():
            if depth is None or depth <= self.backlog:
                continue
            if self._allow(("backlog", queue_name), self.BACKLOG_EVERY) is None:
                continue
            self.notifier.queue_backlog({
                "queue": queue_name, "depth": depth, "threshold": self.backlog,
                **self._origin()})
