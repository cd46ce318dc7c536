"""One Event Socket connection: greenswitch with timeouts, a command lock and clean failure.

greenswitch 0.0.19 waits forever in send(), never reconnects, leaves pending
commands hanging when the socket drops, and parses event bodies loosely. This
wrapper bounds every wait, fails pending commands on disconnect, parses events
itself and hands them to a callback, and is thrown away and rebuilt on any
failure (a late reply on a reused connection would answer the wrong command).
"""
import logging
import uuid

import gevent
import gevent.lock
from greenswitch.esl import InboundESL, NotConnectedError

from freeswitch.esl.eventparse import parse_event

logger = logging.getLogger(__name__)


class FreeSwitchUnavailable(Exception):
    """FreeSWITCH cannot be reached or stopped answering."""


class NotSent(FreeSwitchUnavailable):
    """The command never went out: the connection was closed before it could be sent
    (e.g. by another command's timeout while this one waited for the lock). Sending it
    again on a new connection cannot run it twice."""


class FreeSwitchError(Exception):
    """FreeSWITCH answered a command with -ERR."""


class _Protocol(InboundESL):
    """InboundESL that parses events itself and never leaves a command waiting."""

    def __init__(self, host, port, password, timeout, on_event, on_close):
        super().__init__(host, port, password, timeout=timeout)
        self._on_event = on_event
        self._on_close = on_close

    def handle_event(self, event):
        ctype = event.headers.get("Content-Type")
        if ctype in ("text/event-json", "text/event-plain"):
            body = self._read_socket(self.sock_file, int(event.headers["Content-Length"]))
            try:
                parsed = parse_event(ctype, body)
            except ValueError:
                logger.warning("unparseable %s event dropped", ctype)
                return
            if self._on_event is not None:
                self._on_event(parsed)
            return
        if ctype == "text/disconnect-notice":
            length = int(event.headers.get("Content-Length", 0) or 0)
            notice = self._read_socket(self.sock_file, length) if length else ""
            logger.warning("FreeSWITCH disconnect notice: %s", notice.strip().splitlines()[:1])
            self.connected = False
            return
        if ctype in ("command/reply", "api/response") and not self._commands_sent:
            # A reply nobody waits for (its command timed out): read and drop it.
            if ctype == "api/response":
                self._read_socket(self.sock_file, int(event.headers.get("Content-Length", 0)))
            return
        super().handle_event(event)

    def receive_events(self):
        try:
            super().receive_events()
        finally:
            self.connected = False
            pending, self._commands_sent = self._commands_sent, []
            for result in pending:
                result.set_exception(NotConnectedError("connection to FreeSWITCH lost"))
            try:
                self.sock.close()
            except Exception:  # closing a dead socket: nothing to report
                pass
            if self._on_close is not None:
                self._on_close()

    def process_events(self):
        # Events go straight to the callback from handle_event; greenswitch's own
        # single-greenlet dispatch queue is not used.
        return


class ESLConnection:
    """An authenticated inbound ESL connection, optionally subscribed to events."""

    def __init__(self, host, port, password, timeout=5.0, events=(), on_event=None,
                 on_close=None, event_format="json"):
        self.host, self.port, self.password = host, port, password
        self.timeout = timeout
        self.events = tuple(events)
        self.event_format = event_format
        self._on_event = on_event
        self._on_close = on_close
        self._lock = gevent.lock.RLock()
        self._esl = None

    @property
    def connected(self):
        return self._esl is not None and self._esl.connected

    def connect(self):
        """Connect, authenticate and subscribe; raises FreeSwitchUnavailable."""
        self.close()
        esl = _Protocol(self.host, self.port, self.password, self.timeout,
                        self._on_event, self._on_close)
        try:
            with gevent.Timeout(self.timeout, FreeSwitchUnavailable("timed out connecting")):
                esl.connect()
        except ValueError:
            self._kill(esl)
            raise FreeSwitchUnavailable("FreeSWITCH refused the ESL password") from None
        except (OSError, NotConnectedError, FreeSwitchUnavailable) as exc:
            self._kill(esl)
            raise FreeSwitchUnavailable(
                f"cannot reach FreeSWITCH at {self.host}:{self.port}: {exc}") from None
        self._esl = esl
        if self.events:
            self.send(f"event {self.event_format} " + " ".join(self.events))
        return self

    def send(self, command, timeout=None):
        """Send one ESL command and return greenswitch's reply event."""
        with self._lock:
            esl = self._esl
            if esl is None or not esl.connected:
                raise NotSent("not connected to FreeSWITCH")
            try:
                with gevent.Timeout(timeout or self.timeout):
                    return esl.send(command)
            except gevent.Timeout:
                # The reply may still come and would be taken as the answer to the
                # next command: this connection cannot be trusted any more.
                self.close()
                raise FreeSwitchUnavailable(f"FreeSWITCH did not answer {command.split()[0]!r} "
                                            f"within {timeout or self.timeout}s") from None
            except (NotConnectedError, OSError) as exc:
                self.close()
                raise FreeSwitchUnavailable(f"connection to FreeSWITCH lost: {exc}") from None

    def api(self, command, timeout=None):
        """Run `api <command>` and return the body text."""
        return self.send(f"api {command}", timeout=timeout).data

    def bgapi(self, command, job_uuid=None):
        """Run `bgapi <command>` with our own Job-UUID; returns the Job-UUID."""
        job_uuid = job_uuid or str(uuid.uuid4())
        reply = self.send(f"bgapi {command}\nJob-UUID: {job_uuid}")
        text = reply.headers.get("Reply-Text", "")
        if not text.startswith("+OK"):
            raise FreeSwitchError(text)
        return reply.headers.get("Job-UUID", job_uuid)

    def close(self):
        esl, self._esl = self._esl, None
        if esl is not None:
            self._kill(esl)

    @staticmethod
    def _kill(esl):
        esl._run = False
        esl.connected = False
        for attr in ("sock",):
            sock = getattr(esl, attr, None)
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
