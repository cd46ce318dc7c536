"""Every error answer of the API: one JSON body, with a stable `error_id`, built in one place.

The body is flask-smorest's (code, status, message, errors) plus `error_id`, a
snake_case name a client can branch on; docs/errors.md lists them all.
"""
import http
import logging

import marshmallow as ma
import peewee
import redis
from flask import g, request
from flask_limiter import RateLimitExceeded
from flask_smorest.error_handler import ErrorSchema as SmorestErrorSchema
from werkzeug.exceptions import HTTPException

from blueprints.access.limits import seconds_until_reset
from services.database import is_transient_conflict, rollback_failed_statement
from services.errors import FreeSwitchUnavailable, ServiceError

logger = logging.getLogger(__name__)

RETRY_SOON = {"Retry-After": "5"}

# The id of an HTTP error raised without one (by werkzeug, flask-smorest or an abort()).
HTTP_ERROR_IDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "invalid_input",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
}


class ErrorSchema(SmorestErrorSchema):
    """The error body as the OpenAPI spec documents it (component `Error`)."""

    error_id = ma.fields.String(metadata={
        "description": "Stable snake_case name of the error, e.g. call_not_found "
                       "(see docs/errors.md)"})


def error_body(code, message=None, errors=None, error_id=None, status=None):
    """The one JSON error body: code, status, message, error_id, and errors when there are."""
    body = {"code": code, "status": status or http.HTTPStatus(code).phrase}
    if message is not None:
        body["message"] = message
    if errors:
        body["errors"] = errors
    body["error_id"] = error_id or HTTP_ERROR_IDS.get(code, "internal_error"
                                                      if code >= 500 else "bad_request")
    return body


def _http_error_id(exc, data):
    """The id an abort() named, or what webargs' parse errors mean, or the status's own."""
    if data.get("error_id"):
        return data["error_id"]
    cause = getattr(exc, "exc", None)  # what webargs' abort() was given
    if isinstance(cause, ma.ValidationError):
        return "validation_failed"  # a schema refused the query, path or body
    if isinstance(cause, ValueError) and exc.code == 400:
        return "invalid_json"  # webargs could not decode the body
    return HTTP_ERROR_IDS.get(exc.code)


def http_error(exc):
    """werkzeug, flask-smorest and webargs errors (404, 405, 422 ...) and every abort()."""
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors", data.get("messages"))
    body = error_body(exc.code, data.get("message", exc.description), errors,
                      _http_error_id(exc, data), status=exc.name)
    own = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}  # Allow on a 405
    return body, exc.code, {**own, **(data.get("headers") or {})}


def service_error(exc):
    return error_body(exc.code, exc.message, exc.errors, exc.error_id), exc.code, exc.headers


def too_many_requests(exc):
    retry_after = seconds_until_reset()
    body = error_body(429, f"rate limit exceeded ({exc.description}); retry in "
                           f"{retry_after} s", error_id="rate_limited")
    return body, 429, {"Retry-After": str(retry_after)}


def integrity_error(exc):
    rollback_failed_statement()
    return error_body(409, "conflicts with stored data", error_id="conflict"), 409


def data_error(exc):
    # A value the database cannot hold (out of range for its column type).
    logger.warning("database refused a value: %s", str(exc).splitlines()[0][:200])
    rollback_failed_statement()
    return error_body(422, "a value is out of the range that can be stored",
                      error_id="value_out_of_range"), 422


def database_down(exc):
    if is_transient_conflict(exc):
        # Not an outage: PostgreSQL rolled this request back to break a deadlock with
        # another writer (the services run such transactions again themselves first).
        logger.warning("%s %s lost a deadlock with another writer: %s", request.method,
                       request.path, str(exc).splitlines()[0][:200])
        rollback_failed_statement()
        return error_body(503, "another change to the same data went first; try again",
                          error_id="database_conflict"), 503, RETRY_SOON
    logger.error("database unavailable: %s", exc)
    return error_body(503, "the database is unavailable; try again shortly",
                      error_id="database_unavailable"), 503, RETRY_SOON


def redis_down(exc):
    # A view that needs Redis (queues, live state) degrades to a clean 503.
    logger.warning("Redis unavailable during %s %s: %s", request.method, request.path, exc)
    return error_body(503, "Redis is unavailable; try again shortly",
                      error_id="redis_unavailable"), 503, RETRY_SOON


def freeswitch_down(exc):
    return error_body(503, "FreeSWITCH is unreachable; try again shortly",
                      error_id="freeswitch_unavailable"), 503, RETRY_SOON


def unexpected(exc):
    request_id = g.get("request_id")
    logger.exception("unhandled error in %s %s (request %s)", request.method, request.path,
                     request_id)
    # The exception's text stays in the log: it may name tables, hosts or values.
    return error_body(500, f"unexpected error; quote request id {request_id} when reporting it",
                      error_id="internal_error"), 500


HANDLERS = (
    (HTTPException, http_error),
    (RateLimitExceeded, too_many_requests),
    (ServiceError, service_error),
    (peewee.IntegrityError, integrity_error),
    (peewee.DataError, data_error),
    (peewee.OperationalError, database_down),
    (peewee.InterfaceError, database_down),
    (redis.RedisError, redis_down),
    (FreeSwitchUnavailable, freeswitch_down),
    (Exception, unexpected),
)


def register_error_handlers(app):
    """Install every handler; Flask picks the most specific class of a raised exception."""
    for exception_class, handler in HANDLERS:
        app.register_error_handler(exception_class, handler)
