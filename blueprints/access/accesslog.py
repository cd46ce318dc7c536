"""The request id (X-Request-ID), the request timer and one JSON access-log line per request."""
import json
import logging
import re
import sys
import time
import uuid

from flask import g, request

from services import auth as auth_service

access_logger = logging.getLogger("access")

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def start_request():
    """Keep a caller's well-formed X-Request-ID (or make one) and start the clock."""
    supplied = request.headers.get("X-Request-ID", "")
    g.request_id = supplied if REQUEST_ID_PATTERN.match(supplied) else uuid.uuid4().hex
    g.started = time.perf_counter()


def log_request(response):
    """One JSON line per request: no query string (it may carry a WebSocket token), no key."""
    principal = g.get("principal")
    started = g.get("started")
    access_logger.info(json.dumps({
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "event": "request", "request_id": g.get("request_id"),
        "method": request.method, "path": request.path, "status": response.status_code,
        # the call a request is about, to follow it into the events process's lines
        "call_id": _call_id(),
        "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        "key_name": principal.name if principal else None,
        "role": principal.role if principal else None,
        "ip": request.remote_addr, "bytes": response.calculate_content_length(),
    }, separators=(",", ":")))
    return response


def _call_id():
    """The call a request is about: its URL's call_id, or the call it started."""
    call_id = (request.view_args or {}).get("call_id") or g.get("call_id")
    return str(call_id) if call_id is not None else None


def install_access_log():
    """Access lines go to stderr as bare JSON, through the secret-redacting filter."""
    if not access_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(auth_service.REDACTING_FILTER)
        access_logger.addHandler(handler)
        access_logger.setLevel(logging.INFO)
        access_logger.propagate = False
    auth_service.install_log_redaction()
