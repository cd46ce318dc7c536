"""HealthService: checks of the database, Redis, FreeSWITCH and the events process."""
import datetime
import json

import redis

from models import db

VERSION = "1.0.0"
EVENTS_STATE_KEY = "cc:events:state"


class HealthService:
    def __init__(self, services):
        self.services = services

    def database(self):
        try:
            db.execute_sql("SELECT 1")
            return {"status": "ok", "detail": None}
        except Exception as exc:  # any driver error means the same thing here
            return {"status": "down", "detail": type(exc).__name__}

    def redis(self):
        try:
            self.services.redis.ping()
            return {"status": "ok", "detail": None}
        except redis.RedisError as exc:
            return {"status": "down", "detail": str(exc)[:200]}

    def freeswitch(self):
        commands = self.services.commands
        if commands.ping():
            return {"status": "ok", "detail": "command connection up"}
        return {"status": "down", "detail": commands._last_error or "unreachable"}

    def events(self):
        """The events process writes its connection state to Redis every few seconds."""
        try:
            raw = self.services.redis.get(EVENTS_STATE_KEY)
        except redis.RedisError:
            return {"status": "degraded", "detail": "unknown (Redis down)"}
        if not raw:
            return {"status": "down", "detail": "no events process has reported"}
        state = json.loads(raw)
        return {"status": "ok" if state.get("state") == "connected" else "degraded",
                "detail": state.get("state")}

    def basic(self):
        parts = {"database": self.database(), "redis": self.redis(),
                 "freeswitch": self.freeswitch(), "events": self.events()}
        if parts["database"]["status"] == "down":
            overall = "down"
        elif all(p["status"] == "ok" for p in parts.values()):
            overall = "ok"
        else:
            overall = "degraded"
        now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
        return {"status": overall, "version": VERSION, "time": now, **parts}
