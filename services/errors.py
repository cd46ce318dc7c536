"""Service errors: one class per kind, each with its HTTP status and a stable error id.

blueprints/errors.py turns them (and every other error) into the one JSON error body;
docs/errors.md lists every id. A raise site may name a more precise id than its class's:
`NotFound(f"call {call_id} not found", error_id="call_not_found")`.
"""
# The FreeSWITCH command layer's exceptions, re-exported so that the HTTP layer,
# which must not import freeswitch itself, can map them to responses.
from freeswitch.esl.connection import FreeSwitchError, FreeSwitchUnavailable

__all__ = ["ServiceError", "BadRequest", "Forbidden", "NotFound", "Conflict",
           "RangeNotSatisfiable", "Unprocessable", "BadGateway", "Unavailable",
           "FreeSwitchError", "FreeSwitchUnavailable"]


class ServiceError(Exception):
    """An error a caller can act on: `code` is its HTTP status, `error_id` its stable name."""

    code = 500
    error_id = "internal_error"

    def __init__(self, message, errors=None, headers=None, error_id=None):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        if error_id is not None:
            self.error_id = error_id


class BadRequest(ServiceError):
    code = 400
    error_id = "bad_request"


class Forbidden(ServiceError):
    code = 403
    error_id = "forbidden"


class NotFound(ServiceError):
    code = 404
    error_id = "not_found"


class Conflict(ServiceError):
    code = 409
    error_id = "conflict"


class RangeNotSatisfiable(ServiceError):
    code = 416
    error_id = "range_not_satisfiable"


class Unprocessable(ServiceError):
    code = 422
    error_id = "invalid_input"


class BadGateway(ServiceError):
    code = 502
    error_id = "bad_gateway"


class Unavailable(ServiceError):
    code = 503
    error_id = "unavailable"
