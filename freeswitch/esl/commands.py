"""The commands this service sends to FreeSWITCH, over a lazily (re)connected link."""
import logging
import re
import time

import gevent.lock

from freeswitch.esl.connection import ESLConnection, FreeSwitchError, FreeSwitchUnavailable

logger = logging.getLogger(__name__)

# Channel-variable values go inside {a=b,c=d}: commas, braces, quotes and spaces
# would end the variable or the dial string, so they are refused up front.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_+*#.@:\-]*$")
_UUID = re.compile(r"^[0-9a-fA-F-]{8,64}$")


def channel_var(value):
    value = "" if value is None else str(value)
    if not _SAFE_VALUE.fullmatch(value):
        raise ValueError(f"unsafe characters in channel variable value {value!r}")
    return value


def check_uuid(value):
    if not _UUID.fullmatch(value or ""):
        raise ValueError(f"not a channel uuid: {value!r}")
    return value


class FreeSwitchCommands:
    """Sends commands over one shared command connection (no event subscription).

    After a failed connect it waits `retry_after` seconds before trying again,
    so that while FreeSWITCH is down requests fail fast with 503 instead of each
    waiting for a connect timeout.
    """

    def __init__(self, host, port, password, timeout=5.0, retry_after=1.0,
                 profile="external"):
        self._conn = ESLConnection(host, port, password, timeout=timeout)
        self._lock = gevent.lock.RLock()
        self._retry_after = retry_after
        self._failed_at = None
        self._last_error = None
        self.profile = profile

    @property
    def connected(self):
        return self._conn.connected

    def state(self):
        if self._conn.connected:
            return "connected"
        return "unreachable" if self._failed_at else "idle"

    def _ensure(self):
        with self._lock:
            if self._conn.connected:
                return self._conn
            now = time.monotonic()
            if self._failed_at and now - self._failed_at < self._retry_after:
                raise FreeSwitchUnavailable(self._last_error)
            try:
                self._conn.connect()
            except FreeSwitchUnavailable as exc:
                self._failed_at, self._last_error = now, str(exc)
                logger.warning("FreeSWITCH unreachable: %s", exc)
                raise
            self._failed_at = None
            logger.info("command connection to FreeSWITCH established")
            return self._conn

    def api(self, command, timeout=None):
        return self._ensure().api(command, timeout=timeout)

    def bgapi(self, command, job_uuid=None):
        return self._ensure().bgapi(command, job_uuid=job_uuid)

    def ping(self):
        """True when FreeSWITCH answers `status`."""
        try:
            return "UP" in self.api("status", timeout=2.0)
        except FreeSwitchUnavailable:
            return False

    # Calls
    @staticmethod
    def originate_command(fs_uuid, call_id, dialstring, caller_id=None, timeout=45,
                          extra_vars=None):
        variables = {"origination_uuid": check_uuid(fs_uuid), "cc_call_id": check_uuid(call_id),
                     "originate_timeout": int(timeout), "hangup_after_bridge": "true"}
        if caller_id:
            variables["origination_caller_id_number"] = channel_var(caller_id)
            variables["effective_caller_id_number"] = channel_var(caller_id)
        for key, value in (extra_vars or {}).items():
            variables[channel_var(key)] = channel_var(value)
        rendered = ",".join(f"{k}={v}" for k, v in variables.items())
        return f"originate {{{rendered}}}{dialstring} &park()"

    def dialstring(self, to_number, gateway=None):
        to_number = channel_var(to_number)
        if gateway:
            return f"sofia/gateway/{channel_var(gateway)}/{to_number}"
        if "@" in to_number:
            return f"sofia/{channel_var(self.profile)}/{to_number}"
        raise ValueError("no gateway given and no DEFAULT_GATEWAY configured")

    def originate(self, fs_uuid, call_id, to_number, gateway=None, caller_id=None,
                  timeout=45, job_uuid=None):
        """Start an outbound call in the background; returns the bgapi Job-UUID."""
        command = self.originate_command(fs_uuid, call_id, self.dialstring(to_number, gateway),
                                         caller_id=caller_id, timeout=timeout)
        return self.bgapi(command, job_uuid=job_uuid)

    def uuid_kill(self, fs_uuid, cause="NORMAL_CLEARING"):
        """Hang up a channel; returns False when FreeSWITCH no longer has it."""
        body = self.api(f"uuid_kill {check_uuid(fs_uuid)} {channel_var(cause)}")
        if body.startswith("-ERR"):
            if "No such channel" in body:
                return False
            raise FreeSwitchError(body.strip())
        return True

    def show_channels(self):
        """`show channels as json` rows (list of dicts)."""
        import json
        body = self.api("show channels as json")
        return json.loads(body).get("rows", []) if body.strip().startswith("{") else []

    def close(self):
        self._conn.close()
