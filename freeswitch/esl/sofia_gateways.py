"""Sofia commands that load, reload and remove gateways live, and FreeSWITCH's replies to them.

`SofiaGatewayControl` issues `sofia profile <p> rescan | killgw <name>` and
`sofia xmlstatus gateway <name>` and reads the replies as captured from
FreeSWITCH 1.11 (tests/fixtures/esl/02_api_sofia_* and 06_*): rescan answers
'Reload XML [Success]\\n+OK scan complete', killgw '+OK gateway marked for
deletion.' or '-ERR no such gateway.', an unknown profile 'Invalid Profile
[<name>]' (no -ERR), an unknown gateway 'Invalid Gateway!'.
"""
import time
import xml.etree.ElementTree as ET

import gevent

from freeswitch.esl.gateway_xml import check_name


class SofiaRefused(Exception):
    """FreeSWITCH answered a sofia command with an error (unknown profile, -ERR ...)."""


def parse_gateway_status(body):
    """`sofia xmlstatus gateway <name>` reply -> its fields; None for 'Invalid Gateway!'."""
    text = (body or "").strip()
    if text.startswith("Invalid Gateway"):
        return None
    if text.startswith("<?xml"):
        text = text.split("?>", 1)[1].strip()
    if not text.startswith("<gateway>"):
        raise SofiaRefused(f"unexpected reply to sofia xmlstatus: {text[:120]!r}")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SofiaRefused(f"unreadable sofia xmlstatus reply: {exc}") from None
    return {child.tag: (child.text or "").strip() for child in root}


def _check_profile_reply(body, command):
    text = (body or "").strip()
    if text.startswith(("Invalid", "-ERR")):  # "Invalid Profile [x]", "Invalid Args!"
        raise SofiaRefused(f"FreeSWITCH refused `{command}`: {text[:160]}")
    return text


class SofiaGatewayControl:
    """Loads, reloads and removes gateways of one sofia profile through `api sofia ...`.

    FreeSWITCH only adds gateways on `rescan` and never changes a loaded one, so
    a changed gateway is killed first (`killgw`), and rescanned once FreeSWITCH
    no longer lists it. FreeSWITCHUnavailable from the commands passes through.
    """

    def __init__(self, commands, profile="external", settle_timeout=3.0, poll_interval=0.1):
        self.commands = commands
        self.profile = profile
        self.settle_timeout = settle_timeout
        self.poll_interval = poll_interval

    def status(self, name):
        """FreeSWITCH's fields for the gateway, or None when it has no such gateway."""
        command = f"sofia xmlstatus gateway {check_name(name)}"
        return parse_gateway_status(self.commands.api(command))

    def rescan(self):
        command = f"sofia profile {self.profile} rescan"
        text = _check_profile_reply(self.commands.api(command), command)
        if "+OK" not in text:
            raise SofiaRefused(f"FreeSWITCH did not confirm `{command}`: {text[:160]}")
        return text

    def kill(self, name):
        """killgw; True when FreeSWITCH had the gateway, False when it did not."""
        command = f"sofia profile {self.profile} killgw {check_name(name)}"
        body = self.commands.api(command)
        if body.strip().startswith("-ERR no such gateway"):
            return False
        text = _check_profile_reply(body, command)
        if not text.startswith("+OK"):
            raise SofiaRefused(f"FreeSWITCH did not confirm `{command}`: {text[:160]}")
        return True

    def _wait(self, name, present):
        deadline = time.monotonic() + self.settle_timeout
        while True:
            if (self.status(name) is not None) == present:
                return True
            if time.monotonic() >= deadline:
                return False
            gevent.sleep(self.poll_interval)

    def load(self, name):
        """Make FreeSWITCH run the current file of the gateway; returns what was done."""
        killed = self.status(name) is not None and self.kill(name)
        if killed and not self._wait(name, present=False):
            raise SofiaRefused(f"FreeSWITCH still lists gateway {name} after killgw")
        self.rescan()
        if not self._wait(name, present=True):
            # A gateway being reaped can swallow the first rescan: one more try.
            self.rescan()
            if not self._wait(name, present=True):
                raise SofiaRefused(f"FreeSWITCH did not load gateway {name} on rescan (see its "
                                   "log: XML error, or the profile has no include for "
                                   "the gateway directory)")
        return "reloaded" if killed else "loaded"

    def unload(self, name):
        """Remove the gateway from FreeSWITCH (its file already gone); returns what was done."""
        killed = self.kill(name)
        self.rescan()
        return "removed" if killed else "absent"
